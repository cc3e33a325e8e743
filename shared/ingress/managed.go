package ingress

import (
	"errors"
	"fmt"
	"slices"
)

// Kinds of RuleError, for the agent's NACK (protocol.Rejection reasons use the same words).
const (
	// KindInvalid: the rule alone fails the validator.
	KindInvalid = "invalid"
	// KindDuplicate: an earlier managed rule has the same hostname.
	KindDuplicate = "duplicate"
	// KindBaseConflict: the operator's base file names the same hostname.
	KindBaseConflict = "base_conflict"
)

// CheckManagedRule checks one managed rule alone, exactly as the agent will when it renders it:
// our stricter managed-rule checks (ValidateManaged), then cloudflared's own checks of a rule that
// is not the last one. The control plane runs it before it stores anything that ends up in a rule
// (a backend URL, a hostname) and again when it builds a tunnel's desired set, so the two sides
// cannot disagree. Errors are *RuleError with Index 1.
func CheckManagedRule(r Rule) error {
	if err := ValidateManaged([]Rule{r}); err != nil {
		var re *RuleError
		if errors.As(err, &re) {
			re.Kind = KindInvalid
		}
		return err
	}
	o, err := typedOrigin(r.OriginRequest)
	if err != nil {
		return &RuleError{Index: 1, Hostname: r.Hostname, Msg: "originRequest: " + err.Error(), Kind: KindInvalid}
	}
	if err := validateRule(0, 2, r, o, nil); err != nil {
		err.Kind = KindInvalid
		return err
	}
	return nil
}

// Rejections lists every managed rule that keeps Render from succeeding, each once, with Index
// counting managed from 1 and Kind saying why: invalid alone, a later duplicate of a hostname,
// or a hostname the base also names. Render(base, managed without them) then fails only if the
// base itself is invalid, which is nobody's rule. The agent sends them with its NACK so the
// control plane leaves exactly those rules out and pushes again.
func Rejections(base *Base, managed []Rule) []*RuleError {
	var out []*RuleError
	seen := make(map[string]int, len(managed))
	for i, r := range managed {
		if err := CheckManagedRule(r); err != nil {
			var re *RuleError
			if !errors.As(err, &re) {
				re = &RuleError{Hostname: r.Hostname, Msg: err.Error()}
			}
			re = &RuleError{Index: i + 1, Hostname: r.Hostname, Msg: re.Msg, Kind: KindInvalid}
			out = append(out, re)
			continue
		}
		if j, dup := seen[r.Hostname]; dup {
			out = append(out, &RuleError{Index: i + 1, Hostname: r.Hostname, Kind: KindDuplicate,
				Msg: fmt.Sprintf("hostname %q is already managed by rule #%d", r.Hostname, j+1)})
			continue
		}
		seen[r.Hostname] = i
		if base != nil {
			if _, ok := base.names[r.Hostname]; ok {
				out = append(out, &RuleError{Index: i + 1, Hostname: r.Hostname, Kind: KindBaseConflict,
					Msg: fmt.Sprintf("hostname %q is also routed by the operator's base file", r.Hostname)})
			}
		}
	}
	return out
}

// Hostnames returns the exact hostnames the operator's rules name, as written and as
// cloudflared's punycode/lower-case alias, sorted and unique. Wildcard patterns and the
// catch-all are left out: managed rules come first and are exact, so only an exact name can
// collide with one. The agent reports them to the control plane (protocol.Base).
func (b *Base) Hostnames() []string {
	out := make([]string, 0, len(b.names))
	for h := range b.names {
		if len(h) > 0 && h[0] == '*' {
			continue
		}
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// CheckManagedService checks a backend URL as the service of a managed rule, with the same
// message the agent would NACK with (`service "…": …`). The control plane runs it when a
// tenant deployment's backend_url is written.
func CheckManagedService(service string) error {
	// Any valid managed hostname will do: only the service is being judged.
	return CheckManagedRule(Rule{Hostname: "backend.check.invalid", Service: service})
}

// CheckManagedHostname checks a hostname as the hostname of a managed rule, with the agent's
// message. The control plane runs it on every hostname it is about to route (a customer's
// domain after normalisation, a platform subdomain), so nothing it stores can be refused later.
func CheckManagedHostname(hostname string) error {
	return CheckManagedRule(Rule{Hostname: hostname, Service: "http://backend.check.invalid"})
}
