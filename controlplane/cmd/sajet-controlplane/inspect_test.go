package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

// inspectAPI is a real API (real database, real diagnostics over a loopback resolver that knows
// nothing, so the domain cannot work) with one domain and an admin token.
func inspectAPI(t *testing.T) (url, token string) {
	t.Helper()
	st := store.New(storetest.NewDB(t))
	resolver := dnstest.Start(t)
	v, err := dnsverify.New(dnsverify.Config{Resolvers: []string{resolver.Addr()}, QueryTimeout: 300 * time.Millisecond, CheckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	svc := domains.New(st, v, domains.Config{Zone: "sajet.us"}, slog.New(slog.DiscardHandler))
	diag := diagnose.New(st, v, nil, nil, diagnose.Config{AuthPort: "9", QueryTimeout: 300 * time.Millisecond, DomainBurst: -1})
	srv := httptest.NewServer(api.New(api.Config{Store: st, Domains: svc, Diagnose: diag}))
	t.Cleanup(srv.Close)
	secret, hash := api.NewToken()
	if _, err := st.CreateAPIToken(context.Background(), "test", hash, api.RoleAdmin, nil, "test"); err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCustomer(context.Background(), "test", store.Customer{Email: "ops@impulse-max.com", CompanyName: "ImpulseMax", Plan: "basic"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Register(context.Background(), "test", domains.RegisterInput{ExternalDomain: "www.impulse-max.com", CustomerID: c.ID}); err != nil {
		t.Fatal(err)
	}
	return srv.URL, secret
}

func TestInspect(t *testing.T) {
	t.Parallel()
	url, token := inspectAPI(t)
	tests := []struct {
		name    string
		args    []string
		err     error  // errors.Is
		errText string // or a substring of the error
		out     []string
	}{
		{"a domain that does not work prints the report and exits 1", []string{"--api", url, "--token", token, "--lang", "en", "www.impulse-max.com"},
			errDomainDoesNotWork, "", []string{"www.impulse-max.com → impulse-max.sajet.us", "The domain does not work", "[FAIL] Tunnel", "→ "}},
		{"flags may follow the hostname", []string{"www.impulse-max.com", "--api", url, "--token", token},
			errDomainDoesNotWork, "", []string{"El dominio no funciona", "DNS (servidores autoritativos)"}},
		{"--json prints the report as is", []string{"--json", "--api", url, "--token", token, "www.impulse-max.com"},
			errDomainDoesNotWork, "", []string{`"domain":"www.impulse-max.com"`, `"parts":[`}},
		{"an unknown domain is the API's 404", []string{"--api", url, "--token", token, "www.nobody.com"}, nil, "404", nil},
		{"a bad token is the API's 401", []string{"--api", url, "--token", "sjt_nope", "www.impulse-max.com"}, nil, "401", nil},
		{"a hostname is required", []string{"--api", url, "--token", token}, nil, "exactly one hostname", nil},
		{"the token is required", []string{"--api", url, "www.impulse-max.com"}, nil, "--token (or SAJET_TOKEN)", nil},
		{"only es and en", []string{"--api", url, "--token", token, "--lang", "fr", "www.impulse-max.com"}, nil, "--lang", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"inspect"}, tc.args...), &out, &errOut)
			switch {
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("err = %v, want %v\n%s", err, tc.err, out.String())
			case tc.errText != "" && (err == nil || !strings.Contains(err.Error(), tc.errText)):
				t.Fatalf("err = %v, want one saying %q", err, tc.errText)
			}
			for _, w := range tc.out {
				if !strings.Contains(out.String(), w) {
					t.Errorf("%q is not in the output:\n%s", w, out.String())
				}
			}
			if strings.Contains(strings.Join(tc.args, " "), "--json") {
				var r diagnose.Report
				if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.Works || len(r.Parts) != 8 {
					t.Errorf("--json output is not the report: %v\n%s", err, out.String())
				}
			}
		})
	}
}

// SAJET_API and SAJET_TOKEN are the flags' twins.
func TestInspectReadsItsEnvironmentTwins(t *testing.T) {
	url, token := inspectAPI(t)
	t.Setenv("SAJET_API", url)
	t.Setenv("SAJET_TOKEN", token)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"inspect", "www.impulse-max.com"}, &out, &bytes.Buffer{}); !errors.Is(err, errDomainDoesNotWork) {
		t.Fatalf("err = %v\n%s", err, out.String())
	}
}
