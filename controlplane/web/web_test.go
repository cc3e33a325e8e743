package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/web"
)

// The UI's files and headers, without a browser: CSP on every answer, hashed assets cached for a
// year, index.html never cached, the application for any route under /ui/ and nowhere else, no
// directory listing, a missing asset a 404.
func TestTheUIIsServedWithItsHeaders(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(api.New(api.Config{UI: web.Handler()}))
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	index, body := get("/ui/")
	asset := regexp.MustCompile(`/ui/assets/[^"]+\.js`).FindString(body)
	if asset == "" {
		t.Fatalf("index.html names no script:\n%s", body)
	}
	tests := []struct {
		path, status, cache, ctype string
		isIndex                    bool
	}{
		{"/ui/", "200", "no-cache", "text/html", true},
		{"/ui/index.html", "200", "no-cache", "text/html", true},
		{"/ui/domains/7", "200", "no-cache", "text/html", true},
		{"/ui/domains/www.impulse-max.com", "200", "no-cache", "text/html", true},
		{asset, "200", "public, max-age=31536000, immutable", "text/javascript", false},
		{"/ui/assets/", "404", "no-store", "", false},
		{"/ui/assets/index-missing.js", "404", "no-store", "", false},
	}
	for _, tc := range tests {
		res, b := get(tc.path)
		if got := res.Status[:3]; got != tc.status {
			t.Errorf("%s: %s, want %s", tc.path, res.Status, tc.status)
		}
		if got := res.Header.Get("Cache-Control"); got != tc.cache {
			t.Errorf("%s: Cache-Control %q, want %q", tc.path, got, tc.cache)
		}
		if !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("%s: Content-Type %q, want %s", tc.path, res.Header.Get("Content-Type"), tc.ctype)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != web.CSP {
			t.Errorf("%s: CSP %q", tc.path, got)
		}
		if tc.isIndex != (b == body) {
			t.Errorf("%s: index.html served = %v, want %v", tc.path, b == body, tc.isIndex)
		}
	}
	if !strings.Contains(web.CSP, "script-src 'self';") || strings.Contains(web.CSP, "unsafe") {
		t.Errorf("the CSP is not strict: %s", web.CSP)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
		t.Error("index.html has an inline script or style attribute, which the CSP refuses")
	}
	_ = index
	for path, want := range map[string]string{"/": "/ui/", "/ui": "/ui/"} {
		res, _ := get(path)
		if loc := res.Header.Get("Location"); res.StatusCode/100 != 3 || loc != want {
			t.Errorf("GET %s: %s → %q, want a redirect to %s", path, res.Status, loc, want)
		}
	}
	// Nothing outside /ui/ falls back to the application.
	for _, path := range []string{"/domains/7", "/uix/", "/api/nothing"} {
		if res, b := get(path); res.StatusCode == 200 || b == body {
			t.Errorf("GET %s answered with the application (%s)", path, res.Status)
		}
	}
}
