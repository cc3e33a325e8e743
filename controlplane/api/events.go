// Live updates for the web UI: GET /api/events is a server-sent event stream that says which
// domains (and, to admins, which tunnels' agents) changed, so a page re-reads just those instead of
// polling everything. Changes are announced by PostgreSQL triggers (migration 00011) on
// sajet_domain ("<customer>:<domain id>") and sajet_agent_state ("<tunnel id>"); each replica
// LISTENs once (FollowEvents) and fans out to its own streams, each of which sees only what its
// principal may see.
//
// Cheap with many domains: the payload is ids only; a stream coalesces what arrives within
// eventCoalesce into one event; more than maxPendingIDs changed ids become one "resync" (re-read
// the page) instead of a long list; an idle stream costs a goroutine and a ping every
// eventPing. Notifications can be lost (a reconnect of the LISTEN connection): every stream is then
// told to resync. Streams are bounded: eventsPerToken per API token, maxStreams per replica.

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/backoff"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Channels the triggers of migration 00011 notify.
const (
	DomainEventChannel = "sajet_domain"
	AgentEventChannel  = "sajet_agent_state"
)

const (
	eventCoalesce  = 250 * time.Millisecond
	eventPing      = 25 * time.Second
	maxPendingIDs  = 200
	eventsPerToken = 8
	maxStreams     = 1000
)

// hub fans notifications out to this replica's event streams.
type hub struct {
	mu       sync.Mutex
	streams  map[*stream]struct{}
	perToken map[int64]int
	closed   chan struct{}
	once     sync.Once
}

func newHub() *hub {
	return &hub{streams: make(map[*stream]struct{}), perToken: make(map[int64]int), closed: make(chan struct{})}
}

// stream is one browser's subscription.
type stream struct {
	p    Principal
	wake chan struct{} // capacity 1: something is pending

	mu      sync.Mutex
	domains map[int64]struct{}
	agents  bool
	resync  bool
}

func (h *hub) add(p Principal) (*stream, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.streams) >= maxStreams || h.perToken[p.TokenID] >= eventsPerToken {
		return nil, false
	}
	st := &stream{p: p, wake: make(chan struct{}, 1), domains: make(map[int64]struct{})}
	h.streams[st] = struct{}{}
	h.perToken[p.TokenID]++
	return st, true
}

func (h *hub) remove(st *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.streams, st)
	if h.perToken[st.p.TokenID]--; h.perToken[st.p.TokenID] <= 0 {
		delete(h.perToken, st.p.TokenID)
	}
}

// each calls f for every stream, under the hub's lock.
func (h *hub) each(f func(*stream)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for st := range h.streams {
		f(st)
	}
}

func (st *stream) signal() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

func (h *hub) domainChanged(customerID, id int64) {
	h.each(func(st *stream) {
		if !st.p.canSeeCustomer(customerID) {
			return
		}
		st.mu.Lock()
		if !st.resync {
			st.domains[id] = struct{}{}
			if len(st.domains) > maxPendingIDs {
				st.resync, st.domains = true, make(map[int64]struct{})
			}
		}
		st.mu.Unlock()
		st.signal()
	})
}

func (h *hub) agentsChanged() {
	h.each(func(st *stream) {
		if st.p.Role != RoleAdmin {
			return
		}
		st.mu.Lock()
		st.agents = true
		st.mu.Unlock()
		st.signal()
	})
}

func (h *hub) resyncAll() {
	h.each(func(st *stream) {
		st.mu.Lock()
		st.resync, st.domains = true, make(map[int64]struct{})
		st.mu.Unlock()
		st.signal()
	})
}

// take returns and clears what is pending.
func (st *stream) take() (ids []int64, agents, resync bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id := range st.domains {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	agents, resync = st.agents, st.resync
	st.domains, st.agents, st.resync = make(map[int64]struct{}), false, false
	return ids, agents, resync
}

// CloseStreams ends every event stream (the HTTP server is shutting down: a stream would
// otherwise hold it until its timeout).
func (s *Server) CloseStreams() { s.events.once.Do(func() { close(s.events.closed) }) }

// FollowEvents LISTENs for domain and agent changes on a connection of its own (cc) until ctx
// ends, reconnecting with backoff; after every (re)connection every stream is told to resync,
// since notifications sent while it was down are lost. Start it once per Server.
func (s *Server) FollowEvents(ctx context.Context, cc *pgx.ConnConfig) {
	retry := backoff.New(200*time.Millisecond, 10*time.Second)
	for {
		start := time.Now()
		err := s.listenEvents(ctx, cc)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			retry.Reset()
		}
		s.cfg.Logger.Warn("event listener lost its connection; live updates resume when it is back", "err", err, "retry_in", retry.Peek())
		if !backoff.Sleep(ctx, retry.Next()) {
			return
		}
	}
}

