package ingress

import (
	"errors"
	"fmt"
)

// Rule is one entry of cloudflared's ingress list (docs/CLOUDFLARE.md §1:
// hostname, path, service, originRequest). Field order here is the order
// Render writes them. It is also the rule of the agent protocol's Desired
// (protocol.Rule is this type), with the JSON names the wire uses; the agent
// keeps its own representation on disk, so its state file does not change
// when the wire does.
type Rule struct {
	Hostname      string         `yaml:"hostname,omitempty" json:"hostname"`
	Path          string         `yaml:"path,omitempty" json:"path,omitempty"`
	Service       string         `yaml:"service" json:"service"`
	OriginRequest map[string]any `yaml:"originRequest,omitempty" json:"origin_request,omitempty"`
}

// IsCatchAll reports whether r matches every request, by cloudflared's
// definition: hostname "" or "*" and no path.
func (r Rule) IsCatchAll() bool {
	return (r.Hostname == "" || r.Hostname == "*") && r.Path == ""
}

// CatchAll404 is the catch-all Render appends when the operator's base has
// none: unmatched hostnames get a 404 from cloudflared itself, never a
// tenant's backend.
var CatchAll404 = Rule{Service: "http_status:404"}

// ErrNoIngressRules is cloudflared's error for an empty ingress list.
//
//lint:ignore ST1005 cloudflared's own words, which our messages must repeat exactly
var ErrNoIngressRules = errors.New("The config file doesn't contain any ingress rules")

// RuleError is a validation failure of one rule. The agent NACKs with its
// text ("validate: rule #3: ..."); the control plane maps Index back to the
// hostname it rejected.
type RuleError struct {
	// Index is 1-based, as cloudflared numbers rules in its messages
	// ("Rule #N has an invalid regex"). It counts positions in the list that
	// was validated: for ValidateManaged the caller's slice, for Validate the
	// full ingress list.
	Index int
	// Hostname of the offending rule, for logs and NACKs.
	Hostname string
	// Msg is cloudflared's wording where cloudflared has a check, ours
	// otherwise.
	Msg string
	// Kind is set by CheckManagedRule and Rejections (Kind* constants); empty
	// for errors of a whole list.
	Kind string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rule #%d: %s", e.Index, e.Msg)
}

func ruleErr(i int, r Rule, format string, args ...any) *RuleError {
	return &RuleError{Index: i + 1, Hostname: r.Hostname, Msg: fmt.Sprintf(format, args...)}
}
