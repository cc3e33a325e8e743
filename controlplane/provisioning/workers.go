package provisioning

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/store"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

type provisionWorker struct {
	river.WorkerDefaults[ProvisionArgs]
	p *Provisioner
}

// Work creates (or adopts) the domain's record, then its custom hostname in SaaS mode.
func (w *provisionWorker) Work(ctx context.Context, job *river.Job[ProvisionArgs]) error {
	p := w.p
	st := p.cfg.Store
	d, err := st.GetDomain(ctx, job.Args.DomainID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted before we got here: nothing to create
	}
	if err != nil {
		return err
	}
	if d.DeletingAt != nil || d.DeactivatedAt != nil {
		return nil // being removed, or out of service until its DNS is fixed
	}
	if d.TunnelUUID == nil {
		msg := i18n.T("no se puede crear el registro en Cloudflare: el dominio no tiene un despliegue con túnel",
			"cannot create the Cloudflare record: the domain has no tenant deployment with a tunnel")
		_ = st.RecordProvisionError(ctx, d.ID, "cloudflare", msg)
		return river.JobCancel(errors.New(msg.EN))
	}
	uncertain := job.Attempt > 1
	if !d.CloudflareConfigured || d.CloudflareDNSRecordID == nil {
		rec, err := p.cfg.DNS.EnsureCNAME(ctx, d.ID, d.SajetFullDomain, *d.TunnelUUID+".cfargotunnel.com", uncertain)
		if err != nil {
			return p.fail(ctx, d.ID, "cloudflare", i18n.F("crear el registro %s", "create record %s", d.SajetFullDomain), err)
		}
		if err := st.MarkCloudflareConfigured(ctx, d.ID, rec.ID); errors.Is(err, store.ErrNotFound) {
			// Deleted while we were creating: the record is ours to remove.
			return p.cfg.DNS.DeleteRecord(ctx, rec.ID)
		} else if err != nil {
			return err
		}
		p.logger.InfoContext(ctx, "cloudflare record ready", "domain", d.ExternalDomain, "record", d.SajetFullDomain, "id", rec.ID)
	}
	if p.cfg.SaaS == nil {
		return nil
	}
	ch, err := p.cfg.SaaS.EnsureCustomHostname(ctx, d.ID, d.ExternalDomain, uncertain)
	if err != nil {
		return p.fail(ctx, d.ID, "custom_hostname", i18n.F("crear el custom hostname %s", "create custom hostname %s", d.ExternalDomain), err)
	}
	active, err := p.recordCustomHostname(ctx, d.ID, ch)
	if err != nil || active {
		return err
	}
	_, err = p.client.Insert(ctx, RefreshCustomHostnameArgs{DomainID: d.ID},
		&river.InsertOpts{ScheduledAt: time.Now().Add(p.cfg.RefreshInterval)})
	if err != nil {
		return fmt.Errorf("schedule custom hostname refresh: %w", err)
	}
	return nil
}

// recordCustomHostname stores what Cloudflare reports and says whether the hostname is fully
// active (hostname and certificate).
func (p *Provisioner) recordCustomHostname(ctx context.Context, domainID int64, ch cloudflare.CustomHostname) (bool, error) {
	detail := store.CustomHostnameDetail{Errors: append(append([]string(nil), ch.VerificationErrors...), ch.SSLErrors...)}
	for _, r := range ch.Records() {
		detail.Records = append(detail.Records, store.ValidationRecord{Purpose: r.Purpose, Type: r.Type, Name: r.Name, Value: r.Value})
	}
	err := p.cfg.Store.RecordCustomHostname(ctx, domainID, store.CustomHostnameState{
		ID: ch.ID, Status: ch.Status, SSLStatus: ch.SSLStatus, Detail: detail,
	})
	if errors.Is(err, store.ErrNotFound) {
		return true, p.cfg.SaaS.DeleteCustomHostname(ctx, ch.ID)
	}
	if err != nil {
		return false, err
	}
	return ch.Status == "active" && ch.SSLStatus == "active", nil
}

// refreshGiveUp bounds polling: Cloudflare deletes a hostname left "moved" after 7 days, and a
// customer who has not published the records in that time gets a message instead of a poll loop.
const refreshGiveUp = 7 * 24 * time.Hour

type refreshWorker struct {
	river.WorkerDefaults[RefreshCustomHostnameArgs]
	p *Provisioner
}

