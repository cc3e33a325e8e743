package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxExcerpt bounds what is kept of a receiver's answer for the delivery log.
const MaxExcerpt = 1024

// maxRead bounds what is read of an answer at all: the status is what matters.
const maxRead = 64 << 10

// Client sends webhook requests through a Guard: no proxy (HTTP_PROXY would make the guard check
// the proxy instead of the receiver), no redirects (the spec counts 3xx as failure), a timeout.
type Client struct {
	http *http.Client
}

// NewClient returns a Client whose connections the guard checks at dial time.
func NewClient(g Guard, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dialer().DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	}
	return &Client{http: &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Outcome is what one delivery attempt taught us.
type Outcome struct {
	Status     int           // HTTP status; 0 when no answer came
	Duration   time.Duration // request start to answer (or failure)
	Excerpt    string        // the start of the answer's body, valid UTF-8, at most MaxExcerpt bytes
	Err        string        // why no usable answer came (dial refused by the guard, timeout, …)
	RetryAfter time.Duration // from a 429 or 503 with Retry-After
}

// Delivered reports a 2xx answer.
func (o Outcome) Delivered() bool { return o.Status >= 200 && o.Status < 300 }

// Gone reports 410: the receiver asks us to stop (the endpoint is disabled).
func (o Outcome) Gone() bool { return o.Status == http.StatusGone }

// Send posts body to url with the Standard Webhooks headers signed by keys.
func (c *Client) Send(ctx context.Context, url string, keys [][]byte, id string, body []byte, now time.Time) Outcome {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Outcome{Err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sajet-domains-webhooks/1")
	SetHeaders(req.Header, keys, id, now, body)
	res, err := c.http.Do(req)
	if err != nil {
		o := Outcome{Duration: time.Since(start), Err: err.Error()}
		if errors.Is(err, ErrForbiddenAddress) {
			o.Err = "refused: " + err.Error()
		}
		return o
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, maxRead))
	o := Outcome{Status: res.StatusCode, Duration: time.Since(start), Excerpt: excerpt(data)}
	if res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable {
		o.RetryAfter = retryAfter(res.Header.Get("Retry-After"), time.Now())
	}
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		o.Err = fmt.Sprintf("redirect to %q not followed (3xx counts as failure)", res.Header.Get("Location"))
	}
	return o
}

func excerpt(b []byte) string {
	if len(b) > MaxExcerpt {
		b = b[:MaxExcerpt]
	}
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped at a day.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), 24*time.Hour)
}
