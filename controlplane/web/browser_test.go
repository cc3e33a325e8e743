package web_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// The customer's whole path, in the browser against the real control plane: sign in, add
// www.impulse-max.com, read the CNAME in the wizard, publish it in DNS, Verificar, the agent
// applies the rules (the page updates by itself), Activar, Eliminar.
func TestACustomerAddsVerifiesActivatesAndDeletesADomain(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	s.agent(c.tunnel, "tcs-sajet-tunnel", "pct-105", gatewaytest.ACK)
	p := s.newPage(t)
	p.signIn(c.token)
	p.waitFor("the Domains page", `document.querySelector('h1')?.textContent === 'Dominios'`)
	p.axe("Domains page, empty")

	p.do(chromedp.Click(chromedp.CSS(`.toolbar button.primary`)))
	p.waitFor("the add-domain modal", `document.querySelector('dialog#add-domain')?.open === true`)
	p.do(chromedp.SendKeys(chromedp.ID("add-hostname"), "www.impulse-max.com"),
		chromedp.SendKeys(chromedp.ID("add-deployment"), fmt.Sprint(c.deployment)),
		chromedp.Click(chromedp.CSS(`dialog#add-domain button[type=submit]`)))
	p.waitFor("the new domain in the table", `!!document.querySelector('tr[data-domain="www.impulse-max.com"]')`)
	p.do(chromedp.Click(chromedp.CSS(`tr[data-domain="www.impulse-max.com"] a`)))
	p.waitFor("the wizard", `!!document.querySelector('article.wizard')`)
	cname := eval[string](p, `document.querySelector('tr[data-record="CNAME"] code.value').textContent`)
	if cname != "impulse-max.sajet.us" {
		t.Fatalf("the wizard's CNAME value is %q, want impulse-max.sajet.us", cname)
	}
	if got := eval[string](p, `document.querySelector('article.wizard').dataset.state`); got != "pending_dns" {
		t.Errorf("a new domain's state is %q, want pending_dns", got)
	}
	p.axe("DNS wizard")

	// The customer creates the record at their DNS provider; the control plane's resolver sees it.
	s.dns.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
	s.dns.AddA("impulse-max.sajet.us", "192.0.2.10")
	p.do(chromedp.Click(chromedp.CSS(`.wizard .actions button.primary`)))
	p.waitFor("the verification's sentence", `document.querySelector('.status.ok')?.textContent.includes('Dominio verificado correctamente')`)
	p.waitFor("a resolver's evidence", `document.querySelector('table.evidence td')?.textContent.includes('impulse-max.sajet.us')`)
	// The agent applies the rules on its own; the page shows it without a reload.
	p.waitFor("the state ready, live", `document.querySelector('article.wizard').dataset.state === 'ready'`)
	p.do(chromedp.Click(chromedp.CSS(`.wizard .actions button:nth-child(2)`)))
	p.waitFor("the state active", `document.querySelector('article.wizard').dataset.state === 'active'`)
	if code, d := s.call("GET", "/api/domains/www.impulse-max.com", c.token, nil); code != 200 || d["is_active"] != true {
		t.Fatalf("after Activar the API says %d %v", code, d)
	}

	p.do(chromedp.Click(chromedp.CSS(`.wizard .actions button.danger`)))
	p.waitFor("the delete dialog", `document.querySelector('dialog#delete-domain')?.open === true`)
	if !eval[bool](p, `document.querySelector('dialog#delete-domain button[type=submit]').disabled`) {
		t.Error("delete is possible before the hostname is typed")
	}
	p.do(chromedp.SendKeys(chromedp.ID("delete-confirm"), "www.impulse-max.com"),
		chromedp.Click(chromedp.CSS(`dialog#delete-domain button[type=submit]`)))
	p.waitFor("the domain gone from the list", `location.pathname === '/ui/domains' && !!document.querySelector('table') &&
		!document.querySelector('tr[data-domain="www.impulse-max.com"]:not(:has([data-state="deleting"]))')`)
	if code, _ := s.call("GET", "/api/domains/www.impulse-max.com", c.token, nil); code != 404 {
		// Removal waits for the agent's ACK of a version without it; the agent ACKs at once.
		p.waitFor("the row removed", `!document.querySelector('tr[data-domain="www.impulse-max.com"]')`)
	}
}

