package ingress

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

// FuzzParseBase: ParseBase never panics, and whatever it accepts renders,
// re-parses to the same rules, and renders again to the same bytes.
func FuzzParseBase(f *testing.F) {
	for _, name := range []string{"full.base.yaml", "noingress.base.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "~", "[]", "a: &x 1\nb: *x\n", "ingress:\n", "ingress: 3\n", "ingress:\n  - service: \"http_status:404\"\n",
		"ingress:\n  - hostname: a.com\n    service: http://x\n", "tunnel: t\ningress:\n  - hostname: a\n    bogus: 1\n    service: http://x\n",
		"---\na: 1\n---\nb: 2\n", "tunnel: t\ntunnel: u\n", "? [a]\n: b\n", "# only a comment\n",
		"ingress:\n  - hostname: \"x\\u2028y.com\"\n    service: 'http://x' # c\n  - service: hello_world\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base, err := ParseBase(data)
		if err != nil {
			return
		}
		managed := []Rule{{Hostname: "fuzz-tenant.sajet.us", Service: "http://10.0.0.1:8069"}}
		if _, conflict := base.names[managed[0].Hostname]; conflict {
			managed = nil
		}
		out, err := Render(base, managed)
		if err != nil {
			t.Fatalf("accepted base does not render: %v\n%q", err, data)
		}
		cfg, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("rendered file does not parse: %v\n%s", err, out)
		}
		want := append(append([]Rule(nil), managed...), base.operator...)
		if diff := cmp.Diff(want, cfg.Rules, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("rules changed by render (-want +got):\n%s\n%s", diff, out)
		}
		if err := Validate(cfg.Rules); err != nil {
			t.Fatalf("rendered rules do not validate: %v", err)
		}
		// The top-level keys survive too.
		var before, after map[string]any
		if yaml.Unmarshal(data, &before) == nil && yaml.Unmarshal(out, &after) == nil {
			delete(before, "ingress")
			delete(after, "ingress")
			if diff := cmp.Diff(before, after, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("top-level keys changed (-before +after):\n%s", diff)
			}
		}
		// A rendered file (without managed rules) is itself a valid base
		// that renders to the same bytes.
		out1, err := Render(base, nil)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseBase(out1)
		if err != nil {
			if len(out1) > MaxBaseSize {
				return
			}
			t.Fatalf("rendered file is not a valid base: %v\n%s", err, out1)
		}
		out2, err := Render(again, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Comments may move (one before "ingress:" attaches to the key,
		// which is re-created), so compare what cloudflared would read.
		if !bytes.Equal(stripComments(t, out1), stripComments(t, out2)) {
			t.Fatalf("render is not stable across a re-parse:\n%s\nvs\n%s", out1, out2)
		}
	})
}

func FuzzAppendScalar(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		buf, err := appendScalar([]byte("k: "), s)
		if err != nil {
			return // invalid UTF-8 is refused, never written
		}
		var got map[string]string
		if err := yaml.Unmarshal(buf, &got); err != nil {
			t.Fatalf("yaml.Unmarshal(%q): %v", buf, err)
		}
		if got["k"] != s {
			t.Fatalf("%q read back as %q (written %q)", s, got["k"], buf)
		}
	})
}

// stripComments re-encodes data without comments.
func stripComments(t *testing.T, data []byte) []byte {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		t.Fatal(err)
	}
	var clear func(*yaml.Node)
	clear = func(n *yaml.Node) {
		n.HeadComment, n.LineComment, n.FootComment = "", "", ""
		for _, c := range n.Content {
			clear(c)
		}
	}
	clear(&n)
	out, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
