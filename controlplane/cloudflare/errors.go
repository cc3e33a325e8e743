package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/dns"
)

// Cloudflare error codes this package makes decisions on. Sources: docs/CLOUDFLARE.md §2 and
// the Cloudflare for SaaS status-code reference (cloudflare-docs
// cloudflare-for-saas/reference/status-codes/custom-hostnames.mdx).
const (
	codeRecordHostExists      = 81053 // "An A, AAAA, or CNAME record with that host already exists."
	codeCNAMEHostExists       = 81054 // "A CNAME record with that host already exists."
	codeRecordExists          = 81057 // "Record already exists."
	codeIdenticalRecordExists = 81058 // "An identical record already exists."
	codeRecordNotFound        = 81044 // "Record does not exist."
	codeDuplicateHostname     = 1406  // 409 "Duplicate custom hostname found."
	codeHostnameNotFound      = 1436  // 404 "The custom hostname was not found."
)

// APIError is an answer from Cloudflare with an HTTP status ≥ 400. It carries the decision the
// caller needs: Retryable (try again later, after RetryAfter if set) and Uncertain (the write may
// have been applied, so the next attempt must look before it creates).
type APIError struct {
	Op         string        // what we were doing, e.g. "create record impulse-max.sajet.us"
	Method     string        // HTTP method of the failed request
	Status     int           // HTTP status
	Codes      []int         // Cloudflare error codes (errors[].code), possibly empty
	Messages   []string      // Cloudflare error messages, parallel to Codes
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
	Err        error         // the SDK's error (a *dns.Error, alias of cloudflare.Error, or a body decoding error)
}

// Error reads like "cloudflare: create record impulse-max.sajet.us: 429 (code 971: Please wait…)".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloudflare: %s: %d", e.Op, e.Status)
	if len(e.Codes) == 0 {
		if t := http.StatusText(e.Status); t != "" {
			b.WriteString(" " + t)
		}
	} else {
		b.WriteString(" (")
		for i, c := range e.Codes {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "code %d", c)
			if i < len(e.Messages) && e.Messages[i] != "" {
				b.WriteString(": " + e.Messages[i])
			}
		}
		b.WriteString(")")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the SDK error.
func (e *APIError) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed later: 408, 429 and 5xx. Every other
// 4xx (401/403 credentials or permissions, 400 validation, 404, 409 duplicates, 8105x conflicts)
// is permanent: retrying cannot fix it.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Uncertain reports whether a write may have been applied although it failed: a 5xx answer to
// anything but GET (the edge or API can fail after the change was committed).
func (e *APIError) Uncertain() bool {
	return e.Status >= 500 && e.Method != http.MethodGet
}

// Has reports whether Cloudflare answered with the error code.
func (e *APIError) Has(code int) bool {
	for _, c := range e.Codes {
		if c == code {
			return true
		}
	}
	return false
}

// AlreadyExists reports whether Cloudflare refused a record because one with that name exists
// (81053, 81054, 81057, 81058).
func (e *APIError) AlreadyExists() bool {
	return e.Has(codeRecordHostExists) || e.Has(codeCNAMEHostExists) || e.Has(codeRecordExists) || e.Has(codeIdenticalRecordExists)
}

// NotFound reports a 404 (or Cloudflare's "record does not exist" / "custom hostname was not
// found" codes).
func (e *APIError) NotFound() bool {
	return e.Status == http.StatusNotFound || e.Has(codeRecordNotFound) || e.Has(codeHostnameNotFound)
}

// TransportError is a request that got no usable answer: connection refused or reset, the
// per-call timeout, a response cut short or not decodable. It is always retryable; a write that
// failed this way is uncertain (it may have reached Cloudflare).
type TransportError struct {
	Op     string
	Method string
	Err    error
}

func (e *TransportError) Error() string {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return fmt.Sprintf("cloudflare: %s: no answer in time: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("cloudflare: %s: %v", e.Op, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// Retryable is always true: nothing Cloudflare said rules out success next time.
func (e *TransportError) Retryable() bool { return true }

// Uncertain reports whether the failed request was a write (it may have been applied).
func (e *TransportError) Uncertain() bool { return e.Method != http.MethodGet }

// ForeignRecordError says a DNS record (or custom hostname) with the wanted name exists and is
// not managed by Sajet. We never overwrite or delete it: an operator must remove it, or mark it
// ours by setting its comment to Comment(domainID). Not retryable.
type ForeignRecordError struct {
	Kind     string   // "record" or "custom hostname"
	Name     string   // the contested name
	Existing []Record // the records found under Name (DNS only)
	Deleting bool     // we were asked to delete it (DeleteRecord), not to create
}

func (e *ForeignRecordError) Error() string {
	kind := e.Kind
	if kind == "" {
		kind = "record"
	}
	if e.Deleting {
		return fmt.Sprintf("the %s for %s is not managed by Sajet; not deleting it", kind, e.Name)
	}
	return fmt.Sprintf("a %s for %s already exists and is not managed by Sajet", kind, e.Name)
}

// Retryable is false: only a person can resolve the conflict.
func (e *ForeignRecordError) Retryable() bool { return false }

// Classify tells a caller what to do with an error from this package: retry it (after
// retryAfter when > 0), and whether a write may have been applied (uncertain: pass
// retryAfterUncertain=true next time). Unknown errors, 401/403 and other 4xx and
// *ForeignRecordError are permanent.
func Classify(err error) (retryable, uncertain bool, retryAfter time.Duration) {
	var apiErr *APIError
	var tErr *TransportError
	switch {
	case err == nil:
		return false, false, 0
	case errors.As(err, &apiErr):
		if !apiErr.Retryable() {
			return false, false, 0
		}
		return true, apiErr.Uncertain(), apiErr.RetryAfter
	case errors.As(err, &tErr):
		return true, tErr.Uncertain(), 0
	default:
		return false, false, 0
	}
}

// wrapError turns what the SDK returned into an *APIError or a *TransportError. res is the raw
// response captured with option.WithResponseInto (nil when none arrived).
func wrapError(op, method string, res *http.Response, err error) error {
	// dns.Error is the SDK's one error type (internal/apierror.Error, which the root package
	// re-exports as cloudflare.Error); every service package re-exports it too.
	var sdkErr *dns.Error
	if errors.As(err, &sdkErr) {
		e := &APIError{Op: op, Method: method, Status: sdkErr.StatusCode, Err: err}
		for _, d := range sdkErr.Errors {
			e.Codes = append(e.Codes, int(d.Code))
			e.Messages = append(e.Messages, d.Message)
		}
		if sdkErr.Response != nil {
			e.RetryAfter = parseRetryAfter(sdkErr.Response.Header.Get("Retry-After"), time.Now())
		}
		return e
	}
	// The SDK returns the JSON decoding error, not a *dns.Error, when an error response
	// is not JSON (an HTML 502 from the edge); the status still decides.
	if res != nil && res.StatusCode >= 400 {
		return &APIError{Op: op, Method: method, Status: res.StatusCode,
			RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), time.Now()), Err: err}
	}
	return &TransportError{Op: op, Method: method, Err: err}
}

// parseRetryAfter reads a Retry-After value: delay seconds (Cloudflare sends an integer) or an
// HTTP date. Missing, malformed or past values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || secs > 24*3600 { // also rejects NaN and absurd values
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
