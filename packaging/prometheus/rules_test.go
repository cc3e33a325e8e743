// Package rules tests the Prometheus alerting rules shipped in this directory: promtool checks
// and unit-tests them, every alert is tested firing and quiet, and every series they read is one
// the binaries export (so renaming a metric, a label or an alert kind breaks this test, not the
// on-call's pager).
package rules

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/jeturing/sajet-domains/agent"
	"github.com/jeturing/sajet-domains/agent/config"
	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

const (
	rulesFile = "sajet-domains.rules.yml"
	testsFile = "sajet-domains.rules_test.yml"
)

// promtool returns promtool's path; without it the test skips (fails under CI=true).
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	msg := "promtool not found: apt-get install --no-install-recommends prometheus (.ci/run installs it); the rules were not checked"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func TestPromtoolChecksAndTestsTheRules(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", testsFile}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func load(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestEveryAlertIsTestedAndActionable needs no promtool: each alert has a `for:`, a severity (its
// own or the alert row's, from sajet_alerts_open), a summary and a description, and the unit
// tests expect it both firing and quiet.
func TestEveryAlertIsTestedAndActionable(t *testing.T) {
	var rf ruleFile
	var tf testFile
	load(t, rulesFile, &rf)
	load(t, testsFile, &tf)
	if !slices.Equal(tf.RuleFiles, []string{rulesFile}) {
		t.Errorf("%s tests %v, want [%s]", testsFile, tf.RuleFiles, rulesFile)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, g := range tf.Tests {
		for _, a := range g.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a recording rule or an unnamed alert", g.Name)
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if r.For == "" {
				t.Errorf("%s has no for: (one bad scrape would page)", r.Alert)
			}
			if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" &&
				!(sev == "" && strings.Contains(r.Expr, "sajet_alerts_open{")) {
				t.Errorf("%s: severity %q (want warning or critical, or the alert row's)", r.Alert, sev)
			}
			if len(r.Annotations["summary"]) < 20 || len(r.Annotations["description"]) < 60 {
				t.Errorf("%s: summary and description must tell the on-call what is wrong and what to do", r.Alert)
			}
			if !fires[r.Alert] {
				t.Errorf("%s is never tested firing", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("%s is never tested quiet", r.Alert)
			}
		}
	}
	for name := range fires {
		if !alerts[name] {
			t.Errorf("%s tests alert %s, which %s does not define", testsFile, name, rulesFile)
		}
	}
	// The seed's alerts and the ops ones the issue names.
	for _, want := range []string{"SajetDomainUnverified", "SajetDNSPropagationError", "SajetCertificateExpiring",
		"SajetCertificateRenewalFailed", "SajetDomainMisconfigured", "SajetChecksStalled", "SajetAgentDisconnected", "SajetAgentNACK"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// exported is what the binaries export: metric name → its label names.
type exported map[string][]string

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

// describe adds the descriptors of cs: every metric they can export, including vectors that
// have no series yet (a scrape would not show those).
func (e exported) describe(t *testing.T, cs ...prometheus.Collector) {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("unreadable descriptor %s", d)
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
			}
		}
		e[m[1]] = labels
	}
}

// gather adds what a registry exports right now.
func (e exported) gather(t *testing.T, g prometheus.Gatherer) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		var labels []string
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !slices.Contains(labels, lp.GetName()) {
					labels = append(labels, lp.GetName())
				}
			}
		}
		e[mf.GetName()] = labels
	}
}

// labelsOf returns the labels of name, a histogram's _count/_sum/_bucket included; ok false when
// nothing exports it.
func (e exported) labelsOf(name string) ([]string, bool) {
	if l, ok := e[name]; ok {
		return l, true
	}
	for _, suffix := range []string{"_count", "_sum", "_bucket"} {
		if base, found := strings.CutSuffix(name, suffix); found {
			if l, ok := e[base]; ok {
				if suffix == "_bucket" {
					l = append(slices.Clip(l), "le")
				}
				return l, true
			}
		}
	}
	return nil, false
}

