package diagnose

import (
	"strconv"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Sentences the store keeps on rows are read here, in one place, as the report's texts.

// lastErrorText is the domain's last error as stored.
func lastErrorText(d store.Domain) i18n.Text {
	if d.LastError == nil {
		return i18n.Text{}
	}
	return *d.LastError
}

// ingressProblemText is why the domain's rules are left out of its tunnel ("" when they are not).
func ingressProblemText(d store.Domain) i18n.Text {
	if !d.Qualifies {
		return i18n.Text{}
	}
	return d.IngressProblem()
}

// agentLastError is the agent's refusal still in force ("" when its last answer was an ACK).
func agentLastError(a store.Agent) string {
	if a.LastError == nil {
		return ""
	}
	return *a.LastError
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
