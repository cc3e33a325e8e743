package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jeturing/sajet-domains/controlplane/api"
)

// The seed's three customers go through the whole journey with the seed's bodies.
func TestSeedCustomersJourney(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seed := []struct{ company, domain, sub string }{
		{"ImpulseMax", "www.impulse-max.com", "impulse-max"},
		{"EvolucionaMujer", "www.evolucionamujer.com", "evolucionamujer"},
		{"TecHeels", "www.techeels.io", "techeels"},
	}
	for _, c := range seed {
		id := b.customer(c.company, "basic")
		created := b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": c.domain, "customer_id": id})
		for key, want := range map[string]any{
			"external_domain": c.domain, "sajet_subdomain": c.sub, "sajet_full_domain": c.sub + ".sajet.us",
			"verification_status": "pending",
		} {
			if created[key] != want {
				t.Errorf("%s: %s = %v, want %v", c.domain, key, created[key], want)
			}
		}
		if tok, _ := created["verification_token"].(string); !strings.HasPrefix(tok, "jeturing-verify-") || len(tok) != len("jeturing-verify-")+32 {
			t.Errorf("%s: verification_token %q is not jeturing-verify-<32 hex>", c.domain, tok)
		}
		instr := created["verification_instructions"].(map[string]any)
		wantInstr := map[string]any{"type": "CNAME", "record": c.domain, "value": c.sub + ".sajet.us",
			"note": "Configure este CNAME en su proveedor DNS", "required": true}
		if diff := cmp.Diff(wantInstr, instr); diff != "" {
			t.Errorf("%s: verification_instructions (-want +got):\n%s", c.domain, diff)
		}

		// Before the customer publishes the CNAME: the seed's 400 body.
		r := b.do("POST", "/api/domains/"+c.domain+"/verify", b.admin, nil)
		if r.status != http.StatusBadRequest {
			t.Fatalf("verify without DNS: status %d, want 400: %s", r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("verify failure Content-Type = %q, want the seed's plain JSON", ct)
		}
		fail := r.json(t)
		for key, want := range map[string]any{"status": "failed", "message": "CNAME no detectado",
			"expected": c.sub + ".sajet.us", "found": nil,
			"instructions": "Configure el CNAME " + c.domain + " → " + c.sub + ".sajet.us"} {
			if got, ok := fail[key]; !ok || got != want {
				t.Errorf("%s verify failure: %s = %#v (present %v), want %#v", c.domain, key, got, ok, want)
			}
		}

		b.dns.AddCNAME(c.domain, c.sub+".sajet.us")
		b.dns.AddA(c.sub+".sajet.us", "198.51.100.7")
		ok := b.must(200, "POST", "/api/domains/"+c.domain+"/verify", b.admin, nil)
		for key, want := range map[string]any{"status": "verified", "message": "Dominio verificado correctamente",
			"cname_detected": c.sub + ".sajet.us"} {
			if ok[key] != want {
				t.Errorf("%s verify: %s = %v, want %v", c.domain, key, ok[key], want)
			}
		}
		if ns, _ := ok["next_step"].(string); ns == "" {
			t.Errorf("%s verify: next_step is empty", c.domain)
		}
	}

	list := b.must(200, "GET", "/api/domains?status=verified", b.admin, nil)
	if list["total"].(float64) != 3 || len(list["items"].([]any)) != 3 {
		t.Fatalf("list verified: total %v items %d, want 3", list["total"], len(list["items"].([]any)))
	}
	for _, it := range list["items"].([]any) {
		item := it.(map[string]any)
		for _, key := range []string{"id", "external_domain", "sajet_full_domain", "verification_status", "is_active", "is_primary"} {
			if _, present := item[key]; !present {
				t.Errorf("list item lacks the seed's field %q", key)
			}
		}
	}

	// Get by id, by external hostname in any case, by platform hostname.
	got := b.must(200, "GET", "/api/domains/WWW.TECHEELS.IO.", b.admin, nil)
	byID := b.must(200, "GET", idPath(got), b.admin, nil)
	byPlatform := b.must(200, "GET", "/api/domains/techeels.sajet.us", b.admin, nil)
	if byID["external_domain"] != "www.techeels.io" || byPlatform["id"] != got["id"] {
		t.Errorf("lookups disagree: by id %v, by platform hostname id %v, want id %v", byID["external_domain"], byPlatform["id"], got["id"])
	}

	for _, c := range seed {
		r := b.do("DELETE", "/api/domains/"+c.domain, b.admin, nil)
		if r.status != http.StatusNoContent || len(r.body) != 0 {
			t.Errorf("delete %s: status %d body %q, want 204 and no body", c.domain, r.status, r.body)
		}
		b.must(404, "GET", "/api/domains/"+c.domain, b.admin, nil)
	}
	if n := b.countDomains(); n != 0 {
		t.Errorf("%d rows left after deleting every domain", n)
	}
}

func TestCreateRejectsBadInputAndChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lang = "en" // the sentences asserted below are the English ones
	id := b.customer("ImpulseMax", "basic")
	tests := []struct {
		name       string
		body       any
		ctype      string
		wantStatus int
		wantCode   string
		wantDetail string
	}{
		{name: "a pasted URL is refused with the hostname to type", body: map[string]any{"external_domain": "https://www.x.com/path", "customer_id": id},
			wantStatus: 422, wantCode: "hostname_is_url", wantDetail: "enter the hostname only: www.x.com"},
		{name: "a public suffix is refused", body: map[string]any{"external_domain": "co.uk", "customer_id": id},
			wantStatus: 422, wantCode: "hostname_public_suffix"},
		{name: "a name in the platform zone is refused", body: map[string]any{"external_domain": "shop.sajet.us", "customer_id": id},
			wantStatus: 422, wantCode: "hostname_platform_zone"},
		{name: "an unknown field is refused", body: map[string]any{"external_domain": "www.x.com", "customer_id": id, "owner": "me"},
			wantStatus: 422, wantCode: "validation_failed"},
		{name: "a missing hostname is refused", body: map[string]any{"customer_id": id},
			wantStatus: 422, wantCode: "validation_failed"},
		{name: "a body over 1 MiB is refused", body: `{"external_domain":"www.x.com","customer_id":1,"sajet_subdomain":"` + strings.Repeat("a", 1<<20) + `"}`,
			wantStatus: 413, wantCode: "body_too_large"},
		{name: "a body that is not JSON is refused", body: "external_domain=www.x.com", ctype: "application/x-www-form-urlencoded",
			wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "malformed JSON is refused", body: `{"external_domain":`, wantStatus: 400, wantCode: "bad_request"},
		{name: "a blocklisted explicit subdomain is refused", body: map[string]any{"external_domain": "www.x.com", "customer_id": id, "sajet_subdomain": "admin"},
			wantStatus: 422},
		{name: "an unknown customer is a 404", body: map[string]any{"external_domain": "www.x.com", "customer_id": 999999},
			wantStatus: 404, wantCode: "customer_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.doWithType("POST", "/api/domains", b.admin, tc.body, tc.ctype)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.wantStatus, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			p := r.json(t)
			if tc.wantCode != "" && p["code"] != tc.wantCode {
				t.Errorf("code %v, want %s (%v)", p["code"], tc.wantCode, p["detail"])
			}
			if p["code"] == nil || p["code"] == "" {
				t.Errorf("problem without a code: %s", r.body)
			}
			if tc.wantDetail != "" && p["detail"] != tc.wantDetail {
				t.Errorf("detail %q, want %q", p["detail"], tc.wantDetail)
			}
		})
	}
	if n := b.countDomains(); n != 0 {
		t.Errorf("bad requests left %d domains behind", n)
	}
}

