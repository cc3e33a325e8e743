// Package systemd is the agent's client of systemd's manager over D-Bus (go-systemd): it restarts
// cloudflared's unit after a config change and reads the unit's state to verify the restart.
//
// A restart has two halves. RestartUnit enqueues a job and returns its object path; the job's
// result arrives later as a JobRemoved signal, which go-systemd delivers on the channel passed to
// RestartUnitContext. go-systemd's context bounds only the enqueue (docs/ARCHITECTURE.md §5), so
// Restart bounds the wait for the result with the same context, and the channel is buffered: if
// nobody reads it any more (the wait timed out), go-systemd's signal dispatcher would otherwise
// block on the send while holding its job-listener lock, and every later job would hang.
//
// Results: "done" and "skipped" are success ("skipped" means the job did not apply to the unit's
// state; systemctl and snapd treat it as success too); any other result is a *JobError, which the
// apply pipeline turns into a rollback.
//
// The Client survives the bus going away (a dbus-daemon restart): a call that fails because the
// connection was closed is retried once on a freshly dialled connection.
//
// Non-root: RestartUnit needs the polkit action org.freedesktop.systemd1.manage-units, which
// packaging/polkit/50-sajet-agent.rules grants for the units it lists (cloudflared.service as
// shipped). Without it systemd answers InteractiveAuthorizationRequired (AccessDenied from older
// versions) and starts no job; the error says which file to edit, and Refused reports it.
package systemd
