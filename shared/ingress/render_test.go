package ingress

import (
	"crypto/sha256"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

// seedManaged is the three customers of the seed document (shared/seed):
// each has a sajet.us subdomain and an external www hostname, both routed to
// the tenant's container.
var seedManaged = []Rule{
	{Hostname: "impulse-max.sajet.us", Service: "http://10.10.10.105:8069"},
	{Hostname: "www.impulse-max.com", Service: "http://10.10.10.105:8069"},
	{Hostname: "evolucionamujer.sajet.us", Service: "http://10.10.10.106:8069"},
	{Hostname: "www.evolucionamujer.com", Service: "http://10.10.10.106:8069"},
	{Hostname: "techeels.sajet.us", Service: "http://10.10.10.107:8069"},
	{Hostname: "www.techeels.io", Service: "http://10.10.10.107:8069"},
}

func readBase(t testing.TB, name string) *Base {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBase(data)
	if err != nil {
		t.Fatalf("ParseBase(%s): %v", name, err)
	}
	return b
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		base    string
		managed []Rule
		golden  string
	}{
		{
			name: "a full base keeps its keys and rules after the managed ones", base: "full.base.yaml", golden: "full.golden.yaml",
			managed: []Rule{
				{Hostname: "www.impulse-max.com", Service: "http://10.10.10.105:8069"},
				{Hostname: "impulse-max.sajet.us", Service: "http://10.10.10.105:8069", OriginRequest: map[string]any{"httpHostHeader": "impulse-max.sajet.us", "connectTimeout": "5s"}},
			},
		},
		{name: "a base without ingress gets a 404 catch-all", base: "noingress.base.yaml", golden: "noingress.golden.yaml", managed: seedManaged[:1]},
		{name: "punycode hostnames stay ASCII", base: "noingress.base.yaml", golden: "idn.golden.yaml", managed: []Rule{
			{Hostname: "xn--caf-dma.com", Service: "http://10.10.10.108:8069"},
			{Hostname: "www.xn--evolucinmujer-7kb.com", Service: "https://10.10.10.106"},
		}},
		{name: "the seed's three customers each get two rules", base: "noingress.base.yaml", golden: "seed.golden.yaml", managed: seedManaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(readBase(t, tt.base), tt.managed)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Render() mismatch (-golden +got):\n%s", diff)
			}
			cfg, err := ParseConfig(got)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.UnknownKeys) != 0 {
				t.Errorf("rendered file has unknown keys %q", cfg.UnknownKeys)
			}
			if err := Validate(cfg.Rules); err != nil {
				t.Errorf("rendered file does not validate: %v", err)
			}
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	t.Parallel()
	base := readBase(t, "full.base.yaml")
	first, err := Render(base, seedManaged)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		shuffled := append([]Rule(nil), seedManaged...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		got, err := Render(base, shuffled)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != sha256.Sum256(first) {
			t.Fatalf("render %d of shuffled rules differs:\n%s\nvs\n%s", i, got, first)
		}
	}
}

func TestRenderPutsManagedRulesFirstSorted(t *testing.T) {
	t.Parallel()
	out, err := Render(readBase(t, "full.base.yaml"), seedManaged)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, r := range cfg.Rules {
		hosts = append(hosts, r.Hostname)
	}
	want := []string{
		"evolucionamujer.sajet.us", "impulse-max.sajet.us", "techeels.sajet.us",
		"www.evolucionamujer.com", "www.impulse-max.com", "www.techeels.io",
		"admin.sajet.us", "*.preview.sajet.us", "",
	}
	if diff := cmp.Diff(want, hosts); diff != "" {
		t.Fatalf("rule order (-want +got):\n%s", diff)
	}
}

