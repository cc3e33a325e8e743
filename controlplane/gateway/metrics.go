package gateway

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series; ops watch push latency the way Istio's
// pilot_proxy_convergence_time is watched, and NACKs as the first sign of a bad config.
type metrics struct {
	once       sync.Once
	push       *prometheus.HistogramVec // push → answer, by result
	handshakes *prometheus.CounterVec   // refused handshakes, by error code
	statuses   prometheus.Counter
}

func (m *metrics) init() {
	m.once.Do(func() {
		m.push = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sajet_gateway_push_duration_seconds",
			Help: "From sending a desired state to an agent to its answer (the agent restarts cloudflared in between), by result: ack, nack or error.",
			// The agent's apply includes a cloudflared restart: milliseconds with a fast unit,
			// tens of seconds with cloudflared's grace period.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"result"})
		m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sajet_gateway_refused_handshakes_total",
			Help: "Agent handshakes refused, by reason (unauthorized, unknown_tunnel, unsupported_version, rate_limited, bad_request).",
		}, []string{"code"})
		m.statuses = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sajet_gateway_status_reports_total",
			Help: "Status reports received from agents.",
		})
	})
}

func (m *metrics) observePush(result string, d time.Duration) {
	m.init()
	m.push.WithLabelValues(result).Observe(d.Seconds())
}

func (m *metrics) refused(code string) {
	m.init()
	m.handshakes.WithLabelValues(code).Inc()
}

// Collectors returns the gateway's metrics for the control plane's registry.
func (s *Server) Collectors() []prometheus.Collector {
	s.metrics.init()
	sessions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sajet_gateway_sessions",
		Help: "Agent sessions held by this replica.",
	}, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(len(s.sessions))
	})
	return []prometheus.Collector{s.metrics.push, s.metrics.handshakes, s.metrics.statuses, sessions}
}
