package diagnose

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Cloudflare is the part of the provider the report reads (*cloudflare.Provider): the record of
// the platform hostname and the custom hostname. Two calls at most per report.
type Cloudflare interface {
	FindRecords(ctx context.Context, name string) ([]cloudflare.Record, error)
	GetCustomHostname(ctx context.Context, id string) (cloudflare.CustomHostname, error)
}

// CloudflareEvidence is what Cloudflare holds for the domain.
type CloudflareEvidence struct {
	ProviderEnabled bool    `json:"provider_enabled"`
	SaaS            bool    `json:"saas"`
	Record          *Record `json:"record,omitempty" doc:"The record of the platform hostname"`
	// Want is the record's content the tunnel needs (<tunnel>.cfargotunnel.com, proxied).
	Want           string               `json:"want,omitempty"`
	CustomHostname *CustomHostnameState `json:"custom_hostname,omitempty"`
	LastError      string               `json:"last_error,omitempty" doc:"The last provisioning error, as stored on the domain"`
	Error          string               `json:"error,omitempty"`
}

// Record is a DNS record in Cloudflare.
type Record struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Content string `json:"content"`
	Proxied bool   `json:"proxied"`
	Ours    bool   `json:"ours" doc:"It carries Sajet's marker (comment managed-by:sajet)"`
}

// CustomHostnameState is the Cloudflare for SaaS custom hostname of the customer's hostname.
type CustomHostnameState struct {
	ID                string                        `json:"id"`
	Status            string                        `json:"status"`
	SSLStatus         string                        `json:"ssl_status"`
	ValidationRecords []cloudflare.ValidationRecord `json:"validation_records,omitempty"`
	Errors            []string                      `json:"errors,omitempty"`
}

// cloudflareView is what Cloudflare answered.
type cloudflareView struct {
	records []cloudflare.Record
	recErr  error
	ch      *cloudflare.CustomHostname
	chErr   error
}

func (s *Service) viewCloudflare(ctx context.Context, d store.Domain) cloudflareView {
	var v cloudflareView
	if s.cloudflare == nil {
		return v
	}
	v.records, v.recErr = s.cloudflare.FindRecords(ctx, d.SajetFullDomain)
	if s.cfg.SaaS && d.CustomHostnameID != nil {
		ch, err := s.cloudflare.GetCustomHostname(ctx, *d.CustomHostnameID)
		v.ch, v.chErr = &ch, err
	}
	return v
}

// validationValues are the TXT values Cloudflare asked the customer to publish (from the custom
// hostname, or as last stored on the domain): an _acme-challenge TXT holding one is expected.
func validationValues(d store.Domain, v cloudflareView) []string {
	var recs []cloudflare.ValidationRecord
	if v.ch != nil && v.chErr == nil {
		recs = v.ch.Records()
	} else if len(d.CustomHostnameDetail) > 0 {
		var detail store.CustomHostnameDetail
		if json.Unmarshal(d.CustomHostnameDetail, &detail) == nil {
			for _, r := range detail.Records {
				recs = append(recs, cloudflare.ValidationRecord(r))
			}
		}
	}
	if recs == nil {
		return nil
	}
	out := []string{}
	for _, r := range recs {
		if r.Type == "TXT" {
			out = append(out, r.Value)
		}
	}
	return out
}

