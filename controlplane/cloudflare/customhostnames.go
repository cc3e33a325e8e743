package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/custom_hostnames"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/packages/pagination"
)

// Metadata keys written when Config.CustomHostnameMetadata is on.
const (
	metaManagedBy = "managed_by"
	metaDomainID  = "domain_id"
	metaSajet     = "sajet"
)

// CustomHostname is our view of a Cloudflare for SaaS custom hostname.
type CustomHostname struct {
	ID                 string
	Hostname           string
	Status             string // pending, active, moved, blocked, …
	SSLStatus          string // initializing, pending_validation, …, active
	SSLMethod          string // txt
	VerificationErrors []string
	// Ownership is the TXT record that proves ownership (_cf-custom-hostname.<hostname>).
	Ownership *ValidationRecord
	// OwnershipHTTP is the HTTP alternative to Ownership.
	OwnershipHTTP *HTTPValidation
	// SSLValidation holds what the CA checks before issuing: TXT records (txt_name/txt_value)
	// and/or HTTP tokens (http_url/http_body). Cloudflare may omit them until a later GET.
	SSLValidation []ValidationRecord
	SSLErrors     []string
	// DomainID is the domain named by custom_metadata (0 when metadata is off or absent).
	DomainID int64
	// CertificateExpiresAt is when the hostname's certificate expires: the earliest
	// ssl.certificates[].expires_on (Cloudflare issues an ECDSA and an RSA one), else
	// ssl.expires_on (uploaded certificates); zero when Cloudflare reports none yet.
	CertificateExpiresAt time.Time
}

// ValidationRecord is a TXT record or an HTTP token Cloudflare wants to see. Its fields match
// store.ValidationRecord, so a plain conversion works.
type ValidationRecord struct {
	Purpose string `json:"purpose"` // "ownership" or "ssl"
	Type    string `json:"type"`    // "TXT" or "HTTP"
	Name    string `json:"name"`    // record name, or URL for HTTP
	Value   string `json:"value"`   // record value, or body for HTTP
}

// HTTPValidation is a token to serve at URL.
type HTTPValidation struct {
	URL  string
	Body string
}

// Records returns everything the customer could publish, ownership first.
func (c CustomHostname) Records() []ValidationRecord {
	var out []ValidationRecord
	if c.Ownership != nil {
		out = append(out, *c.Ownership)
	}
	if c.OwnershipHTTP != nil {
		out = append(out, ValidationRecord{Purpose: "ownership", Type: "HTTP", Name: c.OwnershipHTTP.URL, Value: c.OwnershipHTTP.Body})
	}
	return append(out, c.SSLValidation...)
}

// Errors returns the verification and certificate errors Cloudflare reports.
func (c CustomHostname) Errors() []string {
	return append(append([]string(nil), c.VerificationErrors...), c.SSLErrors...)
}

// EnsureCustomHostname makes a custom hostname for hostname exist (DV certificate, TXT
// validation) and returns it. Happy path: one call. On 409/1406 (duplicate), or first when
// retryAfterUncertain is set, the existing one is found with ?hostname.exact= and adopted; with
// Config.CustomHostnameMetadata a hostname without our metadata is *ForeignRecordError, and one
// naming another domain id gets its metadata rewritten (PATCH).
func (p *Provider) EnsureCustomHostname(ctx context.Context, domainID int64, hostname string, retryAfterUncertain bool) (CustomHostname, error) {
	hostname = canonicalName(hostname)
	if domainID <= 0 || hostname == "" {
		return CustomHostname{}, fmt.Errorf("cloudflare: ensure custom hostname: domain id and hostname are required (got %d, %q)", domainID, hostname)
	}
	if retryAfterUncertain {
		ch, found, err := p.findCustomHostname(ctx, hostname)
		if err != nil {
			return CustomHostname{}, err
		}
		if found {
			return p.adoptCustomHostname(ctx, domainID, ch)
		}
	}
	ch, err := p.createCustomHostname(ctx, domainID, hostname)
	var apiErr *APIError
	if err == nil || !errors.As(err, &apiErr) || !apiErr.Has(codeDuplicateHostname) {
		return ch, err
	}
	ch, found, ferr := p.findCustomHostname(ctx, hostname)
	if ferr != nil {
		return CustomHostname{}, ferr
	}
	if !found { // a duplicate we cannot see: held elsewhere, or deleted meanwhile; retrying decides
		return CustomHostname{}, err
	}
	return p.adoptCustomHostname(ctx, domainID, ch)
}

