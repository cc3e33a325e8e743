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
//   - Replicas (several Units) → never all down at once: they restart one at a time, each
//     verified (ready) before the next is touched; a failing one is put back on the last good
//     config before any other is touched, and the ones after it are never restarted.
//   - Refused → untouched: a restart systemd refuses before starting a job (*UntouchedError:
//     polkit, no such unit) leaves that unit as it was; the file goes back and no unit restarts
//     for it.
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
//  6. restart the first unit through systemd (applies no more often than MinRestartInterval).
//     NACK stage: restart.
//  7. verify it: the unit is active and, when configured, cloudflared's /ready reports a
//     connection. NACK stage: verify. Steps 6 and 7 then run for the next unit, in order.
//  8. commit: state.json records the version, hash and rules; pending.json is removed.
//
// Any failure in steps 5–8 restores last-good and restarts on it (stage rollback if that fails):
// first the unit that failed, then the units restarted before it, in order, each verified before
// the next; the rollback stops at the first unit that does not come back, so the others keep
// serving.
// pending.json, written before the rename, is what recovery reads: at Open, stray temp files are
// removed; a pending apply whose file is on disk is restarted (every unit, one at a time: which
// ones the dead process restarted is unknown), verified and committed (or rolled back, every
// unit); one whose file never reached disk is dropped.
//
// # Drift
//
// Reconcile re-renders the applied rules against the current base file: a hand edit of
// config.yml is reverted (without a restart when no unit has started since they were verified
// on our config: they still run ours), and an edit of the base file is rendered in
// through the full pipeline.
package apply