// binaries collects the metrics of both binaries: the control plane's API registry (after a
// request, so its request histogram has a series), the gateway's and the automation's
// collectors, and an agent's registry.
func binaries(t *testing.T) exported {
	t.Helper()
	e := exported{}
	srv := api.New(api.Config{Version: "test"})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/domains", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("unauthenticated GET /api/domains answered %d, want 401", rec.Code)
	}
	e.gather(t, srv.Registry())
	e.describe(t, (&gateway.Server{}).Collectors()...)
	e.describe(t, automation.New(automation.Config{}).Collectors()...)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "base.yml"), []byte("tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\ncredentials-file: /etc/cloudflared/t.json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("control_plane: 127.0.0.1:1\ntoken: sja_test\ntunnel: t\nname: edge\n" +
		"base_config: " + filepath.Join(dir, "base.yml") + "\nconfig_path: " + filepath.Join(dir, "config.yml") +
		"\nunit: cloudflared.service\nstate_dir: " + filepath.Join(dir, "state") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(context.Background(), cfg, agent.Options{Build: "test", Units: []agent.UnitControl{idleUnit{}}})
	if err != nil {
		t.Fatal(err)
	}
	e.gather(t, a.Registry())
	return e
}

type idleUnit struct{}

func (idleUnit) Restart(context.Context) error { return nil }
func (idleUnit) Verify(context.Context) error  { return nil }
func (idleUnit) State(context.Context) (protocol.UnitState, error) {
	return protocol.UnitState{}, nil
}

var (
	selectorRE = regexp.MustCompile(`\b(sajet_[a-z0-9_]+)(\{([^}]*)\})?`)
	matcherRE  = regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	groupingRE = regexp.MustCompile(`(?:without|by)\s*\(([^)]*)\)`)
)

// TestRulesReadExportedSeries: every sajet_ series the rules and their unit tests name is
// exported by a binary, with the labels they match on, and every alert kind they match is one
// the control plane opens.
func TestRulesReadExportedSeries(t *testing.T) {
	e := binaries(t)
	kinds := []string{store.AlertDomainUnverified, store.AlertDNSPropagation, store.AlertCertificateExpiring,
		store.AlertCertificateRenewalFailed, store.AlertDomainMisconfigured, store.AlertChecksStalled}
	// Labels Prometheus adds at scrape time.
	scrape := []string{"instance", "job"}

	var rf ruleFile
	var tf testFile
	load(t, rulesFile, &rf)
	load(t, testsFile, &tf)
	type use struct{ where, text string }
	var uses []use
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			uses = append(uses, use{"alert " + r.Alert, r.Expr})
		}
	}
	for i, g := range tf.Tests {
		for _, s := range g.InputSeries {
			uses = append(uses, use{fmt.Sprintf("test group %d, input %s", i+1, s.Series), s.Series})
		}
	}
	seen := map[string]bool{}
	for _, u := range uses {
		for _, m := range selectorRE.FindAllStringSubmatch(u.text, -1) {
			name := m[1]
			labels, ok := e.labelsOf(name)
			seen[name] = true
			if !ok {
				t.Errorf("%s: %s is not exported by either binary", u.where, name)
				continue
			}
			for _, lm := range matcherRE.FindAllStringSubmatch(m[3], -1) {
				if !slices.Contains(labels, lm[1]) && !slices.Contains(scrape, lm[1]) {
					t.Errorf("%s: %s has no label %s (it has %v)", u.where, name, lm[1], labels)
				}
				if name == "sajet_alerts_open" && lm[1] == "kind" && lm[2] == "=" && !slices.Contains(kinds, lm[3]) &&
					!strings.HasPrefix(u.where, "test") {
					t.Errorf("%s: no alert kind %q (the control plane opens %v)", u.where, lm[3], kinds)
				}
			}
		}
		// Grouping labels name existing labels too (a typo in without() silently keeps a label).
		for _, gm := range groupingRE.FindAllStringSubmatch(u.text, -1) {
			for _, l := range strings.Split(gm[1], ",") {
				l = strings.TrimSpace(l)
				if l == "" || slices.Contains(scrape, l) {
					continue
				}
				found := false
				for _, m := range selectorRE.FindAllStringSubmatch(u.text, -1) {
					if labels, ok := e.labelsOf(m[1]); ok && slices.Contains(labels, l) {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: groups by %q, a label none of its series has", u.where, l)
				}
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("series read by the rules: %s", strings.Join(names, " "))
	if len(seen) < 10 {
		t.Errorf("only %d series found in the rules: the extraction is broken", len(seen))
	}
}