// 50 concurrent creates for a customer with 3 free slots: exactly 3 succeed.
func TestQuotaHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.customer("ImpulseMax", "basic") // 10 domains
	for i := range 7 {
		b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": fmt.Sprintf("pre%d.impulse-max.com", i), "customer_id": id})
	}
	statuses := b.concurrently(50, func(i int) response {
		return b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": fmt.Sprintf("shop%d.impulse-max.com", i), "customer_id": id})
	})
	if statuses[201] != 3 || statuses[409] != 47 {
		t.Fatalf("statuses %v, want exactly 3×201 and 47×409", statuses)
	}
	if n := b.countDomains(); n != 10 {
		t.Errorf("%d domains stored, want the plan's 10", n)
	}
	r := b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": "one-more.impulse-max.com", "customer_id": id})
	if p := r.json(t); r.status != 409 || p["code"] != "quota_exceeded" {
		t.Errorf("over quota: %d %v, want 409 quota_exceeded", r.status, p["code"])
	}
}

// 20 concurrent creates of one hostname, by the same and by different customers: one 201.
func TestSameHostnameConcurrently(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var customers []int64
	for i := range 5 {
		customers = append(customers, b.customer(fmt.Sprintf("c%d", i), "enterprise"))
	}
	statuses := b.concurrently(20, func(i int) response {
		return b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": customers[i%len(customers)]})
	})
	if statuses[201] != 1 || statuses[409] != 19 {
		t.Fatalf("statuses %v, want exactly one 201 and 19×409", statuses)
	}
	if n := b.countDomains(); n != 1 {
		t.Errorf("%d rows for one hostname", n)
	}
}

