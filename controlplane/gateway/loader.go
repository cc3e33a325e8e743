package gateway

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

// maxBatch bounds the tunnels one desired-state query covers.
const maxBatch = 1000

// desiredLoader batches desired-state reads: sessions that need their tunnel's state while a
// query is running wait for the next one, which covers all of them. A single change costs one
// query as before; a change to every tunnel (a bulk backend move, a resync after the LISTEN
// connection dropped) costs a few queries instead of one transaction per session.
type desiredLoader struct {
	store *store.Store
	once  sync.Once
	wake  chan struct{}

	mu      sync.Mutex
	pending map[int64][]chan<- loadResult
}

type loadResult struct {
	d   store.DesiredIngress
	err error
}

func (l *desiredLoader) start(ctx context.Context) {
	l.once.Do(func() {
		l.wake = make(chan struct{}, 1)
		go l.run(ctx)
	})
}

// get returns tunnelID's desired state from a query that started after the call.
func (l *desiredLoader) get(ctx context.Context, tunnelID int64) (store.DesiredIngress, error) {
	ch := make(chan loadResult, 1)
	l.mu.Lock()
	if l.pending == nil {
		l.pending = map[int64][]chan<- loadResult{}
	}
	l.pending[tunnelID] = append(l.pending[tunnelID], ch)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case r := <-ch:
		return r.d, r.err
	case <-ctx.Done():
		return store.DesiredIngress{}, ctx.Err()
	}
}

func (l *desiredLoader) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		}
		for {
			l.mu.Lock()
			batch := l.pending
			l.pending = nil
			if len(batch) > maxBatch {
				// Take maxBatch now and leave the rest for the next round.
				ids := slices.Sorted(maps.Keys(batch))
				l.pending = map[int64][]chan<- loadResult{}
				for _, id := range ids[maxBatch:] {
					l.pending[id] = batch[id]
					delete(batch, id)
				}
			}
			l.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			ids := slices.Collect(maps.Keys(batch))
			states, err := l.store.GetDesiredIngressMany(ctx, ids)
			for id, waiters := range batch {
				r := loadResult{err: err}
				if err == nil {
					d, ok := states[id]
					if !ok {
						r.err = store.ErrNotFound
					}
					r.d = d
				}
				for _, w := range waiters {
					w <- r
				}
			}
		}
	}
}
