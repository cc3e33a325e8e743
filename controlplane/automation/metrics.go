package automation

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
)

// metrics are this process's counters; the database-wide gauges are computed at scrape time by
// the collector.
type metrics struct {
	checks    *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	duration  prometheus.Histogram
	emails    *prometheus.CounterVec
	collector *gauges
}

func newMetrics() *metrics {
	return &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sajet_domain_checks_total",
			Help: "Automatic DNS checks by result (ok; failed: a wrong answer; error: no usable answer; expired: an unverified registration reached its expiry; skipped: being deleted; not_recorded: the check could not be recorded)."}, []string{"result"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sajet_webhook_attempts_total",
			Help: "Webhook delivery attempts by result (succeeded, pending: will retry, failed: gave up)."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sajet_webhook_attempt_duration_seconds",
			Help: "Time from sending a webhook request to its answer.", Buckets: prometheus.DefBuckets}),
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sajet_emails_total",
			Help: "Notification emails by kind and result (sent, recorded: no SMTP configured, error)."}, []string{"kind", "result"}),
	}
}

func (m *metrics) delivered(result string, o webhooks.Outcome) {
	m.attempts.WithLabelValues(result).Inc()
	if o.Status != 0 {
		m.duration.Observe(o.Duration.Seconds())
	}
}

// Collectors returns the automation's metrics for /metrics: process counters, and gauges read
// from the database at scrape time (the same on every replica: rules take max across instances,
// never sum).
func (a *Automation) Collectors() []prometheus.Collector {
	if a.metrics.collector == nil {
		a.metrics.collector = &gauges{a: a}
	}
	return []prometheus.Collector{a.metrics.checks, a.metrics.attempts, a.metrics.duration, a.metrics.emails, a.metrics.collector}
}

var (
	descDomains = prometheus.NewDesc("sajet_domains", "Domains by health: pending, expired, healthy, misconfigured, deactivated, deleting.",
		[]string{"health"}, nil)
	descAlerts = prometheus.NewDesc("sajet_alerts_open", "Open alerts by kind and severity (GET /api/alerts).",
		[]string{"kind", "severity"}, nil)
	descDue       = prometheus.NewDesc("sajet_checks_due", "Domains whose automatic DNS check is due now.", nil, nil)
	descOldestDue = prometheus.NewDesc("sajet_checks_oldest_due_seconds",
		"How long the oldest claimed check has waited to run (0: none waiting).", nil, nil)
	descLastCheck = prometheus.NewDesc("sajet_domain_last_check_timestamp_seconds", "When the last DNS check of any domain ran.", nil, nil)
	descCert      = prometheus.NewDesc("sajet_certificate_expiry_soonest_timestamp_seconds",
		"The earliest certificate expiry of a live custom hostname (absent: none known).", nil, nil)
	descEndpoints  = prometheus.NewDesc("sajet_webhook_endpoints", "Webhook endpoints by state.", []string{"state"}, nil)
	descDeliveries = prometheus.NewDesc("sajet_webhook_deliveries", "Webhook deliveries pending or failed (kept for the retention period).",
		[]string{"status"}, nil)
	descNotifications = prometheus.NewDesc("sajet_notifications", "Notifications waiting to be sent or given up.", []string{"status"}, nil)
	descUp            = prometheus.NewDesc("sajet_automation_gauges_up", "1 when the database gauges could be read.", nil, nil)
)

// gauges reads the database at scrape time, at most once per cacheFor (scrapes from several
// Prometheus servers do not each cost the queries).
type gauges struct {
	a    *Automation
	mu   sync.Mutex
	at   time.Time
	last store.Gauges
	ok   bool
}

const cacheFor = 10 * time.Second

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDomains, descAlerts, descDue, descOldestDue, descLastCheck, descCert, descEndpoints,
		descDeliveries, descNotifications, descUp} {
		ch <- d
	}
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	if time.Since(g.at) > cacheFor {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last, err := g.a.cfg.Store.AutomationGauges(ctx, g.a.now())
		cancel()
		g.at, g.ok = time.Now(), err == nil
		if err == nil {
			g.last = last
		} else {
			g.a.logger.Warn("read automation gauges", "err", err)
		}
	}
	v, ok := g.last, g.ok
	g.mu.Unlock()
	up := 0.0
	if ok {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
	if !ok {
		return
	}
	for h, n := range v.Domains {
		ch <- prometheus.MustNewConstMetric(descDomains, prometheus.GaugeValue, float64(n), h)
	}
	for k, n := range v.AlertsOpen {
		ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	ch <- prometheus.MustNewConstMetric(descDue, prometheus.GaugeValue, float64(v.ChecksDue))
	oldest := 0.0
	if v.OldestDue != nil {
		oldest = max(g.a.now().Sub(*v.OldestDue).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(descOldestDue, prometheus.GaugeValue, oldest)
	if v.LastCheck != nil {
		ch <- prometheus.MustNewConstMetric(descLastCheck, prometheus.GaugeValue, float64(v.LastCheck.Unix()))
	}
	if v.CertificateSoonest != nil {
		ch <- prometheus.MustNewConstMetric(descCert, prometheus.GaugeValue, float64(v.CertificateSoonest.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(descEndpoints, prometheus.GaugeValue, float64(v.EndpointsEnabled), "enabled")
	ch <- prometheus.MustNewConstMetric(descEndpoints, prometheus.GaugeValue, float64(v.EndpointsDisabled), "disabled")
	ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.GaugeValue, float64(v.DeliveriesPending), "pending")
	ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.GaugeValue, float64(v.DeliveriesFailed), "failed")
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.GaugeValue, float64(v.NotificationsPending), "pending")
	ch <- prometheus.MustNewConstMetric(descNotifications, prometheus.GaugeValue, float64(v.NotificationsFailed), "failed")
}
