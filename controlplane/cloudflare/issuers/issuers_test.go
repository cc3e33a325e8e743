package issuers_test

import (
	"slices"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare/issuers"
)

func names(cas []issuers.CA) []string {
	var out []string
	for _, c := range cas {
		out = append(out, c.CAA)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	all := issuers.CAADomains()
	tests := []struct {
		name     string
		set      []issuers.Property
		allowed  []string
		blocks   bool
		critical string
	}{
		{"no CAA records allow every CA", nil, all, false, ""},
		{"only iodef allows every CA", []issuers.Property{{Tag: "iodef", Value: "mailto:x@y.z"}}, all, false, ""},
		{"issuewild alone does not restrict a plain hostname", []issuers.Property{{Tag: "issuewild", Value: "digicert.com"}}, all, false, ""},
		{"one of Cloudflare's CAs is enough", []issuers.Property{{Tag: "issue", Value: "letsencrypt.org"}}, []string{"letsencrypt.org"}, false, ""},
		{"parameters and case are ignored", []issuers.Property{{Tag: "ISSUE", Value: " PKI.goog; cansignhttpexchanges=yes"}}, []string{"pki.goog"}, false, ""},
		{"another CA only blocks", []issuers.Property{{Tag: "issue", Value: "digicert.com"}}, nil, true, ""},
		{"issue with no CA forbids all", []issuers.Property{{Tag: "issue", Value: ";"}}, nil, true, ""},
		{"an unknown critical property forbids all", []issuers.Property{{Flag: 128, Tag: "tbs", Value: "x"}}, all, true, "tbs"},
		{"an unknown property without the critical flag is ignored", []issuers.Property{{Tag: "tbs", Value: "x"}}, all, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := issuers.Evaluate(tc.set)
			if got := names(d.Allowed); !slices.Equal(got, tc.allowed) {
				t.Errorf("allowed %v, want %v", got, tc.allowed)
			}
			if d.Blocks() != tc.blocks || d.Critical != tc.critical {
				t.Errorf("blocks=%v critical=%q, want %v %q", d.Blocks(), d.Critical, tc.blocks, tc.critical)
			}
		})
	}
}

// The list is Cloudflare's for custom hostnames (see the package comment); a change here must
// be a change there.
func TestTheListIsCloudflaresForCustomHostnames(t *testing.T) {
	t.Parallel()
	if got, want := issuers.CAADomains(), []string{"letsencrypt.org", "pki.goog", "ssl.com"}; !slices.Equal(got, want) {
		t.Errorf("CAA domains %v, want %v", got, want)
	}
	cas := issuers.All()
	cas[0].CAA = "changed"
	if issuers.CAADomains()[0] != "letsencrypt.org" {
		t.Error("All returned the package's own slice")
	}
}
