package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/custom_hostnames"
	"github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"golang.org/x/time/rate"
)

// DefaultAPIURL is Cloudflare's v4 API base.
const DefaultAPIURL = "https://api.cloudflare.com/client/v4/"

// DefaultPageSize is the per_page of DNS listings. Cloudflare's schema allows up to 5,000,000
// (dns-records_per_page), but a page of 5000 is already one call for any zone within the
// default record quotas while keeping each answer a few MB; raise Config.PageSize for bigger
// zones.
const DefaultPageSize = 5000

// maxPages bounds a listing, so a server that ignores `page` cannot loop us forever.
const maxPages = 10000

// Config configures a Provider. APIToken and ZoneID are required.
type Config struct {
	APIURL     string        // API base including /client/v4/; default DefaultAPIURL
	APIToken   string        // a token with Zone.DNS:Edit (and SSL and Certificates:Edit for SaaS)
	ZoneID     string        // the platform zone (sajet.us)
	HTTPClient *http.Client  // optional
	Timeout    time.Duration // per API call; default 15s

	// PageSize is per_page for DNS listings; default DefaultPageSize.
	PageSize int
	// CustomHostnameMetadata sends custom_metadata {"managed_by":"sajet","domain_id":"<id>"} with
	// each custom hostname and treats hostnames without it as foreign. Cloudflare enables custom
	// metadata per zone on request (403 code 1413 otherwise), so it is off by default; then
	// every custom hostname in the zone is considered ours (the SaaS zone is the platform's).
	CustomHostnameMetadata bool
	// CallsPerWindow bounds API calls per RateWindow (default 1200 per 5 minutes, Cloudflare's
	// per-token limit). Several replicas sharing one token should split it. Negative: no limit.
	CallsPerWindow int
	RateWindow     time.Duration
}

// Provider manages the platform zone's DNS records and custom hostnames through the official
// SDK (cloudflare-go v7). It is safe for concurrent use.
type Provider struct {
	zoneID    string
	timeout   time.Duration
	pageSize  int
	metadata  bool
	records   *dns.RecordService
	hostnames *custom_hostnames.CustomHostnameService
	calls     atomic.Int64
	budget    *rate.Limiter // nil: no limit
}

// New builds a Provider. The SDK's own retries are off (option.WithMaxRetries(0)): the caller's
// job queue retries, after deciding with Classify, and only it knows whether the previous
// attempt may have written something.
func New(cfg Config) (*Provider, error) {
	if cfg.APIToken == "" || cfg.ZoneID == "" {
		return nil, errors.New("cloudflare: APIToken and ZoneID are required")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	u, err := url.Parse(cfg.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("cloudflare: API URL %q is not an http(s) URL", cfg.APIURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		// The SDK resolves "zones/…" against the base: without the slash, "v4" would be dropped.
		u.Path += "/"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	if cfg.CallsPerWindow == 0 {
		cfg.CallsPerWindow = 1200
	}
	if cfg.RateWindow == 0 {
		cfg.RateWindow = 5 * time.Minute
	}
	p := &Provider{zoneID: cfg.ZoneID, timeout: cfg.Timeout, pageSize: cfg.PageSize, metadata: cfg.CustomHostnameMetadata,
		budget: newBudget(cfg.CallsPerWindow, cfg.RateWindow)}
	// The services are built directly instead of through cloudflare.NewClient, which also reads
	// CLOUDFLARE_API_KEY, CLOUDFLARE_EMAIL, CLOUDFLARE_BASE_URL and CLOUDFLARE_CUSTOM_HEADERS
	// from the environment and would mix them into our requests.
	opts := []option.RequestOption{
		option.WithHTTPClient(hc),
		option.WithBaseURL(u.String()),
		option.WithAPIToken(cfg.APIToken),
		option.WithMaxRetries(0),
		option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
			p.calls.Add(1)
			return next(r)
		}),
	}
	p.records = dns.NewRecordService(opts...)
	p.hostnames = custom_hostnames.NewCustomHostnameService(opts...)
	return p, nil
}

// Calls returns how many HTTP requests the provider has sent to Cloudflare (failed ones
// included), for budgeting against Cloudflare's 1200 requests / 5 minutes.
func (p *Provider) Calls() int64 { return p.calls.Load() }

// call runs one SDK request under the per-call timeout and maps its error.
func (p *Provider) call(ctx context.Context, op, method string, fn func(ctx context.Context, opts ...option.RequestOption) error) error {
	if err := waitBudget(ctx, p.budget); err != nil {
		return &TransportError{Op: op, Method: method, Err: fmt.Errorf("waiting for the API call budget: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var res *http.Response
	err := fn(ctx, option.WithResponseInto(&res))
	if err == nil {
		return nil
	}
	return wrapError(op, method, res, err)
}

// canonicalName lower-cases a DNS name and drops one trailing dot: Cloudflare stores names that
// way, and our comparisons must match what it returns.
func canonicalName(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}
