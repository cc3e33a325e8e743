package gateway

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series; ops watch push latency the way Istio's
// pilot_proxy_convergence_time is watched, and NACKs as the first sign of a bad config.
type metrics struct {
	once            sync.Once
	push            *prometheus.HistogramVec // push → answer, by result
	apply           *prometheus.HistogramVec // the agent's own apply time, by whether it restarted cloudflared
	handshakes      *prometheus.CounterVec   // refused handshakes, by error code
	statuses        prometheus.Counter
	unknownLookups  prometheus.Counter     // database lookups of tokens not in the valid set
	streams         *prometheus.CounterVec // agent streams refused, by reason
	reportsDropped  *prometheus.CounterVec // reports over their rate, by type
	reportsDelayed  *prometheus.CounterVec // reports held back to their rate, by type
	sessionsRevoked prometheus.Counter
	probes          *prometheus.CounterVec // probes asked of agents, by result
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
		m.apply = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sajet_gateway_agent_apply_duration_seconds",
			Help:    "How long agents took to apply a pushed version, as they report it in their answer, by whether they restarted cloudflared (true, false). Only versions the agent applied (not stale or duplicate pushes).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"restarted"})
		m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sajet_gateway_refused_handshakes_total",
			Help: "Agent connections refused before or during the handshake, by reason: the protocol error code answered " +
				"(unauthorized, unknown_tunnel, unsupported_version, rate_limited, bad_request), too_many_handshakes, " +
				"too_many_handshakes_from_address, handshake_timeout, closed (no hello) or error (database).",
		}, []string{"code"})
		m.statuses = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sajet_gateway_status_reports_total",
			Help: "Status reports received from agents and stored.",
		})
		m.unknownLookups = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sajet_gateway_unknown_token_lookups_total",
			Help: "Database lookups of well-formed agent tokens that were not in the set of valid tokens (the lookups the bad-token limiter bounds).",
		})
		m.streams = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sajet_gateway_refused_agent_streams_total",
			Help: "Streams opened by authenticated agents that were refused, by reason: invalid or unexpected (the message was refused), protocol_violation (the session was closed).",
		}, []string{"reason"})
		m.reportsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sajet_gateway_dropped_reports_total",
			Help: "Agent reports dropped because they came faster than their rate limit, by type.",
		}, []string{"type"})
		m.reportsDelayed = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sajet_gateway_delayed_reports_total",
			Help: "Agent reports held back because they came faster than their rate limit, by type (base reports wait; status reports are dropped).",
		}, []string{"type"})
		m.probes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sajet_gateway_probes_total",
			Help: "Backend probes asked of agents (diagnostics), by result: answered (an HTTP response arrived), failed (the agent reports why not), refused (not_in_rules, or the agent's own budget), rate_limited (this replica's per-agent budget; not sent) or error (no usable answer).",
		}, []string{"result"})
		m.sessionsRevoked = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sajet_gateway_revoked_sessions_total",
			Help: "Agent sessions ended because the agent was revoked or its token rotated.",
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

func (m *metrics) streamRefused(reason string) {
	m.init()
	m.streams.WithLabelValues(reason).Inc()
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
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sajet_gateway_pending_handshakes",
		Help: "Agent connections that have not finished their handshake.",
	}, func() float64 { return float64(s.pendingHandshakes()) })
	streams := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sajet_gateway_agent_streams",
		Help: "yamux streams open in the agent sessions held by this replica (at most 2 x MaxStreams per session from the agent, plus the control plane's own).",
	}, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, sess := range s.sessions {
			n += sess.ys.NumStreams()
		}
		return float64(n)
	})
	return []prometheus.Collector{s.metrics.push, s.metrics.apply, s.metrics.handshakes, s.metrics.statuses, s.metrics.unknownLookups,
		s.metrics.streams, s.metrics.reportsDropped, s.metrics.reportsDelayed, s.metrics.sessionsRevoked, s.metrics.probes, sessions, pending, streams}
}
