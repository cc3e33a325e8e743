package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/jeturing/sajet-domains/shared/protocol"
)

// tokenSet is the set of valid agent token hashes (agent id by SHA-256 of the token), reloaded
// from the database on every notification on store.AgentChannel, on every reconcile (All), every
// TokenReloadInterval and at start.
//
// It decides who the bad-token limiter applies to: a token in the set is looked up and accepted
// whatever the address's failure count, so someone else's bad tokens from a shared address never
// lock a real agent out. It is only a filter in front of the limiter, never the authentication: an
// accepted token is still looked up (AgentByToken), so a stale set cannot let a revoked agent in.
// It also ends sessions whose token left it (the agent was revoked or its token rotated), on every
// replica, within one notification.
type tokenSet struct {
	reload chan struct{} // a reload is due

	mu    sync.RWMutex
	valid map[[32]byte]int64
	start time.Time // when the query that produced valid started; zero before the first load
}

func (t *tokenSet) poke() {
	select {
	case t.reload <- struct{}{}:
	default:
	}
}

// has reports whether hash is the token of a live agent as of the last reload.
func (t *tokenSet) has(hash [32]byte) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.valid[hash]
	return ok
}

// stillValid reports whether sess's token is still valid as far as the set knows: a set loaded
// before the session's token lookup started cannot say anything about it (the agent may be newer
// than the set), so the answer is then yes.
func (t *tokenSet) stillValid(sess *session) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.start.IsZero() || !t.start.After(sess.authAt) {
		return true
	}
	id, ok := t.valid[sess.tokenHash]
	return ok && id == sess.agent.ID
}

// runTokens reloads the set until ctx ends. Serve loads it once before accepting connections.
func (s *Server) runTokens(ctx context.Context) {
	tick := time.NewTicker(s.TokenReloadInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.tokens.reload:
		case <-tick.C:
		}
		s.reloadTokens(ctx)
	}
}

func (s *Server) reloadTokens(ctx context.Context) {
	start := time.Now()
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	valid, err := s.Store.AgentTokens(qctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.hsLog.warn(s.logger(), "tokens", "reload agent tokens (the previous set stays in force)", "err", err)
		}
		return
	}
	// Under s.mu, so a session registering now is either checked by register against this set or
	// found here.
	s.mu.Lock()
	s.tokens.mu.Lock()
	s.tokens.valid, s.tokens.start = valid, start
	s.tokens.mu.Unlock()
	var ended []*session
	for _, sess := range s.sessions {
		if !s.tokens.stillValid(sess) {
			ended = append(ended, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range ended {
		s.revoked(sess)
	}
}

// revoked ends the session of an agent whose token is no longer valid. The agent logs the error
// and, unauthorized being not retryable, comes back only at its backoff cap (and is refused until
// an operator gives it a valid token).
func (s *Server) revoked(sess *session) {
	s.metrics.sessionsRevoked.Inc()
	s.logger().Info("ending the session of a revoked agent or one whose token was rotated", "agent", sess.agent.Name,
		"tunnel", sess.agent.TunnelName, "epoch", sess.epoch, "remote", sess.remote)
	s.endSession(sess, protocol.Error{Code: protocol.CodeUnauthorized,
		Message: "this agent's token was revoked or rotated; put a valid token in agent.yml (POST /api/agents/{id}/rotate-token)"})
}

// Agent implements AgentChanges: an agent was enrolled, revoked or its token rotated, so the set
// of valid tokens is reloaded and sessions whose token is no longer in it are ended.
func (s *Server) Agent(int64) {
	s.tokens.poke()
}
