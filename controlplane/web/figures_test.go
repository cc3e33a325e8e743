package web_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/web"
)

// BenchmarkFirstPageJS prints the JavaScript the first page loads, gzipped: every script
// index.html names (the whole app is one chunk). Budget: 60 kB.
func BenchmarkFirstPageJS(b *testing.B) {
	files := web.Files()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		b.Fatal(err)
	}
	var raw, gz int
	for range b.N {
		raw, gz = 0, 0
		for _, m := range regexp.MustCompile(`src="/ui/([^"]+\.js)"`).FindAllSubmatch(index, -1) {
			js, err := fs.ReadFile(files, string(m[1]))
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = w.Write(js)
			_ = w.Close()
			raw, gz = raw+len(js), gz+buf.Len()
		}
	}
	if raw == 0 {
		b.Fatal("index.html names no script")
	}
	b.ReportMetric(float64(raw)/1000, "js-kB")
	b.ReportMetric(float64(gz)/1000, "js-gzip-kB")
}

// BenchmarkDomainList1000 prints how long the list of an admin with 1,000 domains takes to paint
// after the API answered: the first row's Element Timing render time minus the responseEnd of the
// GET /api/domains the page made (a page of 50, by cursor), in the real browser. Budget: 300 ms.
// It also searches (q=) and pages forward once, and prints those answers' paint times.
func BenchmarkDomainList1000(b *testing.B) {
	s := newStack(b)
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	s.must(200, "PATCH", fmt.Sprintf("/api/customers/%d", c.id), s.admin, map[string]any{"domain_quota": 1000})
	for i := range 1000 {
		s.must(201, "POST", "/api/domains", c.token, map[string]any{"external_domain": fmt.Sprintf("shop%04d.impulse-max.com", i)})
	}
	p := s.newPage(b)
	p.signIn(s.admin)
	const paint = `new Promise(r => new PerformanceObserver((l, o) => { const e = l.getEntries().filter(x => x.identifier === 'domain-list').pop();
		if (e) { o.disconnect(); r(e.renderTime || e.loadTime) } }).observe({type: 'element', buffered: true}))`
	const answered = `performance.getEntriesByType('resource').filter(e => e.name.includes('/api/domains?')).pop().responseEnd`
	var firsts []time.Duration
	var search time.Duration
	for range b.N {
		p.open("/ui/domains")
		p.waitFor("1,000 domains", `document.querySelector('table')?.dataset.total === '1000'`)
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		painted, err := chromedp.Run(ctx, chromedp.Evaluate[float64](paint, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil {
			b.Fatalf("element timing of the list: %v", err)
		}
		firsts = append(firsts, time.Duration((painted-eval[float64](p, answered))*float64(time.Millisecond)))
		p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('domain-search').value = ''`))
		p.do(chromedp.SendKeys(chromedp.ID("domain-search"), "shop0999"))
		p.waitFor("the search's answer", `document.querySelector('table')?.dataset.total === '1'`)
		search = time.Duration(eval[float64](p, `performance.now() - (`+answered+`)`) * float64(time.Millisecond))
	}
	slices.Sort(firsts)
	b.ReportMetric(float64(firsts[len(firsts)/2].Microseconds())/1000, "paint-after-api-median-ms")
	b.ReportMetric(float64(firsts[len(firsts)-1].Microseconds())/1000, "paint-after-api-max-ms")
	b.ReportMetric(float64(search.Microseconds())/1000, "search-shown-after-api-ms")
}

// TestScreenshots writes the README's screenshots (make screenshots): the Domains page and the DNS
// wizard of a customer, from the real control plane. It runs only when SAJET_SCREENSHOTS names the
// directory (relative to the repository root).
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("SAJET_SCREENSHOTS")
	if dir == "" {
		t.Skip("SAJET_SCREENSHOTS is not set (make screenshots sets it)")
	}
	dir = filepath.Join("..", "..", dir)
	s := newStack(t)
	c := s.customer("ImpulseMax", "tcs-sajet-tunnel")
	s.agent(c.tunnel, "tcs-sajet-tunnel", "pct-105", gatewaytest.ACK)
	platform := map[string]string{}
	for _, h := range []string{"www.impulse-max.com", "tienda.impulse-max.com", "impulse-max.com", "blog.impulse-max.com"} {
		d := s.must(201, "POST", "/api/domains", c.token, map[string]any{"external_domain": h, "tenant_deployment_id": c.deployment})
		platform[h] = d["sajet_full_domain"].(string)
	}
	s.dns.AddCNAME("tienda.impulse-max.com", platform["tienda.impulse-max.com"])
	s.dns.AddA(platform["tienda.impulse-max.com"], "192.0.2.10")
	s.must(200, "POST", "/api/domains/tienda.impulse-max.com/verify", c.token, nil)
	s.dns.AddCNAME("blog.impulse-max.com", "old-host.example.net")
	s.call("POST", "/api/domains/blog.impulse-max.com/verify", c.token, nil)
	p := s.newPage(t)
	p.signIn(c.token)
	p.waitFor("the list", `document.querySelectorAll('tbody tr').length === 4`)
	p.waitFor("tienda ready", `document.querySelector('tr[data-domain="tienda.impulse-max.com"] [data-state="ready"]') !== null`)
	shot(t, p, filepath.Join(dir, "domains.png"))
	p.open("/ui/domains/blog.impulse-max.com")
	p.waitFor("the wizard", `!!document.querySelector('table.evidence')`)
	shot(t, p, filepath.Join(dir, "wizard.png"))
}

func shot(t *testing.T, p *page, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", file, len(png))
}
