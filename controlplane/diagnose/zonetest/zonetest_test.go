package zonetest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/controlplane/diagnose/zonetest"
)

// world is the usual test world: com. delegating impulse-max.com. (signed, two servers), and
// sajet.us. where the customer's CNAME points.
func world(t *testing.T) (*zonetest.Network, *zonetest.Zone, *zonetest.Zone, *zonetest.Resolver) {
	t.Helper()
	n := zonetest.New(t)
	com := n.Zone("com", "127.0.0.11")
	child := n.Zone("impulse-max.com", "127.0.0.12", "127.0.0.13")
	child.Add("www.impulse-max.com. 300 IN CNAME impulse-max.sajet.us.")
	child.Sign()
	com.Delegate(child)
	sajet := n.Zone("sajet.us", "127.0.0.14")
	sajet.Add("impulse-max.sajet.us. 300 IN A 192.0.2.10")
	return n, com, child, n.Resolver("127.0.0.53", com, sajet)
}

func ask(t *testing.T, addr, name string, qtype uint16, rd, do bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = rd
	m.SetEdns0(1232, do)
	resp, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s at %s: %v", name, dns.TypeToString[qtype], addr, err)
	}
	return resp
}

func TestTheParentRefersAndTheChildAnswers(t *testing.T) {
	t.Parallel()
	n, _, child, _ := world(t)
	ref := ask(t, n.Addr("127.0.0.11"), "www.impulse-max.com", dns.TypeA, false, false)
	if ref.Authoritative || len(ref.Answer) != 0 || len(ref.Ns) != 2 || len(ref.Extra) < 2 {
		t.Fatalf("the parent's referral:\n%v", ref)
	}
	ds := ask(t, n.Addr("127.0.0.11"), "impulse-max.com", dns.TypeDS, false, false)
	if !ds.Authoritative || len(ds.Answer) != 1 || ds.Answer[0].(*dns.DS).Digest != child.DS().Digest {
		t.Fatalf("the parent's DS:\n%v", ds)
	}
	for _, ip := range []string{"127.0.0.12", "127.0.0.13"} {
		a := ask(t, n.Addr(ip), "www.impulse-max.com", dns.TypeA, false, true)
		if !a.Authoritative || len(a.Answer) != 2 || a.Answer[0].Header().Rrtype != dns.TypeCNAME || a.Answer[1].Header().Rrtype != dns.TypeRRSIG {
			t.Fatalf("the child's answer at %s:\n%v", ip, a)
		}
	}
	nx := ask(t, n.Addr("127.0.0.12"), "nope.impulse-max.com", dns.TypeA, false, true)
	if nx.Rcode != dns.RcodeNameError || len(nx.Ns) != 4 {
		t.Fatalf("NXDOMAIN with SOA, NSEC and their signatures:\n%v", nx)
	}
}

func TestSignaturesVerifyUntilBroken(t *testing.T) {
	t.Parallel()
	n, _, child, _ := world(t)
	verify := func() error {
		keys := ask(t, n.Addr("127.0.0.12"), "impulse-max.com", dns.TypeDNSKEY, false, true)
		a := ask(t, n.Addr("127.0.0.12"), "www.impulse-max.com", dns.TypeCNAME, false, true)
		sig := a.Answer[1].(*dns.RRSIG)
		for _, rr := range keys.Answer {
			if k, ok := rr.(*dns.DNSKEY); ok && k.KeyTag() == sig.KeyTag {
				return sig.Verify(k, a.Answer[:1])
			}
		}
		return dns.ErrKey
	}
	if err := verify(); err != nil {
		t.Fatalf("a signed answer does not verify: %v", err)
	}
	child.BreakSignatures(true)
	if err := verify(); err == nil {
		t.Fatal("a broken signature verifies")
	}
}

func TestTheResolverIteratesAndFollowsTheChain(t *testing.T) {
	t.Parallel()
	_, _, _, r := world(t)
	a := ask(t, r.Addr(), "www.impulse-max.com", dns.TypeA, true, false)
	var got []string
	for _, rr := range a.Answer {
		got = append(got, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	if !a.RecursionAvailable || len(a.Answer) != 2 || a.Answer[1].(*dns.A).A.String() != "192.0.2.10" {
		t.Fatalf("the resolver's answer: %v", got)
	}
	if nx := ask(t, r.Addr(), "nope.impulse-max.com", dns.TypeA, true, false); nx.Rcode != dns.RcodeNameError {
		t.Fatalf("NXDOMAIN through the resolver: %v", nx)
	}
	r.FailValidation("www.impulse-max.com", true)
	if sf := ask(t, r.Addr(), "www.impulse-max.com", dns.TypeA, true, true); sf.Rcode != dns.RcodeServerFailure {
		t.Errorf("a name that fails validation: %v", dns.RcodeToString[sf.Rcode])
	}
	r.Cache("old.impulse-max.com", dns.TypeA, 120, "old.impulse-max.com. 3600 IN A 198.51.100.7")
	if c := ask(t, r.Addr(), "old.impulse-max.com", dns.TypeA, true, false); len(c.Answer) != 1 || c.Answer[0].Header().Ttl > 120 {
		t.Errorf("a cached old value: %v", c)
	}
}
