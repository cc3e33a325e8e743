package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/diagnose/zonetest"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/testwait"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// withDiagnose gives the stack's API the real diagnostics service: DNS from resolver (and the
// authoritative servers of the zonetest network at authPort), no Cloudflare (provisioning off),
// the stack's agent gateway as the prober, and burst reports per domain (then one an hour).
func withDiagnose(t testing.TB, resolver string, authPort, burst int) stackOption {
	return func(c *stackConfig) {
		c.diagnose = func(st *store.Store, prober diagnose.Prober) api.Diagnoser {
			v, err := dnsverify.New(dnsverify.Config{Resolvers: []string{resolver}, QueryTimeout: 2 * time.Second, CheckTimeout: 4 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return diagnose.New(st, v, nil, prober, diagnose.Config{AuthPort: strconv.Itoa(authPort), DomainBurst: burst, DomainInterval: time.Hour})
		}
	}
}

// report asks the API for a domain's report in lang, as the test (not the page).
func (s *stack) report(token, host, lang string) diagnose.Report {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/api/domains/"+host+"/diagnose", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Language", lang)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var r diagnose.Report
	if res.StatusCode != 200 {
		s.t.Fatalf("GET diagnose (%s): %d", lang, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		s.t.Fatal(err)
	}
	return r
}

// shownPart is one line of the report as the page shows it.
type shownPart struct {
	Name, Verdict, Word, Title, Message, Fix string
	HasDetails                               bool
}

const readReport = `[...document.querySelectorAll('.diag-report li.diag-part')].map(li => ({
	Name: li.dataset.part, Verdict: li.dataset.verdict,
	Word: li.querySelector('.diag-line .verdict').innerText.trim(),
	Title: li.querySelector('.diag-title').innerText.trim(),
	Message: li.querySelector('.diag-message').innerText.trim(),
	Fix: li.querySelector('.diag-fix')?.innerText.trim() ?? '',
	HasDetails: !!li.querySelector('details.diag-details')}))`

// samePage compares the report the page shows with the API's report of the same domain: the
// overall verdict, and per part, in order, the verdict (as a word), title, sentence and fix.
func samePage(t *testing.T, p *page, want diagnose.Report, words map[diagnose.Verdict]string, fixLabel string) {
	t.Helper()
	if got := eval[string](p, `document.querySelector('.diag-report').dataset.verdict`); got != string(want.Verdict) {
		t.Errorf("overall verdict on the page %q, the API's %q", got, want.Verdict)
	}
	if got := eval[string](p, `document.querySelector('.diag-summary').innerText`); got != want.Summary {
		t.Errorf("summary on the page %q, the API's %q", got, want.Summary)
	}
	if got := eval[string](p, `document.querySelector('.diag-overall .verdict').innerText`); !strings.Contains(got, words[want.Verdict]) {
		t.Errorf("the overall verdict reads %q, want the word %q", got, words[want.Verdict])
	}
	shown := eval[[]shownPart](p, readReport)
	if len(shown) != len(want.Parts) {
		t.Fatalf("the page shows %d parts, the API reports %d", len(shown), len(want.Parts))
	}
	for i, w := range want.Parts {
		g := shown[i]
		if g.Name != w.Name || g.Verdict != string(w.Verdict) || g.Title != w.Title || g.Message != w.Message {
			t.Errorf("part %d on the page %+v, the API's %s %s %q %q", i, g, w.Name, w.Verdict, w.Title, w.Message)
		}
		if !strings.HasSuffix(g.Word, words[w.Verdict]) {
			t.Errorf("%s: the verdict reads %q, want the word %q (never colour alone)", w.Name, g.Word, words[w.Verdict])
		}
		wantFix := ""
		if w.Fix != "" {
			wantFix = fixLabel + " " + w.Fix
		}
		if g.Fix != wantFix {
			t.Errorf("%s: fix on the page %q, want %q", w.Name, g.Fix, wantFix)
		}
		if g.HasDetails != (len(w.Details) > 0 || w.Evidence != nil) {
			t.Errorf("%s: details disclosure %v, the API has %d details", w.Name, g.HasDetails, len(w.Details))
		}
	}
}

// The domain's page diagnoses the domain: one line per part with the API's verdict (icon and
// word), sentence and fix, the overall verdict on top, the evidence behind a disclosure that opens
// with the keyboard, in Spanish and in English; a report refused for being asked too often says
// when to retry; a customer cannot diagnose another customer's domain from the page; axe-core
// passes on the view.
func TestTheDomainPageDiagnosesTheDomain(t *testing.T) {
	t.Parallel()
	// DNS on loopback: com. delegates impulse-max.com. (signed, DS at the parent), whose www is a
	// CNAME to the platform name; the platform zone answers it.
	dnsNet := zonetest.New(t)
	com := dnsNet.Zone("com", "127.0.0.41")
	child := dnsNet.Zone("impulse-max.com", "127.0.0.42", "127.0.0.43")
	child.Add("www.impulse-max.com. 300 IN CNAME impulse-max.sajet.us.")
	child.Sign()
	com.Delegate(child)
	sajet := dnsNet.Zone("sajet.us", "127.0.0.44")
	sajet.Add("impulse-max.sajet.us. 300 IN A 192.0.2.10")
	resolver := dnsNet.Resolver("127.0.0.45", com, sajet)

	// Four reports of the domain: the page's and the test's, in each language; the fifth is refused.
	s := newStack(t, withDiagnose(t, resolver.Addr(), dnsNet.Port(), 4))
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	rival := s.customer("Rival", "rival-tunnel")
	// The tunnel host applies the rules, but nothing listens at the tenant's backend.
	s.probingAgent(c.tunnel, "tcs-sajet-tunnel", "pct-105", gatewaytest.ACK, func(r protocol.ProbeRequest) protocol.ProbeResult {
		return protocol.ProbeResult{URL: r.URL, Hostname: r.Hostname, Failure: protocol.ProbeRefused, DurationMS: 1,
			Error: "dial tcp 10.10.10.105:8069: connect: connection refused"}
	})
	host := "www.impulse-max.com"
	s.must(201, "POST", "/api/domains", c.token, map[string]any{"external_domain": host, "tenant_deployment_id": c.deployment})
	s.dns.AddCNAME(host, "impulse-max.sajet.us")
	s.dns.AddA("impulse-max.sajet.us", "192.0.2.10")
	s.must(200, "POST", "/api/domains/"+host+"/verify", c.token, nil)
	testwait.Until(t, 30*time.Second, "the agent routes the domain", func() bool {
		_, d := s.call("GET", "/api/domains/"+host, c.token, nil)
		return d["state"] == "ready"
	})
	theirs := s.must(201, "POST", "/api/domains", rival.token, map[string]any{"external_domain": "secret.rival-example.com"})

	p := s.newPage(t)
	p.signIn(c.token)
	p.open("/ui/domains/" + host)
	p.waitFor("the wizard", `!!document.querySelector('article.wizard button.diag-run')`)
	if eval[bool](p, `!!document.querySelector('.diag-report')`) {
		t.Fatal("a report is shown before it was asked for")
	}
	p.do(chromedp.Click(chromedp.CSS(`button.diag-run`)))
	p.waitFor("the report", `!!document.querySelector('.diag-report') && document.querySelector('.diagnosis').getAttribute('aria-busy') === 'false'`)
	es := s.report(c.token, host, "es")
	// The seed is meant to give parts that work and a backend that does not, with what to do.
	verdicts := map[string]diagnose.Verdict{}
	for _, pt := range es.Parts {
		verdicts[pt.Name] = pt.Verdict
	}
	if verdicts[diagnose.PartRecursive] != diagnose.OK || verdicts[diagnose.PartTunnel] != diagnose.OK || verdicts[diagnose.PartBackend] != diagnose.Fail {
		data, _ := json.MarshalIndent(es, "", "  ")
		t.Fatalf("the seed did not give the report it is meant to (recursive and tunnel ok, backend failing):\n%s", data)
	}
	samePage(t, p, es, map[diagnose.Verdict]string{diagnose.OK: "Correcto", diagnose.Warn: "Aviso", diagnose.Fail: "Falla",
		diagnose.Unknown: "Sin comprobar"}, "Qué hacer:")
	if text := p.text(); strings.Contains(text, "⟦") {
		t.Errorf("the report in Spanish has a missing key:\n%s", text)
	}
	if got := eval[string](p, `document.querySelector('.diag-report .meta').innerText`); !strings.Contains(got, "Comprobado") {
		t.Errorf("when it was checked: %q", got)
	}

	// The backend's evidence, on demand and by keyboard: Tab from the button to its disclosure,
	// Enter opens it.
	backend := `document.querySelector('li[data-part="backend"] details.diag-details')`
	if eval[bool](p, backend+`.open`) {
		t.Fatal("the details are open before they were asked for")
	}
	p.do(chromedp.Focus(chromedp.CSS(`button.diag-run`)))
	reached := false
	for range 40 {
		p.do(chromedp.KeyEvent(kb.Tab))
		if eval[bool](p, `document.activeElement === `+backend+`.querySelector('summary')`) {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatalf("Tab never reached the backend's details (focus on %s)", eval[string](p, `document.activeElement.outerHTML`))
	}
	p.do(chromedp.KeyEvent(kb.Enter))
	p.waitFor("the backend's details open", backend+`.open === true`)
	shownDetails := eval[string](p, backend+`.innerText`)
	for _, pt := range es.Parts {
		if pt.Name != diagnose.PartBackend {
			continue
		}
		for _, d := range pt.Details {
			if !strings.Contains(shownDetails, d) {
				t.Errorf("the backend's details lack %q:\n%s", d, shownDetails)
			}
		}
	}
	p.axe("the diagnostics report (es, details open)")
	p.do(chromedp.KeyEvent(kb.Enter))
	p.waitFor("the backend's details closed again", backend+`.open === false`)

	// English: the page's words and the API's sentences.
	p.do(chromedp.SetValue(chromedp.ID("lang"), "en"), chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`))
	p.waitFor("the wizard in English", `document.querySelector('button.diag-run')?.textContent.trim() === 'Diagnose'`)
	p.do(chromedp.Click(chromedp.CSS(`button.diag-run`)))
	p.waitFor("the English report", `document.querySelector('.diag-report')?.lang === 'en' && document.querySelector('.diagnosis').getAttribute('aria-busy') === 'false'`)
	en := s.report(c.token, host, "en")
	samePage(t, p, en, map[diagnose.Verdict]string{diagnose.OK: "OK", diagnose.Warn: "Warning", diagnose.Fail: "Failing",
		diagnose.Unknown: "Not checked"}, "What to do:")
	if text := p.text(); strings.Contains(text, "⟦") || strings.Contains(text, "Qué hacer") || strings.Contains(text, "Comprobado") {
		t.Errorf("the English report has a missing key or Spanish words:\n%s", text)
	}
	p.axe("the diagnostics report (en)")

	// A fifth report within the hour is refused: the API's sentence and when to retry, never JSON;
	// the button waits until then; the last report stays.
	p.do(chromedp.Click(chromedp.CSS(`button.diag-run`)))
	p.waitFor("the refusal", `!!document.querySelector('.diag-error')`)
	refusal := eval[string](p, `document.querySelector('.diag-error').innerText`)
	if !strings.Contains(refusal, "was diagnosed too often") || !strings.Contains(refusal, "You can try again in") ||
		strings.Contains(refusal, "{") || strings.Contains(refusal, "diagnose_rate_limited") {
		t.Errorf("the refusal reads %q", refusal)
	}
	if !eval[bool](p, `document.querySelector('button.diag-run').disabled`) {
		t.Error("the button can be pressed again before the time the API gave")
	}
	if !eval[bool](p, `!!document.querySelector('.diag-report')`) {
		t.Error("the last report disappeared with the refusal")
	}

	// Another customer's domain: not found, no diagnostics, and the page's session cannot ask.
	p.open("/ui/domains/secret.rival-example.com")
	p.waitFor("not found", `document.querySelector('main .error')?.textContent === 'Domain not found.'`)
	if eval[bool](p, `!!document.querySelector('button.diag-run')`) {
		t.Error("another customer's domain offers a diagnosis")
	}
	for _, d := range []string{"secret.rival-example.com", fmt.Sprint(int64(theirs["id"].(float64)))} {
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/api/domains/`+d+`/diagnose').then(r => r.status)`, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil || status != 404 {
			t.Errorf("the customer's page asking for another customer's report (%s): %d %v, want 404", d, status, err)
		}
	}
}

// Without the diagnostics service the page says so in a sentence.
func TestDiagnosticsUnavailableIsASentence(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	s.must(201, "POST", "/api/domains", c.token, map[string]any{"external_domain": "www.impulse-max.com"})
	p := s.newPage(t)
	p.allowConsole("status of 503 (Service Unavailable) (" + s.url + "/api/domains/")
	p.signIn(c.token)
	p.open("/ui/domains/www.impulse-max.com")
	p.waitFor("the wizard", `!!document.querySelector('button.diag-run')`)
	p.do(chromedp.Click(chromedp.CSS(`button.diag-run`)))
	p.waitFor("the sentence", `!!document.querySelector('.diag-error')`)
	got := eval[string](p, `document.querySelector('.diag-error').innerText`)
	if got != "No se pudo diagnosticar el dominio: el diagnóstico no está disponible en este control plane" {
		t.Errorf("the page says %q", got)
	}
	if eval[bool](p, `document.querySelector('button.diag-run').disabled`) {
		t.Error("the button stays disabled after a refusal that gave no time to wait")
	}
}
