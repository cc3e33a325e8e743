package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
)

// Record is our view of a DNS record.
type Record struct {
	ID      string
	Name    string // full name, lower case, no trailing dot
	Type    string
	Content string
	Comment string
	Proxied bool
	TTL     float64 // 1 = automatic
}

// Ours reports whether the record carries our marker, and for which domain.
func (r Record) Ours() (domainID int64, ours bool) { return ParseComment(r.Comment) }

// EnsureCNAME makes the proxied CNAME name → target (TTL automatic) exist, marked as ours for
// domainID, and returns it. Contract:
//
//   - Happy path: one call (an optimistic create).
//   - Cloudflare says the name is taken (81053/81054/81057/81058), or retryAfterUncertain is set
//     (a previous attempt timed out or got a 5xx and may have created the record): list the
//     name (all types) and decide. An identical record of ours is adopted as is; a record of
//     ours that differs (other target, not proxied, another domain id in the marker) is
//     overwritten in place (PUT); nothing under the name is created.
//   - A record under the name that is not ours is never changed: *ForeignRecordError.
//
// With retryAfterUncertain the listing comes first (one call when the record is there, two when
// it must be created), so a retry never makes a duplicate and never pays for a doomed create.
func (p *Provider) EnsureCNAME(ctx context.Context, domainID int64, name, target string, retryAfterUncertain bool) (Record, error) {
	name, target = canonicalName(name), canonicalName(target)
	if domainID <= 0 || name == "" || target == "" {
		return Record{}, fmt.Errorf("cloudflare: ensure CNAME: domain id, name and target are required (got %d, %q, %q)", domainID, name, target)
	}
	want := Record{Name: name, Type: "CNAME", Content: target, Proxied: true, TTL: 1, Comment: Comment(domainID)}
	if !retryAfterUncertain {
		rec, err := p.createRecord(ctx, want)
		var apiErr *APIError
		if err == nil || !errors.As(err, &apiErr) || !apiErr.AlreadyExists() {
			return rec, err
		}
	}
	// Two rounds at most: a record may appear (another writer) or vanish (deleted behind our
	// back) between our listing and our write.
	for round := 0; ; round++ {
		existing, err := p.FindRecords(ctx, name)
		if err != nil {
			return Record{}, err
		}
		rec, found, err := decide(existing, want)
		switch {
		case err != nil:
			return Record{}, err
		case found && sameRecord(rec, want):
			return rec, nil
		case found:
			updated, err := p.updateRecord(ctx, rec.ID, want)
			if err == nil || round == 1 || !isNotFound(err) {
				return updated, err
			}
			continue
		}
		created, err := p.createRecord(ctx, want)
		var apiErr *APIError
		if err == nil || round == 1 || !errors.As(err, &apiErr) || !apiErr.AlreadyExists() {
			return created, err
		}
	}
}

// decide picks, among the records under want.Name, the one of ours to adopt or update. found is
// false when the name is free; a name held only by records that are not ours is an error.
func decide(existing []Record, want Record) (rec Record, found bool, err error) {
	var ours []Record
	for _, r := range existing {
		if _, ok := r.Ours(); ok {
			ours = append(ours, r)
		}
	}
	for _, r := range ours { // an identical one first, then any CNAME of ours, then anything of ours
		if sameRecord(r, want) {
			return r, true, nil
		}
	}
	for _, r := range ours {
		if r.Type == "CNAME" {
			return r, true, nil
		}
	}
	if len(ours) > 0 {
		return ours[0], true, nil
	}
	if len(existing) > 0 {
		return Record{}, false, &ForeignRecordError{Kind: "record", Name: want.Name, Existing: existing}
	}
	return Record{}, false, nil
}

// sameRecord reports whether r already is what we want (TTL is ignored: proxied records are
// always automatic).
func sameRecord(r, want Record) bool {
	return r.Type == want.Type && canonicalName(r.Content) == want.Content && r.Proxied == want.Proxied && r.Comment == want.Comment
}