func (p *Provider) metadataFor(domainID int64) map[string]string {
	return map[string]string{metaManagedBy: metaSajet, metaDomainID: strconv.FormatInt(domainID, 10)}
}

func (p *Provider) createCustomHostname(ctx context.Context, domainID int64, hostname string) (CustomHostname, error) {
	// Fields are set directly (see cnameBody).
	var params custom_hostnames.CustomHostnameNewParams
	params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
	params.Hostname.Value, params.Hostname.Present = hostname, true
	params.SSL.Present = true
	params.SSL.Value.Method.Value, params.SSL.Value.Method.Present = custom_hostnames.DCVMethodTXT, true
	params.SSL.Value.Type.Value, params.SSL.Value.Type.Present = custom_hostnames.DomainValidationTypeDv, true
	if p.metadata {
		params.CustomMetadata.Value, params.CustomMetadata.Present = p.metadataFor(domainID), true
	}
	var raw string
	err := p.call(ctx, "create custom hostname "+hostname, http.MethodPost, func(ctx context.Context, opts ...option.RequestOption) error {
		res, err := p.hostnames.New(ctx, params, opts...)
		if err == nil {
			raw = res.JSON.RawJSON()
		}
		return err
	})
	if err != nil {
		return CustomHostname{}, err
	}
	return parseCustomHostname(raw)
}

func (p *Provider) adoptCustomHostname(ctx context.Context, domainID int64, ch CustomHostname) (CustomHostname, error) {
	if !p.metadata || ch.DomainID == domainID {
		return ch, nil
	}
	if ch.DomainID == 0 {
		return CustomHostname{}, &ForeignRecordError{Kind: "custom hostname", Name: ch.Hostname}
	}
	var raw string
	err := p.call(ctx, "update custom hostname "+ch.Hostname, http.MethodPatch, func(ctx context.Context, opts ...option.RequestOption) error {
		var params custom_hostnames.CustomHostnameEditParams
		params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
		params.CustomMetadata.Value, params.CustomMetadata.Present = p.metadataFor(domainID), true
		res, err := p.hostnames.Edit(ctx, ch.ID, params, opts...)
		if err == nil {
			raw = res.JSON.RawJSON()
		}
		return err
	})
	if err != nil {
		return CustomHostname{}, err
	}
	return parseCustomHostname(raw)
}

// findCustomHostname looks a hostname up by exact name (one call).
func (p *Provider) findCustomHostname(ctx context.Context, hostname string) (CustomHostname, bool, error) {
	var res *pagination.V4PagePaginationArray[custom_hostnames.CustomHostnameListResponse]
	err := p.call(ctx, "find custom hostname "+hostname, http.MethodGet, func(ctx context.Context, opts ...option.RequestOption) (err error) {
		var params custom_hostnames.CustomHostnameListParams
		params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
		params.Hostname.Present = true
		params.Hostname.Value.Exact.Value, params.Hostname.Value.Exact.Present = hostname, true
		res, err = p.hostnames.List(ctx, params, opts...)
		return err
	})
	if err != nil {
		return CustomHostname{}, false, err
	}
	for _, r := range res.Result {
		if canonicalName(r.Hostname) == hostname {
			ch, err := parseCustomHostname(r.JSON.RawJSON())
			return ch, err == nil, err
		}
	}
	return CustomHostname{}, false, nil
}

// GetCustomHostname reads a custom hostname's current state (one call).
func (p *Provider) GetCustomHostname(ctx context.Context, id string) (CustomHostname, error) {
	if id == "" {
		return CustomHostname{}, errors.New("cloudflare: get custom hostname: empty id")
	}
	var raw string
	err := p.call(ctx, "read custom hostname "+id, http.MethodGet, func(ctx context.Context, opts ...option.RequestOption) error {
		var params custom_hostnames.CustomHostnameGetParams
		params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
		res, err := p.hostnames.Get(ctx, id, params, opts...)
		if err == nil {
			raw = res.JSON.RawJSON()
		}
		return err
	})
	if err != nil {
		return CustomHostname{}, err
	}
	return parseCustomHostname(raw)
}

