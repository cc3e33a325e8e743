package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/internal/textlimit"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Agent is an edge agent enrolled for one tunnel; its token is stored only as a SHA-256 hash.
type Agent struct {
	ID             int64           `db:"id" json:"id"`
	TunnelID       int64           `db:"tunnel_id" json:"tunnel_id"`
	TunnelName     string          `db:"tunnel_name" json:"tunnel"`
	Name           string          `db:"name" json:"name"`
	LastSeenAt     *time.Time      `db:"last_seen_at" json:"last_seen_at"`
	AppliedVersion *int64          `db:"applied_version" json:"applied_version"`
	AppliedSHA256  *string         `db:"applied_sha256" json:"applied_sha256"`
	Status         json.RawMessage `db:"status" json:"status,omitempty"`
	LastError      *string         `db:"last_error" json:"last_error"`
	CreatedAt      time.Time       `db:"created_at" json:"created_at"`
	RevokedAt      *time.Time      `db:"revoked_at" json:"revoked_at"`
	ConfigVersion  int64           `db:"config_version" json:"desired_version"`
	// Connected: a session is open on some replica and reported within AgentStaleAfter (a replica
	// that died cannot mark its sessions closed, so silence ends "connected" too).
	Connected    bool       `db:"connected" json:"connected"`
	ConnectedAt  *time.Time `db:"connected_at" json:"connected_at"`
	SessionEpoch int64      `db:"session_epoch" json:"session_epoch"`
	RemoteAddr   *string    `db:"remote_addr" json:"remote_addr"`
}

// AgentStaleAfter is how long after its last report an agent stops counting as connected: a few
// status intervals (15 s by default).
const AgentStaleAfter = 90 * time.Second

const agentSelect = `SELECT a.id, a.tunnel_id, t.name AS tunnel_name, a.name, a.last_seen_at, a.applied_version,
	a.applied_sha256, a.status, a.last_error, a.created_at, a.revoked_at, t.config_version,
	(a.connected_at IS NOT NULL AND (a.disconnected_at IS NULL OR a.disconnected_at < a.connected_at)
		AND a.last_seen_at > now() - interval '90 seconds') AS connected,
	a.connected_at, a.session_epoch, a.remote_addr
FROM agents a JOIN tunnels t ON t.id = a.tunnel_id`

// CreateAgent enrols an agent for a tunnel with the hash of its token.
func (s *Store) CreateAgent(ctx context.Context, actor string, tunnelID int64, name string, tokenHash []byte) (Agent, error) {
	var out Agent
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO agents (tunnel_id, name, token_hash) VALUES ($1, $2, $3) RETURNING id`,
			tunnelID, name, tokenHash).Scan(&id)
		switch {
		case foreignKeyViolation(err) != "":
			return &MissingError{Code: "tunnel_not_found", Message: i18n.F("el túnel %d no existe", "tunnel %d does not exist", tunnelID)}
		case uniqueViolation(err) != "":
			return &ConflictError{Code: "agent_exists", Message: i18n.F("ya existe un agente llamado %q", "an agent named %q already exists", name)}
		case err != nil:
			return fmt.Errorf("insert agent: %w", err)
		}
		if err := audit(ctx, tx, actor, "agent.create", "agent", id, map[string]any{"tunnel_id": tunnelID, "name": name}); err != nil {
			return err
		}
		if err := notifyAgent(ctx, tx, id); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, agentSelect+` WHERE a.id = $1`, id)
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Agent])
		return err
	})
	return out, err
}

// ListAgents lists agents with what they last reported.
func (s *Store) ListAgents(ctx context.Context, after int64, limit int) ([]Agent, error) {
	rows, _ := s.pool.Query(ctx, agentSelect+` WHERE a.id > $1 ORDER BY a.id LIMIT $2`, after, limit)
	as, err := pgx.CollectRows(rows, pgx.RowToStructByName[Agent])
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return as, nil
}

// AgentChannel is the LISTEN/NOTIFY channel on which an agent's id is sent when its token changes:
// it was enrolled, revoked, or its token rotated. Every replica's gateway reloads the set of valid
// agent tokens and ends sessions whose token is no longer valid.
const AgentChannel = "sajet_agent"

func notifyAgent(ctx context.Context, tx pgx.Tx, agentID int64) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2::bigint::text)`, AgentChannel, agentID); err != nil {
		return fmt.Errorf("notify agent %d: %w", agentID, err)
	}
	return nil
}

