package api_test

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/gateway"
)

// The gateway refuses malformed agent tokens without a database lookup, so every token the API
// issues must be well-formed in its eyes.
func TestAgentTokensAreWellFormedForTheGateway(t *testing.T) {
	t.Parallel()
	for range 100 {
		token, hash := api.NewAgentToken()
		if !gateway.WellFormedToken(token) {
			t.Fatalf("gateway.WellFormedToken(%q) = false for a token the API issued", token)
		}
		if sum := sha256.Sum256([]byte(token)); string(sum[:]) != string(hash) {
			t.Fatal("the stored hash is not the token's SHA-256")
		}
	}
}

func TestAgentsAreRevokedAndTheirTokensRotated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tun := b.must(201, "POST", "/api/tunnels", b.admin, map[string]any{"name": "tcs-sajet-tunnel", "cloudflare_tunnel_id": "6ff42ae2-765d-4adf-8112-31c55c1551ef"})
	a := b.must(201, "POST", "/api/agents", b.admin, map[string]any{"tunnel_id": tun["id"], "name": "pct-105"})
	id := int64(a["id"].(float64))
	path := fmt.Sprintf("/api/agents/%d", id)
	old := a["token"].(string)
	hashOf := func(token string) int {
		var n int
		if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM agents WHERE id = $1 AND token_hash = sha256($2::bytea)`, id, []byte(token)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	audits := func(action string) int {
		var n int
		if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_log WHERE entity = 'agent' AND entity_id = $1 AND action = $2`, id, action).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	rotated := b.must(200, "POST", path+"/rotate-token", b.admin, nil)
	fresh, _ := rotated["token"].(string)
	if !strings.HasPrefix(fresh, "sja_") || fresh == old || rotated["name"] != "pct-105" {
		t.Fatalf("rotate-token answered %v", rotated)
	}
	if hashOf(old) != 0 || hashOf(fresh) != 1 {
		t.Error("after rotation the stored hash is not the new token's")
	}
	if list := b.do("GET", "/api/agents", b.admin, nil); strings.Contains(string(list.body), fresh) {
		t.Error("the agent list shows the new token")
	}
	if audits("agent.rotate_token") != 1 {
		t.Error("rotation not audited")
	}

	b.must(204, "DELETE", path, b.admin, nil)
	b.must(204, "DELETE", path, b.admin, nil) // revoking a revoked agent is a no-op
	if audits("agent.revoke") != 1 {
		t.Error("revocation not audited exactly once")
	}
	list := b.must(200, "GET", "/api/agents", b.admin, nil)
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["revoked_at"] == nil {
		t.Errorf("the revoked agent's revoked_at is not set: %v", list)
	}
	if r := b.do("POST", path+"/rotate-token", b.admin, nil); r.status != 409 || r.json(t)["code"] != "agent_revoked" {
		t.Errorf("rotating a revoked agent: %d %s", r.status, r.body)
	}
	for _, method := range []string{"DELETE", "POST"} {
		p := "/api/agents/99999"
		if method == "POST" {
			p += "/rotate-token"
		}
		if r := b.do(method, p, b.admin, nil); r.status != 404 || r.json(t)["code"] != "agent_not_found" {
			t.Errorf("%s %s: %d %s", method, p, r.status, r.body)
		}
	}
}
