package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

// callIn is an API GET in lang (Accept-Language), decoded.
func (s *stack) callIn(lang, path, token string) map[string]any {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Language", lang)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if res.StatusCode != 200 {
		s.t.Fatalf("GET %s (%s): %d", path, lang, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// A domain's open alerts are shown on the domain — severity as an icon and a word, the kind as a
// sentence, the API's own sentence, when it opened and was last seen — in Spanish and in English,
// marked on its row in the list, and counted on the dashboard as GET /api/domains/stats counts
// them; a customer's page sees none of another customer's alerts.
func TestOpenAlertsAreShownOnTheDomainAndCounted(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	rival := s.customer("Rival", "rival-tunnel")
	host := "www.impulse-max.com"
	s.must(201, "POST", "/api/domains", c.token, map[string]any{"external_domain": host})
	s.must(201, "POST", "/api/domains", c.token, map[string]any{"external_domain": "shop.impulse-max.com"})
	s.must(201, "POST", "/api/domains", rival.token, map[string]any{"external_domain": "secret.rival-example.com"})
	// Eight days on, nobody has verified them: the automation's alert sweep (the real store
	// evaluation, with time moved) opens domain_unverified for each.
	later := time.Now().Add(8 * 24 * time.Hour)
	sum, err := s.st.EvaluateAlerts(context.Background(), store.AlertPolicy{Now: later, UnverifiedAfter: 7 * 24 * time.Hour,
		DNSErrorAfter: time.Hour, DisagreeAfter: 24 * time.Hour, CertificateWarning: 14 * 24 * time.Hour, StalledAfter: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Opened < 3 {
		t.Fatalf("the sweep opened %d alerts, want one per unverified domain (3)", sum.Opened)
	}
	d := s.callIn("es", "/api/domains/"+host, c.token)
	alerts, _ := d["alerts"].([]any)
	if len(alerts) != 1 {
		t.Fatalf("the API's domain has alerts %v, want one", d["alerts"])
	}
	apiES := alerts[0].(map[string]any)

	p := s.newPage(t)
	p.signIn(c.token)
	p.waitFor("the list", `!!document.querySelector('tr[data-domain="www.impulse-max.com"]')`)
	if got := eval[string](p, `document.querySelector('tr[data-domain="www.impulse-max.com"] [data-alerts]')?.innerText ?? ''`); !strings.Contains(got, "1 alerta abierta") {
		t.Errorf("the row's alert mark reads %q", got)
	}
	p.open("/ui/domains/" + host)
	p.waitFor("the domain's alerts", `!!document.querySelector('.alerts-section li[data-alert]')`)
	read := `(() => { const li = document.querySelector('.alerts-section li[data-alert]'); return {
		kind: li.dataset.alert, severity: li.querySelector('.verdict').innerText.trim(),
		sentence: li.querySelector('.alert-kind').innerText.trim(), message: li.querySelector('.alert-message')?.innerText.trim() ?? '',
		when: li.querySelector('.alert-when').innerText.trim(), n: document.querySelectorAll('.alerts-section li[data-alert]').length } })()`
	type shown struct {
		Kind, Severity, Sentence, Message, When string
		N                                       int
	}
	got := eval[shown](p, read)
	if got.N != 1 || got.Kind != "domain_unverified" || got.Kind != apiES["kind"] || got.Message != apiES["message"] ||
		got.Sentence != "El dominio sigue sin verificarse días después de registrarlo." || !strings.HasSuffix(got.Severity, "Aviso") {
		t.Errorf("the alert on the page %+v, the API's %v", got, apiES)
	}
	if !strings.Contains(got.When, "Abierta") || !strings.Contains(got.When, "vista por última vez") || !strings.Contains(got.When, fmt.Sprint(later.Year())) {
		t.Errorf("when the alert opened and was last seen: %q", got.When)
	}
	// When the automation checks the domain next, as the API says.
	if d["next_check_at"] != nil {
		if got := eval[string](p, `document.querySelector('.next-check')?.innerText ?? ''`); !strings.HasPrefix(got, "Próxima comprobación automática:") {
			t.Errorf("the next check (API: %v) reads %q", d["next_check_at"], got)
		}
	} else if eval[bool](p, `!!document.querySelector('.next-check')`) {
		t.Error("a next check is shown where the API has none")
	}
	p.axe("a domain with an alert (es)")
	// The page's session sees only the customer's alerts.
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	listed, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('/api/alerts').then(r => r.text())`, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil || !strings.Contains(listed, host) || strings.Contains(listed, "rival") {
		t.Errorf("the customer's page lists alerts %s (%v): want its own, none of the rival's", listed, err)
	}

	p.do(chromedp.SetValue(chromedp.ID("lang"), "en"), chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`))
	p.waitFor("the alerts in English", `document.querySelector('#alerts-title')?.textContent === 'Open alerts'`)
	apiEN := s.callIn("en", "/api/domains/"+host, c.token)["alerts"].([]any)[0].(map[string]any)
	got = eval[shown](p, read)
	if got.Message != apiEN["message"] || got.Sentence != "The domain is still unverified days after it was registered." ||
		!strings.HasSuffix(got.Severity, "Warning") || !strings.Contains(got.When, "Opened") || !strings.Contains(got.When, "last seen") {
		t.Errorf("the alert in English %+v, the API's %v", got, apiEN)
	}
	if text := p.text(); strings.Contains(text, "⟦") {
		t.Errorf("a missing key:\n%s", text)
	}
	p.axe("a domain with an alert (en)")

	// The admin's dashboard counts them as the API does.
	a := s.newPage(t)
	a.signIn(s.admin)
	a.waitFor("the dashboard", `!!document.querySelector('[data-stat="alerts"]')`)
	st := s.must(200, "GET", "/api/domains/stats", s.admin, nil)
	open := int(st["alerts_open"].(float64))
	if open < 3 {
		t.Fatalf("the API counts %d open alerts, want at least the three opened", open)
	}
	if n := eval[int](a, `Number(document.querySelector('[data-stat="alerts"]').dataset.value)`); n != open {
		t.Errorf("the dashboard's open alerts %d, the API's %d", n, open)
	}
	for kind, n := range st["alerts_by_kind"].(map[string]any) {
		if int(n.(float64)) == 0 {
			continue
		}
		if got := eval[int](a, fmt.Sprintf(`Number(document.querySelector('[data-alert-kind=%q]')?.dataset.value)`, kind)); got != int(n.(float64)) {
			t.Errorf("dashboard %s alerts %d, the API's %v", kind, got, n)
		}
	}
	a.axe("dashboard with alerts")
}
