package diagnose_test

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// A domain whose DNS is right: every DNS part is ok, and each says what it saw.
func TestTheDNSOfAWorkingDomain(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.resolver.SetValidating(true)
	r := w.report(t)
	expect(t, r, diagnose.PartRecursive, diagnose.OK, "www.impulse-max.com → impulse-max.sajet.us", "DNSSEC-validated")
	a := expect(t, r, diagnose.PartAuthoritative, diagnose.OK, "ns1.impulse-max.com, ns2.impulse-max.com", "TTL 5 min")
	ev := a.Evidence.(diagnose.AuthEvidence)
	if ev.Zone != "impulse-max.com" || ev.Parent != "com" || !ev.Delegated || len(ev.Answers) != 2 || ev.CacheSeconds == nil || *ev.CacheSeconds != 300 {
		t.Errorf("authoritative evidence %+v", ev)
	}
	for _, ans := range ev.Answers {
		if !ans.Authoritative || ans.Serial == nil || len(ans.Chain) != 1 || ans.Chain[0] != platform {
			t.Errorf("server answer %+v", ans)
		}
	}
	expect(t, r, diagnose.PartDNSSEC, diagnose.OK, "chain of impulse-max.com is valid", "127.0.0.53")
	expect(t, r, diagnose.PartCAA, diagnose.OK, "No CAA record")
	expect(t, r, diagnose.PartConflicts, diagnose.OK)
	expect(t, r, diagnose.PartCloudflare, diagnose.OK, "custom hostname active")
}

// A customer who just changed the record: the authoritative servers already serve it, a resolver
// still caches the old value, and the report says for how long.
func TestTheTruthBeforeCachesExpire(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.resolver.Cache(host, dns.TypeA, 1800, host+". 3600 IN A 198.51.100.7")
	r := w.report(t)
	expect(t, r, diagnose.PartRecursive, diagnose.Fail, "198.51.100.7")
	expect(t, r, diagnose.PartAuthoritative, diagnose.Warn, "already serve www.impulse-max.com → impulse-max.sajet.us", "30 min")
}

func TestAuthoritativeVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(w *world)
		verdict diagnose.Verdict
		want    []string
	}{
		{"the CNAME is missing from the zone", func(w *world) {
			w.child.Remove(host)
			w.child.SetSOA(3600, 60)
		}, diagnose.Fail, []string{"say www.impulse-max.com does not exist", "create the CNAME www.impulse-max.com → impulse-max.sajet.us",
			"ns1.impulse-max.com", "up to 60 s"}},
		{"the CNAME points elsewhere", func(w *world) {
			w.child.Remove(host)
			w.child.Add(host + ". 600 IN CNAME old-host.example.net.")
		}, diagnose.Fail, []string{"serve www.impulse-max.com → old-host.example.net", "up to 10 min"}},
		{"one server is lame", func(w *world) { w.net.SetLame("127.0.0.13", true) }, diagnose.Warn,
			[]string{"ns2.impulse-max.com do(es) not answer for the zone"}},
		{"one server does not answer", func(w *world) { w.net.SetDown("127.0.0.13", true) }, diagnose.Warn,
			[]string{"ns2.impulse-max.com", "no answer (timeout)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			tc.setup(w)
			expect(t, w.report(t), diagnose.PartAuthoritative, tc.verdict, tc.want...)
		})
	}
}

// Two servers of the zone that disagree (a secondary that missed the last transfer) are named
// with their serials.
func TestServersThatDisagree(t *testing.T) {
	t.Parallel()
	w := newWorld(t, withoutDS)
	stale := w.net.Zone("impulse-max.com", "127.0.0.13") // ns2's own, older copy
	stale.Add(host + ". 300 IN A 198.51.100.7")
	r := w.report(t)
	p := expect(t, r, diagnose.PartAuthoritative, diagnose.Warn, "disagree", "(127.0.0.13:")
	if !strings.Contains(p.Message, "ns2.impulse-max.com") {
		t.Errorf("the stale server is not named: %s", p.Message)
	}
}

// A domain that is not registered, or not delegated, fails with what to check at the registrar.
func TestAnUndelegatedDomain(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.com.Remove("impulse-max.com")
	w.com.Remove("ns1.impulse-max.com")
	w.com.Remove("ns2.impulse-max.com")
	r := w.report(t)
	expect(t, r, diagnose.PartAuthoritative, diagnose.Fail, "impulse-max.com does not exist", "registrar")
	if r.Works {
		t.Error("an unregistered domain works")
	}
}

func TestDNSSECVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []option
		setup   func(w *world)
		verdict diagnose.Verdict
		problem string
		want    []string
	}{
		{"DNSSEC off", []option{withoutDS}, nil, diagnose.OK, "", []string{"not enabled"}},
		{"a broken signature", nil, func(w *world) { w.child.BreakSignatures(true) }, diagnose.Fail, "bad_signature",
			[]string{"does not verify", "Re-sign the zone impulse-max.com"}},
		{"expired signatures", nil, func(w *world) { w.child.ExpireSignatures(true) }, diagnose.Fail, "expired",
			[]string{"is valid only from", "no longer being re-signed"}},
		{"a DS for keys the zone replaced", nil, func(w *world) { w.child.Sign() }, diagnose.Fail, "ds_mismatch",
			[]string{"matches none of the zone's keys", "replace the DS of impulse-max.com with the current key's (impulse-max.com. DS "}},
		{"a DS for a zone no longer signed", nil, func(w *world) { w.child.Unsign() }, diagnose.Fail, "no_keys",
			[]string{"serves no DNSKEY", "remove the DS record at your registrar"}},
		{"a resolver that rejects the answer", nil, func(w *world) { w.resolver.FailValidation(host, true) }, diagnose.Fail, "",
			[]string{"reject(s) the answer for www.impulse-max.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tc.opts...)
			if tc.setup != nil {
				tc.setup(w)
			}
			r := w.report(t)
			p := expect(t, r, diagnose.PartDNSSEC, tc.verdict, tc.want...)
			ev := p.Evidence.(diagnose.DNSSECEvidence)
			if tc.problem != "" {
				if len(ev.Servers) != 2 || ev.Servers[0].Valid || ev.Servers[0].Problem != tc.problem {
					t.Errorf("servers %+v, want problem %s", ev.Servers, tc.problem)
				}
			}
			if tc.verdict == diagnose.Fail && p.Fix == "" {
				t.Error("a failing DNSSEC part without a fix")
			}
		})
	}
}

func TestCAAVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		records []string
		verdict diagnose.Verdict
		want    []string
	}{
		{"one of Cloudflare's CAs allowed", []string{`impulse-max.com. 300 IN CAA 0 issue "letsencrypt.org"`}, diagnose.OK,
			[]string{"allows Cloudflare's authorities letsencrypt.org"}},
		{"only another CA allowed", []string{`impulse-max.com. 300 IN CAA 0 issue "digicert.com"`}, diagnose.Fail,
			[]string{"authorises only digicert.com", `CAA 0 issue "letsencrypt.org" / "pki.goog" / "ssl.com"`}},
		{"an unknown critical property", []string{`impulse-max.com. 300 IN CAA 128 tbs "x"`}, diagnose.Fail,
			[]string{"unknown critical property \"tbs\""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, withoutDS)
			w.child.Add(tc.records...)
			p := expect(t, w.report(t), diagnose.PartCAA, tc.verdict, tc.want...)
			if ev := p.Evidence.(diagnose.CAAEvidence); ev.Owner != "impulse-max.com" {
				t.Errorf("the CAA set found is %q's, want the registrable domain's (climbing from the hostname)", ev.Owner)
			}
		})
	}
}

func TestConflictVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(w *world)
		verdict diagnose.Verdict
		kind    string
		want    []string
	}{
		{"addresses beside the CNAME", func(w *world) { w.child.Add(host + ". 300 IN A 198.51.100.7") }, diagnose.Fail, "cname_with_data",
			[]string{"holds both a CNAME and A 198.51.100.7", "Delete A 198.51.100.7 from www.impulse-max.com"}},
		{"addresses instead of the CNAME", func(w *world) {
			w.child.Remove(host)
			w.child.Add(host + ". 300 IN A 198.51.100.7")
		}, diagnose.Fail, "addresses_instead", []string{"holds A 198.51.100.7 instead of a CNAME"}},
		{"_acme-challenge delegated to another provider", func(w *world) {
			w.child.Add("_acme-challenge." + host + ". 300 IN CNAME www.impulse-max.com.acme.other-cdn.net.")
		}, diagnose.Warn, "acme_delegated", []string{"another provider's"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, withoutDS)
			tc.setup(w)
			p := expect(t, w.report(t), diagnose.PartConflicts, tc.verdict, tc.want...)
			ev := p.Evidence.(diagnose.ConflictsEvidence)
			if len(ev.Conflicts) == 0 || ev.Conflicts[0].Kind != tc.kind {
				t.Errorf("conflicts %+v, want %s", ev.Conflicts, tc.kind)
			}
		})
	}
}

// A CNAME at the apex of the zone is named as what it is.
func TestACNAMEAtTheApex(t *testing.T) {
	t.Parallel()
	w := newWorld(t, withoutDS)
	w.child.Add("impulse-max.com. 300 IN CNAME impulse-max.sajet.us.")
	d := w.domain
	if _, err := w.st.Pool().Exec(t.Context(), `UPDATE custom_domains SET external_domain = 'impulse-max.com' WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	expect(t, w.report(t), diagnose.PartConflicts, diagnose.Fail, "impulse-max.com is the zone's apex and holds a CNAME", "ALIAS/ANAME")
}

// Sentences follow the requested language; machine fields do not.
func TestTheReportSpeaksTheRequestedLanguage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.child.Remove(host)
	es, en := w.report(t, i18n.ES), w.report(t, i18n.EN)
	pes, pen := part(t, es, diagnose.PartAuthoritative), part(t, en, diagnose.PartAuthoritative)
	if es.Language != "es" || en.Language != "en" || pes.Verdict != pen.Verdict || pes.Name != pen.Name {
		t.Fatalf("es %s/%s, en %s/%s", es.Language, pes.Verdict, en.Language, pen.Verdict)
	}
	if !strings.Contains(pes.Message, "no existe") || !strings.Contains(pen.Message, "does not exist") || pes.Message == pen.Message {
		t.Errorf("es: %q\nen: %q", pes.Message, pen.Message)
	}
	if !strings.Contains(es.Summary, "no funciona") || !strings.Contains(en.Summary, "does not work") {
		t.Errorf("summaries: %q / %q", es.Summary, en.Summary)
	}
}
