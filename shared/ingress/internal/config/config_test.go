package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// UnknownKeys lists exactly the keys yaml.v3's strict decode (cloudflared's second pass)
// complains about.
func TestUnknownKeysMatchesKnownFields(t *testing.T) {
	t.Parallel()
	docs := []string{
		"tunnel: t\nbogus: 1\ningress:\n  - hostname: a\n    servce: x\n    originRequest:\n      conectTimeout: 5s\n      access: {requird: true}\n      ipRules: [{prefix: x, alow: true}, ~]\n",
		"originRequest:\n  maxActiveFlows: 1\nwarp-routing:\n  enabled: true\n  maxActiveFlows: 2\n",
		"x: &a {bogus: 1, service: y}\ningress:\n  - <<: *a\n  - {1: 2}\n",
		"ingress: []\n",
	}
	for _, doc := range docs {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range UnknownKeys(&n) {
			got = append(got, fmt.Sprintf("line %d: field %s not found in type %s", u.Line, u.Key, u.Type))
		}
		dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
		dec.KnownFields(true)
		var f configFileSettings
		var want []string
		var te *yaml.TypeError
		if err := dec.Decode(&f); errors.As(err, &te) {
			want = te.Errors
		} else if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s\nUnknownKeys: %s\nyaml.v3:     %s", doc, strings.Join(got, "; "), strings.Join(want, "; "))
		}
	}
}

func TestLoadReportsCloudflaredsTypeNames(t *testing.T) {
	t.Parallel()
	for doc, want := range map[string]string{
		"[]\n":                                "cannot unmarshal !!seq into config.configFileSettings",
		"ingress: {}\n":                       "cannot unmarshal !!map into []config.UnvalidatedIngressRule",
		"originRequest: {connectTimeout: 30}": "cannot unmarshal !!int `30` into time.Duration",
		"originRequest: {access: []}":         "cannot unmarshal !!seq into config.AccessConfig",
	} {
		if _, _, err := Load([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%q) = %v, want %q", doc, err, want)
		}
	}
	if _, _, err := Load([]byte("# nothing\n")); !errors.Is(err, ErrEmpty) {
		t.Errorf("Load(comment) = %v, want ErrEmpty", err)
	}
}