func TestRenderRefusesConflicts(t *testing.T) {
	t.Parallel()
	base, err := ParseBase([]byte("tunnel: t\ningress:\n  - hostname: Shop.Example.com\n    service: http://10.0.0.9:80\n  - hostname: xn--caf-dma.com\n    service: http://10.0.0.9:80\n  - hostname: \"*.sajet.us\"\n    service: http://10.0.0.8:80\n  - service: http_status:404\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		managed []Rule
		wantErr string
	}{
		{name: "a hostname the operator names exactly is refused", managed: []Rule{{Hostname: "xn--caf-dma.com", Service: "http://10.0.0.1:80"}},
			wantErr: `managed: rule #1: hostname "xn--caf-dma.com" is also named by rule #2 of the base file; remove one of them`},
		{name: "a hostname the operator names in another case is refused", managed: []Rule{{Hostname: "a.com", Service: "http://x"}, {Hostname: "shop.example.com", Service: "http://10.0.0.1:80"}},
			wantErr: `managed: rule #2: hostname "shop.example.com" is also named by rule #1 of the base file; remove one of them`},
		{name: "a hostname under an operator wildcard is not a conflict", managed: []Rule{{Hostname: "a.sajet.us", Service: "http://10.0.0.1:80"}}},
		{name: "an invalid managed rule is reported with its position", managed: []Rule{{Hostname: "a.com", Service: "http://x"}, {Hostname: "B.com", Service: "http://x"}},
			wantErr: `managed: rule #2: hostname "B.com": must be lower case`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(base, tt.managed)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Render() = %v", err)
				}
				return
			}
			var re *RuleError
			if err == nil || err.Error() != tt.wantErr || !errors.As(err, &re) {
				t.Fatalf("Render() = %v\nwant        %s", err, tt.wantErr)
			}
		})
	}
}

// trickyStrings are values YAML could misread if written plain.
var trickyStrings = []string{
	"", " ", "a b", " lead", "trail ", `q"uote`, "s'ingle", `back\slash`, "a: b", "a:", ":a", "a:b",
	"http://x:80", "#", "a #b", "a#b", "*", "*.x.com", "*x", "-", "- a", "-a", "?", "? a", "&a", "!tag", "%x",
	"@x", "`x", "|", ">", "[x]", "{x}", ",", "true", "True", "false", "null", "Null", "~", "yes", "no",
	"on", "off", "y", "n", "1", "-1", "1e3", "0x1F", "0o17", "1_000", ".5", ".inf", "-.inf", ".nan",
	"2026-11-29", "12:30:00", "café", "xn--caf-dma.com", "Ünïcödé 😀", "tab\there", "nl\nx", "cr\rx",
	"nul\x00x", "del\x7fx", "nel\u0085x", "ls\u2028x", "bom\ufeffx", "c1\u009bx", "---", "...", "<<",
	"=", "http_status:404", "unix:/run/a.sock", "a/b", "a.b", "A-1", "a_b",
}

// TestRenderRoundTrip proves the hand-written rule writer: yaml.v3 (which
// cloudflared uses) reads every tricky value back unchanged.
func TestRenderRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range trickyStrings {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			want := []Rule{
				{Hostname: s, Path: s, Service: s},
				{Hostname: "h.com", Service: s, OriginRequest: map[string]any{s + "k": s, "n": 1, "list": []any{s}}},
			}
			var buf []byte
			buf = append(buf, "ingress:\n"...)
			for _, r := range want {
				var err error
				if buf, err = appendRule(buf, r); err != nil {
					t.Fatal(err)
				}
			}
			var got struct {
				Ingress []Rule `yaml:"ingress"`
			}
			if err := yaml.Unmarshal(buf, &got); err != nil {
				t.Fatalf("yaml.Unmarshal: %v\n%s", err, buf)
			}
			if s == "" {
				want[0].Path = "" // an empty path is not written
			}
			if diff := cmp.Diff(want, got.Ingress, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s\n%s", diff, buf)
			}
			// The hand-written fields are one line each: no raw line break
			// leaks out of a value.
			one, _ := appendRule(nil, Rule{Hostname: s, Path: "p" + s, Service: s})
			if n := strings.Count(string(one), "\n"); n != 3 {
				t.Fatalf("%d lines written, want 3:\n%s", n, one)
			}
		})
	}
}

func TestRenderRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	if _, err := appendRule(nil, Rule{Hostname: "a\xffb", Service: "http://x"}); err == nil {
		t.Fatal("appendRule accepted invalid UTF-8")
	}
}

func TestRenderedFileReparsesAsABaseToTheSameBytes(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"full.base.yaml", "noingress.base.yaml"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			first, err := Render(readBase(t, name), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ParseBase(first)
			if err != nil {
				t.Fatal(err)
			}
			second, err := Render(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(first), string(second)); diff != "" {
				t.Fatalf("second render differs:\n%s", diff)
			}
		})
	}
}
