package diagnose

import (
	"time"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Verdict is a part's (and the report's) conclusion.
type Verdict string

// Verdicts, from best to worst. unknown ranks between warn and ok for the report's verdict: a part
// that could not be checked is not a problem found, but the report cannot say everything is fine.
const (
	OK      Verdict = "ok"      // checked and right
	Warn    Verdict = "warn"    // works, but something will bite (propagation, a lame server, a slow backend)
	Fail    Verdict = "fail"    // this part stops the domain from working; Fix says what to do
	Unknown Verdict = "unknown" // could not be checked (no answer, not configured); Message says why
)

func (v Verdict) rank() int {
	switch v {
	case OK:
		return 0
	case Unknown:
		return 1
	case Warn:
		return 2
	}
	return 3
}

// Part names, in the order of a request's path: DNS, certificate, Cloudflare, tunnel, backend.
const (
	PartRecursive     = "dns_recursive"
	PartAuthoritative = "dns_authoritative"
	PartDNSSEC        = "dnssec"
	PartCAA           = "caa"
	PartConflicts     = "conflicts"
	PartCloudflare    = "cloudflare"
	PartTunnel        = "tunnel"
	PartBackend       = "backend"
)

// Report is the answer to "why doesn't my domain work?": one Part per link of the chain from
// the visitor's resolver to the customer's backend, each with a verdict, a sentence in the
// request's language, what to do, and the evidence behind it.
type Report struct {
	Domain   string  `json:"domain" doc:"The customer's hostname (ASCII)"`
	DomainID int64   `json:"domain_id"`
	Expected string  `json:"expected" doc:"The platform hostname the customer's CNAME must reach"`
	Language string  `json:"language" enum:"es,en" doc:"The language of every sentence in the report"`
	Verdict  Verdict `json:"verdict" enum:"ok,warn,fail,unknown" doc:"The worst verdict of the parts (fail > warn > unknown > ok)"`
	// Works: no part fails, and DNS, the tunnel and the backend were each seen working.
	Works      bool      `json:"works" doc:"True when no part fails and DNS, the tunnel and the backend were each seen working"`
	Summary    string    `json:"summary"`
	Parts      []Part    `json:"parts"`
	CheckedAt  time.Time `json:"checked_at"`
	DurationMS int64     `json:"duration_ms"`
}

// Part is one link of the chain.
type Part struct {
	Name    string  `json:"name" enum:"dns_recursive,dns_authoritative,dnssec,caa,conflicts,cloudflare,tunnel,backend"`
	Title   string  `json:"title"`
	Verdict Verdict `json:"verdict" enum:"ok,warn,fail,unknown"`
	Message string  `json:"message" doc:"What was found, one sentence"`
	Fix     string  `json:"fix,omitempty" doc:"What to do, when there is something to do"`
	// Details are the evidence as sentences, one per line, for people (the CLI and the UI show
	// them on demand); Evidence is the same as data.
	Details  []string `json:"details,omitempty"`
	Evidence any      `json:"evidence,omitempty" doc:"The data behind the verdict; its shape depends on the part"`
}

// finish computes the report's verdict, whether the domain works, and its summary.
func (r *Report) finish(l i18n.Lang) {
	r.Verdict = OK
	seen := map[string]Verdict{}
	var failing []string
	for _, p := range r.Parts {
		seen[p.Name] = p.Verdict
		if p.Verdict.rank() > r.Verdict.rank() {
			r.Verdict = p.Verdict
		}
		if p.Verdict == Fail {
			failing = append(failing, p.Title)
		}
	}
	working := func(name string) bool { v := seen[name]; return v == OK || v == Warn }
	r.Works = r.Verdict != Fail && working(PartRecursive) && working(PartTunnel) && working(PartBackend)
	r.Summary = summary(r.Works, r.Verdict, failing).In(l)
}