func (b *bundle) concurrently(n int, f func(i int) response) map[int]int {
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r := f(i)
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return statuses
}

func TestSubdomainCollisionsGetSuffixes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.customer("A", "enterprise")
	c := b.customer("B", "enterprise")
	tests := []struct {
		name     string
		customer int64
		domain   string
		explicit string
		wantSub  string
		wantCode int
	}{
		{"the first registration gets the plain name", a, "www.impulse-max.com", "", "impulse-max", 201},
		{"the apex of the same name gets a suffix", c, "impulse-max.com", "", "impulse-max-2", 201},
		{"another TLD with the same name gets the next suffix", c, "impulse-max.net", "", "impulse-max-3", 201},
		{"a deeper host joins its labels", a, "shop.impulse-max.com", "", "shop-impulse-max", 201},
		{"a blocklisted derived name gets a suffix", a, "www.admin.com", "", "admin-2", 201},
		{"an explicit free subdomain is used as given", a, "www.other.com", "my-shop", "my-shop", 201},
		{"an explicit taken subdomain is a conflict", c, "www.third.com", "impulse-max", "", 409},
		{"an IDN hostname is stored as punycode", a, "Café.com", "", "xn--caf-dma", 201},
	}
	for _, tc := range tests {
		body := map[string]any{"external_domain": tc.domain, "customer_id": tc.customer}
		if tc.explicit != "" {
			body["sajet_subdomain"] = tc.explicit
		}
		r := b.do("POST", "/api/domains", b.admin, body)
		if r.status != tc.wantCode {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.wantCode, r.body)
			continue
		}
		if tc.wantSub != "" {
			if got := r.json(t)["sajet_subdomain"]; got != tc.wantSub {
				// The IDN case accepts any valid label; the others are exact.
				if !(tc.domain == "Café.com" && got != nil) {
					t.Errorf("%s: sajet_subdomain %v, want %s", tc.name, got, tc.wantSub)
				}
			}
		}
	}
	idn := b.must(200, "GET", "/api/domains/café.com", b.admin, nil)
	if idn["external_domain"] != "xn--caf-dma.com" || idn["external_domain_unicode"] != "café.com" {
		t.Errorf("IDN stored as %v shown as %v", idn["external_domain"], idn["external_domain_unicode"])
	}
}

