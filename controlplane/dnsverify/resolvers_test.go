package dnsverify

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestNewResolvers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("# test\nnameserver 127.0.0.1\nnameserver ::1\nsearch example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search example\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		cfg     Config
		want    []string
		wantErr bool
	}{
		{"explicit host:port", Config{Resolvers: []string{"127.0.0.1:5353", "[::1]:53"}}, []string{"127.0.0.1:5353", "[::1]:53"}, false},
		{"a bare IP gets port 53", Config{Resolvers: []string{"127.0.0.1", "::1"}}, []string{"127.0.0.1:53", "[::1]:53"}, false},
		{"duplicates are queried once", Config{Resolvers: []string{"127.0.0.1:53", "127.0.0.1"}}, []string{"127.0.0.1:53"}, false},
		{"empty reads resolv.conf with port 53", Config{ResolvConf: conf}, []string{"127.0.0.1:53", "[::1]:53"}, false},
		{"resolv.conf without nameservers is an error", Config{ResolvConf: empty}, nil, true},
		{"a missing resolv.conf is an error", Config{ResolvConf: filepath.Join(dir, "nope")}, nil, true},
		{"a hostname without port is an error", Config{Resolvers: []string{"dns.example"}}, nil, true},
		{"an empty port is an error", Config{Resolvers: []string{"127.0.0.1:"}}, nil, true},
		{"a negative timeout is an error", Config{Resolvers: []string{"127.0.0.1"}, QueryTimeout: -1}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := New(tc.cfg)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("New succeeded with resolvers %v", v.Resolvers())
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if diff := cmp.Diff(tc.want, v.Resolvers()); diff != "" {
				t.Errorf("resolvers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	v, err := New(Config{Resolvers: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.queryTimeout != DefaultQueryTimeout || v.checkTimeout != DefaultCheckTimeout || v.maxHops != DefaultMaxHops || cap(v.slots) != DefaultMaxInFlight {
		t.Errorf("defaults: query=%v check=%v hops=%d inflight=%d", v.queryTimeout, v.checkTimeout, v.maxHops, cap(v.slots))
	}
	if diff := cmp.Diff(defaultCAAIssuers(), v.caaIssuers); diff != "" {
		t.Errorf("CAA issuers (-want +got):\n%s", diff)
	}
	v, err = New(Config{Resolvers: []string{"127.0.0.1"}, DisableCAA: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.caaIssuers != nil {
		t.Errorf("DisableCAA: issuers = %v", v.caaIssuers)
	}
}

// Queries must ask for recursion (we talk to resolvers, not authoritative servers) and advertise
// an EDNS0 buffer, or large TXT sets would be truncated at 512 octets.
func TestNewQuerySetsRDAndEDNS0(t *testing.T) {
	t.Parallel()
	m := newQuery("www.impulse-max.com", dns.TypeA)
	if !m.RecursionDesired {
		t.Error("RD bit not set")
	}
	opt := m.IsEdns0()
	if opt == nil || opt.UDPSize() != ednsBufferSize || opt.Do() {
		t.Errorf("EDNS0 = %v, want buffer %d without DO", opt, ednsBufferSize)
	}
	if q := m.Question[0]; q.Name != "www.impulse-max.com." || q.Qtype != dns.TypeA || q.Qclass != dns.ClassINET {
		t.Errorf("question = %v", q)
	}
}
