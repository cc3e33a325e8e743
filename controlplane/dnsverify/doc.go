// Package dnsverify checks, over real DNS, that a customer's hostname points at the platform, and
// explains precisely what it found when it does not.
//
// A customer who registers www.impulse-max.com is given impulse-max.sajet.us and must create
//
//	www.impulse-max.com.               CNAME  impulse-max.sajet.us.
//	_jeturing-verify.impulse-max.com.  TXT    "jeturing-verify-<32 hex>"   (when the plan requires it)
//
// or point the CNAME straight at the tunnel host <uuid>.cfargotunnel.com. A registrable domain
// (apex) cannot hold a CNAME, so there the provider's flattening (ALIAS/ANAME) answers with the
// target's addresses instead; that is accepted only when the address sets are identical and the TXT
// token is present, since equal addresses alone would let anyone whose site shares the platform's
// anycast addresses claim the domain.
//
// # What is authoritative
//
// The configured resolvers' answers, queried fresh on every call, and nothing else: there is no
// cache in this package and no memory between calls. Every resolver is asked the same questions
// concurrently and its view is reported separately (ResolverResult), because the recurring pain
// with custom domains is propagation: one resolver still serves the old record until its TTL runs
// out, and "pending" without saying where is useless.
//
// # The state machine of one resolver
//
//	              ┌──────────── no answer (timeout, transport error) ──▶ NOT ANSWERED
//	hostname A ───┤
//	              ├── SERVFAIL / REFUSED … ───────────────────────────▶ FAILED (rcode named)
//	              │
//	              └── CNAME chain ── reaches Expected ─────┐
//	                  (from the answer; next hop           ├─ RequireTXT? ── token ──▶ VERIFIED (cname)
//	                  queried only when the answer         │                 no token ▶ FAILED (txt)
//	                  lacks it; ≤ MaxHops; a repeated      └── reaches TunnelTarget ──▶ … (cname_tunnel)
//	                  name is a loop)
//	                     ├── ends elsewhere / loops / too long ─────────▶ FAILED (target named)
//	                     └── no CNAME:
//	                           ├── nothing (NXDOMAIN, no data) ──────────▶ FAILED (found = nil)
//	                           ├── addresses, not apex ─────────────────▶ FAILED (addresses named)
//	                           └── addresses, apex: = Expected's and token ▶ VERIFIED (flattened)
//	                                                otherwise ────────────▶ FAILED (stale ones named)
//
// A secondary query (AAAA, TXT, Expected's addresses) that goes unanswered turns the resolver into
// NOT ANSWERED only when the verdict depends on it.
//
// # Combining resolvers
//
// Verified when at least one resolver answered and every resolver that answered verified. A
// resolver that did not answer is listed with its error but does not block: with several
// resolvers configured, one that is down must not hold correct domains hostage. Resolvers that
// answered and disagree block verification, and Message says so ("Los resolvers no coinciden").
// When none answered, Found is "timeout" (or the transport error).
//
// # How failures are reported
//
// Verify never returns an error: every failure is data in the Result. Reason is a stable code
// for programs; Message is a short Spanish sentence (the frontend contract's "CNAME no detectado" and
// "Dominio verificado correctamente" verbatim); Found is what the name resolves to instead (nil
// when nothing exists, matching the frontend contract's `"found": null`); Instructions is the exact record to
// create; Conflicts names records in the way even when they are not the reason for failure (A
// records beside a CNAME, stale apex addresses, a TXT holding another token, a CAA set that forbids
// every CA the platform's certificates come from, a CNAME target that does not exist).
//
// # Negative answers
//
// When the record the customer must publish is missing, the resolver's negative answer carries its
// zone's SOA, and the resolver may repeat "no such record" for min(SOA TTL, SOA MINIMUM) seconds
// (RFC 2308 §5; capped at the 3 hours resolvers cache negative answers at most). Result.NegativeTTL
// reports the longest such wait, the instructions tell the customer, and the automatic checks do
// not ask again before it passes (docs/AUTOMATION.md).
//
// # Bounds
//
// Each query attempt is bounded by QueryTimeout (UDP is retransmitted once on timeout; a truncated
// UDP answer is retried over TCP), the whole call by CheckTimeout, and the queries one Verifier has
// in flight by MaxInFlight, so a burst of checks cannot exhaust sockets or overflow socket buffers.
package dnsverify
