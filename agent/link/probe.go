package link

import (
	"context"
	"net/http"
	"time"

	"github.com/jeturing/sajet-domains/internal/textlimit"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// probe answers "can this tunnel host reach the tenant's backend?": any HTTP response counts as
// reachable, since the question is the network path, not the application's health.
func probe(ctx context.Context, req protocol.ProbeRequest) protocol.ProbeResult {
	if err := req.Validate(); err != nil {
		return protocol.ProbeResult{URL: textlimit.Truncate(req.URL, 2048), Error: err.Error()}
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	res := protocol.ProbeResult{URL: req.URL}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodHead, req.URL, nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(hreq)
	res.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	resp.Body.Close()
	res.OK, res.Status = true, resp.StatusCode
	return res
}
