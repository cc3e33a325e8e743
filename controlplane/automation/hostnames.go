package automation

import (
	"context"
	"fmt"
	"strings"

	"github.com/riverqueue/river"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/store"
)

type sweepHostnamesWorker struct {
	river.WorkerDefaults[SweepHostnamesArgs]
	a *Automation
}

// Work sweeps the custom hostnames (SaaS mode).
func (w *sweepHostnamesWorker) Work(ctx context.Context, _ *river.Job[SweepHostnamesArgs]) error {
	_, err := w.a.SweepHostnames(ctx)
	return err
}

// HostnameSweep is what one sweep of the custom hostnames did.
type HostnameSweep struct {
	Seen, Changed, Revived int
}

// SweepHostnames reads every custom hostname of the zone (50 per call) and records, for the
// domains whose hostname changed, its status, SSL status and certificate expiry; the store opens
// certificate alerts from them. A hostname Cloudflare marked moved, or whose validation timed
// out, is revived with a PATCH when our own check says the customer's DNS is right: Cloudflare's
// view lags, and re-creating it would rotate the ownership token (docs/CLOUDFLARE.md §2).
func (a *Automation) SweepHostnames(ctx context.Context) (HostnameSweep, error) {
	var sum HostnameSweep
	if a.cfg.Hostnames == nil {
		return sum, nil
	}
	known, err := a.cfg.Store.HostnameRecords(ctx)
	if err != nil {
		return sum, err
	}
	err = a.cfg.Hostnames.ListCustomHostnames(ctx, func(ch cloudflare.CustomHostname) error {
		rec, ok := known[ch.ID]
		if !ok {
			return nil // not a live domain's (deleted, or created by hand)
		}
		sum.Seen++
		revived := false
		if (ch.Status == "moved" || strings.HasSuffix(ch.SSLStatus, "_timed_out")) && rec.DNSOK && !rec.Deactivated {
			fresh, err := a.cfg.Hostnames.ReviveCustomHostname(ctx, ch.ID, ch.SSLMethod)
			if err != nil {
				a.logger.WarnContext(ctx, "revive custom hostname", "domain_id", rec.DomainID, "err", err)
			} else {
				ch, revived = fresh, true
				sum.Revived++
			}
		}
		var expires = &ch.CertificateExpiresAt
		if ch.CertificateExpiresAt.IsZero() {
			expires = nil
		}
		same := ch.Status == rec.Status && ch.SSLStatus == rec.SSLStatus &&
			((expires == nil) == (rec.CertExpiresAt == nil)) && (expires == nil || expires.Equal(*rec.CertExpiresAt))
		if same && !revived {
			return nil
		}
		sum.Changed++
		return a.cfg.Store.RecordHostname(ctx, store.HostnameObservation{DomainID: rec.DomainID, Status: ch.Status,
			SSLStatus: ch.SSLStatus, CertExpiresAt: expires, Revived: revived, Now: a.now()})
	})
	if err != nil {
		return sum, fmt.Errorf("sweep custom hostnames: %w", err)
	}
	a.logger.InfoContext(ctx, "custom hostnames swept", "seen", sum.Seen, "changed", sum.Changed, "revived", sum.Revived)
	return sum, nil
}