// Work re-reads a custom hostname's status until Cloudflare reports it active.
func (w *refreshWorker) Work(ctx context.Context, job *river.Job[RefreshCustomHostnameArgs]) error {
	p := w.p
	if p.cfg.SaaS == nil {
		return nil
	}
	d, err := p.cfg.Store.GetDomain(ctx, job.Args.DomainID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (d.DeletingAt != nil || d.DeactivatedAt != nil || d.CustomHostnameID == nil)) {
		return nil
	}
	if err != nil {
		return err
	}
	ch, err := p.cfg.SaaS.GetCustomHostname(ctx, *d.CustomHostnameID)
	if err != nil {
		return p.fail(ctx, d.ID, "custom_hostname", i18n.F("leer el custom hostname %s", "read custom hostname %s", d.ExternalDomain), err)
	}
	active, err := p.recordCustomHostname(ctx, d.ID, ch)
	if err != nil || active {
		return err
	}
	if time.Since(job.CreatedAt) > refreshGiveUp {
		msg := i18n.F("el custom hostname %s sigue %s (certificado %s) después de 7 días: publique los registros de dns_records y verifique de nuevo",
			"custom hostname %s still %s (certificate %s) after 7 days: publish the records in dns_records, then verify again",
			d.ExternalDomain, ch.Status, ch.SSLStatus)
		_ = p.cfg.Store.RecordProvisionError(ctx, d.ID, "custom_hostname", msg)
		return river.JobCancel(errors.New(msg.EN))
	}
	// The same job polls again later; inserting a new one would be deduplicated against this one.
	return river.JobSnooze(p.cfg.RefreshInterval)
}

type deprovisionWorker struct {
	river.WorkerDefaults[DeprovisionArgs]
	p *Provisioner
}

// Work removes a deleted domain's record and custom hostname, then lets the row go. A
// deactivated domain's objects go the same way, the row staying.
func (w *deprovisionWorker) Work(ctx context.Context, job *river.Job[DeprovisionArgs]) error {
	p := w.p
	d, err := p.cfg.Store.GetDomain(ctx, job.Args.DomainID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.DeletingAt == nil && d.DeactivatedAt == nil {
		return nil // not being deleted or deactivated (any more): nothing to remove
	}
	if d.CloudflareDNSRecordID != nil {
		err := p.cfg.DNS.DeleteRecord(ctx, *d.CloudflareDNSRecordID)
		var foreign *cloudflare.ForeignRecordError
		switch {
		case errors.As(err, &foreign):
			// Someone took the record over (changed its marker): it is theirs now, and waiting
			// would keep the domain in deleting forever. Leave it and say so in the audit log.
			_ = p.cfg.Store.Audit(ctx, "provisioner", "cloudflare.record.released", "domain", d.ID,
				map[string]any{"record_id": *d.CloudflareDNSRecordID, "reason": foreign.Error()})
		case err != nil:
			return p.fail(ctx, d.ID, "cloudflare", i18n.F("borrar el registro %s", "delete record %s", d.SajetFullDomain), err)
		}
	}
	// A provision job may have created the record without recording its id; remove any record of
	// ours for this domain under its name.
	recs, err := p.cfg.DNS.FindRecords(ctx, d.SajetFullDomain)
	if err != nil {
		return p.fail(ctx, d.ID, "cloudflare", i18n.F("buscar el registro %s", "look up record %s", d.SajetFullDomain), err)
	}
	for _, r := range recs {
		if id, ours := cloudflare.ParseComment(r.Comment); ours && id == d.ID {
			if err := p.cfg.DNS.DeleteRecord(ctx, r.ID); err != nil {
				return p.fail(ctx, d.ID, "cloudflare", i18n.F("borrar el registro %s", "delete record %s", d.SajetFullDomain), err)
			}
		}
	}
	if d.CustomHostnameID != nil && p.cfg.SaaS != nil {
		if err := p.cfg.SaaS.DeleteCustomHostname(ctx, *d.CustomHostnameID); err != nil {
			return p.fail(ctx, d.ID, "custom_hostname", i18n.F("borrar el custom hostname %s", "delete custom hostname %s", d.ExternalDomain), err)
		}
	}
	if d.DeletingAt == nil {
		p.logger.InfoContext(ctx, "cloudflare objects of a deactivated domain removed", "domain", d.ExternalDomain)
		return p.cfg.Store.FinishDeactivation(ctx, d.ID)
	}
	removed, err := p.cfg.Store.FinishCloudflareRemoval(ctx, d.ID)
	if err != nil {
		return err
	}
	p.logger.InfoContext(ctx, "cloudflare objects removed", "domain", d.ExternalDomain, "row_removed", removed)
	return nil
}
