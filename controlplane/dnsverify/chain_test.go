package dnsverify

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// answer builds a response whose answer section holds the given records in presentation format.
func answer(t testing.TB, rcode int, rrs ...string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.Rcode = rcode
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		m.Answer = append(m.Answer, rr)
	}
	return m
}

func matchSub(name string) matchKind {
	switch name {
	case "x.sajet.us":
		return matchExpected
	case "u.cfargotunnel.com":
		return matchTunnel
	}
	return noMatch
}

func TestWalkChain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		first   *dns.Msg
		more    map[string]*dns.Msg // answers to next-hop queries
		maxHops int

		hops    []string
		matched matchKind
		loop    bool
		tooLong bool
		asked   []string
		addrs   int
	}{
		{
			name:  "a chased answer needs no further query",
			first: answer(t, 0, "www.x.com. 60 IN CNAME x.sajet.us.", "x.sajet.us. 60 IN A 192.0.2.1"),
			hops:  []string{"x.sajet.us"}, matched: matchExpected, addrs: 1,
		},
		{
			name:  "owner names match without case or trailing dot",
			first: answer(t, 0, "WWW.X.COM. 60 IN CNAME X.Sajet.US."),
			hops:  []string{"x.sajet.us"}, matched: matchExpected,
		},
		{
			name:  "an answer that stops at an unknown target asks for the next hop once",
			first: answer(t, 0, "www.x.com. 60 IN CNAME a.x.com."),
			more: map[string]*dns.Msg{
				"a.x.com": answer(t, 0, "a.x.com. 60 IN CNAME u.cfargotunnel.com."),
			},
			hops: []string{"a.x.com", "u.cfargotunnel.com"}, matched: matchTunnel, asked: []string{"a.x.com"},
		},
		{
			name:  "a target with no data is asked once and the walk ends there",
			first: answer(t, 0, "www.x.com. 60 IN CNAME a.x.com."),
			more:  map[string]*dns.Msg{"a.x.com": answer(t, 0)},
			hops:  []string{"a.x.com"}, asked: []string{"a.x.com"},
		},
		{
			name:  "a chain ending in addresses needs no further query",
			first: answer(t, 0, "www.x.com. 60 IN CNAME a.x.com.", "a.x.com. 60 IN A 192.0.2.1"),
			hops:  []string{"a.x.com"}, addrs: 1,
		},
		{
			name:  "NXDOMAIN at the end of a chain is not asked again",
			first: answer(t, dns.RcodeNameError, "www.x.com. 60 IN CNAME gone.x.com."),
			hops:  []string{"gone.x.com"},
		},
		{
			name:  "a loop in the answer stops at the repeated name",
			first: answer(t, 0, "www.x.com. 60 IN CNAME a.x.com.", "a.x.com. 60 IN CNAME www.x.com."),
			hops:  []string{"a.x.com", "www.x.com"}, loop: true,
		},
		{
			name:    "MaxHops bounds the walk",
			first:   answer(t, 0, "www.x.com. 60 IN CNAME a.x.com.", "a.x.com. 60 IN CNAME b.x.com.", "b.x.com. 60 IN CNAME x.sajet.us."),
			maxHops: 2,
			hops:    []string{"a.x.com", "b.x.com"}, tooLong: true,
		},
		{
			name:  "no CNAME at all",
			first: answer(t, 0, "www.x.com. 60 IN A 192.0.2.1"),
			addrs: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asked []string
			next := func(name string) (*dns.Msg, error) {
				asked = append(asked, name)
				if m, ok := tc.more[name]; ok {
					return m, nil
				}
				return nil, fmt.Errorf("unexpected query for %s", name)
			}
			maxHops := tc.maxHops
			if maxHops == 0 {
				maxHops = DefaultMaxHops
			}

			w := walkChain("www.x.com", tc.first, maxHops, matchSub, next)

			if w.err != nil {
				t.Fatalf("err = %v", w.err)
			}
			if diff := cmp.Diff(tc.hops, w.hops); diff != "" {
				t.Errorf("hops (-want +got):\n%s", diff)
			}
			if w.matched != tc.matched || w.loop != tc.loop || w.tooLong != tc.tooLong || len(w.addrs) != tc.addrs {
				t.Errorf("matched=%v loop=%v tooLong=%v addrs=%v", w.matched, w.loop, w.tooLong, w.addrs)
			}
			if diff := cmp.Diff(tc.asked, asked); diff != "" {
				t.Errorf("next-hop queries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWalkChainReportsAFailedHop(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	w := walkChain("www.x.com", answer(t, 0, "www.x.com. 60 IN CNAME a.x.com."), 8, matchSub,
		func(string) (*dns.Msg, error) { return nil, &queryError{name: "a.x.com", err: boom} })
	if !errors.Is(w.err, boom) || w.matched != noMatch {
		t.Fatalf("err=%v matched=%v", w.err, w.matched)
	}
}

func TestTokenMatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value, token string
		want         bool
	}{
		{"jeturing-verify-abc", "jeturing-verify-abc", true},
		{" jeturing-verify-abc ", "jeturing-verify-abc", true},
		{`"jeturing-verify-abc"`, "jeturing-verify-abc", true},
		{"JETURING-VERIFY-ABC", "jeturing-verify-abc", true},
		{"jeturing-verify-abd", "jeturing-verify-abc", false},
		{"jeturing-verify-abc extra", "jeturing-verify-abc", false},
		{"", "", false},
	} {
		if got := tokenMatches(tc.value, tc.token); got != tc.want {
			t.Errorf("tokenMatches(%q, %q) = %v, want %v", tc.value, tc.token, got, tc.want)
		}
	}
}

