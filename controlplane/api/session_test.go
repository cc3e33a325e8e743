package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/internal/secret"
)

// raw performs a request with the given headers and cookie, no bearer token.
func (b *bundle) raw(method, path, body string, header map[string]string, cookie *http.Cookie) (*http.Response, map[string]any) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res, m
}

func sessionCookie(t *testing.T, res *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == api.SessionCookie {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", res.Header["Set-Cookie"])
	return nil
}

// A token is exchanged once for a session cookie; state changes with the cookie need the CSRF
// token and a same-site page; logout and revocation end the session; scripts keep using Bearer.
func TestSessionsAreCookiesWithCSRFAndEndAtLogout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.customer("ImpulseMax", "basic")
	tok := b.customerToken(c)

	res, info := b.raw("POST", "/api/session", `{"token":"`+tok+`"}`, nil, nil)
	if res.StatusCode != 201 || info["role"] != "customer" || info["csrf_token"] == "" {
		t.Fatalf("sign-in: %d %v", res.StatusCode, info)
	}
	cookie := sessionCookie(t, res)
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", cookie)
	}
	if strings.Contains(cookie.Value, tok) {
		t.Error("the cookie carries the API token")
	}
	csrf := info["csrf_token"].(string)
	body := `{"external_domain":"www.impulse-max.com"}`

	if res, _ := b.raw("GET", "/api/domains", "", nil, cookie); res.StatusCode != 200 {
		t.Errorf("a read with the session: %d", res.StatusCode)
	}
	if res, m := b.raw("POST", "/api/domains", body, nil, cookie); res.StatusCode != 403 || m["code"] != "forbidden" {
		t.Errorf("a change without the CSRF token: %d %v", res.StatusCode, m)
	}
	if res, _ := b.raw("POST", "/api/domains", body, map[string]string{api.CSRFHeader: csrf, "Sec-Fetch-Site": "cross-site"}, cookie); res.StatusCode != 403 {
		t.Errorf("a change from another site: %d", res.StatusCode)
	}
	if n := b.countDomains(); n != 0 {
		t.Fatalf("refused changes created %d domains", n)
	}
	if res, m := b.raw("POST", "/api/domains", body, map[string]string{api.CSRFHeader: csrf, "Sec-Fetch-Site": "same-origin"}, cookie); res.StatusCode != 201 {
		t.Errorf("a change with the CSRF token: %d %v", res.StatusCode, m)
	}
	if _, m := b.raw("GET", "/api/session", "", nil, cookie); m["csrf_token"] != csrf || m["via"] != "session" {
		t.Errorf("who am I: %v", m)
	}
	// Logout ends it on the server, whatever the browser keeps.
	if res, _ := b.raw("DELETE", "/api/session", "", map[string]string{api.CSRFHeader: csrf}, cookie); res.StatusCode != 204 {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := b.raw("GET", "/api/domains", "", nil, cookie); res.StatusCode != 401 {
		t.Errorf("the session works after logout: %d", res.StatusCode)
	}
	if _, m := b.raw("GET", "/api/session", "", nil, cookie); m["signed_in"] != false {
		t.Errorf("who am I after logout: %v", m)
	}

	// Revoking the token ends its sessions.
	res, _ = b.raw("POST", "/api/session", `{"token":"`+tok+`"}`, nil, nil)
	cookie = sessionCookie(t, res)
	tokens := b.must(200, "GET", "/api/tokens", b.admin, nil)["items"].([]any)
	for _, it := range tokens {
		if m := it.(map[string]any); m["role"] == "customer" {
			b.must(204, "DELETE", "/api/tokens/"+jsonNumber(m["id"]), b.admin, nil)
		}
	}
	if res, _ := b.raw("GET", "/api/domains", "", nil, cookie); res.StatusCode != 401 {
		t.Errorf("a session of a revoked token still works: %d", res.StatusCode)
	}
	// A bad token does not open a session.
	if res, _ := b.raw("POST", "/api/session", `{"token":"sjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, nil, nil); res.StatusCode != 401 || len(res.Cookies()) != 0 {
		t.Errorf("an unknown token: %d, cookies %v", res.StatusCode, res.Cookies())
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A sign-in code opens one session, once.
func TestASigninCodeWorksOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok, err := b.store.LookupAPIToken(context.Background(), secret.Hash(b.admin))
	if err != nil {
		t.Fatal(err)
	}
	code, err := api.NewSigninCode(context.Background(), b.store, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res, m := b.raw("POST", "/api/session", `{"code":"`+code+`"}`, nil, nil); res.StatusCode != 201 || m["role"] != "admin" {
		t.Fatalf("first use: %d %v", res.StatusCode, m)
	}
	if res, m := b.raw("POST", "/api/session", `{"code":"`+code+`"}`, map[string]string{"Accept-Language": "en"}, nil); res.StatusCode != 401 ||
		m["code"] != "signin_code_invalid" || !strings.Contains(m["detail"].(string), "already used") {
		t.Errorf("second use: %d %v", res.StatusCode, m)
	}
}

// Every human sentence of one answer is in the language asked for; codes stay the same.
func TestOneAnswerSpeaksOneLanguage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.customer("ImpulseMax", "basic")
	tok := b.customerToken(c)
	b.must(201, "POST", "/api/domains", tok, map[string]any{"external_domain": "impulse-max.com"})
	b.do("POST", "/api/domains/impulse-max.com/verify", tok, nil)
	spanish := []string{"Configure", "Registro", "configure el", "su plan", "esperando", "CNAME no detectado"}
	english := []string{"Create this CNAME", "TXT record proving", "the domain has no tenant deployment", "CNAME not found"}
	for _, tc := range []struct {
		lang      string
		want, not []string
	}{{"en", english, spanish}, {"es", spanish[:2], english}, {"", spanish[:2], english}, {"fr, en;q=0.5", english, spanish}} {
		b.lang = tc.lang
		r := b.do("GET", "/api/domains/impulse-max.com", tok, nil)
		text := string(r.body)
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("Accept-Language %q: %q missing", tc.lang, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(text, n) {
				t.Errorf("Accept-Language %q: the answer mixes in %q", tc.lang, n)
			}
		}
		if !strings.Contains(text, `"state":"verification_failed"`) || !strings.Contains(text, `"name":"dns","status":"failed"`) {
			t.Errorf("Accept-Language %q changed a machine field: %s", tc.lang, text)
		}
		p := b.do("POST", "/api/domains", tok, map[string]any{"external_domain": "https://www.x.com/path"}).json(t)
		wantDetail := map[string]string{"en": "enter the hostname only: www.x.com", "": "escriba solo el nombre de host: www.x.com"}[tc.lang]
		if wantDetail != "" && (p["detail"] != wantDetail || p["code"] != "hostname_is_url" || p["suggestion"] != "www.x.com") {
			t.Errorf("Accept-Language %q: refusal %v", tc.lang, p)
		}
	}
}