// Bad input is answered under the field, as a sentence, with the suggestion one click away, and
// changes nothing.
func TestBadInputIsAnsweredWhereItWasTyped(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	other := s.customer("Rival", "rival-tunnel")
	s.must(201, "POST", "/api/domains", other.token, map[string]any{"external_domain": "shop.taken-example.com"})
	full := s.customer("Full", "full-tunnel")
	s.must(200, "PATCH", fmt.Sprintf("/api/customers/%d", full.id), s.admin, map[string]any{"domain_quota": 1})
	s.must(201, "POST", "/api/domains", full.token, map[string]any{"external_domain": "one.full-example.com"})

	tests := []struct {
		name, token, input, code, sentence, suggestion string
		claim                                          bool
	}{
		{"a pasted URL", c.token, "https://www.x.com/path", "hostname_is_url", "escriba solo el nombre de host: www.x.com", "www.x.com", false},
		{"a hostile name", c.token, `<img src=x onerror=alert(1)>.com`, "hostname_label_invalid", "no puede contener", "", false},
		{"an email address", c.token, "ops@impulse-max.com", "hostname_is_email", "no una dirección de correo", "impulse-max.com", false},
		{"the quota reached", full.token, "two.full-example.com", "quota_exceeded", "de los 1 dominios que permite", "", false},
		{"a hostname another account holds", c.token, "shop.taken-example.com", "domain_taken", "está registrado por otra cuenta", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := s.must(200, "GET", "/api/domains/stats", s.admin, nil)["total"]
			p := s.newPage(t)
			p.signIn(tc.token)
			p.waitFor("the Domains page", `!!document.querySelector('.toolbar button.primary')`)
			p.do(chromedp.Click(chromedp.CSS(`.toolbar button.primary`)))
			p.waitFor("the modal", `document.querySelector('dialog#add-domain')?.open === true`)
			p.do(chromedp.SendKeys(chromedp.ID("add-hostname"), tc.input),
				chromedp.Click(chromedp.CSS(`dialog#add-domain button[type=submit]`)))
			p.waitFor("the refusal under the field", `!!document.querySelector('#add-hostname-error')`)
			code := eval[string](p, `document.querySelector('#add-hostname-error').dataset.code`)
			text := eval[string](p, `document.querySelector('#add-hostname-error').innerText`)
			if code != tc.code || !strings.Contains(text, tc.sentence) {
				t.Errorf("refusal %s %q, want %s containing %q", code, text, tc.code, tc.sentence)
			}
			if strings.Contains(text, "{") || strings.Contains(text, `"status"`) {
				t.Errorf("the refusal shows raw JSON: %q", text)
			}
			if got := eval[string](p, `document.querySelector('#add-hostname').value`); got != tc.input {
				t.Errorf("the field holds %q after the error, want what was typed (%q)", got, tc.input)
			}
			if got := eval[string](p, `document.querySelector('#add-hostname').getAttribute('aria-describedby')`); !strings.Contains(got, "add-hostname-error") {
				t.Errorf("the field is not described by its error (aria-describedby %q)", got)
			}
			if tc.suggestion != "" {
				p.do(chromedp.Click(chromedp.CSS(`#add-hostname-error button.link`)))
				if got := eval[string](p, `document.querySelector('#add-hostname').value`); got != tc.suggestion {
					t.Errorf("after the suggestion the field holds %q, want %q", got, tc.suggestion)
				}
			}
			if tc.claim {
				rec := eval[string](p, `document.querySelector('#add-hostname-error dl.record').innerText`)
				if !strings.Contains(rec, "_jeturing-verify.taken-example.com") || !strings.Contains(rec, "jeturing-claim-") {
					t.Errorf("the claim TXT record is not shown: %q", rec)
				}
			}
			if after := s.must(200, "GET", "/api/domains/stats", s.admin, nil)["total"]; after != before {
				t.Errorf("a refused request changed the number of domains: %v → %v", before, after)
			}
		})
	}
}

