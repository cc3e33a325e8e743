package pgcluster_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// A cluster keeps its data and its port across a stop and a start on the same directory.
func TestDataAndPortSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	opts := pgcluster.Options{Dir: filepath.Join(tempDir(t), "pg")}

	c := start(t, opts)
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatalf("creating an existing database again: %v", err)
	}
	exec(t, c.URL("app"), `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')`)
	if got := query(t, c.SocketURL("app"), `SELECT v FROM kept`); got != "still here" {
		t.Errorf("over the unix socket: %q, want the row written over TCP", got)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Errorf("stopping a stopped cluster: %v", err)
	}
	if reachable(c.URL("app")) {
		t.Fatal("the cluster still accepts connections after Stop")
	}

	c2 := start(t, opts)
	if c2.Port() != c.Port() {
		t.Errorf("port after restart %d, want the remembered %d", c2.Port(), c.Port())
	}
	if got := query(t, c2.URL("app"), `SELECT v FROM kept`); got != "still here" {
		t.Errorf("after restart: %q, want the row written before", got)
	}
	settings := query(t, c2.URL("app"), `SELECT current_setting('fsync') || ' ' || current_setting('max_connections') || ' ' || current_setting('listen_addresses')`)
	if settings != "off 200 " {
		t.Errorf("fsync, max_connections, listen_addresses = %q, want the test defaults (no TCP)", settings)
	}
}

// Access is trust, so the only way in is the private socket directory: no TCP port for other
// users of the machine to reach as the superuser (the issue's `make run` attack), and a socket
// directory nobody else can enter.
func TestNoTCPUnlessAsked(t *testing.T) {
	t.Parallel()
	c := start(t, pgcluster.Options{Dir: filepath.Join(tempDir(t), "pg")})
	if reachable("postgres://postgres@127.0.0.1:" + strconv.Itoa(c.Port()) + "/postgres?sslmode=disable&connect_timeout=2") {
		t.Fatal("the cluster accepts TCP connections on 127.0.0.1 without Options.TCP")
	}
	if !strings.Contains(c.URL("postgres"), "host=%2F") {
		t.Errorf("URL %s is not a socket URL", c.URL("postgres"))
	}
	sock := strings.Fields(c.Where())[1]
	fi, err := os.Stat(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", fi.Mode().Perm())
	}
	tcp := start(t, pgcluster.Options{Dir: filepath.Join(tempDir(t), "pg"), TCP: true})
	if !reachable(tcp.URL("postgres")) || !strings.Contains(tcp.URL("postgres"), "@127.0.0.1:") {
		t.Errorf("Options.TCP: %s not reachable over TCP", tcp.URL("postgres"))
	}
}

// When someone else has taken the remembered port meanwhile, Start picks another rather than
// failing; ExtraSettings override ours.
func TestTakenRememberedPortIsReplaced(t *testing.T) {
	t.Parallel()
	opts := pgcluster.Options{Dir: filepath.Join(tempDir(t), "pg"), TCP: true, ExtraSettings: map[string]string{"max_connections": "50"}}
	c := start(t, opts)
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(c.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	c2 := start(t, opts)
	if c2.Port() == c.Port() {
		t.Fatalf("restarted on the taken port %d", c.Port())
	}
	if got := query(t, c2.URL("postgres"), `SELECT current_setting('max_connections')`); got != "50" {
		t.Errorf("max_connections = %s, want ExtraSettings' 50", got)
	}
}

// A directory whose cluster is started is refused, to Start and to Remove, until its owner
// stops it: two owners would each stop the server under the other.
func TestStartRefusesAClusterInUse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	opts := pgcluster.Options{Dir: filepath.Join(tempDir(t), "pg")}
	c := start(t, opts)

	if _, err := pgcluster.Start(ctx, opts); !errors.Is(err, pgcluster.ErrInUse) {
		t.Fatalf("second Start on a started cluster: %v, want ErrInUse", err)
	} else if !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("error %q does not name the owning process %d", err, os.Getpid())
	}
	if err := pgcluster.Remove(ctx, opts.Dir); !errors.Is(err, pgcluster.ErrInUse) {
		t.Fatalf("Remove of a started cluster: %v, want ErrInUse", err)
	}
	if !reachable(c.URL("postgres")) {
		t.Fatal("the refused Start or Remove disturbed the running cluster")
	}

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pgcluster.Remove(ctx, opts.Dir); err != nil {
		t.Fatalf("Remove after Stop: %v", err)
	}
	if _, err := os.Stat(opts.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove left %s behind (%v)", opts.Dir, err)
	}
}

// A server killed outright leaves a stale postmaster.pid and, for a moment, children holding its
// shared memory; the next Start copes and crash recovery keeps committed data.
func TestStartAfterServerCrash(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	opts := pgcluster.Options{Dir: filepath.Join(tempDir(t), "pg")}
	c := start(t, opts)
	// Synchronous commit, so the row is in the WAL before the kill (fsync=off only skips the
	// flush to disk, which a process crash does not need).
	exec(t, c.URL("postgres"), `SET synchronous_commit = on; CREATE TABLE kept (v text); INSERT INTO kept VALUES ('committed')`)

	pid := postmasterPID(t, opts.Dir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, "the killed postmaster is gone", func() bool { return !alive(pid) })
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop after the server died: %v", err)
	}

	c2 := start(t, opts)
	if got := query(t, c2.URL("postgres"), `SELECT v FROM kept`); got != "committed" {
		t.Errorf("after crash recovery: %q, want the committed row", got)
	}
}

// A Dir too long for a unix socket path gets its socket in /tmp, removed by Stop.
func TestLongDirPutsSocketInTmp(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(tempDir(t), strings.Repeat("d", 100))
	c := start(t, pgcluster.Options{Dir: dir})
	u, err := pgx.ParseConfig(c.SocketURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.Host, "/tmp/") {
		t.Fatalf("socket directory %q, want one under /tmp", u.Host)
	}
	if got := query(t, c.SocketURL("postgres"), `SELECT 'ok'`); got != "ok" {
		t.Errorf("query over the /tmp socket: %q", got)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(u.Host); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stop left the socket directory %s (%v)", u.Host, err)
	}
}

// An explicit TMPDIR wins over /dev/shm: the user chose where scratch files go.
func TestScratchDirHonoursTMPDIR(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	if got := pgcluster.ScratchDir(); got != dir {
		t.Errorf("ScratchDir() = %q with TMPDIR=%q", got, dir)
	}
}

// As root the server runs as the postgres user; a Dir that user cannot reach is reported with
// the directory to fix, before initdb fails with a bare "permission denied".
func TestRootNeedsATraversableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the server to the postgres user")
	}
	t.Parallel()
	private := t.TempDir() // 0700, owned by root
	_, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: filepath.Join(private, "pg")})
	if err == nil || !strings.Contains(err.Error(), "chmod o+x ") || !strings.Contains(err.Error(), private) {
		t.Fatalf("Start under a 0700 root directory: %v, want advice to chmod %s", err, private)
	}
}

// start starts a cluster that is stopped when the test ends.
func start(t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := pgcluster.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c
}

// tempDir is a directory for the test's clusters, removed after it: in pgcluster.ScratchDir() for
// speed, and traversable, because as root the postgres user must enter it.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(pgcluster.ScratchDir(), "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

func query(t *testing.T, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(t.Context(), sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func reachable(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false
	}
	_ = conn.Close(ctx)
	return true
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

// alive reports whether pid runs; a zombie does not (it waits only for init to reap it).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil // no procfs: a zombie counts as alive
	}
	// The state follows the parenthesised command name, which may itself contain ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
