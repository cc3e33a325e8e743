// Package ingress is the cloudflared ingress model shared by the control
// plane and the edge agent: the rules, the deterministic renderer of
// /etc/cloudflared/config.yml, and a validator that answers as cloudflared's
// own `cloudflared tunnel ingress validate` does (docs/CLOUDFLARE.md §1),
// with the same messages.
//
// The agent renders config.yml from two inputs (docs/ARCHITECTURE.md §5):
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
// cloudflared 2026.8.2 is the reference, and the tests ask the real binary
// (cloudflared_test.go, through internal/cloudflaredtest): hand-written and
// generated files, managed rules, Render's output, rule matching and a fuzz
// target must all get the same verdict, and the same words, from both.
//
// cloudflared judges a file in three steps, and so does ValidateFile:
//
//  1. Loading. The file is decoded into cloudflared's own types
//     (internal/config mirrors them, type names included), so a value of the
//     wrong type fails exactly as in cloudflared: durations are Go duration
//     strings ("30s"; a bare 30, JSON's seconds, is refused), booleans also
//     accept YAML 1.1's yes/no/on/off, a quoted "true" is a string. Top-level
//     keys other than tunnel, ingress, warp-routing and originRequest are
//     command-line flags, whose types cloudflared checks in its flag order
//     (flags.go). A null list entry ("- ~") is no rule at all.
//  2. The rules: Validate repeats cloudflared's checks in cloudflared's order
//     with its messages, so a rule failing two checks reports the one
//     cloudflared would. A rule's bastionMode is merged over the global
//     originRequest's; a socks-proxy rule's own ipRules must be valid; only
//     hello_world and hello-world name the test service ("helloworld" is an
//     address without a scheme). A url key is refused next to ingress rules.
//  3. Unknown keys (in a rule, an originRequest, access, ipRules,
//     warp-routing): cloudflared only warns and exits 0.
//
// Our own rules are stricter, never looser, and apply only to files
// cloudflared accepts: unknown keys are refused (docs/ARCHITECTURE.md §5), and so are a
// second YAML document, anchors and aliases, non-string keys, top-level keys
// we do not know (cloudflared reads any flag from the file, silently), and
// credentials-contents or features of a type `cloudflared tunnel run`
// refuses. An empty file, which cloudflared reads as no file at all, is
// ErrEmptyConfig.
//
// ValidateManaged adds the managed-rule rules (above, and: originRequest
// keys cloudflared knows, no bastionMode), and ParseBase refuses a global
// bastionMode: true, which would turn managed rules into bastions. Render
// runs both validators, with the base's global originRequest, so it never
// returns a file cloudflared would refuse or warn about. Failures are *RuleError values carrying the 1-based rule
// number cloudflared uses in its messages.
//
// Managed rules are written without building a YAML node tree (100,000 rules
// render and validate in well under the 500 ms budget); the round-trip tests
// prove that yaml.v3, which cloudflared also uses, reads them back unchanged.
package ingress
