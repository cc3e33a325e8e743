package webhooks

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type staticResolver map[string][]netip.Addr

func (r staticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// Saved URLs and dialed addresses are both judged: private, loopback, link-local, mapped and
// other special addresses are refused unless a test (or an operator) allows a network.
func TestGuardRefusesWhatIsNotPublic(t *testing.T) {
	t.Parallel()
	r := staticResolver{
		"hooks.example.com":    {netip.MustParseAddr("93.184.216.34")},
		"rebind.example.com":   {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.1")},
		"metadata.example.com": {netip.MustParseAddr("169.254.169.254")},
		"v6.example.com":       {netip.MustParseAddr("2606:4700::1")},
		"ula.example.com":      {netip.MustParseAddr("fd00::1")},
	}
	var g Guard
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.com/sajet", true},
		{"https://v6.example.com/x", true},
		{"https://93.184.216.34/x", true},
		{"http://hooks.example.com/x", false}, // https only
		{"https://rebind.example.com/x", false},
		{"https://metadata.example.com/x", false},
		{"https://ula.example.com/x", false},
		{"https://127.0.0.1/x", false},
		{"https://[::1]/x", false},
		{"https://[::ffff:127.0.0.1]/x", false},
		{"https://[::ffff:10.0.0.1]/x", false},
		{"https://100.64.0.1/x", false},
		{"https://192.168.1.1/x", false},
		{"https://user:pass@hooks.example.com/x", false},
		{"https://hooks.example.com/x#frag", false},
		{"ftp://hooks.example.com/x", false},
		{"/relative", false},
		{"https://nowhere.example.com/x", false},
	}
	for _, tt := range tests {
		err := g.CheckURL(context.Background(), r, tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%s) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
	test := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if err := test.CheckURL(context.Background(), r, "http://127.0.0.1:8080/hook"); err != nil {
		t.Errorf("an allowed loopback receiver was refused: %v", err)
	}
}

// At dial time the guard refuses a loopback receiver, so a URL that resolved publicly when it was
// saved cannot be turned against the control plane's own network later.
func TestClientRefusesAtDialTime(t *testing.T) {
	t.Parallel()
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer srv.Close()
	key, _ := ParseSecret(NewSecret())
	o := NewClient(Guard{}, 5*time.Second).Send(context.Background(), srv.URL, [][]byte{key}, "msg_x", []byte("{}"), time.Now())
	if o.Status != 0 || !strings.Contains(o.Err, "refused") || hit {
		t.Fatalf("outcome %+v, receiver reached: %v", o, hit)
	}
}

// A receiver on an allowed network gets a signed request it can verify; 3xx is a failure and is
// not followed; 429 carries Retry-After; 410 means gone; the answer's excerpt is bounded.
func TestSendOutcomes(t *testing.T) {
	t.Parallel()
	key, _ := ParseSecret(NewSecret())
	var verr error
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verr = Verify(key, r.Header, body, time.Now())
		w.Write([]byte(strings.Repeat("é", 2000)))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/slow-down", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("/gone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := NewClient(Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, 5*time.Second)
	send := func(path string) Outcome {
		return c.Send(context.Background(), srv.URL+path, [][]byte{key}, "msg_1", []byte(`{"type":"webhook.test"}`), time.Now())
	}
	if o := send("/ok"); !o.Delivered() || verr != nil || len(o.Excerpt) > MaxExcerpt || !strings.HasPrefix(o.Excerpt, "é") {
		t.Errorf("/ok: %+v, verify: %v", o, verr)
	}
	if o := send("/redirect"); o.Delivered() || o.Status != http.StatusFound || o.Err == "" {
		t.Errorf("/redirect: %+v", o)
	}
	if o := send("/slow-down"); o.Delivered() || o.RetryAfter != 2*time.Minute {
		t.Errorf("/slow-down: %+v", o)
	}
	if o := send("/gone"); !o.Gone() {
		t.Errorf("/gone: %+v", o)
	}
}
