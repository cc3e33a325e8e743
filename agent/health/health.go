// Package health serves the agent's endpoints for ops (docs/ARCHITECTURE.md §5): /livez and /healthz (the
// process's main loop turns), /readyz (connected, last apply good, cloudflared ready), /status
// (JSON for humans and scripts) and /metrics (Prometheus).
package health

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Checks supplies the answers.
type Checks struct {
	// Live returns nil while the main loop runs. Liveness leaves dependencies out (a control
	// plane outage must not make systemd or an orchestrator kill the agent).
	Live func() error
	// Ready returns nil when the agent is doing its job: connected, last apply good, cloudflared
	// ready.
	Ready func() error
	// Status is the /status document.
	Status   func() any
	Registry *prometheus.Registry
}

// Handler returns the mux.
func Handler(c Checks) http.Handler {
	mux := http.NewServeMux()
	probe := func(check func() error) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			if err := check(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("fail: " + err.Error() + "\n"))
				return
			}
			_, _ = w.Write([]byte("ok\n"))
		}
	}
	mux.Handle("GET /livez", probe(c.Live))
	mux.Handle("GET /healthz", probe(c.Live))
	mux.Handle("GET /readyz", probe(c.Ready))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c.Status())
	})
	if c.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(c.Registry, promhttp.HandlerOpts{}))
	}
	return mux
}
