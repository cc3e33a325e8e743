package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options configures a cluster. Every field but Dir has a useful zero value.
type Options struct {
	// Dir holds the cluster (see the package comment for its layout). It is created if missing;
	// as root it and its parents must be traversable by the postgres user.
	Dir string
	// Port numbers the server's unix socket (.s.PGSQL.<port>) and, with TCP, is its port on
	// 127.0.0.1. Zero reuses the port remembered from the last start on Dir while it is free,
	// else picks a free one; either way the port is remembered.
	Port int
	// TCP also makes the server listen on 127.0.0.1. Access is trust, so anyone on the machine
	// could then connect as the superuser (and run programs through COPY … FROM PROGRAM): leave
	// it off unless a client cannot use the unix socket. Off, the only way in is the socket
	// directory, which is private to the server's user.
	TCP bool
	// Fsync false trades crash safety for speed, for tests: initdb --no-sync, and fsync,
	// synchronous_commit and full_page_writes off. Dev sets it so its data survives a power cut.
	Fsync bool
	// StopOnExit stops the server (immediate mode) when this process exits by any means, through
	// a watchdog process; for tests, so a killed test binary leaves no server behind.
	StopOnExit bool
	// Logger receives start/stop events; nil discards them.
	Logger *slog.Logger
	// ExtraSettings are postgresql.conf settings that override ours, e.g. max_connections.
	ExtraSettings map[string]string
}

// ErrInUse is returned by Start and Remove when a live process (this one or another) has the
// cluster in the directory started.
var ErrInUse = errors.New("cluster directory is in use")

// Cluster is a running private PostgreSQL. Its methods are safe for concurrent use.
type Cluster struct {
	srv      server
	port     int
	tcp      bool   // listening on 127.0.0.1 too
	sock     string // unix socket directory
	sockTemp bool   // sock is a /tmp directory of ours, removed by Stop
	lock     *os.File
	watchdog *watchdog // nil unless Options.StopOnExit
	logger   *slog.Logger

	mu      sync.Mutex
	stopped bool
}

const (
	tempSocketPrefix = "sajet-pgsock-"
	tempSocketRecord = "sockdir" // in Dir: the /tmp socket directory in use, if any
)

// removeTempSocketDir removes the /tmp socket directory recorded in dir, if any. Only a path of
// the shape we create is removed, whatever the file says.
func removeTempSocketDir(dir string) {
	record := filepath.Join(dir, tempSocketRecord)
	b, err := os.ReadFile(record)
	if err != nil {
		return
	}
	if sock := strings.TrimSpace(string(b)); filepath.Dir(sock) == "/tmp" && strings.HasPrefix(filepath.Base(sock), tempSocketPrefix) {
		_ = os.RemoveAll(sock)
	}
	_ = os.Remove(record)
}

// maxSocketPath is the longest unix socket path the kernel takes (sun_path is 108 bytes with its
// terminating NUL); PostgreSQL's socket is <dir>/.s.PGSQL.<port>.
const maxSocketPath = 107

// Start makes Dir a running cluster and returns once it accepts connections.
//
// A directory without a cluster is initialised (initdb: superuser postgres, trust auth for local
// and loopback, UTF8, locale C). An existing cluster is started with its data as it was. A
// directory another live Cluster owns is refused with ErrInUse; a server left running by a dead
// owner is restarted with these options. On error nothing is left running or locked.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("pgcluster: Options.Dir is empty")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv, err := newServer(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(srv.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	if err := srv.checkReachable(); err != nil {
		return nil, err
	}
	lock, err := lockDir(srv.dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{srv: srv, lock: lock, logger: logger}
	if err := c.start(ctx, opts); err != nil {
		c.abandon()
		return nil, err
	}
	logger.Info("PostgreSQL started", "dir", srv.dir, "port", c.port)
	return c, nil
}

// start brings the locked directory's server up as opts say.
func (c *Cluster) start(ctx context.Context, opts Options) error {
	began := time.Now()
	if err := c.srv.ensureInitialised(ctx, opts.Fsync); err != nil {
		return err
	}
	c.logger.Debug("cluster initialised", "dir", c.srv.dir, "took", time.Since(began))
	if c.srv.running(ctx) {
		// Our lock is free, so the process that started this server is gone.
		c.logger.Warn("stopping a PostgreSQL left running by a process that exited", "dir", c.srv.dir)
		if err := c.srv.stop(ctx, "fast"); err != nil {
			return fmt.Errorf("stop the orphaned server: %w", err)
		}
	}
	if err := c.prepareSocketDir(); err != nil {
		return err
	}
	began = time.Now()
	if err := c.startServer(ctx, opts); err != nil {
		return err
	}
	c.logger.Debug("pg_ctl start done", "dir", c.srv.dir, "took", time.Since(began))
	if opts.StopOnExit {
		w, err := startWatchdog(c.srv, c.logger)
		if err != nil {
			return err
		}
		c.watchdog = w
	}
	return c.waitReady(ctx)
}

