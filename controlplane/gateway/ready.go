package gateway

import (
	"errors"
)

// Ready reports whether the gateway can serve agents: it is accepting connections and has loaded
// the set of valid agent tokens at least once (without it, every agent would be looked up as an
// unknown token). The error says which part is not ready.
func (s *Server) Ready() error {
	if !s.serving.Load() {
		return errors.New("not accepting agent connections")
	}
	s.tokens.mu.RLock()
	loaded := !s.tokens.start.IsZero()
	s.tokens.mu.RUnlock()
	if !loaded {
		return errors.New("the set of valid agent tokens has not been loaded from the database yet")
	}
	return nil
}

// Ready reports whether the listener holds its LISTEN connection: without it, changes made on
// other replicas reach this one's agents only at the next periodic reconcile.
func (l *Listener) Ready() error {
	if !l.connected.Load() {
		return errors.New("no LISTEN connection to PostgreSQL: changes reach agents only at the periodic reconcile")
	}
	return nil
}
