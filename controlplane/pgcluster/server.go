package pgcluster

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a cluster directory and the means to run PostgreSQL's binaries on it.
type server struct {
	dir  string              // Options.Dir, absolute
	data string              // dir/data
	bin  string              // the directory of initdb, pg_ctl and postgres
	cred *syscall.Credential // the postgres user's when we are root, else nil
}

func newServer(dir string) (server, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return server{}, fmt.Errorf("cluster directory: %w", err)
	}
	bin, err := findBinDir()
	if err != nil {
		return server{}, err
	}
	cred, err := serverCredential()
	if err != nil {
		return server{}, err
	}
	return server{dir: abs, data: filepath.Join(abs, "data"), bin: bin, cred: cred}, nil
}

// ensureInitialised runs initdb unless s.data holds a cluster. initdb writes into a staging
// directory renamed into place when complete, because initdb writes PG_VERSION early and a killed
// run would otherwise leave a broken cluster that looks like a real one.
func (s server) ensureInitialised(ctx context.Context, fsync bool) error {
	_, err := os.Stat(filepath.Join(s.data, "PG_VERSION"))
	if err == nil {
		return s.ensureInclude(s.data)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("inspect %s: %w", s.data, err)
	}
	if entries, err := os.ReadDir(s.data); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s exists but holds no PostgreSQL cluster (no PG_VERSION): move it away", s.data)
	}
	staging := s.data + ".initdb"
	if err := os.RemoveAll(staging); err != nil {
		return fmt.Errorf("remove an interrupted initdb: %w", err)
	}
	if err := os.Mkdir(staging, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := s.giveToServerUser(staging); err != nil {
		return err
	}
	args := []string{"-D", staging, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions"}
	if !fsync {
		args = append(args, "--no-sync")
	}
	if out, err := s.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := s.ensureInclude(staging); err != nil {
		return err
	}
	_ = os.Remove(s.data) // an empty directory someone created for us
	if err := os.Rename(staging, s.data); err != nil {
		return fmt.Errorf("move the new cluster into place: %w", err)
	}
	return nil
}

const (
	settingsFile = "sajet.conf"
	includeLine  = "include_if_exists = '" + settingsFile + "'"
)

// ensureInclude makes postgresql.conf in data include our settings file. It is a file rather
// than -c options so that the settings are visible and apply to a hand-run pg_ctl start too.
func (s server) ensureInclude(data string) error {
	conf := filepath.Join(data, "postgresql.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}
	if slices.Contains(strings.Split(string(b), "\n"), includeLine) {
		return nil
	}
	f, err := os.OpenFile(conf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("include our settings in postgresql.conf: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Settings managed by sajet's pgcluster, rewritten at every start.\n%s\n", includeLine)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("include our settings in postgresql.conf: %w", err)
	}
	return nil
}

var settingName = regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)

// writeSettings replaces data/sajet.conf with settings.
func (s server) writeSettings(settings map[string]string) error {
	var b strings.Builder
	b.WriteString("# Written by sajet's pgcluster at every start from its Options; edits are lost.\n")
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		v := settings[k]
		if !settingName.MatchString(k) || strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("invalid PostgreSQL setting %q = %q", k, v)
		}
		// postgresql.conf strings take '' for a quote and treat a backslash as an escape.
		v = strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(v)
		fmt.Fprintf(&b, "%s = '%s'\n", k, v)
	}
	path := filepath.Join(s.data, settingsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	if err := s.giveToServerUser(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	return nil
}

// logRotateSize bounds postgres.log: a dev cluster appends to it at every start.
const logRotateSize = 16 << 20

// start runs pg_ctl start and waits for the server to be ready. It returns what the server logged
// during this attempt, for the caller to decide about retrying.
func (s server) start(ctx context.Context) (string, error) {
	logFile := filepath.Join(s.dir, "postgres.log")
	if fi, err := os.Stat(logFile); err == nil && fi.Size() > logRotateSize {
		_ = os.Rename(logFile, logFile+".1")
	}
	// pg_ctl opens the log as the server's user, who cannot create files in a Dir of root's.
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("create server log: %w", err)
	}
	offset, _ := f.Seek(0, io.SeekEnd)
	_ = f.Close()
	if err := s.giveToServerUser(logFile); err != nil {
		return "", err
	}
	out, err := s.run(ctx, "pg_ctl", "start", "-D", s.data, "-l", logFile, "-w", "-t", "60", "-s")
	if err == nil {
		return "", nil
	}
	serverLog := readFrom(logFile, offset)
	return serverLog, fmt.Errorf("pg_ctl start: %w\n%s\nserver log (%s):\n%s", err, out, logFile, lastLines(serverLog, 20))
}