// Request fields are the SDK's param.Field, an internal type: it cannot be named here, but its
// Value and Present can be set, which is all the root package's cloudflare.F does. Importing
// that package for F (and Error) would compile and link about 130 of the SDK's packages
// (Zero Trust, Workers, …) into the control plane; dns, custom_hostnames and option are enough.

func cnameBody(r Record) dns.CNAMERecordParam {
	var b dns.CNAMERecordParam
	b.Name.Value, b.Name.Present = r.Name, true
	b.Type.Value, b.Type.Present = dns.CNAMERecordTypeCNAME, true
	b.Content.Value, b.Content.Present = r.Content, true
	b.Proxied.Value, b.Proxied.Present = r.Proxied, true
	b.TTL.Value, b.TTL.Present = dns.TTL(r.TTL), true
	b.Comment.Value, b.Comment.Present = r.Comment, true
	return b
}

// createRecord is the hot path of provisioning. Like list, it decodes the answer with
// encoding/json: the SDK's record-union decoder costs ~0.85 ms of CPU per record, which made the
// SDK the largest CPU user when provisioning many domains at once.
func (p *Provider) createRecord(ctx context.Context, want Record) (Record, error) {
	var body []byte
	op := "create record " + want.Name
	err := p.call(ctx, op, http.MethodPost, func(ctx context.Context, opts ...option.RequestOption) error {
		params := dns.RecordNewParams{Body: cnameBody(want)}
		params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
		_, err := p.records.New(ctx, params, append(opts, option.WithResponseBodyInto(&body))...)
		return err
	})
	if err != nil {
		return Record{}, err
	}
	var res struct {
		Result wireRecord `json:"result"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.Result.ID == "" {
		// The record was created (2xx) but we cannot read its id: uncertain, so the retry adopts it.
		return Record{}, &TransportError{Op: op, Method: http.MethodPost, Err: fmt.Errorf("decode created record: %v", err)}
	}
	return res.Result.record(), nil
}

// updateRecord overwrites a record of ours (PUT: every field, the type included).
func (p *Provider) updateRecord(ctx context.Context, id string, want Record) (Record, error) {
	var res *dns.RecordResponse
	err := p.call(ctx, "update record "+want.Name, http.MethodPut, func(ctx context.Context, opts ...option.RequestOption) (err error) {
		params := dns.RecordUpdateParams{Body: cnameBody(want)}
		params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
		res, err = p.records.Update(ctx, id, params, opts...)
		return err
	})
	if err != nil {
		return Record{}, err
	}
	return fromSDK(*res), nil
}

// FindRecords returns every record (any type, ours or not) whose name is exactly name.
func (p *Provider) FindRecords(ctx context.Context, name string) ([]Record, error) {
	name = canonicalName(name)
	if name == "" {
		return nil, errors.New("cloudflare: find records: empty name")
	}
	var params dns.RecordListParams
	params.Name.Present = true
	params.Name.Value.Exact.Value, params.Name.Value.Exact.Present = name, true
	return p.list(ctx, "list records "+name, params, func(Record) bool { return true })
}

// ListOurRecords returns every record of the zone that carries our marker, whatever its type.
// Cloudflare filters by comment prefix (comment.startswith); ParseComment re-checks each one
// because that filter ignores case. Cost: max(1, ceil(N/PageSize)) calls for N records of ours
// (one more only if the server reports no total_pages and N is a multiple of PageSize).
func (p *Provider) ListOurRecords(ctx context.Context) ([]Record, error) {
	var params dns.RecordListParams
	params.Comment.Present = true
	params.Comment.Value.Startswith.Value, params.Comment.Value.Startswith.Present = markerPrefix, true
	return p.list(ctx, "list our records", params, func(r Record) bool { _, ours := r.Ours(); return ours })
}

// wireRecord is the part of a DNS record we read, decoded with encoding/json (see list).
type wireRecord struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Type    string  `json:"type"`
	Content string  `json:"content"`
	Comment string  `json:"comment"`
	Proxied bool    `json:"proxied"`
	TTL     float64 `json:"ttl"`
}

func (r wireRecord) record() Record {
	return Record{ID: r.ID, Name: canonicalName(r.Name), Type: r.Type, Content: r.Content, Comment: r.Comment, Proxied: r.Proxied, TTL: r.TTL}
}

// listPage is one page of a DNS listing as it comes over the wire.
type listPage struct {
	Result     []wireRecord `json:"result"`
	ResultInfo resultInfo   `json:"result_info"`
}

// resultInfo is the v4 result_info (the SDK's struct drops count, total_count, total_pages).
type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
	TotalPages int `json:"total_pages"`
}

// list pages through a DNS listing. The SDK builds each request and maps its errors, but the
// page is decoded here: the SDK's decoder for the DNS record union costs about 1 ms of CPU per
// record (8.5 s for 10,000), encoding/json a few µs. Nor does it use the SDK's auto-pager,
// which stops only on an empty page (one call more than needed) and sends every page after
// the first with context.Background(), outside our deadline.
func (p *Provider) list(ctx context.Context, op string, params dns.RecordListParams, keep func(Record) bool) ([]Record, error) {
	params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
	params.PerPage.Value, params.PerPage.Present = float64(p.pageSize), true
	var out []Record
	for page := 1; page <= maxPages; page++ {
		params.Page.Value, params.Page.Present = float64(page), true
		var body []byte
		err := p.call(ctx, op, http.MethodGet, func(ctx context.Context, opts ...option.RequestOption) error {
			_, err := p.records.List(ctx, params, append(opts, option.WithResponseBodyInto(&body))...)
			return err
		})
		if err != nil {
			return nil, err
		}
		var res listPage
		if err := json.Unmarshal(body, &res); err != nil {
			return nil, &TransportError{Op: op, Method: http.MethodGet, Err: fmt.Errorf("decode page %d: %w", page, err)}
		}
		for _, r := range res.Result {
			if rec := r.record(); keep(rec) {
				out = append(out, rec)
			}
		}
		if lastPage(res.ResultInfo, page, len(res.Result)) {
			return out, nil
		}
	}
	return nil, &TransportError{Op: op, Method: http.MethodGet, Err: fmt.Errorf("more than %d pages", maxPages)}
}

// lastPage decides from result_info whether page was the last one. A short page counts as the
// last only against the page size the server says it used (it may cap per_page below ours).
func lastPage(info resultInfo, page, n int) bool {
	switch {
	case n == 0:
		return true
	case info.TotalPages > 0:
		return page >= info.TotalPages
	case info.PerPage > 0:
		return n < info.PerPage
	default:
		return false // nothing to go by: the next (empty) page ends it
	}
}

// DeleteRecord deletes a record of ours. A record already gone is success; a record that is not
// ours (its marker was removed or it was never ours) is left alone with *ForeignRecordError.
// Cost: two calls (read, delete), one when the record is gone.
func (p *Provider) DeleteRecord(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("cloudflare: delete record: empty id")
	}
	var res *dns.RecordResponse
	err := p.call(ctx, "read record "+id, http.MethodGet, func(ctx context.Context, opts ...option.RequestOption) (err error) {
		var params dns.RecordGetParams
		params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
		res, err = p.records.Get(ctx, id, params, opts...)
		return err
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	rec := fromSDK(*res)
	if _, ours := rec.Ours(); !ours {
		return &ForeignRecordError{Kind: "record", Name: rec.Name, Existing: []Record{rec}, Deleting: true}
	}
	err = p.call(ctx, "delete record "+rec.Name, http.MethodDelete, func(ctx context.Context, opts ...option.RequestOption) error {
		var params dns.RecordDeleteParams
		params.ZoneID.Value, params.ZoneID.Present = p.zoneID, true
		_, err := p.records.Delete(ctx, id, params, opts...)
		return err
	})
	if isNotFound(err) {
		return nil
	}
	return err
}

func isNotFound(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.NotFound()
}

func fromSDK(r dns.RecordResponse) Record {
	return Record{
		ID:      r.ID,
		Name:    canonicalName(r.Name),
		Type:    string(r.Type),
		Content: r.Content,
		Comment: r.Comment,
		Proxied: r.Proxied,
		TTL:     float64(r.TTL),
	}
}