// DeleteCustomHostname deletes a custom hostname; one already gone is success (one call).
func (p *Provider) DeleteCustomHostname(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("cloudflare: delete custom hostname: empty id")
	}
	err := p.call(ctx, "delete custom hostname "+id, http.MethodDelete, func(ctx context.Context, opts ...option.RequestOption) error {
		var params custom_hostnames.CustomHostnameDeleteParams
		params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
		_, err := p.hostnames.Delete(ctx, id, params, opts...)
		return err
	})
	if isNotFound(err) {
		return nil
	}
	return err
}

// customHostnameJSON is the wire shape shared by the SDK's four response types (create, get,
// edit, list item); decoding the raw JSON once avoids four converters.
type customHostnameJSON struct {
	ID                    string            `json:"id"`
	Hostname              string            `json:"hostname"`
	Status                string            `json:"status"`
	VerificationErrors    []string          `json:"verification_errors"`
	CustomMetadata        map[string]string `json:"custom_metadata"`
	OwnershipVerification *struct {
		Type  string `json:"type"`
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"ownership_verification"`
	OwnershipVerificationHTTP *struct {
		URL  string `json:"http_url"`
		Body string `json:"http_body"`
	} `json:"ownership_verification_http"`
	SSL struct {
		Status string `json:"status"`
		Method string `json:"method"`
		// The v7 SDK has no field for certificates[] (docs/CLOUDFLARE.md §2): read raw.
		ExpiresOn    *time.Time `json:"expires_on"`
		Certificates []struct {
			ExpiresOn *time.Time `json:"expires_on"`
		} `json:"certificates"`
		ValidationRecords []struct {
			TXTName  string `json:"txt_name"`
			TXTValue string `json:"txt_value"`
			HTTPURL  string `json:"http_url"`
			HTTPBody string `json:"http_body"`
		} `json:"validation_records"`
		ValidationErrors []struct {
			Message string `json:"message"`
		} `json:"validation_errors"`
	} `json:"ssl"`
}

func parseCustomHostname(raw string) (CustomHostname, error) {
	var w customHostnameJSON
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return CustomHostname{}, fmt.Errorf("cloudflare: decode custom hostname: %w", err)
	}
	ch := CustomHostname{
		ID: w.ID, Hostname: canonicalName(w.Hostname), Status: w.Status,
		SSLStatus: w.SSL.Status, SSLMethod: w.SSL.Method, VerificationErrors: w.VerificationErrors,
	}
	if o := w.OwnershipVerification; o != nil && o.Name != "" {
		ch.Ownership = &ValidationRecord{Purpose: "ownership", Type: "TXT", Name: o.Name, Value: o.Value}
	}
	if o := w.OwnershipVerificationHTTP; o != nil && o.URL != "" {
		ch.OwnershipHTTP = &HTTPValidation{URL: o.URL, Body: o.Body}
	}
	for _, v := range w.SSL.ValidationRecords {
		if v.TXTName != "" {
			ch.SSLValidation = append(ch.SSLValidation, ValidationRecord{Purpose: "ssl", Type: "TXT", Name: v.TXTName, Value: v.TXTValue})
		}
		if v.HTTPURL != "" {
			ch.SSLValidation = append(ch.SSLValidation, ValidationRecord{Purpose: "ssl", Type: "HTTP", Name: v.HTTPURL, Value: v.HTTPBody})
		}
	}
	for _, e := range w.SSL.ValidationErrors {
		ch.SSLErrors = append(ch.SSLErrors, e.Message)
	}
	for _, c := range w.SSL.Certificates {
		if c.ExpiresOn != nil && (ch.CertificateExpiresAt.IsZero() || c.ExpiresOn.Before(ch.CertificateExpiresAt)) {
			ch.CertificateExpiresAt = *c.ExpiresOn
		}
	}
	if ch.CertificateExpiresAt.IsZero() && w.SSL.ExpiresOn != nil {
		ch.CertificateExpiresAt = *w.SSL.ExpiresOn
	}
	if w.CustomMetadata[metaManagedBy] == metaSajet {
		if id, err := strconv.ParseInt(w.CustomMetadata[metaDomainID], 10, 64); err == nil && id > 0 {
			ch.DomainID = id
		}
	}
	return ch, nil
}
