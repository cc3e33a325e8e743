// Package ingress is the cloudflared ingress model shared by the control
// plane and the edge agent: the rules, the deterministic renderer of
// /etc/cloudflared/config.yml, and a validator that answers as cloudflared's
// own `cloudflared tunnel ingress validate` does (facts/cloudflare.md §1).
//
// The agent renders config.yml from two inputs (DESIGN §7, step 1):
//
//	operator's base file ──ParseBase──► *Base ─┐
//	                                           ├─Render─► config.yml bytes
//	control plane's managed rules ─────────────┘
//
// The base is authoritative for everything except managed hostnames: tunnel,
// credentials-file, originRequest and any other top-level key are copied in
// their original order, and the operator's own ingress rules keep their text
// and comments. The control plane is authoritative for managed rules, one per
// hostname → tenant backend.
//
// # Why managed rules go first
//
// cloudflared walks the list top to bottom and the first match wins, and
// only the last rule may be a catch-all. Managed rules are exact hostnames,
// so placing them before the operator's rules means an operator wildcard such
// as *.sajet.us can never capture a tenant's traffic, and the operator's
// catch-all stays last. The one case that would be ambiguous, an operator
// rule naming the same hostname as a managed one, is refused by Render rather
// than resolved silently: the agent NACKs and a human decides.
//
// # Why managed hostnames are lower-case ASCII
//
// cloudflared matches the request's Host header byte for byte; it lower-cases
// and punycodes only the rule side (an idna alias). A rule for
// "A.SAJET.US" still gets the alias "a.sajet.us", but no spelling of a rule
// matches a request for "A.SAJET.US" (cloudflare/cloudflared#1715). Browsers
// send lower-case A-labels, so ValidateManaged accepts exactly that form:
// lower-case ASCII, IDNs as canonical xn-- labels, RFC 1123 syntax, no
// wildcards, no duplicates. Normalising what a customer typed is
// shared/hostname's job, before a rule is ever built.
//
// # Determinism
//
// Render is a pure function of the base and the set of managed rules: they
// are sorted by hostname (unique, so the order is total), the base's parts
// are encoded once at ParseBase, and nothing depends on map iteration, time
// or the input order. The same desired state therefore always has the same
// SHA-256, and the agent skips the write and the restart when the file on
// disk already has it. Drift detection reads the file back with ParseConfig.
//
// # Validation
//
// Validate repeats cloudflared's checks in cloudflared's order with its
// messages, so a rule failing two checks reports the one cloudflared would.
// ValidateManaged adds our stricter rules. Render runs both, so it never
// returns a file cloudflared would refuse. Failures are *RuleError values
// carrying the 1-based rule number cloudflared uses in its messages.
//
// Managed rules are written without building a YAML node tree (100,000 rules
// render and validate in well under the 500 ms budget); the round-trip tests
// prove that yaml.v3, which cloudflared also uses, reads them back unchanged.
package ingress
