// Package storetest gives each test its own real, migrated PostgreSQL database in milliseconds, so
// tests that touch the database run in parallel without seeing each other's rows.
//
// # Server
//
// By default each test process (go test runs one per package) starts one private cluster on
// first use: package pgcluster in a fresh sajet-pgtest-<pid>-* directory under
// pgcluster.ScratchDir() (/dev/shm unless TMPDIR is set), fsync off, listening on a free
// 127.0.0.1 port. First use costs about a second (initdb, start, migrate the template); every
// NewDB after it a few tens of milliseconds. When SAJET_TEST_DATABASE_URL is set, the server it names is
// used instead (its user needs CREATEDB; the URL's database is only used to create and drop
// others), e.g. a PostgreSQL service container in CI or a developer's local server.
//
// # Databases
//
// The schema (goose migrations and River's tables, via migrations.Apply) is built once into a
// template database named after migrations.Fingerprint(), so a server shared by processes of
// different checkouts holds one template per schema version and never a stale one. Building it
// holds an advisory lock, so processes sharing a server wait for the first one instead of racing;
// the template is published only when complete (IS_TEMPLATE, connections disallowed), so nothing
// can connect to it and block a clone. Each NewDB is then a CREATE DATABASE … TEMPLATE of it.
//
// # Leaks
//
// Call Main from TestMain: it stops the cluster and deletes its directory after the tests. A test
// binary that dies instead (SIGKILL, Ctrl-C, a -timeout panic) cannot clean up, so:
//
//   - its cluster runs with pgcluster's StopOnExit watchdog, which shuts the server down the moment
//     the process is gone, so no server outlives its tests;
//   - the next test process that starts a cluster deletes directories whose owning pid (in the
//     name) is dead, stopping any server still running in them (pgcluster.Remove, which also
//     refuses a directory a live process holds);
//   - on a shared server, every process holds an advisory lock named by its owner id, which is
//     part of its databases' names (t_<owner>_<random>); a process starting up drops the
//     t_* databases whose owner lock nobody holds, i.e. whose process has died.
package storetest
