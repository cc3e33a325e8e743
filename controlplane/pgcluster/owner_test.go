package pgcluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// Environment of the helper process that plays a Cluster owner which gets SIGKILLed.
const (
	helperDirEnv        = "PGCLUSTER_TEST_OWNER_DIR"
	helperStopOnExitEnv = "PGCLUSTER_TEST_OWNER_STOP_ON_EXIT"
)

// TestHelperOwner is not a test: run by startOwner in a child process, it starts a cluster,
// reports its port and waits to be killed.
func TestHelperOwner(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("helper process for TestKilledOwner")
	}
	c, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: dir, StopOnExit: os.Getenv(helperStopOnExitEnv) == "1"})
	if err != nil {
		fmt.Printf("error %v\n", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	fmt.Printf("ready %s\n", c.URL("postgres"))
	select {} // until killed; -test.timeout bounds it should the parent fail to
}

// When the process that started a cluster is killed, nothing is left running for good: with
// StopOnExit the watchdog stops the server at once, and otherwise the orphaned server is taken
// over by the next Start or discarded by Remove.
func TestKilledOwner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		stopOnExit bool
		then       func(t *testing.T, dir, url string)
	}{
		{
			name:       "the watchdog stops the server and the next Start finds the data",
			stopOnExit: true,
			then: func(t *testing.T, dir, url string) {
				testwait.Until(t, 30*time.Second, "the watchdog stops the server", func() bool { return !reachable(url) })
				c := start(t, pgcluster.Options{Dir: dir})
				if got := query(t, c.URL("postgres"), `SELECT v FROM kept`); got != "committed" {
					t.Errorf("after the watchdog's immediate stop: %q, want the committed row", got)
				}
			},
		},
		{
			name: "the next Start takes over the orphaned server on the same port",
			then: func(t *testing.T, dir, url string) {
				if !reachable(url) {
					t.Fatal("without StopOnExit the server should outlive its owner")
				}
				c := start(t, pgcluster.Options{Dir: dir})
				if got := query(t, c.URL("postgres"), `SELECT v FROM kept`); got != "committed" {
					t.Errorf("after taking over: %q, want the committed row", got)
				}
				if c.URL("postgres") != url {
					t.Errorf("URL after taking over %s, want the remembered %s", c.URL("postgres"), url)
				}
			},
		},
		{
			name: "Remove stops the orphaned server and deletes the directory",
			then: func(t *testing.T, dir, url string) {
				if err := pgcluster.Remove(t.Context(), dir); err != nil {
					t.Fatal(err)
				}
				if reachable(url) {
					t.Error("the server still runs after Remove")
				}
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("Remove left %s (%v)", dir, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(tempDir(t), "pg")
			url, kill := startOwner(t, dir, tt.stopOnExit)
			exec(t, url, `SET synchronous_commit = on; CREATE TABLE kept (v text); INSERT INTO kept VALUES ('committed')`)
			kill()
			tt.then(t, dir, url)
		})
	}
}

// startOwner runs TestHelperOwner in a child process on dir and returns its cluster's URL and a
// function that SIGKILLs the child.
func startOwner(t *testing.T, dir string, stopOnExit bool) (url string, kill func()) {
	t.Helper()
	cmd := osexec.Command(os.Args[0], "-test.run=^TestHelperOwner$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperStopOnExitEnv+"="+map[bool]string{true: "1"}[stopOnExit])
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Cleanup(func() {
		kill()
		// Whatever the test did, leave no server behind.
		if err := pgcluster.Remove(context.Background(), dir); err != nil {
			t.Errorf("clean up: %v", err)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if !ok {
		t.Fatalf("helper owner: %q, %v", line, err)
	}
	return url, kill
}