// A customer sees nothing of another customer, whatever URL it opens.
func TestACustomerCannotReachAnotherCustomersDomain(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	mine := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	theirs := s.customer("Rival", "rival-tunnel")
	s.must(201, "POST", "/api/domains", mine.token, map[string]any{"external_domain": "www.impulse-max.com"})
	d := s.must(201, "POST", "/api/domains", theirs.token, map[string]any{"external_domain": "secret.rival-example.com"})
	id := int64(d["id"].(float64))

	p := s.newPage(t)
	p.signIn(mine.token)
	p.waitFor("my domain", `!!document.querySelector('tr[data-domain="www.impulse-max.com"]')`)
	for _, path := range []string{
		fmt.Sprintf("/ui/domains/%d", id),
		"/ui/domains/secret.rival-example.com",
		"/ui/domains/secret.sajet.us",
		"/ui/domains/rival-example.sajet.us",
		fmt.Sprintf("/ui/customers/%d", theirs.id),
		"/ui/dashboard",
		"/ui/tunnels",
		"/ui/customers",
		"/ui/domains?q=secret",
	} {
		p.open(path)
		p.waitFor("the page of "+path, `!!document.querySelector('main h1, main .error')`)
		p.waitFor("the page settled", `!document.querySelector('[aria-busy="true"]') && !document.body.innerText.includes('Cargando')`)
		if text := p.text(); strings.Contains(text, "rival") || strings.Contains(text, "Rival") {
			t.Errorf("%s shows another customer's data:\n%s", path, text)
		}
	}
	p.open(fmt.Sprintf("/ui/domains/%d", id))
	p.waitFor("not found", `document.querySelector('main .error')?.textContent === 'Dominio no encontrado.'`)
}

// The dashboard's counts are GET /api/domains/stats.
func TestTheDashboardCountsAreTheAPIs(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	b := s.customer("Techeels", "techeels-tunnel")
	for i := range 3 {
		s.must(201, "POST", "/api/domains", a.token, map[string]any{"external_domain": fmt.Sprintf("s%d.impulse-max.com", i)})
	}
	s.must(201, "POST", "/api/domains", b.token, map[string]any{"external_domain": "www.techeels.io"})
	del := s.must(201, "POST", "/api/domains", b.token, map[string]any{"external_domain": "old.techeels.io",
		"tenant_deployment_id": b.deployment})
	// A failed check: a configuration error on the domain.
	s.call("POST", "/api/domains/www.techeels.io/verify", b.token, nil)
	s.must(204, "DELETE", fmt.Sprintf("/api/domains/%d", int64(del["id"].(float64))), b.token, nil)

	p := s.newPage(t)
	p.signIn(s.admin)
	p.waitFor("the dashboard", `!!document.querySelector('[data-stat="total"]')`)
	st := s.must(200, "GET", "/api/domains/stats", s.admin, nil)
	n := func(k string) int { return int(st[k].(float64)) }
	want := map[string]int{"total": n("total"), "pending": n("pending") + n("verifying") + n("failed"), "active": n("active"),
		"inactive": n("inactive"), "with_errors": n("with_errors"), "deleting": n("deleting"),
		"misconfigured": n("misconfigured"), "deactivated": n("deactivated")}
	if want["with_errors"] == 0 || want["total"] < 4 {
		t.Fatalf("the seed did not produce the counts it is meant to: %v", st)
	}
	for k, v := range want {
		got := eval[int](p, fmt.Sprintf(`Number(document.querySelector('[data-stat=%q]').dataset.value)`, k))
		if got != v {
			t.Errorf("dashboard %s = %d, API says %d", k, got, v)
		}
	}
	p.axe("dashboard")
}

