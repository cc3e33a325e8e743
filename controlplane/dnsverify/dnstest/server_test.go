package dnstest_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
)

func ask(t *testing.T, s *dnstest.Server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	resp, err := exchange(t.Context(), s, network, name, qtype, time.Second)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

func exchange(ctx context.Context, s *dnstest.Server, network, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: network, Timeout: timeout}
	resp, _, err := c.ExchangeContext(ctx, m, s.Addr())
	return resp, err
}

// rrs renders the answer section for comparison.
func rrs(m *dns.Msg) []string {
	out := make([]string, len(m.Answer))
	for i, rr := range m.Answer {
		out[i] = strings.ReplaceAll(rr.String(), "\t", " ")
	}
	return out
}

func TestServerAnswersLikeAResolver(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t)
	s.AddCNAME("www.x.com", "x.sajet.us")
	s.AddCNAME("x.sajet.us", "t.cfargotunnel.com")
	s.AddA("t.cfargotunnel.com", "192.0.2.1")
	s.AddTXT("_v.x.com", "token")
	s.AddA("onlya.x.com", "192.0.2.2")

	tests := []struct {
		name, qname string
		qtype       uint16
		rcode       int
		answer      []string
	}{
		{"an A query returns the chain and the final addresses", "www.x.com", dns.TypeA, dns.RcodeSuccess, []string{
			"www.x.com. 300 IN CNAME x.sajet.us.",
			"x.sajet.us. 300 IN CNAME t.cfargotunnel.com.",
			"t.cfargotunnel.com. 300 IN A 192.0.2.1",
		}},
		{"a CNAME query returns only the CNAME, as resolvers do", "WWW.X.COM.", dns.TypeCNAME, dns.RcodeSuccess, []string{
			"www.x.com. 300 IN CNAME x.sajet.us.",
		}},
		{"an AAAA query through a chain without AAAA returns the chain only", "www.x.com", dns.TypeAAAA, dns.RcodeSuccess, []string{
			"www.x.com. 300 IN CNAME x.sajet.us.",
			"x.sajet.us. 300 IN CNAME t.cfargotunnel.com.",
		}},
		{"an unknown name is NXDOMAIN", "nope.x.com", dns.TypeA, dns.RcodeNameError, []string{}},
		{"a known name without the type is NODATA", "onlya.x.com", dns.TypeTXT, dns.RcodeSuccess, []string{}},
		{"TXT records are served", "_v.x.com", dns.TypeTXT, dns.RcodeSuccess, []string{`_v.x.com. 300 IN TXT "token"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, network := range []string{"udp", "tcp"} {
				resp := ask(t, s, network, tc.qname, tc.qtype)
				if resp.Rcode != tc.rcode || !resp.RecursionAvailable {
					t.Errorf("%s: rcode=%s RA=%v", network, dns.RcodeToString[resp.Rcode], resp.RecursionAvailable)
				}
				if diff := cmp.Diff(tc.answer, rrs(resp)); diff != "" {
					t.Errorf("%s: answer (-want +got):\n%s", network, diff)
				}
			}
		})
	}
}

func TestServerInjectedFailures(t *testing.T) {
	t.Parallel()

	t.Run("SetRcode applies to the name and to chains through it", func(t *testing.T) {
		t.Parallel()
		s := dnstest.Start(t)
		s.AddCNAME("www.x.com", "broken.x.com")
		s.AddA("broken.x.com", "192.0.2.1")
		s.SetRcode("broken.x.com", dns.RcodeServerFailure)
		if r := ask(t, s, "udp", "broken.x.com", dns.TypeA); r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 0 {
			t.Errorf("direct: %v", r)
		}
		if r := ask(t, s, "udp", "www.x.com", dns.TypeA); r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 1 {
			t.Errorf("through the chain: %v", r)
		}
		s.SetRcode("broken.x.com", dns.RcodeSuccess)
		if r := ask(t, s, "udp", "www.x.com", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
			t.Errorf("after clearing: %v", r)
		}
	})

	t.Run("SetTruncateUDP forces TCP", func(t *testing.T) {
		t.Parallel()
		s := dnstest.Start(t)
		s.AddA("x.com", "192.0.2.1")
		s.SetTruncateUDP(true)
		if r := ask(t, s, "udp", "x.com", dns.TypeA); !r.Truncated || len(r.Answer) != 0 {
			t.Errorf("UDP answer: %v", r)
		}
		if r := ask(t, s, "tcp", "x.com", dns.TypeA); r.Truncated || len(r.Answer) != 1 {
			t.Errorf("TCP answer: %v", r)
		}
		if s.UDPQueries() != 1 || s.TCPQueries() != 1 || s.Queries() != 2 || s.QueriesFor("X.com.") != 2 {
			t.Errorf("counters: udp=%d tcp=%d all=%d x.com=%d", s.UDPQueries(), s.TCPQueries(), s.Queries(), s.QueriesFor("x.com"))
		}
	})

	t.Run("answers larger than the advertised size are truncated over UDP", func(t *testing.T) {
		t.Parallel()
		s := dnstest.Start(t)
		for range 10 {
			s.AddTXT("big.x.com", strings.Repeat("a", 300)) // two chunks each
		}
		if r := ask(t, s, "udp", "big.x.com", dns.TypeTXT); !r.Truncated {
			t.Errorf("UDP answer not truncated (%d records)", len(r.Answer))
		}
		r := ask(t, s, "tcp", "big.x.com", dns.TypeTXT)
		if len(r.Answer) != 10 || len(r.Answer[0].(*dns.TXT).Txt) != 2 {
			t.Errorf("TCP answer: %d records", len(r.Answer))
		}
	})

	t.Run("SetDrop and SetNameDrop never answer", func(t *testing.T) {
		t.Parallel()
		s := dnstest.Start(t)
		s.AddA("x.com", "192.0.2.1")
		s.AddA("y.com", "192.0.2.2")
		s.SetNameDrop("x.com", true)
		if _, err := exchange(t.Context(), s, "udp", "x.com", dns.TypeA, 50*time.Millisecond); !isTimeout(err) {
			t.Errorf("x.com: err = %v, want a timeout", err)
		}
		ask(t, s, "udp", "y.com", dns.TypeA)
		s.SetDrop(true)
		if _, err := exchange(t.Context(), s, "udp", "y.com", dns.TypeA, 50*time.Millisecond); !isTimeout(err) {
			t.Errorf("y.com: err = %v, want a timeout", err)
		}
	})

	t.Run("a delayed answer arrives late", func(t *testing.T) {
		t.Parallel()
		s := dnstest.Start(t)
		s.AddA("x.com", "192.0.2.1")
		s.SetNameDelay("x.com", time.Hour) // released by cleanup
		if _, err := exchange(t.Context(), s, "udp", "x.com", dns.TypeA, 50*time.Millisecond); !isTimeout(err) {
			t.Errorf("err = %v, want a timeout", err)
		}
	})

	t.Run("SetRecursive(false) answers like an authoritative server", func(t *testing.T) {
		t.Parallel()
		s := dnstest.Start(t)
		s.AddCNAME("www.x.com", "x.sajet.us")
		s.AddA("x.sajet.us", "192.0.2.1")
		s.SetRecursive(false)
		if diff := cmp.Diff([]string{"www.x.com. 300 IN CNAME x.sajet.us."}, rrs(ask(t, s, "udp", "www.x.com", dns.TypeA))); diff != "" {
			t.Errorf("answer (-want +got):\n%s", diff)
		}
	})

	t.Run("Remove makes a name NXDOMAIN", func(t *testing.T) {
		t.Parallel()
		s := dnstest.Start(t)
		s.AddA("x.com", "192.0.2.1")
		s.Remove("x.com.")
		if r := ask(t, s, "udp", "x.com", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("rcode = %s", dns.RcodeToString[r.Rcode])
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestServerUDPAndTCPShareThePort(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t)
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr = %q", s.Addr())
	}
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatalf("TCP on the UDP port: %v", err)
	}
	conn.Close()
}

// Mutating the zone while queries run must be race-free (run with -race).
func TestServerConcurrentMutation(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if i%2 == 0 {
				s.AddA("x.com", "192.0.2.1")
			} else {
				s.Remove("x.com")
			}
		}
	}()
	for range 50 {
		resp := ask(t, s, "udp", "x.com", dns.TypeA)
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			t.Errorf("rcode = %s", dns.RcodeToString[resp.Rcode])
		}
	}
	<-done
}

// Negative answers of a zone with an SOA carry it in the authority section (RFC 2308), NXDOMAIN
// and NODATA alike; positive answers do not.
func TestNegativeAnswersCarryTheSOA(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t)
	s.SetSOA("impulse-max.com", 3600, 900)
	s.AddA("shop.impulse-max.com", "192.0.2.10")
	s.AddCNAME("www.impulse-max.com", "gone.impulse-max.com")
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		soa   bool
	}{
		{"missing.impulse-max.com", dns.TypeA, dns.RcodeNameError, true},
		{"shop.impulse-max.com", dns.TypeAAAA, dns.RcodeSuccess, true},
		{"www.impulse-max.com", dns.TypeA, dns.RcodeNameError, true},
		{"shop.impulse-max.com", dns.TypeA, dns.RcodeSuccess, false},
		{"missing.other.org", dns.TypeA, dns.RcodeNameError, false},
	} {
		resp := ask(t, s, "udp", tc.name, tc.qtype)
		var soa *dns.SOA
		for _, rr := range resp.Ns {
			if x, ok := rr.(*dns.SOA); ok {
				soa = x
			}
		}
		if resp.Rcode != tc.rcode || (soa != nil) != tc.soa {
			t.Errorf("%s %s: rcode %s, SOA %v; want %s, SOA %v", tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[resp.Rcode], soa, dns.RcodeToString[tc.rcode], tc.soa)
			continue
		}
		if soa != nil && (soa.Hdr.Ttl != 3600 || soa.Minttl != 900 || soa.Hdr.Name != "impulse-max.com.") {
			t.Errorf("%s: SOA %v", tc.name, soa)
		}
	}
	s.SetSOA("impulse-max.com", 0, 0)
	if resp := ask(t, s, "udp", "missing.impulse-max.com", dns.TypeA); len(resp.Ns) != 0 {
		t.Errorf("a removed SOA is still served: %v", resp.Ns)
	}
}
