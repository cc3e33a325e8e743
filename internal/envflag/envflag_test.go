package envflag

import (
	"flag"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestApply(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SAJET_DATABASE_URL": "postgres://from-env",
		"SAJET_HTTP_ADDR":    "127.0.0.1:1",
		"SAJET_DNS_RESOLVER": "127.0.0.1:53, 127.0.0.2:53",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	db := fs.String("database-url", "", "")
	addr := fs.String("http-addr", "default", "")
	zone := fs.String("zone", "sajet.us", "")
	var resolvers List
	fs.Var(&resolvers, "dns-resolver", "")
	if err := fs.Parse([]string{"--http-addr", "127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}
	if err := Apply(fs, lookup); err != nil {
		t.Fatal(err)
	}
	if *db != "postgres://from-env" {
		t.Errorf("database-url = %q, want the environment's value", *db)
	}
	if *addr != "127.0.0.1:9" {
		t.Errorf("http-addr = %q, the command line must win over the environment", *addr)
	}
	if *zone != "sajet.us" {
		t.Errorf("zone = %q, want the default when neither is set", *zone)
	}
	if diff := cmp.Diff(List{"127.0.0.1:53", "127.0.0.2:53"}, resolvers); diff != "" {
		t.Errorf("dns-resolver from a comma list (-want +got):\n%s", diff)
	}
}

func TestApplyRejectsBadValue(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("workers", 1, "")
	err := Apply(fs, func(k string) (string, bool) { return "many", k == "SAJET_WORKERS" })
	if err == nil {
		t.Fatal("a non-numeric SAJET_WORKERS was accepted")
	}
}