// Ops see a NACK with its stage on the agents view.
func TestTheAgentsViewShowsANacksStage(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	s.agent(c.tunnel, "tcs-sajet-tunnel", "pct-105", func(d protocol.Desired) protocol.Ack {
		return protocol.Ack{Nonce: d.Nonce, Version: d.Version, OK: false, Stage: "restart",
			Error: "cloudflared.service: job failed (result: failed)"}
	})
	p := s.newPage(t)
	p.signIn(s.admin)
	p.open("/ui/tunnels")
	p.waitFor("the agent", `!!document.querySelector('tr[data-agent="pct-105"]')`)
	// A domain changes the tunnel's rules; the agent refuses at restart; the page shows it live.
	s.must(201, "POST", "/api/domains", c.token, map[string]any{"external_domain": "www.impulse-max.com", "tenant_deployment_id": c.deployment})
	p.waitFor("the NACK's stage", `document.querySelector('tr[data-agent="pct-105"] [data-stage]')?.dataset.stage === 'restart'`)
	if text := eval[string](p, `document.querySelector('tr[data-agent="pct-105"]').innerText`); !strings.Contains(text, "etapa restart") ||
		!strings.Contains(text, "job failed") {
		t.Errorf("the agent's row says %q", text)
	}
	p.axe("tunnels and agents")
}