func TestTXTValuesJoinsChunksAndUnescapes(t *testing.T) {
	t.Parallel()
	m := answer(t, 0,
		`_v.x.com. 60 IN TXT "jeturing-" "verify-" "abc"`,
		`_v.x.com. 60 IN TXT "say \"hi\" \\ \007"`,
	)
	// Round-trip through the wire so the values are escaped as miekg/dns escapes received data.
	packed, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var got dns.Msg
	if err := got.Unpack(packed); err != nil {
		t.Fatal(err)
	}
	want := []string{"jeturing-verify-abc", "say \"hi\" \\ \a"}
	if diff := cmp.Diff(want, txtValues(&got)); diff != "" {
		t.Errorf("txtValues (-want +got):\n%s", diff)
	}
}

func TestCAABlocks(t *testing.T) {
	t.Parallel()
	v := &Verifier{caaIssuers: defaultCAAIssuers()}
	caa := func(flag uint8, tag, value string) *dns.CAA { return &dns.CAA{Flag: flag, Tag: tag, Value: value} }
	for _, tc := range []struct {
		name  string
		set   []*dns.CAA
		block bool
	}{
		{"only iodef restricts nothing", []*dns.CAA{caa(0, "iodef", "mailto:a@x.com")}, false},
		{"issuewild alone does not restrict names", []*dns.CAA{caa(0, "issuewild", "digicert.com")}, false},
		{"another CA only", []*dns.CAA{caa(0, "issue", "digicert.com")}, true},
		{"Google Trust Services with parameters", []*dns.CAA{caa(0, "issue", "pki.goog; cansignhttpexchanges=yes")}, false},
		{"issuer names are case-insensitive", []*dns.CAA{caa(0, "ISSUE", "LetsEncrypt.org")}, false},
		{"an empty issue forbids everyone", []*dns.CAA{caa(0, "issue", ";")}, true},
		{"an unknown critical property forbids everyone", []*dns.CAA{caa(128, "tbs", "x"), caa(0, "issue", "letsencrypt.org")}, true},
		{"an unknown non-critical property is ignored", []*dns.CAA{caa(0, "tbs", "x")}, false},
	} {
		if got := !v.caaBlocks("x.com", tc.set).IsZero(); got != tc.block {
			t.Errorf("%s: blocks = %v, want %v", tc.name, got, tc.block)
		}
	}
}

// FuzzWalkChain feeds arbitrary DNS messages (what a hostile or broken resolver could send) to
// the chain walker: it must terminate, never panic, and respect MaxHops.
func FuzzWalkChain(f *testing.F) {
	seed := answer(f, 0, "www.x.com. 60 IN CNAME a.x.com.", "a.x.com. 60 IN CNAME www.x.com.", "a.x.com. 60 IN A 192.0.2.1")
	if b, err := seed.Pack(); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m dns.Msg
		if err := m.Unpack(data); err != nil {
			return
		}
		queries := 0
		w := walkChain("www.x.com", &m, 4, matchSub, func(string) (*dns.Msg, error) {
			queries++
			return &m, nil
		})
		if len(w.hops) > 4 || queries > 5 {
			t.Fatalf("hops=%d queries=%d beyond the bounds", len(w.hops), queries)
		}
	})
}
