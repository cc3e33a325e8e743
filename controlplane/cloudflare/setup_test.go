package cloudflare_test

import (
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
)

const (
	tunnelTarget = "6ff42ae2-765d-4adf-8112-31c55c1551ef.cfargotunnel.com"
	subdomain    = "impulse-max.sajet.us"
)

type bundle struct {
	srv *cftest.Server
	p   *cloudflare.Provider
}

// setup starts a fake Cloudflare and a provider pointed at it; mutate adjusts the config.
func setup(t testing.TB, mutate ...func(*cloudflare.Config)) bundle {
	t.Helper()
	srv := cftest.New(t)
	cfg := cloudflare.Config{APIURL: srv.URL(), APIToken: srv.Token, ZoneID: srv.ZoneID}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := cloudflare.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return bundle{srv: srv, p: p}
}

// methods lists the HTTP methods of the calls the fake received, e.g. "POST GET".
func methods(calls []cftest.Call) string {
	s := ""
	for i, c := range calls {
		if i > 0 {
			s += " "
		}
		s += c.Method
	}
	return s
}

// ours is a proxied CNAME of ours to the tunnel, as EnsureCNAME makes it.
func ours(domainID int64) cftest.Record {
	return cftest.Record{Type: "CNAME", Name: subdomain, Content: tunnelTarget, Proxied: true, Comment: cloudflare.Comment(domainID)}
}
