package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxReportBytes bounds the report a client reads: a report is a few KiB; evidence grows with
// resolvers, name servers and agents, all bounded.
const maxReportBytes = 4 << 20

// Fetch asks the control plane at apiURL for host's report (GET /api/domains/{host}/diagnose) in
// lang, with token. It returns the body as the API sent it and the decoded report. An answer
// other than 200 is an error carrying the API's problem detail.
func Fetch(ctx context.Context, client *http.Client, apiURL, token, host, lang string) ([]byte, Report, error) {
	u, err := url.Parse(strings.TrimSuffix(apiURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, Report{}, fmt.Errorf("--api %q is not an http(s) URL", apiURL)
	}
	u = u.JoinPath("api", "domains", host, "diagnose")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, Report{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, Report{}, fmt.Errorf("ask %s: %w", u.Host, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxReportBytes+1))
	if err != nil {
		return nil, Report{}, fmt.Errorf("read the report: %w", err)
	}
	if len(body) > maxReportBytes {
		return nil, Report{}, fmt.Errorf("the report is larger than %d bytes", maxReportBytes)
	}
	if res.StatusCode != http.StatusOK {
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(body, &p)
		msg := fmt.Sprintf("%s: %s", res.Status, p.Detail)
		if p.Code != "" {
			msg += " (" + p.Code + ")"
		}
		if ra := res.Header.Get("Retry-After"); ra != "" {
			msg += "; retry after " + ra + " s"
		}
		return body, Report{}, errors.New(msg)
	}
	var r Report
	if err := json.Unmarshal(body, &r); err != nil {
		return body, Report{}, fmt.Errorf("decode the report: %w", err)
	}
	return body, r, nil
}

// DefaultClient is the HTTP client Fetch is given by the command line: the report takes a few
// seconds at most (the control plane bounds it), so a minute is generous.
var DefaultClient = &http.Client{Timeout: time.Minute}
