package ingress

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		data      string
		wantErr   string // substring; "" = accepted
		wantRules []Rule
	}{
		{name: "an empty file is a base with only the 404 catch-all", data: "", wantRules: []Rule{CatchAll404}},
		{name: "a null ingress gets the 404 catch-all", data: "tunnel: t\ningress:\n", wantRules: []Rule{CatchAll404}},
		{name: "operator rules without a catch-all get the 404 catch-all", data: "ingress:\n  - hostname: a.com\n    service: http://x\n",
			wantRules: []Rule{{Hostname: "a.com", Service: "http://x"}, CatchAll404}},
		{name: "the operator's own catch-all is kept", data: "ingress:\n  - service: hello_world\n", wantRules: []Rule{{Service: "hello_world"}}},
		{name: "a file over 1 MiB is refused", data: "a: " + strings.Repeat("x", MaxBaseSize), wantErr: "limit is 1048576"},
		{name: "a YAML syntax error names its line", data: "tunnel: t\nfoo: [\n", wantErr: "yaml: line 2: did not find expected node content"},
		{name: "a top-level list is refused", data: "- a\n", wantErr: "line 1: cannot unmarshal !!seq into config.configFileSettings"},
		{name: "a duplicate top-level key is refused", data: "tunnel: a\ntunnel: b\n", wantErr: `line 2: mapping key "tunnel" already defined at line 1`},
		{name: "aliases are refused", data: "a: &x 1\nb: *x\n", wantErr: "line 1: YAML anchors are not supported"},
		{name: "a second document is refused", data: "a: 1\n---\nb: 2\n", wantErr: "line 2: more than one YAML document"},
		{name: "an ingress that is not a list is refused", data: "ingress: yes\n", wantErr: "line 1: cannot unmarshal !!str `yes` into []config.UnvalidatedIngressRule"},
		{name: "an unknown rule key is refused", data: "ingress:\n  - hostname: a.com\n    servce: http://x\n", wantErr: "unknown ingress rule key ingress[1].servce (line 3)"},
		{name: "a rule that is not a mapping is refused", data: "ingress:\n  - http://x\n", wantErr: "line 2: cannot unmarshal !!str `http://x` into config.UnvalidatedIngressRule"},
		{name: "a hostname that is a list is refused", data: "ingress:\n  - hostname: [a]\n    service: http://x\n", wantErr: "line 2: cannot unmarshal !!seq into string"},
		{name: "an operator rule cloudflared would refuse is refused", data: "ingress:\n  - hostname: a.com\n    service: http://x/\n", wantErr: "base: rule #1: http://x/ is an invalid address"},
		{name: "url is refused", data: "url: http://x\n", wantErr: "base: You can't set the --url flag"},
		{name: "an unknown originRequest key is refused", data: "originRequest:\n  bogus: 1\n", wantErr: "base: unknown key originRequest.bogus (line 2)"},
		{name: "a global bastionMode is refused", data: "originRequest:\n  bastionMode: true\n", wantErr: "would serve the managed rules as bastions"},
		{name: "an operator rule may rely on its own bastionMode", data: "originRequest:\n  bastionMode: false\ningress:\n  - hostname: a.com\n    service: x\n    originRequest:\n      bastionMode: yes\n",
			wantRules: []Rule{{Hostname: "a.com", Service: "x", OriginRequest: map[string]any{"bastionMode": "yes"}}, CatchAll404}},
		{name: "an early operator catch-all is refused", data: "ingress:\n  - service: http://x\n  - hostname: a.com\n    service: http://y\n", wantErr: "base: rule #1: Rule #1 is matching the hostname ''"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := ParseBase([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseBase() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantRules, b.OperatorRules()); diff != "" {
				t.Errorf("operator rules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseConfigReportsUnknownKeys(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte("tunnel: t\nbogus: 1\ningress:\n  - hostname: a.com\n    servce: http://x\n  - service: http_status:404\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ingress[1].servce (line 5)", "bogus"}
	if diff := cmp.Diff(want, cfg.UnknownKeys); diff != "" {
		t.Fatalf("UnknownKeys (-want +got):\n%s", diff)
	}
	if len(cfg.Rules) != 2 || cfg.Rules[0].Service != "" {
		t.Fatalf("Rules = %+v", cfg.Rules)
	}
}

func TestParseConfigReadsWhatRenderWrote(t *testing.T) {
	t.Parallel()
	base := readBase(t, "full.base.yaml")
	out, err := Render(base, seedManaged)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != len(seedManaged)+len(base.OperatorRules()) || len(cfg.UnknownKeys) != 0 {
		t.Fatalf("ParseConfig = %d rules, unknown %q", len(cfg.Rules), cfg.UnknownKeys)
	}
	if !bytes.Contains(out, []byte("credentials-file: /etc/cloudflared/")) {
		t.Fatal("credentials-file not kept")
	}
}

func TestValidateFile(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"valid", "tunnel: t\ningress:\n  - hostname: a.com\n    service: http://x\n  - service: http_status:404\n", ""},
		{"not yaml", "ingress: [\n", "config:"},
		{"rule after catch-all", "ingress:\n  - service: http_status:404\n  - hostname: a.com\n    service: http://x\n", "validate: rule #1"},
		{"unused key", "tunnel: t\ntunel: t\ningress:\n  - service: http_status:404\n", "unknown keys tunel"},
		{"empty", "# nothing\n", "config: the file is empty"},
		{"global bastionMode makes any service a bastion", "originRequest:\n  bastionMode: true\ningress:\n  - hostname: a.com\n    service: garbage\n  - service: http_status:404\n", ""},
		{"a rule's bastionMode overrides the global one", "originRequest:\n  bastionMode: true\ningress:\n  - hostname: a.com\n    service: garbage\n    originRequest:\n      bastionMode: false\n  - service: http_status:404\n", "validate: rule #1: garbage is an invalid address"},
		{"a type error is cloudflared's", "ingress:\n  - service: http_status:404\n    originRequest:\n      connectTimeout: 30\n", "config: yaml: unmarshal errors:\n  line 4: cannot unmarshal !!int `30` into time.Duration"},
		{"a flag of the wrong type", "loglevel: 5\ningress:\n  - service: http_status:404\n", "config: expected string found int for loglevel"},
		{"url next to ingress rules", "url: http://x\ningress:\n  - service: http_status:404\n", "config: You can't set the --url flag"},
		{"a null rule is no rule", "ingress:\n  - ~\n", "The config file doesn't contain any ingress rules"},
		{"an unknown originRequest key", "originRequest:\n  conectTimeout: 5s\ningress:\n  - service: http_status:404\n", "unknown keys originRequest.conectTimeout (line 2)"},
		{"a second document", "ingress:\n  - service: http_status:404\n---\n", "more than one YAML document"},
	} {
		err := ValidateFile([]byte(tc.file))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: ValidateFile = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A base file with a top-level key ValidateFile refuses is refused at once, with the key named:
// otherwise every rendering would be a file the agent never keeps as its last good copy.
func TestParseBaseRefusesKeysValidateFileRefuses(t *testing.T) {
	t.Parallel()
	data := []byte("tunnel: x\nsomething-undocumented: 1\ningress:\n  - service: http_status:404\n")
	if _, err := ParseBase(data); err == nil || !strings.Contains(err.Error(), "something-undocumented") {
		t.Fatalf("ParseBase: %v, want the unknown key named", err)
	}
	if err := ValidateFile(data); err == nil {
		t.Fatal("ValidateFile accepts what ParseBase refuses")
	}
}
