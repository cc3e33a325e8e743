// Package provisioning makes Cloudflare match the database: it creates each domain's proxied
// CNAME `<sub>.<zone> → <tunnel-uuid>.cfargotunnel.com` (and, in SaaS mode, the custom hostname
// of the external domain), removes them after deletion, and periodically reconciles the zone.
//
// Work is River jobs inserted in the same transaction as the domain change (the outbox: a job
// exists if and only if its change committed), so a control plane killed at any instant loses
// nothing: on restart River runs what was queued, and a job that was running when the process died
// is rescued after RescueStuckJobsAfter and run again. Every step is idempotent (the provider
// adopts a record of ours that already exists), so running one twice is harmless.
//
// Jobs are unique per domain while queued, and River locks a job to one worker, so several
// replicas on one database never create a record twice; the reconciler runs on the leader only.
//
// Failures: retryable ones (5xx, timeouts) are retried with backoff; a 429 waits the
// `retry-after` Cloudflare sends (snooze, not counted as an attempt); ones retrying cannot fix
// (401/403, a foreign record in the way, a domain without a tunnel) stop the job and are shown on
// the domain's last_error.
//
// The reconciler (leader, every ReconcileInterval) lists our records (ceil(N/5000) calls), recreates
// records of provisioned domains that disappeared, and removes records of ours that no domain
// needs once they have been orphans for OrphanGrace. It makes at most MaxRepairsPerRun writes per
// run, so even a zone wiped behind our back is repaired within Cloudflare's 1200 calls / 5 min.
package provisioning
