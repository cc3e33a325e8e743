package automation_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/jeturing/sajet-domains/controlplane/automation"
)

// gauge reads one gauge with the given labels from what the collectors export (-1: absent).
func gauge(t *testing.T, cs []prometheus.Collector, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(cs...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return metricValue(m)
		}
	}
	return -1
}

func metricValue(m *dto.Metric) float64 {
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// The gauges are read from the database, so every replica exports the same numbers: a second
// automation on the same database (another replica, no work of its own) reports what the first
// one did.
func TestGaugesComeFromTheDatabase(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	other := automation.New(automation.Config{Store: w.st, Clock: w.clock})
	if v := gauge(t, other.Collectors(), "sajet_automation_gauges_up", nil); v != 1 {
		t.Fatalf("gauges_up %v", v)
	}
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d := w.register(host)
	w.sweep(d.ID, time.Minute)
	w.dns.AddCNAME("shop.impulse-max.com", "elsewhere.example.net")
	w.register("shop.impulse-max.com")
	w.clock.Advance(8 * 24 * time.Hour)
	w.evaluate()

	other = automation.New(automation.Config{Store: w.st, Clock: w.clock})
	cs := other.Collectors()
	if v := gauge(t, cs, "sajet_domains", map[string]string{"health": "healthy"}); v != 1 {
		t.Errorf("healthy domains %v, want 1", v)
	}
	if v := gauge(t, cs, "sajet_alerts_open", map[string]string{"kind": "domain_unverified"}); v != 1 {
		t.Errorf("open domain_unverified alerts %v, want 1", v)
	}
	if v := gauge(t, cs, "sajet_domain_last_check_timestamp_seconds", nil); v <= 0 {
		t.Errorf("last check timestamp %v", v)
	}
	if v := gauge(t, w.auto.Collectors(), "sajet_domain_checks_total", map[string]string{"result": "ok"}); v < 1 {
		t.Errorf("checks counted by the replica that ran them: %v", v)
	}
}