// AgentTokens returns the token hash of every live (not revoked) agent, mapped to the agent's id:
// the gateway's in-memory set of valid tokens. Agents are few (one or a few per tunnel host).
func (s *Store) AgentTokens(ctx context.Context) (map[[32]byte]int64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, token_hash FROM agents WHERE revoked_at IS NULL`)
	out := map[[32]byte]int64{}
	var id int64
	var hash []byte
	_, err := pgx.ForEachRow(rows, []any{&id, &hash}, func() error {
		if len(hash) == 32 {
			out[[32]byte(hash)] = id
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load agent tokens: %w", err)
	}
	return out, nil
}

// RevokeAgent revokes an agent: its token stops working on every replica and its live session is
// ended (NOTIFY on AgentChannel at commit), and it no longer counts for its tunnel's "applied by
// every agent" floor, so domains that waited only for it are settled now. Revoking a revoked agent
// changes nothing; an unknown id is ErrNotFound.
func (s *Store) RevokeAgent(ctx context.Context, actor string, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var tunnelID int64
		var newly bool
		err := tx.QueryRow(ctx, `UPDATE agents a SET revoked_at = coalesce(a.revoked_at, now())
			FROM (SELECT id, revoked_at FROM agents WHERE id = $1 FOR UPDATE) old WHERE a.id = old.id
			RETURNING a.tunnel_id, old.revoked_at IS NULL`, id).Scan(&tunnelID, &newly)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("revoke agent %d: %w", id, err)
		}
		if !newly {
			return nil
		}
		if err := audit(ctx, tx, actor, "agent.revoke", "agent", id, nil); err != nil {
			return err
		}
		if _, err := settleTunnel(ctx, tx, tunnelID, actor, map[string]any{"revoked_agent": id}); err != nil {
			return err
		}
		return notifyAgent(ctx, tx, id)
	})
}

// RotateAgentToken gives a live agent a new token hash: the old token stops working on every
// replica and a session opened with it is ended (NOTIFY on AgentChannel at commit). A revoked
// agent is a ConflictError agent_revoked; an unknown id is ErrNotFound.
func (s *Store) RotateAgentToken(ctx context.Context, actor string, id int64, tokenHash []byte) (Agent, error) {
	var out Agent
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var revoked bool
		err := tx.QueryRow(ctx, `SELECT revoked_at IS NOT NULL FROM agents WHERE id = $1 FOR UPDATE`, id).Scan(&revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("rotate token of agent %d: %w", id, err)
		}
		if revoked {
			return &ConflictError{Code: "agent_revoked", Message: i18n.F("el agente %d está revocado; inscriba un agente nuevo", "agent %d is revoked; enrol a new agent instead", id)}
		}
		if _, err := tx.Exec(ctx, `UPDATE agents SET token_hash = $2 WHERE id = $1`, id, tokenHash); err != nil {
			return fmt.Errorf("rotate token of agent %d: %w", id, err)
		}
		if err := audit(ctx, tx, actor, "agent.rotate_token", "agent", id, nil); err != nil {
			return err
		}
		if err := notifyAgent(ctx, tx, id); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, agentSelect+` WHERE a.id = $1`, id)
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Agent])
		return err
	})
	return out, err
}

// AgentByToken finds a live agent by the hash of its token (the gateway's authentication).
func (s *Store) AgentByToken(ctx context.Context, tokenHash []byte) (Agent, error) {
	rows, _ := s.pool.Query(ctx, agentSelect+` WHERE a.token_hash = $1 AND a.revoked_at IS NULL`, tokenHash)
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Agent])
	if errors.Is(err, pgx.ErrNoRows) {
		return Agent{}, ErrNotFound
	}
	if err != nil {
		return Agent{}, fmt.Errorf("look up agent: %w", err)
	}
	return a, nil
}

// AgentAck is an agent's answer to a desired version: an ACK (OK) or a NACK with the stage that
// failed. A NACK leaves the agent on its previous version.
type AgentAck struct {
	Version int64
	OK      bool
	Stage   string
	Error   string
	SHA256  string
	// FromHello: the version comes from a hello (the agent finished an apply whose ACK was lost,
	// e.g. it was killed mid-apply), not from an answer to a push; the agent's last error stays.
	FromHello bool
	// Rejected are the rules a NACK at validate is attributed to.
	Rejected []RejectedRule
}

// RejectedRule is a managed rule an agent refused (protocol.Rejection).
type RejectedRule struct {
	Hostname string
	Reason   string // protocol.Reject*: invalid, base_conflict, duplicate, cloudflared
	Error    string
}

// ownerSentence is what the owner of a domain is told about an agent's refusal of its rule:
// the agent's words only when they are about the rule's own content, never the operator's
// rules or another tenant's hostnames.
//
// The agent's own words (r.Error) come from its validator or from cloudflared, in English, and
// are quoted as they came: evidence, like a DNS answer, not a sentence of ours.
func (r RejectedRule) ownerSentence() i18n.Text {
	switch r.Reason {
	case "base_conflict":
		return baseConflictSentence(r.Hostname)
	case "duplicate":
		return duplicateSentence(r.Hostname)
	}
	return i18n.F("el agente del túnel rechazó la regla de %s: %s", "the tunnel agent refused the rule for %s: %s",
		r.Hostname, textlimit.Truncate(r.Error, 1000))
}

// RecordAgentAck stores an agent's answer. On an ACK, every domain of the tunnel whose rules are
// now applied by all its enrolled agents becomes tunnel_ingress_configured, and deleted domains
// that no agent routes any more (and whose Cloudflare objects are gone) are removed; their ids are
// returned. On a NACK, the error is stored on the agent and shown on the tunnel's domains that
// were waiting for it.
func (s *Store) RecordAgentAck(ctx context.Context, agentID int64, a AgentAck) (removed []int64, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var tunnelID int64
		var name string
		if !a.OK {
			return s.recordNack(ctx, tx, agentID, a)
		}
		err := tx.QueryRow(ctx, `UPDATE agents SET applied_version = greatest(coalesce(applied_version, 0), $2),
				applied_sha256 = $3, last_error = CASE WHEN $4 THEN last_error END, last_seen_at = now()
			WHERE id = $1 RETURNING tunnel_id, name`, agentID, a.Version, a.SHA256, a.FromHello).Scan(&tunnelID, &name)
		if err != nil {
			return fmt.Errorf("record ack of agent %d: %w", agentID, err)
		}
		removed, err = settleTunnel(ctx, tx, tunnelID, "agent:"+name, map[string]any{"version": a.Version})
		return err
	})
	return removed, err
}

// settleTunnel brings a tunnel's domains in line with what every live (not revoked) agent of the
// tunnel has applied: domains whose version all of them run become tunnel_ingress_configured, and
// deleted domains none of them routes any more (and whose Cloudflare objects are gone) are
// removed, audited as actor with detail; their ids are returned. With no live agent nothing is
// settled. RecordAgentAck runs it after an ACK, RevokeAgent after an agent stops counting.
func settleTunnel(ctx context.Context, tx pgx.Tx, tunnelID int64, actor string, detail map[string]any) ([]int64, error) {
	// What every enrolled agent of the tunnel has applied.
	const floor = `(SELECT min(coalesce(applied_version, 0)) FROM agents WHERE tunnel_id = $1 AND revoked_at IS NULL)`
	// A domain left out of the desired set is not routed, whatever version was applied.
	excluded, err := excludedDomains(ctx, tx, tunnelID)
	if err != nil {
		return nil, err
	}
	_, err = tx.Exec(ctx, `UPDATE custom_domains d SET tunnel_ingress_configured = true, updated_at = now(),
			last_error = CASE WHEN d.provision_error_step = 'tunnel' THEN NULL ELSE d.last_error END,
			provision_error_step = CASE WHEN d.provision_error_step = 'tunnel' THEN NULL ELSE d.provision_error_step END
		FROM tenant_deployments td
		WHERE td.id = d.tenant_deployment_id AND td.tunnel_id = $1 AND d.deleting_at IS NULL
		  AND NOT d.tunnel_ingress_configured AND d.ingress_version <= `+floor+`
		  AND NOT d.id = ANY($2)`, tunnelID, excluded)
	if err != nil {
		return nil, fmt.Errorf("mark domains routed: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE custom_domains SET tunnel_ingress_configured = false, updated_at = now()
		WHERE id = ANY($1) AND tunnel_ingress_configured`, excluded); err != nil {
		return nil, fmt.Errorf("mark left-out domains unrouted: %w", err)
	}
	rows, _ := tx.Query(ctx, `DELETE FROM custom_domains d USING tenant_deployments td
		WHERE td.id = d.tenant_deployment_id AND td.tunnel_id = $1 AND d.deleting_at IS NOT NULL
		  AND d.ingress_removal_version <= `+floor+`
		  AND NOT d.cloudflare_configured AND d.cloudflare_dns_record_id IS NULL AND d.cloudflare_custom_hostname_id IS NULL
		RETURNING d.id`, tunnelID)
	removed, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("remove unrouted deleted domains: %w", err)
	}
	for _, id := range removed {
		if err := audit(ctx, tx, actor, "domain.removed", "domain", id, detail); err != nil {
			return nil, err
		}
	}
	return removed, nil
}