// cloudflarePart judges our record and, in SaaS mode, the custom hostname.
func (s *Service) cloudflarePart(d domainFacts, dom store.Domain, v cloudflareView) (part, CloudflareEvidence) {
	ev := CloudflareEvidence{ProviderEnabled: s.cloudflare != nil, SaaS: s.cfg.SaaS, Want: d.tunnelTarget}
	p := part{name: PartCloudflare, title: titleCloudflare}
	lastErr := provisionError(dom)
	if !lastErr.IsZero() {
		ev.LastError = lastErr.EN
		p.details = append(p.details, i18n.F("último error de aprovisionamiento: %s", "last provisioning error: %s", lastErr))
	}
	if s.cloudflare == nil {
		p.verdict, p.message = Unknown, msgCloudflareOff(d.expected)
		return p, ev
	}
	if v.recErr != nil {
		ev.Error = v.recErr.Error()
		p.verdict, p.message = Unknown, msgCloudflareUnreachable(v.recErr.Error())
		return p, ev
	}
	var mine, foreign *cloudflare.Record
	for i := range v.records {
		r := &v.records[i]
		if _, ours := r.Ours(); ours && mine == nil {
			mine = r
		} else if !ours && foreign == nil {
			foreign = r
		}
	}
	shown := mine
	if shown == nil {
		shown = foreign
	}
	if shown != nil {
		_, ours := shown.Ours()
		ev.Record = &Record{Name: shown.Name, Type: shown.Type, Content: shown.Content, Proxied: shown.Proxied, Ours: ours}
		p.details = append(p.details, i18n.F("registro: %s %s → %s (proxied: %v)", "record: %s %s → %s (proxied: %v)",
			shown.Name, shown.Type, shown.Content, shown.Proxied))
	}
	record := func() (Verdict, i18n.Text, i18n.Text) {
		switch {
		case d.tunnelTarget == "":
			return Fail, msgNoTunnelForRecord(d.expected), fixAssignTunnel
		case mine == nil && foreign != nil:
			return Fail, msgForeignRecord(d.expected, foreign.Type, foreign.Content), fixForeignRecord(d.expected)
		case mine == nil && !lastErr.IsZero():
			return Fail, msgRecordMissingError(d.expected, lastErr), fixProvisionError
		case mine == nil:
			return Fail, msgRecordMissing(d.expected), fixProvisionPending
		case mine.Type != "CNAME" || !sameName(mine.Content, d.tunnelTarget):
			return Fail, msgRecordWrongTarget(d.expected, mine.Type, mine.Content, d.tunnelTarget), fixProvisionPending
		case !mine.Proxied:
			return Fail, msgRecordNotProxied(d.expected), fixProvisionPending
		}
		return OK, msgRecordOK(d.expected, d.tunnelTarget), i18n.Text{}
	}
	p.verdict, p.message, p.fix = record()
	if p.verdict != OK {
		return p, ev
	}
	if !s.cfg.SaaS {
		p.verdict, p.message, p.fix = Warn, msgNoSaaS(d.host, d.expected), fixNoSaaS
		return p, ev
	}
	if dom.CustomHostnameID == nil {
		p.verdict, p.message, p.fix = Fail, msgCustomHostnameMissing(d.host, lastErr), fixProvisionPending
		return p, ev
	}
	if v.chErr != nil {
		ev.Error = v.chErr.Error()
		p.verdict, p.message = Unknown, msgCloudflareUnreachable(v.chErr.Error())
		return p, ev
	}
	ch := v.ch
	ev.CustomHostname = &CustomHostnameState{ID: ch.ID, Status: ch.Status, SSLStatus: ch.SSLStatus, ValidationRecords: ch.Records(), Errors: ch.Errors()}
	p.details = append(p.details, i18n.F("custom hostname %s: estado %s, certificado %s", "custom hostname %s: status %s, certificate %s",
		ch.Hostname, ch.Status, ch.SSLStatus))
	for _, r := range ch.Records() {
		p.details = append(p.details, i18n.F("publique %s %s = %s (%s)", "publish %s %s = %s (%s)", r.Type, r.Name, r.Value, r.Purpose))
	}
	for _, e := range ch.Errors() {
		p.details = append(p.details, i18n.Same("Cloudflare: "+e))
	}
	switch {
	case ch.Status == "active" && ch.SSLStatus == "active":
		p.verdict, p.message = OK, msgCustomHostnameActive(d.host, d.expected)
	case ch.Status == "moved":
		p.verdict, p.message, p.fix = Fail, msgCustomHostnameMoved(d.host), fixRecord(d, "wrong_target")
	case len(ch.Records()) > 0:
		p.verdict, p.message, p.fix = Fail, msgCustomHostnamePending(d.host, ch.Status, ch.SSLStatus, ch.Errors()), fixValidationRecords(ch.Records())
	default:
		p.verdict, p.message, p.fix = Fail, msgCustomHostnamePending(d.host, ch.Status, ch.SSLStatus, ch.Errors()), fixWaitCloudflare
	}
	return p, ev
}

// provisionError is the domain's last provisioning error, when the last error is one.
func provisionError(d store.Domain) i18n.Text {
	if d.ProvisionErrorStep == nil || d.LastError == nil {
		return i18n.Text{}
	}
	return lastErrorText(d).Map(strings.TrimSpace)
}
