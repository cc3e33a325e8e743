package cloudflare

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cloudflare/cloudflare-go/v7/custom_hostnames"
	"github.com/cloudflare/cloudflare-go/v7/option"
)

// hostnamePageSize is the largest per_page of the custom hostname listing (Cloudflare's maximum).
const hostnamePageSize = 50

// ListCustomHostnames calls each with every custom hostname of the zone, a page of 50 per call
// (100,000 hostnames: 2,000 calls, under Cloudflare's budget in about nine minutes). Pages are
// decoded from the raw body, as the SDK's list item lacks ssl.certificates[]. It stops at the
// first error each returns.
func (p *Provider) ListCustomHostnames(ctx context.Context, each func(CustomHostname) error) error {
	var params custom_hostnames.CustomHostnameListParams
	params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
	params.PerPage.Value, params.PerPage.Present = hostnamePageSize, true
	for page := 1; page <= maxPages; page++ {
		params.Page.Value, params.Page.Present = float64(page), true
		var body []byte
		err := p.call(ctx, "list custom hostnames", http.MethodGet, func(ctx context.Context, opts ...option.RequestOption) error {
			_, err := p.hostnames.List(ctx, params, append(opts, option.WithResponseBodyInto(&body))...)
			return err
		})
		if err != nil {
			return err
		}
		var res struct {
			Result     []json.RawMessage `json:"result"`
			ResultInfo resultInfo        `json:"result_info"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return &TransportError{Op: "list custom hostnames", Method: http.MethodGet, Err: fmt.Errorf("decode page %d: %w", page, err)}
		}
		for _, raw := range res.Result {
			ch, err := parseCustomHostname(string(raw))
			if err != nil {
				return err
			}
			if err := each(ch); err != nil {
				return err
			}
		}
		if lastPage(res.ResultInfo, page, len(res.Result)) {
			return nil
		}
	}
	return &TransportError{Op: "list custom hostnames", Method: http.MethodGet, Err: fmt.Errorf("more than %d pages", maxPages)}
}

// ReviveCustomHostname sends a PATCH with the hostname's own SSL method and type (DV): Cloudflare
// then puts a moved hostname back to pending and restarts a timed-out validation, keeping its id
// and ownership token, which re-creating it would rotate (docs/CLOUDFLARE.md §2). One call.
func (p *Provider) ReviveCustomHostname(ctx context.Context, id, sslMethod string) (CustomHostname, error) {
	if id == "" {
		return CustomHostname{}, fmt.Errorf("cloudflare: revive custom hostname: empty id")
	}
	method := custom_hostnames.DCVMethodTXT
	if sslMethod != "" {
		method = custom_hostnames.DCVMethod(sslMethod)
	}
	var raw string
	err := p.call(ctx, "revive custom hostname "+id, http.MethodPatch, func(ctx context.Context, opts ...option.RequestOption) error {
		var params custom_hostnames.CustomHostnameEditParams
		params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
		params.SSL.Present = true
		params.SSL.Value.Method.Value, params.SSL.Value.Method.Present = method, true
		params.SSL.Value.Type.Value, params.SSL.Value.Type.Present = custom_hostnames.DomainValidationTypeDv, true
		res, err := p.hostnames.Edit(ctx, id, params, opts...)
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
