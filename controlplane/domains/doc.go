// Package domains holds the rules of a custom domain's life: register, prove ownership, verify the
// customer's DNS, activate, delete. HTTP lives in package api and SQL in package store. This
// package decides what a request means; package store enforces, inside one transaction, what must
// hold under concurrency. docs/LIFECYCLE.md lists every transition and where each rule is
// enforced.
//
// The lifecycle as the API shows it in the derived `state`:
//
//	pending_dns ──verify ok──▶ provisioning ──Cloudflare + tunnel ACK──▶ ready ──activate──▶ active
//	     │  ▲
//	     ▼  │ verify
//	verification_failed          (a verified domain stays verified when a later check fails)
//	any ──DELETE──▶ deleting ──(Cloudflare record and tunnel rules gone)──▶ row removed, audit kept
//
// Ownership: a registration that never proved anything (TXT token at _jeturing-verify.<registrable
// domain>, or a successful CNAME check) expires after Config.UnverifiedTTL and then no longer blocks
// the hostname. Another customer who publishes their claim token in that TXT record takes the
// hostname over from a holder who never proved it with TXT. A holder who proved it with TXT cannot
// be displaced, and a verified one only by a TXT-proven claim.
package domains
