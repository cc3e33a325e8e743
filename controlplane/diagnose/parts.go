package diagnose

import "github.com/jeturing/sajet-domains/internal/i18n"

// part is a Part before it is put in one language.
type part struct {
	name     string
	title    i18n.Text
	verdict  Verdict
	message  i18n.Text
	fix      i18n.Text
	details  []i18n.Text
	evidence any
}

func (p part) render(l i18n.Lang) Part {
	return Part{Name: p.name, Title: p.title.In(l), Verdict: p.verdict, Message: p.message.In(l), Fix: p.fix.In(l),
		Details: i18n.Strings(p.details, l), Evidence: p.evidence}
}

// domainFacts is what every part needs to know about the domain.
type domainFacts struct {
	id           int64
	customerID   int64
	host         string // the customer's hostname, ASCII
	expected     string // the platform hostname
	tunnelTarget string // <uuid>.cfargotunnel.com, "" without a tunnel
	apex         bool
}

// accepted reports whether name is a target the customer's CNAME may reach.
func (d domainFacts) accepted(name string) bool {
	return sameName(name, d.expected) || (d.tunnelTarget != "" && sameName(name, d.tunnelTarget))
}
