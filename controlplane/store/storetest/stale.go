package storetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
)

// clusterDirPrefix starts the name of every private cluster's directory in os.TempDir(); the
// owning test process's pid follows it.
const clusterDirPrefix = "sajet-pgtest-"

// removeDeadClusters deletes the cluster directories of test processes that have died, stopping
// any server still running in them (one whose watchdog was killed too). The pid in the name is
// checked first because a directory is created a moment before its cluster takes its lock;
// pgcluster.Remove then refuses any directory a live process still holds, so a reused pid cannot
// make us delete a live cluster. Failures only leave garbage for the next run.
func removeDeadClusters(ctx context.Context, tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, clusterDirPrefix+"*"))
	for _, dir := range dirs {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), clusterDirPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = pgcluster.Remove(ctx, dir)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