// running reports whether a live postmaster serves s.data.
func (s server) running(ctx context.Context) bool {
	if _, err := os.Stat(filepath.Join(s.data, "postmaster.pid")); err != nil {
		return false
	}
	_, err := s.run(ctx, "pg_ctl", "status", "-D", s.data)
	return err == nil
}

// stop runs pg_ctl stop in mode (fast or immediate) and waits for the server to exit.
func (s server) stop(ctx context.Context, mode string) error {
	out, err := s.run(ctx, "pg_ctl", "stop", "-D", s.data, "-m", mode, "-w", "-t", "60", "-s")
	if err == nil {
		return nil
	}
	// pg_ctl also fails ("server does not shut down") when the postmaster died on its own and left
	// postmaster.pid behind; that server is as stopped as we need once its pid is gone, which for
	// a killed postmaster takes until init reaps the zombie.
	for range 40 {
		if !s.running(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
}

// run runs a PostgreSQL binary as the server's user and returns its combined output.
func (s server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	// Its own process group: a Ctrl-C in the terminal then reaches our process alone, which stops
	// the server after its clients; the postmaster that pg_ctl starts inherits the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	cmd.Dir = s.dir // the server's user may not be able to enter our working directory
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// pg_ctl points the postmaster's output at the log file, but should anything still hold our
	// pipe, Wait must not block for the server's lifetime.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	return bytes.TrimSpace(out.Bytes()), err
}

func (s server) giveToServerUser(path string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("give %s to the postgres user: %w", path, err)
	}
	return nil
}

// checkReachable fails early, with the directory to fix, when the server's user could not enter
// s.dir: otherwise initdb and pg_ctl fail later with a bare "permission denied". Only the mode
// bits are checked (not ACLs), which is what temp directories use.
func (s server) checkReachable() error {
	if s.cred == nil {
		return nil
	}
	var blocked []string
	for p := s.dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("check access to %s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		var search fs.FileMode = 0o001
		switch {
		case st.Uid == s.cred.Uid:
			search = 0o100
		case st.Gid == s.cred.Gid || slices.Contains(s.cred.Groups, st.Gid):
			search = 0o010
		}
		if fi.Mode().Perm()&search == 0 {
			blocked = append(blocked, p)
		}
		if filepath.Dir(p) == p {
			break
		}
	}
	if len(blocked) > 0 {
		slices.Reverse(blocked)
		return fmt.Errorf("running as root, PostgreSQL runs as the postgres user, which cannot enter %s: make the directories traversable (chmod o+x %s)",
			s.dir, strings.Join(blocked, " "))
	}
	return nil
}

// serverCredential is the identity to run the server binaries with: our own (nil) unless we are
// root, which initdb and postgres refuse, and then the postgres system user's.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root: PostgreSQL refuses to run as root and must run as the 'postgres' system user, which was not found (create it with `useradd --system postgres`, or run as a normal user): %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's gid %q: %w", u.Gid, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	// Supplementary groups as a login would have them (e.g. ssl-cert on Debian).
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, nil
}

// findBinDir finds the PostgreSQL server binaries: initdb on PATH first (resolved through
// symlinks, so initdb, pg_ctl and postgres come from one installation), else the newest of
// Debian's versioned directories, which the postgresql package does not put on PATH.
func findBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	slices.SortFunc(matches, func(a, b string) int {
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(a))), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(b))), 64)
		return cmp.Compare(vb, va)
	})
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql) so that initdb and pg_ctl are on PATH or in /usr/lib/postgresql/<version>/bin")
}

func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