// recordNack stores an agent's refusal. Rules it names are left out of the tunnel (their domains
// say why) and a new version is pushed, so one bad rule never freezes the tunnel; a refusal that
// names no rule (a failed restart, an invalid base file) is shown on the waiting domains in
// words that say nothing of other tenants or the operator's configuration, and in full on the
// agent (admins only).
func (s *Store) recordNack(ctx context.Context, tx pgx.Tx, agentID int64, a AgentAck) error {
	var tunnelID int64
	var name string
	msg := textlimit.Truncate(fmt.Sprintf("%s: %s", a.Stage, a.Error), 4000)
	err := tx.QueryRow(ctx, `UPDATE agents SET last_error = $2, last_seen_at = now() WHERE id = $1 RETURNING tunnel_id, name`,
		agentID, msg).Scan(&tunnelID, &name)
	if err != nil {
		return fmt.Errorf("record nack of agent %d: %w", agentID, err)
	}
	var contained []int64
	for _, r := range a.Rejected {
		rows, _ := tx.Query(ctx, `UPDATE custom_domains d SET ingress_rejected_at = now(), ingress_rejected_kind = $3,
				ingress_rejected_reason = $4, tunnel_ingress_configured = false, updated_at = now()
			FROM tenant_deployments td
			WHERE td.id = d.tenant_deployment_id AND td.tunnel_id = $1 AND d.deleting_at IS NULL
			  AND $2 IN (d.external_domain, d.sajet_full_domain) AND d.ingress_rejected_at IS NULL
			RETURNING d.id`, tunnelID, r.Hostname, r.Reason, r.ownerSentence())
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("leave out the rule for %s: %w", r.Hostname, err)
		}
		for _, id := range ids {
			if err := audit(ctx, tx, "agent:"+name, "domain.ingress_rejected", "domain", id, map[string]any{
				"version": a.Version, "hostname": r.Hostname, "reason": r.Reason, "error": r.Error}); err != nil {
				return err
			}
		}
		contained = append(contained, ids...)
	}
	if len(contained) > 0 {
		// The next version leaves them out; every other domain of the tunnel converges.
		if _, err := bumpTunnelVersion(ctx, tx, tunnelID); err != nil {
			return err
		}
	} else {
		_, err = tx.Exec(ctx, `UPDATE custom_domains d SET provision_error_step = 'tunnel', updated_at = now(),
				last_error = $2
			FROM tenant_deployments td
			WHERE td.id = d.tenant_deployment_id AND td.tunnel_id = $1 AND d.deleting_at IS NULL
			  AND NOT d.tunnel_ingress_configured AND d.ingress_version IS NOT NULL`,
			tunnelID, i18n.F("el servidor del túnel no pudo aplicar la versión %d de la configuración (etapa %s); "+
				"los operadores ven los detalles en el agente del túnel y el cambio se reintenta",
				"the tunnel host could not apply configuration version %d (stage %s); "+
					"the operators see the details on the tunnel's agent and the change is retried", a.Version, a.Stage))
		if err != nil {
			return fmt.Errorf("show nack on domains: %w", err)
		}
	}
	return audit(ctx, tx, "agent:"+name, "agent.nack", "agent", agentID, map[string]any{
		"version": a.Version, "stage": a.Stage, "error": a.Error, "contained_domains": contained})
}

