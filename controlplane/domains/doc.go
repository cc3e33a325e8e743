// Package domains holds the rules of a custom domain's life: register, prove ownership, verify the
// customer's DNS, activate, delete. HTTP lives in package api and SQL in package store; this package
// decides.
//
// The lifecycle (DESIGN §4) as the API shows it in the derived `state`:
//
//	pending_dns ──verify ok──▶ provisioning ──cloudflare + tunnel ack──▶ ready ──activate──▶ active
//	     │  ▲                        │
//	     ▼  │ verify                 └─ verify fails again: verification_failed
//	verification_failed
//	any ──DELETE──▶ deleting ──(Cloudflare record and tunnel rules gone)──▶ row removed, audit kept
//
// Ownership: a registration that has not been proven (TXT token at _jeturing-verify.<registrable
// domain>, or a successful CNAME check) expires after Config.UnverifiedTTL and then no longer blocks
// the hostname. Another customer who publishes their claim token in that TXT record takes the
// hostname over from a holder who never proved it with TXT, so nobody can squat a name they do not
// control. A holder who proved it with TXT cannot be displaced.
//
// Quotas are counted in the insert's transaction (package store), so concurrent registrations can
// never exceed the plan.
package domains
