package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/domains"
)

// replica is another API server on the same database, with its own token cache and last-use
// memory, as a second control-plane replica would have.
func (b *bundle) replica() *api.Server {
	return api.New(api.Config{Store: b.store, Domains: domains.New(b.store, nil, domains.Config{Zone: "sajet.us"}, nil)})
}

// get runs GET path with token on a server in a goroutine and fails if it does not answer: a
// request must never wait for the last-use write.
func get(t *testing.T, srv http.Handler, path, token string) int {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
		return rec.Code
	case <-time.After(30 * time.Second):
		t.Fatalf("GET %s did not answer: blocked on the last-use write?", path)
		return 0
	}
}

func (b *bundle) lastUsed(tokenID int64) *time.Time {
	b.t.Helper()
	var at *time.Time
	if err := b.pool.QueryRow(context.Background(), `SELECT last_used_at FROM api_tokens WHERE id = $1`, tokenID).Scan(&at); err != nil {
		b.t.Fatal(err)
	}
	return at
}

// tokenUpdates counts UPDATE statements on api_tokens (a statement trigger fires even when the
// guard matches no row), so the test sees the writes attempted, not only those that changed it.
func (b *bundle) tokenUpdates() int {
	b.t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT n FROM token_updates`).Scan(&n); err != nil {
		b.t.Fatal(err)
	}
	return n
}

func TestTokenLastUseIsWrittenAtMostOnceAMinute(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.must(201, "POST", "/api/tokens", b.admin, map[string]any{"role": "admin", "name": "ci"})
	token, tokenID := m["token"].(string), id(m)
	api.WaitForTokenWrites(b.api) // the admin token's own use
	b.exec(`CREATE TABLE token_updates (n int NOT NULL);
		INSERT INTO token_updates VALUES (0);
		CREATE FUNCTION count_token_updates() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN UPDATE token_updates SET n = n + 1; RETURN NULL; END $$;
		CREATE TRIGGER count_token_updates AFTER UPDATE ON api_tokens FOR EACH STATEMENT EXECUTE FUNCTION count_token_updates();`)
	if at := b.lastUsed(tokenID); at != nil {
		t.Fatalf("last_used_at %v before any use", at)
	}

	statuses := b.concurrently(100, func(int) response { return b.do("GET", "/api/domains", token, nil) })
	if statuses[200] != 100 {
		t.Fatalf("statuses %v, want 100×200", statuses)
	}
	api.WaitForTokenWrites(b.api)
	if n := b.tokenUpdates(); n != 1 {
		t.Errorf("a burst of 100 requests wrote last_used_at %d times, want once", n)
	}
	first := b.lastUsed(tokenID)
	if first == nil {
		t.Fatal("last_used_at not written")
	}
	list := b.must(200, "GET", "/api/tokens", b.admin, nil)
	shown := false
	for _, it := range list["items"].([]any) {
		if tok := it.(map[string]any); id(tok) == tokenID {
			at, err := time.Parse(time.RFC3339Nano, tok["last_used_at"].(string))
			shown = err == nil && at.Equal(*first)
		}
	}
	if !shown {
		t.Errorf("GET /api/tokens does not show last_used_at %v: %v", first, list["items"])
	}

	// Another replica has not written it yet, but the SQL guard keeps it to once a minute.
	r2 := b.replica()
	if code := get(t, r2, "/api/domains", token); code != 200 {
		t.Fatalf("replica 2: %d", code)
	}
	api.WaitForTokenWrites(r2)
	if at := b.lastUsed(tokenID); !at.Equal(*first) {
		t.Errorf("a second replica rewrote last_used_at within the minute: %v → %v", first, at)
	}

	// A minute later (moved back in the database) a replica writes it again, at most once.
	b.exec(`UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, tokenID)
	old := b.lastUsed(tokenID)
	r3 := b.replica()
	for range 10 {
		get(t, r3, "/api/domains", token)
	}
	api.WaitForTokenWrites(r3)
	if at := b.lastUsed(tokenID); !at.After(*old) {
		t.Errorf("last_used_at %v not rewritten after a minute (was %v)", at, old)
	}
	before := b.tokenUpdates()
	get(t, r3, "/api/domains", token)
	api.WaitForTokenWrites(r3)
	if n := b.tokenUpdates(); n != before {
		t.Errorf("replica 3 wrote again within the minute (%d → %d updates)", before, n)
	}
}

// The write never holds a request up and its failure never fails one.
func TestTokenLastUseNeverBlocksOrFailsARequest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.must(201, "POST", "/api/tokens", b.admin, map[string]any{"role": "admin", "name": "ci"})
	token, tokenID := m["token"].(string), id(m)

	// The row is locked by another transaction: the write waits, the request does not.
	tx, err := b.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM api_tokens WHERE id = $1 FOR UPDATE`, tokenID); err != nil {
		t.Fatal(err)
	}
	r := b.replica()
	if code := get(t, r, "/api/domains", token); code != 200 {
		t.Errorf("request while the token row is locked: %d", code)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	api.WaitForTokenWrites(r)
	if b.lastUsed(tokenID) == nil {
		t.Error("last_used_at not written once the lock was released")
	}

	// Writes fail: requests still succeed.
	b.exec(`UPDATE api_tokens SET last_used_at = NULL WHERE id = $1`, tokenID)
	b.exec(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no writes'; END $$;
		CREATE TRIGGER refuse BEFORE UPDATE ON api_tokens FOR EACH STATEMENT EXECUTE FUNCTION refuse();`)
	r = b.replica()
	if code := get(t, r, "/api/domains", token); code != 200 {
		t.Errorf("request whose last-use write fails: %d", code)
	}
	api.WaitForTokenWrites(r)
	if at := b.lastUsed(tokenID); at != nil {
		t.Errorf("last_used_at %v written through a refusing trigger?", at)
	}
}
