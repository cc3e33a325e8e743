package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/mailer/mailtest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// autoDomain is what this test reads of a domain.
type autoDomain struct {
	ID              int64      `json:"id"`
	State           string     `json:"state"`
	IsActive        bool       `json:"is_active"`
	Verification    string     `json:"verification_status"`
	LastCheckedAt   *time.Time `json:"last_checked_at"`
	NextCheckAt     *time.Time `json:"next_check_at"`
	WrongAnswers    int        `json:"wrong_answers"`
	MisconfiguredAt *time.Time `json:"misconfigured_at"`
	GraceUntil      *time.Time `json:"grace_until"`
	DeactivatedAt   *time.Time `json:"deactivated_at"`
	Ingress         bool       `json:"tunnel_ingress_configured"`
	Alerts          []struct {
		Kind string `json:"kind"`
	} `json:"alerts"`
	Steps []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"steps"`
}

// signedHook is a webhook receiver on loopback that accepts only requests signed with its secret.
type signedHook struct {
	srv      *httptest.Server
	mu       sync.Mutex
	key      []byte
	events   []map[string]any
	ids      []string
	rejected int
}

func newSignedHook(t *testing.T) *signedHook {
	h := &signedHook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.key == nil || webhooks.Verify(h.key, r.Header, body, time.Now()) != nil {
			h.rejected++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.events, h.ids = append(h.events, ev), append(h.ids, r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// wait returns the first delivered event of type typ.
func (h *signedHook) wait(t *testing.T, typ string) map[string]any {
	t.Helper()
	var out map[string]any
	testwait.For(t, 30*time.Second, func() string {
		h.mu.Lock()
		defer h.mu.Unlock()
		var types []string
		for _, e := range h.events {
			if e["type"] == typ {
				out = e
				return ""
			}
			types = append(types, fmt.Sprint(e["type"]))
		}
		return fmt.Sprintf("no signed %s received (got %v, %d rejected)", typ, types, h.rejected)
	})
	return out
}

// The path through the real binary, time moved by its test clock: a verified, active
// domain whose DNS is broken goes misconfigured after a run of wrong answers (alert, signed
// webhook, email), keeps serving during the grace period, is deactivated after it (its rules leave
// the agent's cloudflared config), and comes back when DNS is fixed and verified.
func TestBrokenDNSThroughTheBinary(t *testing.T) {
	t.Parallel()
	const host = "www.impulse-max.com"
	dns := dnstest.Start(t)
	mail := mailtest.Start(t)
	hook := newSignedHook(t)
	_, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	cp := startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile,
		"--dns-resolver", dns.Addr(), "--test-clock", "--webhook-secret-key", webhooks.NewKey(), "--webhook-allow-net", "127.0.0.0/8",
		"--smtp-host", mail.Host, "--smtp-port", strconv.Itoa(mail.Port), "--smtp-tls", "none")
	token := cp.seed(t)
	n := newNode(t, cp, token)
	n.startAgent(t)
	cp.call(t, "PATCH", "/api/customers/1", `{"language":"en"}`, &map[string]any{})

	var ep struct {
		Secret string `json:"secret"`
	}
	cp.call(t, "POST", "/api/webhook-endpoints", `{"customer_id":1,"url":"`+hook.srv.URL+`/sajet"}`, &ep)
	key, err := webhooks.ParseSecret(ep.Secret)
	if err != nil {
		t.Fatalf("secret %q: %v", ep.Secret, err)
	}
	hook.mu.Lock()
	hook.key = key
	hook.mu.Unlock()

	// Verified and active, in the agent's config.
	dns.AddCNAME(host, "impulse-max.sajet.us")
	dom := cp.createDomain(t, host)
	cp.call(t, "POST", "/api/domains/"+host+"/verify", "", &map[string]any{})
	testwait.For(t, 30*time.Second, func() string {
		if d := cp.getDomain(t, host); !d.TunnelIngressConfigured {
			return "the domain's rules are not applied yet"
		}
		return ""
	})
	cp.call(t, "POST", "/api/domains/"+host+"/activate", "", &map[string]any{})
	if !strings.Contains(n.config(t), "hostname: "+host) {
		t.Fatalf("config.yml lacks %s:\n%s", host, n.config(t))
	}
	hook.wait(t, "domain.verified")
	hook.wait(t, "domain.activated")

	get := func() autoDomain {
		var d autoDomain
		cp.call(t, "GET", "/api/domains/"+host, "", &d)
		return d
	}
	// tick moves the automation's clock by d and waits for the domain's check at the new time
	// (sweeps are started again while waiting: one still running swallows a start).
	tick := func(d time.Duration) autoDomain {
		t.Helper()
		var now struct {
			Now time.Time `json:"now"`
		}
		cp.call(t, "POST", "/api/test/clock", fmt.Sprintf(`{"advance_seconds":%d}`, int64(d/time.Second)), &now)
		var got autoDomain
		testwait.For(t, 30*time.Second, func() string {
			got = get()
			if got.LastCheckedAt != nil && !got.LastCheckedAt.Before(now.Now.Add(-time.Second)) {
				return ""
			}
			cp.call(t, "POST", "/api/test/clock", `{"advance_seconds":0}`, &map[string]any{})
			return fmt.Sprintf("not checked at %v (last %v, next %v)", now.Now, got.LastCheckedAt, got.NextCheckAt)
		})
		return got
	}

	// The customer points the name elsewhere: wrong answers, then misconfigured, still serving.
	dns.AddCNAME(host, "parked.registrar-example.net")
	d := tick(8 * time.Hour)
	if d.WrongAnswers != 1 || d.State != "active" {
		t.Fatalf("after one wrong answer: %+v", d)
	}
	for i := 0; d.MisconfiguredAt == nil; i++ {
		if i == 6 {
			t.Fatalf("not misconfigured after %d wrong answers", d.WrongAnswers)
		}
		d = tick(11 * time.Minute)
	}
	if d.State != "misconfigured" || !d.IsActive || d.GraceUntil == nil || len(d.Alerts) != 1 || d.Alerts[0].Kind != "domain_misconfigured" {
		t.Fatalf("misconfigured: %+v", d)
	}
	var alerts struct {
		Items []struct {
			Kind, Message string
		} `json:"items"`
	}
	cp.call(t, "GET", "/api/alerts?status=open", "", &alerts)
	if len(alerts.Items) != 1 || !strings.Contains(alerts.Items[0].Message, "parked.registrar-example.net") {
		t.Errorf("open alerts %+v", alerts)
	}
	ev := hook.wait(t, "domain.misconfigured")
	data, _ := ev["data"].(map[string]any)
	if data["hostname"] != host || data["state"] != "misconfigured" || data["domain_id"] != float64(dom.ID) {
		t.Errorf("domain.misconfigured payload %v", ev)
	}
	if !strings.Contains(n.config(t), "hostname: "+host) {
		t.Error("a misconfigured domain left the tunnel during its grace period")
	}
	subjects := func(want int) []string {
		var out []string
		for _, m := range mail.Wait(t, want, 30*time.Second) {
			pm, err := m.Parsed()
			if err != nil {
				t.Fatal(err)
			}
			s, _ := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
			out = append(out, strings.Join(m.To, ",")+"|"+pm.Header.Get("Content-Language")+"|"+s)
		}
		return out
	}
	mails := subjects(2) // verified, misconfigured
	if !strings.Contains(strings.Join(mails, "\n"), "ops@impulse-max.com|en|") || !strings.Contains(strings.Join(mails, "\n"), "no longer points") {
		t.Errorf("emails %q, want the misconfiguration one in English", mails)
	}

	// The grace period ends with the DNS still wrong: deactivated, out of the agent's config.
	d = tick(7*24*time.Hour + time.Hour)
	if d.State != "deactivated" || d.IsActive || d.DeactivatedAt == nil {
		t.Fatalf("after the grace: %+v", d)
	}
	testwait.For(t, 30*time.Second, func() string {
		if strings.Contains(n.config(t), host) {
			return "config.yml still routes the deactivated domain"
		}
		return ""
	})
	assertCompleteConfig(t, n.config(t))
	hook.wait(t, "domain.deactivated")
	if mails := subjects(3); !strings.Contains(mails[2], "|en|") {
		t.Errorf("deactivation email %q", mails[2])
	}
	if code := cp.call(t, "POST", "/api/domains/"+host+"/activate", "", nil); code != 409 {
		t.Errorf("a deactivated domain was activated: %d", code)
	}

	// Fixed and verified: back in service and in the config, the alert resolved.
	dns.AddCNAME(host, "impulse-max.sajet.us")
	cp.call(t, "POST", "/api/domains/"+host+"/verify", "", &map[string]any{})
	testwait.For(t, 30*time.Second, func() string {
		if !strings.Contains(n.config(t), "hostname: "+host) {
			return "config.yml does not route the recovered domain"
		}
		return ""
	})
	d = get()
	if d.State != "active" || !d.IsActive || d.MisconfiguredAt != nil || d.DeactivatedAt != nil || len(d.Alerts) != 0 {
		t.Errorf("after the fix: %+v", d)
	}
	rec := hook.wait(t, "domain.recovered")
	if data, _ := rec["data"].(map[string]any); data["previous_state"] != "deactivated" || data["state"] != "active" {
		t.Errorf("domain.recovered payload %v", rec)
	}
	subjects(4)

	// The delivery log shows every event delivered, with its attempts.
	var eps struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
	}
	cp.call(t, "GET", "/api/webhook-endpoints", "", &eps)
	var ds struct {
		Items []struct {
			Status    string `json:"status"`
			EventType string `json:"event_type"`
			Attempts  int    `json:"attempts"`
		} `json:"items"`
	}
	cp.call(t, "GET", fmt.Sprintf("/api/webhook-endpoints/%d/deliveries", eps.Items[0].ID), "", &ds)
	if len(ds.Items) < 5 {
		t.Errorf("deliveries %+v, want verified, activated, misconfigured, deactivated, recovered", ds.Items)
	}
	for _, x := range ds.Items {
		if x.Status != "succeeded" || x.Attempts < 1 {
			t.Errorf("delivery %+v", x)
		}
	}
	// /metrics carries the database gauges.
	res, err := http.Get(cp.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`sajet_domains{health=`, "sajet_automation_gauges_up 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