func (s *Server) listenEvents(ctx context.Context, cc *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, ch := range []string{DomainEventChannel, AgentEventChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return err
		}
	}
	s.events.resyncAll()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case DomainEventChannel:
			c, d, ok := strings.Cut(n.Payload, ":")
			customer, err1 := strconv.ParseInt(c, 10, 64)
			id, err2 := strconv.ParseInt(d, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				continue
			}
			s.events.domainChanged(customer, id)
		case AgentEventChannel:
			s.events.agentsChanged()
		}
	}
}

// Events of the stream. The data is ids only: the page re-reads what it shows.
type (
	// DomainsEvent names domains that changed (created, updated or deleted).
	DomainsEvent struct {
		IDs []int64 `json:"ids"`
	}
	// AgentsEvent says agents changed (admins only).
	AgentsEvent struct{}
	// ResyncEvent says re-read everything shown: too many changes, or some may have been lost.
	ResyncEvent struct{}
)

func (s *Server) registerEvents() {
	huma.Register(s.api, huma.Operation{
		OperationID: "events", Method: http.MethodGet, Path: "/api/events",
		Summary: "Live updates (server-sent events): which domains changed, and for admins when agents changed",
		Description: "text/event-stream with events `domains` ({\"ids\": [...]}: re-read these domains), `agents` (admins: re-read " +
			"GET /api/agents), `resync` (re-read everything shown) and `ping` (every 25 s). Only domains the caller may see are " +
			"named. At most 8 streams per API token.",
		Tags: []string{"events"}, Errors: []int{401, 429},
		Responses: map[string]*huma.Response{"200": {Description: "An event stream",
			Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{Type: "string"}}}}},
	}, func(ctx context.Context, _ *struct{}) (*huma.StreamResponse, error) {
		p := principalFrom(ctx)
		st, ok := s.events.add(p)
		if !ok {
			pr := problem(http.StatusTooManyRequests, "too_many_streams",
				i18n.T("demasiadas pestañas abiertas con actualizaciones en vivo; cierre alguna", "too many live update streams are open; close some"))
			pr.headers = http.Header{"Retry-After": {"30"}}
			return nil, pr
		}
		sess := sessionFrom(ctx)
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			defer s.events.remove(st)
			s.stream(hctx, st, sess)
		}}, nil
	})
}

// stream writes st's events until the client goes, the server shuts down, or (for a session) the
// session ends.
func (s *Server) stream(hctx huma.Context, st *stream, sess *session) {
	r, w := humago.Unwrap(hctx)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, data any) bool {
		b, _ := json.Marshal(data)
		// The server's WriteTimeout is for ordinary answers; a stream extends it write by write.
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("ping", struct{}{}) {
		return
	}
	ping := time.NewTicker(eventPing)
	defer ping.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.events.closed:
			return
		case <-ping.C:
			if sess != nil {
				key := sessionKeyOf(sess)
				if _, err := s.sessions.store.LookupUISession(ctx, key[:]); err != nil {
					return // logged out, expired or revoked: the page learns it on its next request
				}
			}
			if !send("ping", struct{}{}) {
				return
			}
		case <-st.wake:
			// Let a burst finish so it becomes one event.
			select {
			case <-time.After(eventCoalesce):
			case <-ctx.Done():
				return
			}
			ids, agents, resync := st.take()
			switch {
			case resync:
				if !send("resync", ResyncEvent{}) {
					return
				}
			case len(ids) > 0:
				if !send("domains", DomainsEvent{IDs: ids}) {
					return
				}
			}
			if agents && !send("agents", AgentsEvent{}) {
				return
			}
		}
	}
}
