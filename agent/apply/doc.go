// Package apply owns cloudflared's config.yml on a tunnel host: it turns the control plane's
// managed rules plus the operator's base file into the config cloudflared runs, and keeps that
// true across failures and crashes.
//
// # Contract
//
// For Apply(version, rules):
//
//   - Unchanged → no write, no restart. The rendering is deterministic (shared/ingress.Render);
//     when its SHA-256 equals the file on disk the version is recorded as applied and nothing
//     else happens.
//   - Invalid → nothing touched. A rendering the built-in validator refuses, or one the checker
//     (`cloudflared tunnel ingress validate`) refuses, fails at stage validate before any write;
//     the Result names the managed rules the refusal is attributed to (Rejected), so the control
//     plane can leave exactly those out.
//   - Failure after the write → the last good config back and cloudflared restarted on it. The
//     Result says the stage that failed; if the rollback fails too the stage is rollback and the
//     agent reports itself degraded (the file on disk may not be what cloudflared runs).
//   - Crash at any instant → finished or undone at the next Open. config.yml is always a whole
//     file, the old one or the new one, never a torn one.
//
// # Steps, in order
//
//  1. render: base + managed rules (managed first, sorted; the operator's rules and catch-all
//     after); the built-in validation is part of it. NACK stage: validate.
//  2. write a temp file beside config.yml (same filesystem, so the rename is atomic), fsync it.
//  3. check it with the Checker, when configured. NACK stage: validate.
//  4. keep the file in force as last-good (in the state dir; only if it is a valid config, so a
//     hand-edited broken file never becomes what a rollback restores) and write pending.json.
//     NACK stage: write.
//  5. rename the temp file over config.yml, fsync the directory. NACK stage: write.
//  6. restart the unit through systemd (no more often than MinRestartInterval). NACK stage:
//     restart.
//  7. verify: the unit is active and, when configured, cloudflared's /ready reports a
//     connection. NACK stage: verify.
//  8. commit: state.json records the version, hash and rules; pending.json is removed.
//
// Any failure in steps 5–8 restores last-good and restarts on it (stage rollback if that fails).
// pending.json, written before the rename, is what recovery reads: at Open, stray temp files are
// removed; a pending apply whose file is on disk is restarted, verified and committed (or rolled
// back); one whose file never reached disk is dropped.
//
// # Drift
//
// Reconcile re-renders the applied rules against the current base file: a hand edit of
// config.yml is reverted (without a restart when cloudflared has not started since it was
// verified on our config: it still runs ours), and an edit of the base file is rendered in
// through the full pipeline.
package apply
