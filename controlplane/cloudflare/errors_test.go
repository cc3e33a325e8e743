package cloudflare_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
)

// Each case makes one provider call against a misbehaving fake and checks the decision the
// error carries.
func TestErrorsCarryTheRetryDecision(t *testing.T) {
	t.Parallel()
	type outcome struct {
		status     int // 0: a transport error
		retryable  bool
		uncertain  bool
		retryAfter time.Duration
	}
	create := func(p *cloudflare.Provider) error {
		_, err := p.EnsureCNAME(context.Background(), 42, subdomain, tunnelTarget, false)
		return err
	}
	find := func(p *cloudflare.Provider) error {
		_, err := p.FindRecords(context.Background(), subdomain)
		return err
	}
	for _, tc := range []struct {
		name    string
		cfg     func(*cloudflare.Config, *cftest.Server)
		inject  func(*cftest.Server)
		call    func(*cloudflare.Provider) error
		want    outcome
		wantMsg string
	}{
		{name: "a 502 on a create is retryable and uncertain",
			inject: func(s *cftest.Server) { s.FailNext(1, 502, 10000, "Bad gateway") }, call: create,
			want: outcome{status: 502, retryable: true, uncertain: true}, wantMsg: "cloudflare: create record impulse-max.sajet.us: 502 (code 10000: Bad gateway)"},
		{name: "a 503 on a listing is retryable and certain (nothing was written)",
			inject: func(s *cftest.Server) { s.FailNext(1, 503, 10000, "Service unavailable") }, call: find,
			want: outcome{status: 503, retryable: true}},
		{name: "an HTML 502 from the edge is still a retryable 502",
			inject: func(s *cftest.Server) { s.FailNextRaw(1, 502, "<html>bad gateway</html>") }, call: create,
			want: outcome{status: 502, retryable: true, uncertain: true}, wantMsg: "cloudflare: create record impulse-max.sajet.us: 502 Bad Gateway"},
		{name: "a 429 carries the retry-after Cloudflare sent",
			inject: func(s *cftest.Server) { s.RateLimit(1, 2*time.Second) }, call: create,
			want:    outcome{status: 429, retryable: true, retryAfter: 2 * time.Second},
			wantMsg: "cloudflare: create record impulse-max.sajet.us: 429 (code 971: Please wait and consider throttling your request speed), retry after 2s"},
		{name: "a 408 is retryable",
			inject: func(s *cftest.Server) { s.FailNext(1, 408, 10000, "Request timeout") }, call: create,
			want: outcome{status: 408, retryable: true}},
		{name: "a wrong token is permanent (401)",
			cfg: func(c *cloudflare.Config, _ *cftest.Server) { c.APIToken = "not-the-token" }, call: create,
			want: outcome{status: 401}, wantMsg: "cloudflare: create record impulse-max.sajet.us: 401 (code 10000: Authentication error)"},
		{name: "a zone the token cannot see is permanent (403)",
			cfg: func(c *cloudflare.Config, _ *cftest.Server) { c.ZoneID = "0123456789abcdef0123456789abcdef" }, call: create,
			want: outcome{status: 403}},
		{name: "a malformed zone id is permanent (400)",
			cfg: func(c *cloudflare.Config, _ *cftest.Server) { c.ZoneID = "sajet.us" }, call: create,
			want: outcome{status: 400}},
		{name: "a 409 is permanent (the SDK would have retried it)",
			inject: func(s *cftest.Server) { s.FailNext(1, 409, 1406, "Duplicate custom hostname found.") }, call: find,
			want: outcome{status: 409}},
		{name: "no answer in time on a create is retryable and uncertain",
			cfg:    func(c *cloudflare.Config, _ *cftest.Server) { c.Timeout = 50 * time.Millisecond },
			inject: func(s *cftest.Server) { s.SetLatency(300 * time.Millisecond) }, call: create,
			want: outcome{retryable: true, uncertain: true}},
		{name: "a refused connection on a listing is retryable and certain",
			cfg: func(c *cloudflare.Config, _ *cftest.Server) { c.APIURL = closedURL(t) }, call: find,
			want: outcome{retryable: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := cftest.New(t)
			cfg := cloudflare.Config{APIURL: srv.URL(), APIToken: srv.Token, ZoneID: srv.ZoneID}
			if tc.cfg != nil {
				tc.cfg(&cfg, srv)
			}
			p, err := cloudflare.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.inject != nil {
				tc.inject(srv)
			}
			err = tc.call(p)
			if err == nil {
				t.Fatal("no error")
			}
			retryable, uncertain, retryAfter := cloudflare.Classify(fmt.Errorf("job: %w", err))
			got := outcome{retryable: retryable, uncertain: uncertain, retryAfter: retryAfter}
			var apiErr *cloudflare.APIError
			var tErr *cloudflare.TransportError
			switch {
			case errors.As(err, &apiErr):
				got.status = apiErr.Status
			case !errors.As(err, &tErr):
				t.Fatalf("err %T %v is neither an *APIError nor a *TransportError", err, err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v (err: %v)", got, tc.want, err)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message %q, want %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

// closedURL returns an API URL on a loopback port nobody listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr + "/client/v4/"
}

func TestClassifyOtherErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		err       error
		retryable bool
	}{
		{name: "nil is nothing to retry", err: nil},
		{name: "a foreign record is permanent", err: &cloudflare.ForeignRecordError{Name: subdomain}},
		{name: "an unknown error is permanent", err: errors.New("boom")},
		{name: "a wrapped 500 is retryable", err: fmt.Errorf("x: %w", &cloudflare.APIError{Status: 500, Method: http.MethodGet}), retryable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if retryable, _, _ := cloudflare.Classify(tc.err); retryable != tc.retryable {
				t.Errorf("retryable %v, want %v", retryable, tc.retryable)
			}
		})
	}
}

func TestRetryAfterIsReadAsSecondsOrDate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header string
		want   time.Duration
	}{
		{name: "whole seconds", header: "3", want: 3 * time.Second},
		{name: "an HTTP date in the future", header: "DATE+10s", want: 10 * time.Second},
		{name: "an HTTP date in the past means now", header: "DATE-10s", want: 0},
		{name: "garbage is ignored", header: "soon", want: 0},
		{name: "a negative value is ignored", header: "-5", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			header := tc.header
			switch header {
			case "DATE+10s":
				header = time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)
			case "DATE-10s":
				header = time.Now().Add(-10 * time.Second).UTC().Format(http.TimeFormat)
			}
			srv := http429(t, header)
			p, err := cloudflare.New(cloudflare.Config{APIURL: srv, APIToken: "t", ZoneID: "0123456789abcdef0123456789abcdef"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.FindRecords(context.Background(), subdomain)
			_, _, got := cloudflare.Classify(err)
			// An HTTP date has one-second resolution.
			if got < tc.want-time.Second || got > tc.want {
				t.Errorf("retry after %v, want ≈%v (err: %v)", got, tc.want, err)
			}
		})
	}
}

// http429 starts a loopback server that answers every request 429 with the Retry-After header
// (the fake only sends whole seconds) and returns its API URL.
func http429(t *testing.T, retryAfter string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", retryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"messages":[],"result":null}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/client/v4/"
}