// RecordAgentBase stores the base file an agent reported. When its hash changed, rules an agent
// refused on the tunnel are offered again (the operator may have fixed the collision), and when
// that or the new hostnames change which domains are left out, the tunnel gets a new version.
func (s *Store) RecordAgentBase(ctx context.Context, agentID int64, sha string, hostnames []string) (changed bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var tunnelID int64
		var name string
		var old *string
		err := tx.QueryRow(ctx, `SELECT tunnel_id, name, base_sha256 FROM agents WHERE id = $1 FOR UPDATE`, agentID).
			Scan(&tunnelID, &name, &old)
		if err != nil {
			return fmt.Errorf("record base of agent %d: %w", agentID, err)
		}
		if old != nil && *old == sha {
			return nil
		}
		changed = true
		// Which domains were left out under the old base: those that come back get the new
		// version as the one that must be applied before they count as routed again.
		before, err := excludedDomains(ctx, tx, tunnelID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE agents SET base_sha256 = $2, base_hostnames = $3 WHERE id = $1`,
			agentID, sha, hostnames); err != nil {
			return fmt.Errorf("record base of agent %d: %w", agentID, err)
		}
		// Refusals, which a base edit may have cured, are offered again.
		tag, err := tx.Exec(ctx, `UPDATE custom_domains d SET ingress_rejected_at = NULL, ingress_rejected_kind = NULL,
				ingress_rejected_reason = NULL, updated_at = now()
			FROM tenant_deployments td
			WHERE td.id = d.tenant_deployment_id AND td.tunnel_id = $1 AND d.ingress_rejected_at IS NOT NULL`, tunnelID)
		if err != nil {
			return fmt.Errorf("offer refused rules again: %w", err)
		}
		after, err := excludedDomains(ctx, tx, tunnelID)
		if err != nil {
			return err
		}
		if err := audit(ctx, tx, "agent:"+name, "agent.base", "agent", agentID, map[string]any{"sha256": sha, "hostnames": len(hostnames)}); err != nil {
			return err
		}
		if tag.RowsAffected() == 0 && slices.Equal(before, after) {
			return nil // the same rules go to the tunnel: no new version, no push
		}
		version, err := bumpTunnelVersion(ctx, tx, tunnelID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE custom_domains SET tunnel_ingress_configured = false, updated_at = now(),
				ingress_version = CASE WHEN id = ANY($3) THEN ingress_version ELSE $2 END
			WHERE id = ANY($1) OR id = ANY($3)`, before, version, after); err != nil {
			return fmt.Errorf("reconsider left-out domains: %w", err)
		}
		return nil
	})
	return changed, err
}

