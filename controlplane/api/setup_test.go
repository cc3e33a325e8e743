package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// bundle is what a test gets from setup: a real API over HTTP on a fresh database, a DNS server
// the verifier queries, and an admin token.
type bundle struct {
	t     testing.TB
	url   string
	api   *api.Server
	pool  *pgxpool.Pool
	store *store.Store
	dns   *dnstest.Server
	admin string
	// lang, when set, is sent as Accept-Language; without it the API answers in Spanish.
	lang string
}

type options struct {
	unverifiedTTL time.Duration
	authBurst     int
	// verifyTimeout replaces the verifier's short test timeouts (query and whole check).
	verifyTimeout time.Duration
	// configure changes the API's configuration before it is built.
	configure func(*api.Config)
}

func setup(t testing.TB, opts ...func(*options)) *bundle {
	t.Helper()
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	pool := storetest.NewDB(t)
	dnsSrv := dnstest.Start(t)
	queryTimeout, checkTimeout := 500*time.Millisecond, 2*time.Second
	if o.verifyTimeout > 0 {
		queryTimeout, checkTimeout = o.verifyTimeout, o.verifyTimeout
	}
	verifier, err := dnsverify.New(dnsverify.Config{
		Resolvers: []string{dnsSrv.Addr()}, QueryTimeout: queryTimeout, CheckTimeout: checkTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool)
	svc := domains.New(st, verifier, domains.Config{Zone: "sajet.us", UnverifiedTTL: o.unverifiedTTL}, slog.New(slog.DiscardHandler))
	cfg := api.Config{Store: st, Domains: svc, AuthFailureBurst: o.authBurst}
	if o.configure != nil {
		o.configure(&cfg)
	}
	handler := api.New(cfg)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)

	secret, hash := api.NewToken()
	if _, err := st.CreateAPIToken(context.Background(), "test", hash, api.RoleAdmin, nil, "test"); err != nil {
		t.Fatal(err)
	}
	return &bundle{t: t, url: srv.URL, api: handler, pool: pool, store: st, dns: dnsSrv, admin: secret}
}

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object (%d): %s", r.status, r.body)
	}
	return m
}

func (b *bundle) do(method, path, token string, body any) response {
	b.t.Helper()
	return b.doWithType(method, path, token, body, "")
}

// doWithType is do with an explicit Content-Type ("" → application/json).
func (b *bundle) doWithType(method, path, token string, body any, ctype string) response {
	b.t.Helper()
	if ctype == "" {
		ctype = "application/json"
	}
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(v)
	case string:
		rd = bytes.NewReader([]byte(v))
	default:
		buf, err := json.Marshal(v)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// must performs a request and fails the test unless the status is want.
func (b *bundle) must(want int, method, path, token string, body any) map[string]any {
	b.t.Helper()
	r := b.do(method, path, token, body)
	if r.status != want {
		b.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(b.t)
}

func (b *bundle) customer(name, plan string) int64 {
	b.t.Helper()
	m := b.must(201, "POST", "/api/customers", b.admin, map[string]any{
		"email": "ops@" + name + ".example", "company_name": name, "plan": plan})
	return int64(m["id"].(float64))
}

func (b *bundle) customerToken(id int64) string {
	b.t.Helper()
	m := b.must(201, "POST", "/api/tokens", b.admin, map[string]any{"role": "customer", "customer_id": id})
	return m["token"].(string)
}

func (b *bundle) countDomains() int {
	b.t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM custom_domains`).Scan(&n); err != nil {
		b.t.Fatal(err)
	}
	return n
}

func idPath(m map[string]any) string { return fmt.Sprintf("/api/domains/%d", int64(m["id"].(float64))) }
