package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/cloudflaredtest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// tenantStack is a control plane with two customers whose tenants share one tunnel, and the
// tunnel's host, whose agent validates with the real cloudflared.
type tenantStack struct {
	*stack
	db *pgxpool.Pool
}

func newTenantStack(t *testing.T) *tenantStack {
	t.Helper()
	pool, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	cp := startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile)
	token := cp.seed(t) // customer 1, tunnel 1, tenant deployment 1
	var v map[string]any
	cp.call(t, "POST", "/api/customers", `{"email":"it@techeels.io","company_name":"Techeels"}`, &v)
	cp.call(t, "POST", "/api/tenant-deployments", `{"customer_id":2,"name":"odoo","tunnel_id":1,"backend_url":"http://10.10.10.106:8069"}`, &v)
	s := &tenantStack{stack: &stack{cp: cp, node: newNode(t, cp, token)}, db: pool}
	return s
}

func (s *tenantStack) createFor(t *testing.T, customer, tenant int, host string) domain {
	t.Helper()
	var d domain
	s.cp.call(t, "POST", "/api/domains", `{"external_domain":"`+host+`","customer_id":`+itoa(customer)+`,"tenant_deployment_id":`+itoa(tenant)+`}`, &d)
	return d
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

type stepsView struct {
	Steps []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"steps"`
	LastError *string `json:"last_error"`
}

// tunnelStep returns the domain's tunnel_ingress step and everything a customer reads on it.
func (s *tenantStack) tunnelStep(t *testing.T, host string) (status, detail, all string) {
	t.Helper()
	var v stepsView
	s.cp.call(t, "GET", "/api/domains/"+host, "", &v)
	raw, _ := json.Marshal(v)
	for _, st := range v.Steps {
		if st.Name == "tunnel_ingress" {
			return st.Status, st.Detail, string(raw)
		}
	}
	t.Fatalf("%s has no tunnel_ingress step", host)
	return "", "", ""
}

// The poisoned row: customer 1's tenant deployment gets a backend URL the agent refuses,
// written straight into the database. Customer 2's new domain on the same tunnel still reaches
// config.yml through the real agent and the real cloudflared validator; customer 1's domain
// leaves the tunnel, says why on its own step, and customer 2 never reads customer 1's names.
func TestAPoisonedRowFreezesNoTunnel(t *testing.T) {
	t.Parallel()
	s := newTenantStack(t)
	s.node.startAgent(t)
	s.createFor(t, 1, 1, "www.impulse-max.com")
	s.waitConfigured(t, "www.impulse-max.com")

	if _, err := s.db.Exec(context.Background(), `UPDATE tenant_deployments SET backend_url = 'http://admin@h:8069' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	s.createFor(t, 2, 2, "www.techeels.io")
	s.waitConfigured(t, "www.techeels.io")
	testwait.For(t, 30*time.Second, func() string {
		if c := s.node.config(t); strings.Contains(c, "impulse-max") {
			return "config.yml still routes the poisoned domain"
		}
		return ""
	})
	cfg := s.node.config(t)
	if !strings.Contains(cfg, "hostname: www.techeels.io\n    service: http://10.10.10.106:8069") {
		t.Errorf("config.yml lacks customer 2's domain:\n%s", cfg)
	}
	assertCompleteConfig(t, cfg)

	status, detail, _ := s.tunnelStep(t, "www.impulse-max.com")
	if status != "failed" || !strings.Contains(detail, `only scheme://host[:port] is allowed`) {
		t.Errorf("poisoned domain's tunnel step: %s %q", status, detail)
	}
	if _, _, all := s.tunnelStep(t, "www.techeels.io"); strings.Contains(all, "impulse-max") || strings.Contains(all, "admin@") {
		t.Errorf("customer 2's domain names customer 1's data: %s", all)
	}
	if st := s.node.status(t); st.Config.LastError != nil {
		t.Errorf("the agent refused something: %+v", st.Config.LastError)
	}
}

// A cloudflared that refuses what our validator accepts (a newer release, say): the agent's
// bisection blames the one rule, the control plane leaves that domain out and pushes again, and
// the other customer's domain is routed without anyone stepping in.
func TestACloudflaredRefusalIsContainedToItsDomain(t *testing.T) {
	t.Parallel()
	real := cloudflaredtest.Path(t)
	s := newTenantStack(t)
	wrapper := filepath.Join(t.TempDir(), "cloudflared")
	script := "#!/bin/sh\n" +
		"# A cloudflared that refuses www.refused-by-cloudflared.com and otherwise is the real one.\n" +
		"if [ \"$1 $2 $4 $5\" = \"tunnel --config ingress validate\" ] && grep -q 'www.refused-by-cloudflared.com' \"$3\"; then\n" +
		"  echo \"Validating rules from $3\"\n" +
		"  echo 'Validation failed: www.refused-by-cloudflared.com is not acceptable to this cloudflared' >&2\n" +
		"  exit 1\nfi\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s.node.cfg["cloudflared_bin"] = wrapper
	s.node.startAgent(t)

	s.createFor(t, 1, 1, "www.refused-by-cloudflared.com")
	s.createFor(t, 2, 2, "www.techeels.io")
	s.waitConfigured(t, "www.techeels.io")
	testwait.For(t, 30*time.Second, func() string {
		status, detail, _ := s.tunnelStep(t, "www.refused-by-cloudflared.com")
		if status != "failed" || !strings.Contains(detail, "is not acceptable to this cloudflared") {
			return "refused domain's tunnel step: " + status + " " + detail
		}
		return ""
	})
	cfg := s.node.config(t)
	if strings.Contains(cfg, "refused-by-cloudflared") || !strings.Contains(cfg, "www.techeels.io") {
		t.Errorf("config.yml:\n%s", cfg)
	}
	if _, _, all := s.tunnelStep(t, "www.techeels.io"); strings.Contains(all, "refused-by-cloudflared") {
		t.Errorf("customer 2's domain names customer 1's hostname: %s", all)
	}
}

// The operator's base file starts routing a customer's hostname: the control plane learns it
// from the agent, leaves the customer's rules out (the operator's rule is never shadowed), refuses
// new registrations of the name, and routes the customer again once the operator removes it.
func TestBaseFileCollisionsAreContainedAndHeal(t *testing.T) {
	t.Parallel()
	s := newTenantStack(t)
	s.node.startAgent(t)
	s.createFor(t, 1, 1, "grafana.operator-internal.com")
	s.createFor(t, 2, 2, "www.techeels.io")
	s.waitConfigured(t, "grafana.operator-internal.com")
	s.waitConfigured(t, "www.techeels.io")

	withGrafana := strings.Replace(baseFile, "ingress:\n", "ingress:\n  - hostname: grafana.operator-internal.com\n    service: http://127.0.0.1:3000\n", 1)
	writeFile(t, s.node.basePath, withGrafana)
	testwait.For(t, 30*time.Second, func() string {
		status, detail, _ := s.tunnelStep(t, "grafana.operator-internal.com")
		// The API answers in Spanish by default (docs/I18N.md).
		if status != "failed" || !strings.Contains(detail, "configuración propia del servidor del túnel") {
			return "colliding domain's tunnel step: " + status + " " + detail
		}
		c := s.node.config(t)
		if strings.Count(c, "grafana.operator-internal.com") != 1 || !strings.Contains(c, "service: http://127.0.0.1:3000") {
			return "config.yml does not route grafana to the operator's service only:\n" + c
		}
		return ""
	})
	if _, detail, _ := s.tunnelStep(t, "grafana.operator-internal.com"); strings.Contains(detail, "3000") || strings.Contains(detail, "base.yml") {
		t.Errorf("the customer reads the operator's configuration: %q", detail)
	}
	assertCompleteConfig(t, s.node.config(t))
	if code := s.cp.call(t, "POST", "/api/domains", `{"external_domain":"grafana.operator-internal.com","customer_id":2,"tenant_deployment_id":2}`, nil); code != 409 {
		t.Errorf("registering the operator's hostname: %d, want 409", code)
	}

	writeFile(t, s.node.basePath, baseFile)
	s.waitConfigured(t, "grafana.operator-internal.com")
	testwait.For(t, 30*time.Second, func() string {
		if c := s.node.config(t); !strings.Contains(c, "hostname: grafana.operator-internal.com\n    service: http://10.10.10.105:8069") {
			return "config.yml does not route grafana to the customer again:\n" + c
		}
		return ""
	})
}