// Every page renders in Spanish and in English with no missing key, passes axe-core, and the
// API's sentences follow the language.
func TestEveryPageInBothLanguages(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	s.agent(c.tunnel, "tcs-sajet-tunnel", "pct-105", gatewaytest.ACK)
	d := s.must(201, "POST", "/api/domains", c.token, map[string]any{"external_domain": "impulse-max.com", "tenant_deployment_id": c.deployment, "is_primary": true})
	s.call("POST", "/api/domains/impulse-max.com/verify", c.token, nil)
	pages := []struct{ path, es, en string }{
		{"/ui/dashboard", "Panel", "Dashboard"},
		{"/ui/domains", "Dominios", "Domains"},
		{fmt.Sprintf("/ui/domains/%d", int64(d["id"].(float64))), "Configurar impulse-max.com", "Set up impulse-max.com"},
		{"/ui/customers", "Clientes", "Customers"},
		{fmt.Sprintf("/ui/customers/%d", c.id), "ImpulseMax", "ImpulseMax"},
		{"/ui/tunnels", "Túneles y agentes", "Tunnels and agents"},
	}
	p := s.newPage(t)
	p.signIn(s.admin)
	for _, lang := range []string{"es", "en"} {
		if lang == "en" {
			p.do(chromedp.SetValue(chromedp.ID("lang"), "en"), chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`))
		}
		for _, pg := range pages {
			p.open(pg.path)
			want := pg.es
			if lang == "en" {
				want = pg.en
			}
			p.waitFor(pg.path+" in "+lang, fmt.Sprintf(`document.querySelector('main h1')?.textContent === %q`, want))
			p.waitFor("the page settled", `!document.querySelector('[aria-busy="true"]')`)
			if got := eval[string](p, `document.documentElement.lang`); got != lang {
				t.Errorf("%s: <html lang=%q>, want %q", pg.path, got, lang)
			}
			if text := p.text(); strings.Contains(text, "⟦") {
				t.Errorf("%s in %s has a missing key:\n%s", pg.path, lang, text)
			}
			p.axe(pg.path + " (" + lang + ")")
		}
	}
	// The API's own sentences came in English too: the wizard's apex note and steps.
	p.open(fmt.Sprintf("/ui/domains/%d", int64(d["id"].(float64))))
	p.waitFor("the wizard in English", `document.querySelector('main h1')?.textContent === 'Set up impulse-max.com'`)
	text := p.text()
	for _, want := range []string{"Create this CNAME at your DNS provider", "TXT record proving that you control the domain"} {
		if !strings.Contains(text, want) {
			t.Errorf("the English wizard lacks the API's sentence %q", want)
		}
	}
	for _, spanish := range []string{"Configure este CNAME", "Registro TXT que prueba"} {
		if strings.Contains(text, spanish) {
			t.Errorf("the English wizard mixes in Spanish: %q", spanish)
		}
	}
	// Remembered: a new load stays in English.
	p.open("/ui/domains")
	p.waitFor("English after a reload", `document.querySelector('main h1')?.textContent === 'Domains'`)
}

// The add-domain modal works with the keyboard alone: Tab reaches the button, Enter opens it,
// focus stays inside while tabbing, Esc closes it and gives focus back, Enter submits.
func TestTheAddDomainModalWorksWithTheKeyboardAlone(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	p := s.newPage(t)
	p.signIn(c.token)
	p.waitFor("the Domains page", `!!document.querySelector('.toolbar button.primary')`)
	reached := false
	for range 40 {
		p.do(chromedp.KeyEvent(kb.Tab))
		if eval[bool](p, `document.activeElement === document.querySelector('.toolbar button.primary')`) {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatal("Tab never reached the add-domain button")
	}
	p.do(chromedp.KeyEvent(kb.Enter))
	p.waitFor("the modal", `document.querySelector('dialog#add-domain')?.open === true`)
	for i := range 12 {
		key := kb.Tab
		if i%4 == 3 {
			key = kb.Shift + kb.Tab
		}
		p.do(chromedp.KeyEvent(key))
		if !eval[bool](p, `document.querySelector('dialog#add-domain').contains(document.activeElement)`) {
			t.Fatalf("after %d Tab presses focus left the modal: %s", i+1, eval[string](p, `document.activeElement.outerHTML`))
		}
	}
	p.do(chromedp.KeyEvent(kb.Escape))
	p.waitFor("the modal closed", `document.querySelector('dialog#add-domain')?.open === false`)
	if !eval[bool](p, `document.activeElement === document.querySelector('.toolbar button.primary')`) {
		t.Error("after Esc the focus did not return to the button that opened the modal")
	}
	p.do(chromedp.KeyEvent(kb.Enter))
	p.waitFor("the modal again", `document.activeElement?.id === 'add-hostname'`)
	p.do(chromedp.KeyEvent("www.impulse-max.com"), chromedp.KeyEvent(kb.Enter))
	p.waitFor("the domain added", `!!document.querySelector('tr[data-domain="www.impulse-max.com"]')`)
	p.axe("Domains page with a domain")
}

// The one-time sign-in link (make run prints one) signs in once; used again it says so.
func TestTheSignInLinkWorksOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	link := s.signinLink(s.admin)
	p := s.newPage(t)
	p.do(chromedp.Navigate(link))
	p.waitFor("signed in by the link", `document.querySelector('main h1')?.textContent === 'Panel'`)
	if loc := eval[string](p, `location.href`); strings.Contains(loc, "code=") {
		t.Errorf("the code stayed in the address bar: %s", loc)
	}
	if eval[bool](p, `document.cookie.includes('sajet_session')`) {
		t.Error("the session cookie is readable by scripts (want HttpOnly)")
	}
	if n := eval[int](p, `localStorage.length + sessionStorage.length`); n > 1 { // the language choice only
		t.Errorf("the page stores %d items: %s", n, eval[string](p, `JSON.stringify(localStorage)`))
	}
	// Sign out ends the session on the server.
	p.do(chromedp.Click(chromedp.CSS(`header .tools button`)))
	p.waitFor("the sign-in form after sign-out", `!!document.querySelector('#signin-token')`)

	again := s.newPage(t)
	again.do(chromedp.Navigate(link))
	again.waitFor("the refusal of a used link", `document.querySelector('.signin .error')?.textContent.includes('ya se usó')`)
	again.axe("sign-in page")
}