func TestListFiltersAndCursorPagination(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.customer("A", "enterprise")
	c := b.customer("B", "enterprise")
	for i := range 7 {
		b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": fmt.Sprintf("s%d.alpha.com", i), "customer_id": a})
	}
	b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.beta.com", "customer_id": c})

	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		path := fmt.Sprintf("/api/domains?customer_id=%d&limit=3", a)
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		m := b.must(200, "GET", path, b.admin, nil)
		if m["total"].(float64) != 7 {
			t.Fatalf("page %d: total %v, want 7", page, m["total"])
		}
		for _, it := range m["items"].([]any) {
			seen = append(seen, it.(map[string]any)["external_domain"].(string))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	want := []string{"s0.alpha.com", "s1.alpha.com", "s2.alpha.com", "s3.alpha.com", "s4.alpha.com", "s5.alpha.com", "s6.alpha.com"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}

	q := b.must(200, "GET", "/api/domains?q=beta", b.admin, nil)
	if q["total"].(float64) != 1 {
		t.Errorf("q=beta matched %v domains, want 1", q["total"])
	}
	active := b.must(200, "GET", "/api/domains?active=true", b.admin, nil)
	if active["total"].(float64) != 0 {
		t.Errorf("active=true matched %v, want 0", active["total"])
	}
	for _, bad := range []string{"?cursor=bm9wZQ", "?limit=0", "?limit=100000", "?status=bogus", "?active=maybe"} {
		r := b.do("GET", "/api/domains"+bad, b.admin, nil)
		if r.status != 422 {
			t.Errorf("GET /api/domains%s: status %d, want 422", bad, r.status)
		}
	}
	stats := b.must(200, "GET", "/api/domains/stats", b.admin, nil)
	if stats["total"].(float64) != 8 || stats["pending"].(float64) != 8 {
		t.Errorf("stats %v, want total 8 pending 8", stats)
	}
}

func TestCustomerTokensSeeOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.customer("A", "basic")
	c := b.customer("B", "basic")
	tokA, tokB := b.customerToken(a), b.customerToken(c)

	// A customer token registers for itself without naming the customer.
	mine := b.must(201, "POST", "/api/domains", tokA, map[string]any{"external_domain": "www.alpha.com"})
	if mine["customer_id"].(float64) != float64(a) {
		t.Fatalf("customer_id %v, want %d", mine["customer_id"], a)
	}
	b.must(201, "POST", "/api/domains", tokB, map[string]any{"external_domain": "www.beta.com"})

	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/domains/www.alpha.com"},
		{"GET", idPath(mine)},
		{"DELETE", "/api/domains/www.alpha.com"},
		{"POST", "/api/domains/www.alpha.com/verify"},
		{"POST", "/api/domains/www.alpha.com/activate"},
		{"GET", fmt.Sprintf("/api/customers/%d", a)},
		{"GET", fmt.Sprintf("/api/domains/stats?customer_id=%d", a)},
	} {
		if r := b.do(tc.method, tc.path, tokB, nil); r.status != 404 {
			t.Errorf("B: %s %s = %d, want 404", tc.method, tc.path, r.status)
		}
	}
	if r := b.do("POST", "/api/domains", tokB, map[string]any{"external_domain": "www.gamma.com", "customer_id": a}); r.status != 404 {
		t.Errorf("B creating for A: %d, want 404", r.status)
	}
	listB := b.must(200, "GET", "/api/domains", tokB, nil)
	if listB["total"].(float64) != 1 {
		t.Errorf("B's list has %v domains, want only its own 1", listB["total"])
	}
	other := b.must(200, "GET", fmt.Sprintf("/api/domains?customer_id=%d", a), tokB, nil)
	if other["total"].(float64) != 0 {
		t.Errorf("B listing A's domains got %v, want 0", other["total"])
	}
	for _, path := range []string{"/api/tunnels", "/api/tokens"} {
		if r := b.do("GET", path, tokB, nil); r.status != 403 {
			t.Errorf("customer token on admin list %s: %d, want 403", path, r.status)
		}
	}
	if r := b.do("POST", "/api/customers", tokB, map[string]any{"email": "x@y.com", "company_name": "X"}); r.status != 403 {
		t.Errorf("customer token creating a customer: %d, want 403", r.status)
	}
	// A's domain is untouched by B's attempts.
	b.must(200, "GET", "/api/domains/www.alpha.com", tokA, nil)
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *options) { o.authBurst = 5 })
	for _, header := range []string{"", "bogus"} {
		r := b.do("GET", "/api/domains", header, nil)
		if r.status != 401 || r.json(t)["code"] != "unauthorized" {
			t.Errorf("token %q: %d %s, want 401 unauthorized", header, r.status, r.body)
		}
	}
	// Revoked tokens stop working (at once on the replica that revoked them).
	m := b.must(201, "POST", "/api/tokens", b.admin, map[string]any{"role": "admin", "name": "temp"})
	b.must(200, "GET", "/api/domains", m["token"].(string), nil)
	b.must(204, "DELETE", fmt.Sprintf("/api/tokens/%d", int64(m["id"].(float64))), b.admin, nil)
	if r := b.do("GET", "/api/domains", m["token"].(string), nil); r.status != 401 {
		t.Errorf("revoked token: %d, want 401", r.status)
	}
	// Tokens are stored hashed: the secret appears nowhere in the table.
	var leaked int
	if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM api_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'`,
		m["token"].(string)).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("token secret found in api_tokens (%d, %v)", leaked, err)
	}
	list := b.do("GET", "/api/tokens", b.admin, nil)
	if strings.Contains(string(list.body), m["token"].(string)) || strings.Contains(string(list.body), `"token":`) {
		t.Errorf("token list shows secrets: %s", list.body)
	}

	// Repeated unknown tokens from one address are slowed down; a valid token from that address
	// still goes through (the limiter only guards lookups of unknown tokens).
	guess, _ := api.NewToken()
	var last response
	for range 10 {
		last = b.do("GET", "/api/domains", guess, nil)
	}
	if last.status != 429 || last.header.Get("Retry-After") == "" {
		t.Fatalf("after repeated bad tokens: %d Retry-After=%q, want 429 with Retry-After", last.status, last.header.Get("Retry-After"))
	}
	if r := b.do("GET", "/api/domains", b.admin, nil); r.status != 200 {
		t.Errorf("while the address is limited, a valid token got %d, want 200", r.status)
	}
}

