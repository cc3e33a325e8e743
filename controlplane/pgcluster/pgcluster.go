// Package pgcluster runs a private PostgreSQL cluster from the server binaries on the machine
// (initdb, pg_ctl, postgres), for `sajet-controlplane dev` and for tests. Nothing needs to be set up
// beforehand: no system service, no role, no database.
//
// Why this shape:
//   - Only TCP on 127.0.0.1 and no unix socket: socket paths are limited to ~107 bytes, which temp
//     directories exceed, and loopback is all a private cluster needs.
//   - As root, every PostgreSQL binary runs as the `postgres` system user (initdb refuses root),
//     and the cluster directory is handed to that user.
//   - pg_ctl runs in its own process group, so a Ctrl-C in the terminal reaches our process only;
//     we then stop PostgreSQL ourselves after the API has drained (no half-shut database under a
//     live server).
//   - The port is chosen once and remembered in Dir/port, so a dev cluster keeps its URL across
//     restarts.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configures a cluster.
type Options struct {
	Dir   string // the cluster lives in Dir/data, logs in Dir/postgres.log
	Port  int    // 0 → the port remembered in Dir/port, else a free one
	Fsync bool   // false for tests: fsync, synchronous_commit and full_page_writes off
	// Settings are extra postgresql.conf settings, e.g. max_connections.
	Settings map[string]string
	Logger   *slog.Logger
}

// Cluster is a running private PostgreSQL.
type Cluster struct {
	dir    string
	data   string
	port   int
	bin    string
	cred   *syscall.Credential
	logger *slog.Logger
}

// Start initialises the cluster when Dir/data is empty, then starts it and waits until it accepts
// connections. A cluster already running on Dir (left by a killed process) is adopted.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, data: filepath.Join(dir, "data"), bin: bin, logger: logger}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := c.checkReachable(dir); err != nil {
		return nil, err
	}
	if err := c.chown(dir); err != nil {
		return nil, err
	}

	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, opts.Fsync); err != nil {
			return nil, err
		}
	}

	c.port = opts.Port
	portFile := filepath.Join(dir, "port")
	if c.port == 0 {
		if b, err := os.ReadFile(portFile); err == nil {
			c.port, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	if c.running(ctx) && c.port != 0 {
		logger.Info("adopting running PostgreSQL", "dir", dir, "port", c.port)
		return c, c.waitReady(ctx)
	}
	if c.port == 0 || !portFree(c.port) {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(portFile, []byte(strconv.Itoa(c.port)+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("remember port: %w", err)
	}

	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(c.port),
		"unix_socket_directories": "''",
		"max_connections":         "300",
		"shared_buffers":          "128MB",
	}
	if !opts.Fsync {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var o strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&o, "-c %s=%s ", k, settings[k])
	}
	logFile := filepath.Join(dir, "postgres.log")
	if out, err := c.run(ctx, "pg_ctl", "-D", c.data, "-l", logFile, "-w", "-t", "120", "-o", o.String(), "start"); err != nil {
		return nil, fmt.Errorf("pg_ctl start: %w: %s%s", err, out, tail(logFile))
	}
	logger.Info("PostgreSQL started", "dir", dir, "port", c.port)
	return c, c.waitReady(ctx)
}

// URL is a connection URL for database dbname as the postgres superuser.
func (c *Cluster) URL(dbname string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, dbname)
}

// Port is the TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Dir is the cluster's directory.
func (c *Cluster) Dir() string { return c.dir }

// Stop shuts the cluster down (fast mode: active sessions are disconnected) and waits.
func (c *Cluster) Stop(ctx context.Context) error {
	if !c.running(ctx) {
		return nil
	}
	if out, err := c.run(ctx, "pg_ctl", "-D", c.data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// CreateDatabase creates dbname unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, dbname string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, dbname).Scan(&exists); err != nil {
		return fmt.Errorf("check database %s: %w", dbname, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbname}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", dbname, err)
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context, fsync bool) error {
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := c.chown(c.data); err != nil {
		return err
	}
	args := []string{"-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"}
	if !fsync {
		args = append(args, "--no-sync")
	}
	if out, err := c.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	return nil
}

// running reports whether a postmaster serves c.data (pg_ctl status exits 0).
func (c *Cluster) running(ctx context.Context) bool {
	if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err != nil {
		return false
	}
	_, err := c.run(ctx, "pg_ctl", "-D", c.data, "status")
	return err == nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("PostgreSQL on port %d does not accept connections: %w", c.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// pg_ctl's postmaster inherits these pipes; without WaitDelay, Wait would block until the
	// server exits.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	return out.Bytes(), err
}

func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		return fmt.Errorf("give %s to the postgres user: %w", path, err)
	}
	return nil
}

// checkReachable fails early, with the fix, when the postgres user cannot enter dir because a
// parent directory is private to root (e.g. a 0700 temp directory); initdb would only say
// "permission denied".
func (c *Cluster) checkReachable(dir string) error {
	if c.cred == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && fi.Mode().Perm()&0o001 == 0 && st.Uid != c.cred.Uid && !(st.Gid == c.cred.Gid && fi.Mode().Perm()&0o010 != 0) {
			return fmt.Errorf("PostgreSQL runs as the postgres user, who cannot enter %s (mode %04o): choose a directory elsewhere or run chmod o+x %s", p, fi.Mode().Perm(), p)
		}
		if p == "/" {
			return nil
		}
	}
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as the 'postgres' system user, which does not exist: create it (useradd --system --home /var/lib/postgresql postgres) or run as a normal user: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// findBinDir finds the PostgreSQL server binaries: PATH first, then Debian's versioned directories
// (the postgresql package does not put initdb on PATH), newest version first.
func findBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	return "", errors.New("PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql) so that initdb and pg_ctl are on PATH or in /usr/lib/postgresql/<version>/bin")
}

func versionOf(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// tail returns the end of the server log, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nserver log:\n" + string(b)
}
