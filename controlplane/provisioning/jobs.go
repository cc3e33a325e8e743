package provisioning

import (
	"github.com/riverqueue/river"

	"github.com/jeturing/sajet-domains/controlplane/jobs"
)

// ProvisionArgs creates a domain's Cloudflare objects.
type ProvisionArgs struct {
	DomainID int64 `json:"domain_id"`
}

// Kind implements river.JobArgs.
func (ProvisionArgs) Kind() string { return "provision_domain" }

// InsertOpts keeps one queued provisioning job per domain.
func (ProvisionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueName, UniqueOpts: whileQueued}
}

// DeprovisionArgs removes a deleted domain's Cloudflare objects.
type DeprovisionArgs struct {
	DomainID int64 `json:"domain_id"`
}

// Kind implements river.JobArgs.
func (DeprovisionArgs) Kind() string { return "deprovision_domain" }

// InsertOpts keeps one queued removal job per domain.
func (DeprovisionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueName, UniqueOpts: whileQueued}
}

// RefreshCustomHostnameArgs polls a SaaS custom hostname until it is active.
type RefreshCustomHostnameArgs struct {
	DomainID int64 `json:"domain_id"`
}

// Kind implements river.JobArgs.
func (RefreshCustomHostnameArgs) Kind() string { return "refresh_custom_hostname" }

// InsertOpts keeps one queued refresh per domain.
func (RefreshCustomHostnameArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueName, UniqueOpts: whileQueued}
}

// ReconcileArgs is the periodic zone reconciliation.
type ReconcileArgs struct{}

// Kind implements river.JobArgs.
func (ReconcileArgs) Kind() string { return "reconcile_zone" }

// InsertOpts keeps at most one queued reconciliation.
func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueName, UniqueOpts: whileQueued, MaxAttempts: 3}
}

const queueName = "provisioning"

// whileQueued: one queued job per arguments (jobs.WhileQueued).
var whileQueued = jobs.WhileQueued