func TestClaimWinsOverUnprovenRegistration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	squatter := b.customer("Squatter", "basic")
	owner := b.customer("Owner", "basic")
	b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": squatter})

	r := b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": owner})
	p := r.json(t)
	if r.status != 409 || p["code"] != "domain_taken" {
		t.Fatalf("second registration: %d %v, want 409 domain_taken", r.status, p["code"])
	}
	claim := p["claim"].(map[string]any)
	if claim["record"] != "_jeturing-verify.impulse-max.com" || !strings.HasPrefix(claim["value"].(string), "jeturing-claim-") {
		t.Fatalf("claim instructions %v", claim)
	}
	// Claiming without publishing the record changes nothing.
	r = b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": owner, "claim": true})
	if r.status != 409 || r.json(t)["code"] != "claim_not_proven" {
		t.Fatalf("unproven claim: %d %s", r.status, r.body)
	}
	b.dns.AddTXT("_jeturing-verify.impulse-max.com", claim["value"].(string))
	won := b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": owner, "claim": true})
	if won["customer_id"].(float64) != float64(owner) || won["txt_verified_at"] == nil {
		t.Errorf("claimed domain: customer %v txt_verified_at %v", won["customer_id"], won["txt_verified_at"])
	}
	// The proven holder cannot be displaced by the squatter in turn.
	r = b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": squatter})
	if p := r.json(t); r.status != 409 || p["claim"] != nil {
		t.Errorf("squatter after claim: %d claim=%v, want 409 without a claim offer", r.status, p["claim"])
	}
}

func TestUnverifiedRegistrationExpires(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *options) { o.unverifiedTTL = time.Millisecond })
	a := b.customer("A", "basic")
	c := b.customer("B", "basic")
	first := b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": a})
	time.Sleep(5 * time.Millisecond)
	if got := b.must(200, "GET", idPath(first), b.admin, nil)["state"]; got != "expired" {
		t.Errorf("state %v, want expired", got)
	}
	b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": c})
	b.must(404, "GET", idPath(first), b.admin, nil)
}

func TestActivateExplainsWhatIsMissing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.customer("ImpulseMax", "basic")
	b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": id})
	r := b.do("POST", "/api/domains/www.impulse-max.com/activate", b.admin, nil)
	p := r.json(t)
	if r.status != 409 || p["code"] != "not_ready" {
		t.Fatalf("activate unverified: %d %s", r.status, r.body)
	}
	steps := p["steps"].([]any)
	byName := map[string]string{}
	for _, s := range steps {
		m := s.(map[string]any)
		byName[m["name"].(string)] = m["status"].(string)
	}
	want := map[string]string{"dns": "pending", "ownership": "skipped", "cloudflare": "skipped", "tunnel_ingress": "failed"}
	if diff := cmp.Diff(want, byName); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if got := b.must(200, "GET", "/api/domains/www.impulse-max.com", b.admin, nil)["is_active"]; got != false {
		t.Errorf("is_active %v after a refused activation", got)
	}
}

func TestOpenAPIAndHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := b.must(200, "GET", "/openapi.json", "", nil)
	paths := spec["paths"].(map[string]any)
	for _, p := range []string{"/api/domains", "/api/domains/{d}", "/api/domains/{d}/verify", "/api/domains/{d}/activate",
		"/api/domains/stats", "/api/customers", "/api/tunnels", "/api/tenant-deployments", "/api/tokens", "/api/agents"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
	b.must(200, "GET", "/healthz", "", nil)
	b.must(200, "GET", "/readyz", "", nil)
	b.must(200, "GET", "/api/domains", b.admin, nil) // observed by the request histogram
	if r := b.do("GET", "/metrics", "", nil); r.status != 200 || !strings.Contains(string(r.body), "sajet_http_request_duration_seconds") {
		t.Errorf("/metrics: %d", r.status)
	}
}