// startServer runs pg_ctl start with the settings for opts. A port we picked can be taken by
// someone else before the postmaster binds it, and a server that was killed can leave children
// that hold its shared memory for a moment; both are retried.
func (c *Cluster) startServer(ctx context.Context, opts Options) error {
	portFile := filepath.Join(c.srv.dir, "port")
	c.port, c.tcp = opts.Port, opts.TCP
	if c.port == 0 {
		if b, err := os.ReadFile(portFile); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				if portFree(p) {
					c.port = p
				} else {
					c.logger.Warn("the remembered port is taken; picking another", "dir", c.srv.dir, "port", p)
				}
			}
		}
	}
	const attempts = 20
	for attempt := 1; ; attempt++ {
		if c.port == 0 {
			p, err := freePort()
			if err != nil {
				return err
			}
			c.port = p
		}
		if err := c.srv.writeSettings(c.settings(opts)); err != nil {
			return err
		}
		serverLog, err := c.srv.start(ctx)
		if err == nil {
			break
		}
		switch {
		case attempt < attempts && opts.Port == 0 && strings.Contains(serverLog, "could not create any TCP/IP sockets"):
			c.port = 0 // ours to choose, so choose again
		case attempt < attempts && (strings.Contains(serverLog, "pre-existing shared memory block") ||
			strings.Contains(serverLog, `lock file "postmaster.pid" already exists`)):
			// A killed postmaster's children notice its death within moments, and init reaps
			// the postmaster itself soon after.
			select {
			case <-ctx.Done():
				return err
			case <-time.After(250 * time.Millisecond):
			}
		default:
			return err
		}
	}
	if err := os.WriteFile(portFile, []byte(strconv.Itoa(c.port)+"\n"), 0o644); err != nil {
		return fmt.Errorf("remember the port: %w", err)
	}
	return nil
}

func (c *Cluster) settings(opts Options) map[string]string {
	s := map[string]string{
		"listen_addresses":        "",
		"port":                    strconv.Itoa(c.port),
		"unix_socket_directories": c.sock,
		// Tests run many databases in parallel, each with its own pool.
		"max_connections":   "200",
		"shared_buffers":    "128MB",
		"logging_collector": "off",
	}
	if opts.TCP {
		s["listen_addresses"] = "127.0.0.1"
	}
	if !opts.Fsync {
		s["fsync"] = "off"
		s["synchronous_commit"] = "off"
		s["full_page_writes"] = "off"
	}
	for k, v := range opts.ExtraSettings {
		s[k] = v
	}
	return s
}

// prepareSocketDir picks Dir/sock when the socket path fits the kernel's limit, else a fresh
// /tmp directory, and gives it to the server's user. A /tmp directory is recorded in Dir, so that
// one left by an owner that died is removed by the next Start or by Remove.
func (c *Cluster) prepareSocketDir() error {
	removeTempSocketDir(c.srv.dir)
	sock := filepath.Join(c.srv.dir, "sock")
	if len(sock)+len("/.s.PGSQL.65535") > maxSocketPath {
		tmp, err := os.MkdirTemp("/tmp", tempSocketPrefix)
		if err != nil {
			return fmt.Errorf("create socket directory: %w", err)
		}
		sock, c.sockTemp = tmp, true
		if err := os.WriteFile(filepath.Join(c.srv.dir, tempSocketRecord), []byte(tmp+"\n"), 0o644); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("record socket directory: %w", err)
		}
	} else if err := os.MkdirAll(sock, 0o700); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	c.sock = sock
	if err := os.Chmod(sock, 0o700); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	return c.srv.giveToServerUser(sock)
}

func (c *Cluster) waitReady(ctx context.Context) error {
	// pg_ctl -w has already seen the postmaster report "ready"; this proves the TCP path.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL on %s does not accept connections: %w", c.Where(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL is a connection URL for database dbname as the postgres superuser: over the unix socket,
// or over TCP when the cluster was started with Options.TCP.
func (c *Cluster) URL(dbname string) string {
	if !c.tcp {
		return c.SocketURL(dbname)
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// SocketURL is URL over the unix socket, which skips TCP for local clients.
func (c *Cluster) SocketURL(dbname string) string {
	q := url.Values{"host": {c.sock}, "port": {strconv.Itoa(c.port)}, "sslmode": {"disable"}}
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + dbname, RawQuery: q.Encode()}
	return u.String()
}

// Port is the server's port number (its socket's name, and its TCP port with Options.TCP).
func (c *Cluster) Port() int { return c.port }

// Where says where the server listens, for logs.
func (c *Cluster) Where() string {
	w := fmt.Sprintf("socket %s/.s.PGSQL.%d", c.sock, c.port)
	if c.tcp {
		w += fmt.Sprintf(" and 127.0.0.1:%d", c.port)
	}
	return w
}

// Dir is the cluster's directory (Options.Dir made absolute).
func (c *Cluster) Dir() string { return c.srv.dir }

// Stop shuts the server down in fast mode (sessions are disconnected, no recovery needed on the
// next start), waits for it to exit and releases the directory. Stopping a stopped Cluster does
// nothing. If the server cannot be stopped the Cluster stays as it was, so Stop can be retried.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	if c.srv.running(ctx) {
		if err := c.srv.stop(ctx, "fast"); err != nil {
			return err
		}
	}
	c.release()
	c.logger.Info("PostgreSQL stopped", "dir", c.srv.dir)
	return nil
}

// abandon undoes a failed Start: the server (if it got started) is stopped immediately.
func (c *Cluster) abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.srv.running(ctx) {
		_ = c.srv.stop(ctx, "immediate")
	}
	c.release()
}

// release ends our ownership: the watchdog first, so it cannot stop a server that a new owner
// starts on the directory after us.
func (c *Cluster) release() {
	c.watchdog.cancel()
	if c.sockTemp {
		removeTempSocketDir(c.srv.dir)
	}
	_ = c.lock.Close()
	c.stopped = true
}

// CreateDatabase creates database name unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("create database %s: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
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
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
