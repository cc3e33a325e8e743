package ingress

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckManagedRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule Rule
		want string // "" = accepted; else the RuleError's Msg
	}{
		{"a tenant backend", Rule{Hostname: "www.impulse-max.com", Service: "http://10.10.10.105:8069"}, ""},
		{"https with a name", Rule{Hostname: "a.example.com", Service: "https://odoo.internal"}, ""},
		{"userinfo", Rule{Hostname: "a.example.com", Service: "http://admin@h:8069"}, `service "http://admin@h:8069": only scheme://host[:port] is allowed`},
		{"port out of range", Rule{Hostname: "a.example.com", Service: "http://h:99999"}, `service "http://h:99999": invalid port`},
		{"a keyword service", Rule{Hostname: "a.example.com", Service: "hello_world"}, `service "hello_world": scheme must be http or https`},
		{"upper case", Rule{Hostname: "A.example.com", Service: "http://h"}, `hostname "A.example.com": must be lower case`},
		{"the catch-all is not a managed rule", Rule{Service: "http://h"}, `hostname "": empty hostname (the catch-all is not a managed rule)`},
		{"an originRequest key cloudflared ignores", Rule{Hostname: "a.example.com", Service: "http://h", OriginRequest: map[string]any{"conectTimeout": "5s"}}, `originRequest: unknown key originRequest.conectTimeout (cloudflared would ignore it)`},
		{"bastionMode replaces the service", Rule{Hostname: "a.example.com", Service: "http://h", OriginRequest: map[string]any{"bastionMode": false}}, `originRequest: bastionMode is not allowed in a managed rule (it replaces the service)`},
		{"a duration in seconds", Rule{Hostname: "a.example.com", Service: "http://h", OriginRequest: map[string]any{"connectTimeout": 30.0}}, "originRequest: cannot unmarshal !!int `30` into time.Duration"},
		{"access without a team", Rule{Hostname: "a.example.com", Service: "http://h", OriginRequest: map[string]any{"access": map[string]any{"required": true, "audTag": []any{"x"}}}}, msgAccessTeamName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckManagedRule(tt.rule)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a *RuleError", err)
			}
			if re.Msg != tt.want || re.Kind != KindInvalid || re.Index != 1 {
				t.Errorf("got {#%d %s %q}, want {#1 invalid %q}", re.Index, re.Kind, re.Msg, tt.want)
			}
		})
	}
}

// Rejections names every rule that stops Render, and Render succeeds once they are left out.
func TestRejectionsLeaveARenderableSet(t *testing.T) {
	t.Parallel()
	base, err := ParseBase([]byte("tunnel: x\ningress:\n  - hostname: grafana.ops.example\n    service: http://127.0.0.1:3000\n" +
		"  - hostname: '*.wild.example'\n    service: http://127.0.0.1:1\n  - hostname: Café.example\n    service: http://127.0.0.1:2\n" +
		"  - service: http_status:404\n"))
	if err != nil {
		t.Fatal(err)
	}
	managed := []Rule{
		{Hostname: "a.example.com", Service: "http://10.0.0.1:8069"},
		{Hostname: "b.example.com", Service: "http://admin@10.0.0.2:8069"},
		{Hostname: "grafana.ops.example", Service: "http://10.0.0.3:8069"},
		{Hostname: "a.example.com", Service: "http://10.0.0.4:8069"},
		{Hostname: "xn--caf-dma.example", Service: "http://10.0.0.5:8069"},
		{Hostname: "x.wild.example", Service: "http://10.0.0.6:8069"},
	}
	if _, err := Render(base, managed); err == nil {
		t.Fatal("Render accepted a set with bad rules")
	}
	rej := Rejections(base, managed)
	type got struct {
		Index          int
		Hostname, Kind string
	}
	var gots []got
	for _, r := range rej {
		gots = append(gots, got{r.Index, r.Hostname, r.Kind})
	}
	want := []got{
		{2, "b.example.com", KindInvalid},
		{3, "grafana.ops.example", KindBaseConflict},
		{4, "a.example.com", KindDuplicate},
		{5, "xn--caf-dma.example", KindBaseConflict},
	}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Fatalf("rejections (-want +got):\n%s", diff)
	}
	var kept []Rule
	for i, r := range managed {
		if !slices.ContainsFunc(rej, func(e *RuleError) bool { return e.Index == i+1 }) {
			kept = append(kept, r)
		}
	}
	if _, err := Render(base, kept); err != nil {
		t.Fatalf("Render still fails without the rejected rules: %v", err)
	}
	if diff := cmp.Diff([]string{"Café.example", "grafana.ops.example", "xn--caf-dma.example"}, base.Hostnames()); diff != "" {
		t.Errorf("base hostnames (-want +got):\n%s", diff)
	}
}

func TestCheckManagedServiceSpeaksLikeTheAgent(t *testing.T) {
	t.Parallel()
	if err := CheckManagedService("http://10.10.10.105:8069"); err != nil {
		t.Fatalf("refused a plain backend: %v", err)
	}
	err := CheckManagedService("http://admin@h:8069")
	var re *RuleError
	if !errors.As(err, &re) || re.Msg != `service "http://admin@h:8069": only scheme://host[:port] is allowed` {
		t.Fatalf("got %v", err)
	}
	// The agent's NACK for the same rule carries the same sentence.
	base, _ := ParseBase([]byte("tunnel: x\n"))
	_, rerr := Render(base, []Rule{{Hostname: "www.a.com", Service: "http://admin@h:8069"}})
	if rerr == nil || !strings.Contains(rerr.Error(), re.Msg) {
		t.Fatalf("Render's error %v does not carry %q", rerr, re.Msg)
	}
}