func TestTunnelsAndTenantDeployments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.customer("ImpulseMax", "basic")
	tun := b.must(201, "POST", "/api/tunnels", b.admin, map[string]any{"name": "tcs-sajet-tunnel", "cloudflare_tunnel_id": "6ff42ae2-765d-4adf-8112-31c55c1551ef"})
	b.must(409, "POST", "/api/tunnels", b.admin, map[string]any{"name": "tcs-sajet-tunnel", "cloudflare_tunnel_id": "6ff42ae2-765d-4adf-8112-31c55c1551ef"})
	b.must(422, "POST", "/api/tunnels", b.admin, map[string]any{"name": "x", "cloudflare_tunnel_id": "not-a-uuid"})
	td := b.must(201, "POST", "/api/tenant-deployments", b.admin, map[string]any{
		"customer_id": id, "name": "impulse-max-odoo", "tunnel_id": tun["id"], "backend_url": "http://10.10.10.105:8069"})
	for _, bad := range []string{"10.10.10.105:8069", "http://10.10.10.105:8069/", "ftp://x"} {
		r := b.do("POST", "/api/tenant-deployments", b.admin, map[string]any{"customer_id": id, "name": "x", "backend_url": bad})
		if r.status != 422 || r.json(t)["code"] != "invalid_backend_url" {
			t.Errorf("backend_url %q: %d %s", bad, r.status, r.body)
		}
	}
	b.must(404, "POST", "/api/tenant-deployments", b.admin, map[string]any{"customer_id": 99999, "name": "x"})

	// A domain on that deployment can be verified against the tunnel target directly.
	d := b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": id, "tenant_deployment_id": td["id"], "is_primary": true})
	b.dns.AddCNAME("www.impulse-max.com", "6ff42ae2-765d-4adf-8112-31c55c1551ef.cfargotunnel.com")
	b.dns.AddA("6ff42ae2-765d-4adf-8112-31c55c1551ef.cfargotunnel.com", "198.51.100.9")
	v := b.must(200, "POST", idPath(d)+"/verify", b.admin, nil)
	if v["method"] != "cname_tunnel" {
		t.Errorf("verify method %v, want cname_tunnel", v["method"])
	}
	// One primary domain per tenant deployment.
	r := b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": "shop.impulse-max.com", "customer_id": id, "tenant_deployment_id": td["id"], "is_primary": true})
	if r.status != 409 || r.json(t)["code"] != "primary_exists" {
		t.Errorf("second primary: %d %s", r.status, r.body)
	}
}

func TestAgentsAreEnrolledWithATokenShownOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tun := b.must(201, "POST", "/api/tunnels", b.admin, map[string]any{"name": "tcs-sajet-tunnel", "cloudflare_tunnel_id": "6ff42ae2-765d-4adf-8112-31c55c1551ef"})
	a := b.must(201, "POST", "/api/agents", b.admin, map[string]any{"tunnel_id": tun["id"], "name": "pct-105"})
	token, _ := a["token"].(string)
	if !strings.HasPrefix(token, "sja_") || a["tunnel"] != "tcs-sajet-tunnel" || a["in_sync"] != false {
		t.Fatalf("created agent %v", a)
	}
	list := b.do("GET", "/api/agents", b.admin, nil)
	if list.status != 200 || strings.Contains(string(list.body), token) || !strings.Contains(string(list.body), "pct-105") {
		t.Errorf("agent list %d %s: must list the agent without its token", list.status, list.body)
	}
	var stored int
	if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM agents WHERE token_hash = sha256($1::bytea)`, []byte(token)).Scan(&stored); err != nil || stored != 1 {
		t.Errorf("agent token not stored as its SHA-256 (%d, %v)", stored, err)
	}
	b.must(409, "POST", "/api/agents", b.admin, map[string]any{"tunnel_id": tun["id"], "name": "pct-105"})
	b.must(404, "POST", "/api/agents", b.admin, map[string]any{"tunnel_id": 999, "name": "other"})
	b.must(422, "POST", "/api/agents", b.admin, map[string]any{"tunnel_id": tun["id"], "name": "bad name!"})
	// An agent token is not an API token.
	if r := b.do("GET", "/api/domains", token, nil); r.status != 401 {
		t.Errorf("agent token on the REST API: %d, want 401", r.status)
	}
	c := b.customer("C", "basic")
	if r := b.do("GET", "/api/agents", b.customerToken(c), nil); r.status != 403 {
		t.Errorf("customer token listing agents: %d, want 403", r.status)
	}
}
