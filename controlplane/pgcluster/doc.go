// Package pgcluster runs a private PostgreSQL cluster from the server binaries installed on the
// machine (initdb, pg_ctl, postgres), for `sajet-controlplane dev` and for tests.
//
// # Why
//
// The control plane needs a real PostgreSQL, and a developer's machine or CI runner has only Go and
// the PostgreSQL server package: no running service, no role, no database, no Docker. Start turns
// a directory into a working cluster with no setup, and a second Start on the same directory
// brings the same data back (the dev state survives restarts).
//
// # Layout of Dir
//
//	Dir/data/             the cluster (initdb'd into Dir/data.initdb, renamed when complete, so
//	                      a killed initdb never leaves a half-made cluster that looks real)
//	Dir/data/sajet.conf   our settings, rewritten at every Start and included from
//	                      postgresql.conf, so a hand-run `pg_ctl start` behaves the same
//	Dir/sock/             the unix socket (or a /tmp/sajet-pgsock-* directory, recorded in
//	                      Dir/sockdir, when Dir is too long for the ~107-byte socket path limit)
//	Dir/postgres.log      the server log (pg_ctl -l; no logging collector)
//	Dir/port              the TCP port, remembered so a dev cluster keeps its URL across restarts
//	Dir/lock              flock(2)ed by the process that has the cluster started
//
// Every setting is passed through Dir/data/sajet.conf rather than -c options on pg_ctl's shell
// command line: no quoting of paths, and what the server runs with can be read on disk.
//
// Disposable clusters belong in ScratchDir(), in memory when the machine allows: the filesystem
// costs more than fsync does (initdb 0.85 s on tmpfs against 2.5 s on this project's ext4 disk).
//
// # Root
//
// initdb and postgres refuse to run as root. When the process is root, every server binary runs
// as the `postgres` system user (os/exec with a credential), Dir/data and the socket directory are
// given to that user, and Dir and every directory above it must be traversable by it (Start
// checks and says which one is not; t.TempDir() and os.MkdirTemp create 0700 directories that
// need a chmod). If the user does not exist Start says to create it; it never creates users.
//
// # Ownership and crashes
//
// A started Cluster holds an exclusive flock on Dir/lock until Stop. The kernel drops the lock
// when the process dies however it dies, so the lock always tells whether a live owner exists:
//
//   - Start on a directory whose owner is alive (in this process or another) fails with
//     ErrInUse: two owners would each stop the server under the other.
//   - Start on a directory whose owner died but whose server still runs (an orphan: pg_ctl
//     detaches the postmaster, so it outlives us) stops that server and starts it again with the
//     options given, so the running server always matches the caller's Options.
//   - A server killed outright leaves a stale postmaster.pid; the postmaster discards it on start
//     when its pid is gone, and Start retries briefly while the dead server's children exit.
//
// Options.StopOnExit (tests) goes further: a watchdog process blocks reading a pipe whose only
// writer is this process. When this process exits, even by SIGKILL or a test timeout's panic, the
// pipe closes and the watchdog runs `pg_ctl stop -m immediate`, so no server outlives its tests.
// Remove then reclaims the directories such processes leave behind.
//
// Access is `trust`, so the server listens only on its unix socket, in a directory private to the
// server's user (0700): another user of the machine cannot connect at all, where a loopback port
// would have let anyone become the superuser and run programs as the server's user. Options.TCP
// adds 127.0.0.1 for clients that cannot use a socket, with that risk. Not for production.
package pgcluster
