package store_test

import (
	"context"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

func hashOf(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Enrolling, revoking and rotating each change the set of valid tokens and are announced on
// AgentChannel at commit, so every replica's gateway reloads the set and ends stale sessions.
func TestAgentTokenChangesAreNotifiedAndVisibleInTheValidSet(t *testing.T) {
	t.Parallel()
	f, url := newFixture(t, false)
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+store.AgentChannel); err != nil {
		t.Fatal(err)
	}
	expectNotify := func(id int64) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := listener.WaitForNotification(wctx)
		if err != nil || n.Payload != strconv.FormatInt(id, 10) {
			t.Fatalf("no notification for agent %d: %v %v", id, n, err)
		}
	}
	valid := func() map[[32]byte]int64 {
		t.Helper()
		v, err := f.st.AgentTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	a, err := f.st.CreateAgent(ctx, "test", f.tunnel.ID, "pct-105", hashOf("one"))
	if err != nil {
		t.Fatal(err)
	}
	expectNotify(a.ID)
	if v := valid(); len(v) != 1 || v[[32]byte(hashOf("one"))] != a.ID {
		t.Fatalf("valid set after enrolment: %v", v)
	}

	if _, err := f.st.RotateAgentToken(ctx, "test", a.ID, hashOf("two")); err != nil {
		t.Fatal(err)
	}
	expectNotify(a.ID)
	if v := valid(); len(v) != 1 || v[[32]byte(hashOf("two"))] != a.ID {
		t.Fatalf("valid set after rotation: %v", v)
	}
	if _, err := f.st.AgentByToken(ctx, hashOf("one")); err != store.ErrNotFound {
		t.Errorf("the rotated-out token still finds the agent: %v", err)
	}

	if err := f.st.RevokeAgent(ctx, "test", a.ID); err != nil {
		t.Fatal(err)
	}
	expectNotify(a.ID)
	if v := valid(); len(v) != 0 {
		t.Fatalf("valid set after revocation: %v", v)
	}
	if _, err := f.st.AgentByToken(ctx, hashOf("two")); err != store.ErrNotFound {
		t.Errorf("a revoked agent's token still finds it: %v", err)
	}
	var ce *store.ConflictError
	if _, err := f.st.RotateAgentToken(ctx, "test", a.ID, hashOf("three")); !asConflict(err, &ce) || ce.Code != "agent_revoked" {
		t.Errorf("rotating a revoked agent: %v", err)
	}
	if err := f.st.RevokeAgent(ctx, "test", 99999); err != store.ErrNotFound {
		t.Errorf("revoking an unknown agent: %v", err)
	}
	if _, err := f.st.RotateAgentToken(ctx, "test", 99999, hashOf("x")); err != store.ErrNotFound {
		t.Errorf("rotating an unknown agent's token: %v", err)
	}
}

// A revoked agent stops counting for its tunnel's "applied by every agent" floor at once: a
// domain that waited only for it is configured when it is revoked.
func TestRevokingAStaleAgentSettlesItsTunnel(t *testing.T) {
	t.Parallel()
	f, _ := newFixture(t, false)
	ctx := context.Background()
	live, err := f.st.CreateAgent(ctx, "test", f.tunnel.ID, "live", hashOf("live"))
	if err != nil {
		t.Fatal(err)
	}
	stale, err := f.st.CreateAgent(ctx, "test", f.tunnel.ID, "stale", hashOf("stale"))
	if err != nil {
		t.Fatal(err)
	}
	d := f.insert(t, "www.impulse-max.com", "impulse-max")
	version := f.desired(t).Version
	if _, err := f.st.RecordAgentAck(ctx, live.ID, store.AgentAck{Version: version, OK: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.st.GetDomain(ctx, d.ID); got.TunnelIngressConfigured {
		t.Fatal("configured while one agent of the tunnel has not applied it")
	}
	if err := f.st.RevokeAgent(ctx, "test", stale.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.st.GetDomain(ctx, d.ID); !got.TunnelIngressConfigured {
		t.Error("still waiting for a revoked agent")
	}
}
