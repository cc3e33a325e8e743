package cloudflaredtest

import (
	"strings"
	"testing"
)

func TestValidateAndMatchRule(t *testing.T) {
	t.Parallel()
	bin := Path(t)
	const valid = "ingress:\n  - hostname: a.example.com\n    service: http://127.0.0.1:8080\n  - service: http_status:404\n"
	tests := []struct {
		name, config string
		want         Result
	}{
		{"valid", valid, Result{OK: true}},
		{"rules refused", "ingress:\n  - hostname: a.example.com\n    service: http://127.0.0.1:8080\n",
			Result{Failed: "The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)"}},
		{"not loaded", "ingress: {}\n", Result{LoadError: "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!map into []config.UnvalidatedIngressRule"}},
		{"warnings", strings.Replace(valid, "    service: http://", "    servce: x\n    service: http://", 1),
			Result{OK: true, Warnings: "yaml: unmarshal errors:\n  line 3: field servce not found in type config.UnvalidatedIngressRule"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Validate(t, bin, []byte(tt.config)); got != tt.want {
				t.Errorf("Validate = %+v, want %+v", got, tt.want)
			}
		})
	}
	for url, want := range map[string]int{"https://a.example.com/x": 0, "https://b.example.com/": 1} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			if got := MatchRule(t, bin, []byte(valid), url); got != want {
				t.Errorf("MatchRule(%s) = %d, want %d (0-based)", url, got, want)
			}
		})
	}
}
