package watch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReportsReplacementsOfWatchedFilesOnly(t *testing.T) {
	dir := t.TempDir()
	watched := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(watched, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := New([]string{watched, filepath.Join(dir, "base.yml")}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-w.Events():
			if !want {
				t.Errorf("%s: unexpected event", what)
			}
		case <-time.After(500 * time.Millisecond):
			if want {
				t.Errorf("%s: no event", what)
			}
		}
	}
	// Another file in the same directory: ignored.
	if err := os.WriteFile(filepath.Join(dir, "other.yml"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect("other file", false)
	// Replaced by rename, as editors and atomic writers do: the watch survives.
	for i := range 2 {
		tmp := filepath.Join(dir, ".tmp")
		if err := os.WriteFile(tmp, []byte{byte('b' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, watched); err != nil {
			t.Fatal(err)
		}
		expect("rename over the file", true)
	}
	// A file that did not exist yet.
	if err := os.WriteFile(filepath.Join(dir, "base.yml"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect("new watched file", true)
	// A burst is one event.
	for i := range 10 {
		_ = os.WriteFile(watched, []byte{byte(i)}, 0o644)
	}
	expect("burst", true)
	expect("after the burst", false)
	// chmod alone is not a change.
	_ = os.Chmod(watched, 0o600)
	expect("chmod", false)
}