// AgentConnected records an agent's hello: when it was seen and the version it says it runs
// (the truth after a reconnect, even if lower than what it acknowledged before: its state dir
// may have been lost).
//
// It returns the session's epoch: one more than any earlier session of the agent on any replica.
func (s *Store) AgentConnected(ctx context.Context, agentID, applied int64, sha, remote string) (int64, error) {
	var epoch int64
	err := s.pool.QueryRow(ctx, `UPDATE agents SET last_seen_at = now(), connected_at = now(), applied_version = $2,
		applied_sha256 = nullif($3, ''), remote_addr = $4, session_epoch = session_epoch + 1
		WHERE id = $1 RETURNING session_epoch`, agentID, applied, sha, remote).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("record agent %d connection: %w", agentID, err)
	}
	return epoch, nil
}

// AgentDisconnected records the end of session epoch, unless a newer session replaced it.
func (s *Store) AgentDisconnected(ctx context.Context, agentID, epoch int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE agents SET disconnected_at = now() WHERE id = $1 AND session_epoch = $2`, agentID, epoch)
	if err != nil {
		return fmt.Errorf("record agent %d disconnection: %w", agentID, err)
	}
	return nil
}

// RecordAgentStatus stores an agent's periodic report (already validated JSON).
func (s *Store) RecordAgentStatus(ctx context.Context, agentID int64, status []byte) error {
	_, err := s.pool.Exec(ctx, `UPDATE agents SET status = $2, last_seen_at = now() WHERE id = $1`, agentID, status)
	if err != nil {
		return fmt.Errorf("record agent %d status: %w", agentID, err)
	}
	return nil
}

// EnsureLocalAgent makes sure the tunnel and agent named exist and gives the agent a new token
// hash (the previous token stops working). `sajet-controlplane dev` uses it for its local agent,
// whose token is never written to disk.
func (s *Store) EnsureLocalAgent(ctx context.Context, actor, tunnelName, cloudflareTunnelID, agentName string, tokenHash []byte) (Agent, error) {
	var id int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var tunnelID int64
		err := tx.QueryRow(ctx, `INSERT INTO tunnels (name, cloudflare_tunnel_id) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id`, tunnelName, cloudflareTunnelID).Scan(&tunnelID)
		if err != nil {
			return fmt.Errorf("ensure tunnel %s: %w", tunnelName, err)
		}
		err = tx.QueryRow(ctx, `INSERT INTO agents (tunnel_id, name, token_hash) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET token_hash = EXCLUDED.token_hash, revoked_at = NULL, tunnel_id = EXCLUDED.tunnel_id
			RETURNING id`, tunnelID, agentName, tokenHash).Scan(&id)
		if err != nil {
			return fmt.Errorf("ensure agent %s: %w", agentName, err)
		}
		if err := audit(ctx, tx, actor, "agent.local", "agent", id, map[string]any{"tunnel": tunnelName}); err != nil {
			return err
		}
		return notifyAgent(ctx, tx, id)
	})
	if err != nil {
		return Agent{}, err
	}
	rows, _ := s.pool.Query(ctx, agentSelect+` WHERE a.id = $1`, id)
	return pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Agent])
}
