package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"time"
)

// readyz reports whether this replica can serve: the database answers, and every part in
// Config.Ready (the agent gateway when it is on) says it is ready. The body names each check and,
// for one that fails, why: {"status":"fail","checks":{"database":"ok","agent_gateway":"no LISTEN
// connection to PostgreSQL: …"},"failing":["agent_gateway"]}. 200 when every check passes, else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	body := struct {
		Status  string            `json:"status"`
		Checks  map[string]string `json:"checks"`
		Failing []string          `json:"failing,omitempty"`
	}{Status: "pass", Checks: map[string]string{}}
	fail := func(name, why string) {
		body.Checks[name] = why
		body.Failing = append(body.Failing, name)
		body.Status = "fail"
	}
	if err := s.cfg.Store.Ping(ctx); err != nil {
		fail("database", "unreachable") // the error stays in the logs: /readyz answers anyone
	} else {
		body.Checks["database"] = "ok"
	}
	for _, name := range slices.Sorted(maps.Keys(s.cfg.Ready)) {
		if err := s.cfg.Ready[name](); err != nil {
			fail(name, err.Error())
		} else {
			body.Checks[name] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if body.Status != "pass" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}
