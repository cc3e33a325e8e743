// Package watch reports changes to a few files by watching their directories (docs/ARCHITECTURE.md §5: editors
// and atomic writers replace a file by rename, and a watch on the file dies with its inode).
// Events are debounced and coalesced: the consumer learns "something changed, look again" and
// compares content hashes itself, which also makes its own writes harmless.
package watch

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher watches the directories of a set of files.
type Watcher struct {
	w      *fsnotify.Watcher
	names  map[string]bool // cleaned paths of interest
	events chan struct{}
	errs   chan error
	done   chan struct{}
}

// New watches files (which need not exist yet; their directories must). A change to any of them
// is reported once no further change arrived for debounce.
func New(files []string, debounce time.Duration) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{w: fw, names: map[string]bool{}, events: make(chan struct{}, 1), errs: make(chan error, 1), done: make(chan struct{})}
	dirs := map[string]bool{}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			fw.Close()
			return nil, err
		}
		w.names[abs] = true
		dirs[filepath.Dir(abs)] = true
	}
	for d := range dirs {
		if err := fw.Add(d); err != nil {
			fw.Close()
			return nil, err
		}
	}
	go w.run(debounce)
	return w, nil
}

// Events receives one value per burst of changes.
func (w *Watcher) Events() <-chan struct{} { return w.events }

// Errors receives watch errors; fsnotify.ErrEventOverflow means events were lost, so the
// consumer should rescan.
func (w *Watcher) Errors() <-chan error { return w.errs }

// Close stops watching.
func (w *Watcher) Close() error {
	err := w.w.Close()
	<-w.done
	return err
}

func (w *Watcher) run(debounce time.Duration) {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !w.names[filepath.Clean(ev.Name)] {
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(debounce) // something may have changed: look again
			}
			select {
			case w.errs <- err:
			default:
			}
		case <-timer.C:
			select {
			case w.events <- struct{}{}:
			default: // one is already waiting: coalesced
			}
		}
	}
}
