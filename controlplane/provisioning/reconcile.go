package provisioning

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

type reconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	p *Provisioner
}

// Work converges the zone with the database: level-triggered, so a missed job, a record deleted
// behind our back or a crash between steps is healed on the next run.
func (w *reconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	_, err := w.p.reconcile(ctx)
	return err
}

// ReconcileReport says what one reconciliation found and did.
type ReconcileReport struct {
	Records, Wanted    int
	Recreated, Updated int
	Orphans, Removed   int
	Skipped            int // repairs left for the next run (MaxRepairsPerRun)
	Calls              int // Cloudflare writes made (the listing costs ceil(records/5000) more)
	Duration           time.Duration
	FirstError         error
}

func (p *Provisioner) reconcile(ctx context.Context) (ReconcileReport, error) {
	start := time.Now()
	var rep ReconcileReport
	st := p.cfg.Store
	records, err := p.cfg.DNS.ListOurRecords(ctx)
	if err != nil {
		return rep, err
	}
	wanted, err := st.WantedRecords(ctx)
	if err != nil {
		return rep, err
	}
	rep.Records, rep.Wanted = len(records), len(wanted)

	byName := make(map[string]cloudflare.Record, len(records))
	for _, r := range records {
		byName[r.Name] = r
	}
	budget := p.cfg.MaxRepairsPerRun
	wantedNames := make(map[string]bool, len(wanted))
	for _, want := range wanted {
		wantedNames[want.Name] = true
		target := want.TunnelUUID + ".cfargotunnel.com"
		r, ok := byName[want.Name]
		if ok && r.Content == target && r.Proxied {
			continue
		}
		if budget == 0 {
			rep.Skipped++
			continue
		}
		budget--
		rep.Calls++
		rec, err := p.cfg.DNS.EnsureCNAME(ctx, want.DomainID, want.Name, target, true)
		if err != nil {
			if rep.FirstError == nil {
				rep.FirstError = err
			}
			_ = st.RecordProvisionError(ctx, want.DomainID, "cloudflare", i18n.F("al reconciliar el registro %s: %v", "reconcile record %s: %v", want.Name, err))
			continue
		}
		action := "cloudflare.record.recreated"
		if ok {
			action = "cloudflare.record.updated"
			rep.Updated++
		} else {
			rep.Recreated++
		}
		if err := st.MarkCloudflareConfigured(ctx, want.DomainID, rec.ID); err != nil {
			p.logger.WarnContext(ctx, "record repaired record id", "domain_id", want.DomainID, "err", err)
		}
		_ = st.Audit(ctx, "reconciler", action, "domain", want.DomainID, map[string]any{"name": want.Name, "record_id": rec.ID})
	}

	// Ours but unwanted: an orphan, unless its domain is alive (provisioning in flight).
	var ids []int64
	candidates := map[string]cloudflare.Record{}
	for _, r := range records {
		if wantedNames[r.Name] {
			continue
		}
		id, _ := cloudflare.ParseComment(r.Comment)
		ids = append(ids, id)
		candidates[r.ID] = r
	}
	live, err := st.LiveDomainIDs(ctx, ids)
	if err != nil {
		return rep, err
	}
	orphans := map[string]string{}
	for recID, r := range candidates {
		if id, _ := cloudflare.ParseComment(r.Comment); !live[id] {
			orphans[recID] = r.Name
		}
	}
	rep.Orphans = len(orphans)
	expired, err := st.NoteOrphans(ctx, orphans, time.Now().Add(-p.cfg.OrphanGrace))
	if err != nil {
		return rep, err
	}
	for _, recID := range expired {
		if budget == 0 {
			rep.Skipped++
			continue
		}
		budget--
		rep.Calls++
		if err := p.cfg.DNS.DeleteRecord(ctx, recID); err != nil {
			if rep.FirstError == nil {
				rep.FirstError = err
			}
			continue
		}
		rep.Removed++
		_ = st.ForgetOrphan(ctx, recID, orphans[recID])
	}
	rep.Duration = time.Since(start)
	p.logger.InfoContext(ctx, "zone reconciled", "records", rep.Records, "wanted", rep.Wanted, "recreated", rep.Recreated,
		"updated", rep.Updated, "orphans", rep.Orphans, "removed", rep.Removed, "skipped", rep.Skipped, "duration", rep.Duration)
	return rep, nil
}
