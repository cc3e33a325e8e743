package domains

import (
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/store"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func half() float64 { return 0.5 }

func checked(reason string) dnsverify.Result {
	r := dnsverify.Result{Reason: reason}
	r.Verified = reason == dnsverify.ReasonVerified
	return r
}

// Every transition of a domain's health, table by table.
func TestHealthTransitions(t *testing.T) {
	t.Parallel()
	h := DefaultHealth()
	verified := store.HealthState{ID: 1, Hostname: "www.impulse-max.com", VerifiedAt: ptr(t0.Add(-30 * 24 * time.Hour))}
	wrongFor := func(streak int, since time.Duration) store.HealthState {
		s := verified
		s.WrongStreak, s.WrongSince = streak, ptr(t0.Add(-since))
		return s
	}
	misconfigured := func(graceLeft time.Duration) store.HealthState {
		s := wrongFor(5, 2*time.Hour)
		s.MisconfiguredAt, s.GraceUntil = ptr(t0.Add(graceLeft-h.Grace)), ptr(t0.Add(graceLeft))
		return s
	}
	deactivated := misconfigured(-time.Hour)
	deactivated.DeactivatedAt = ptr(t0.Add(-time.Hour))

	tests := []struct {
		name       string
		before     store.HealthState
		res        dnsverify.Result
		transition string
		streak     int
		next       time.Duration // from t0
	}{
		{"a healthy domain stays healthy and is checked in six hours", verified, checked(dnsverify.ReasonVerified), "", 0, 6 * time.Hour},
		{"one wrong answer is only suspicious", verified, checked(dnsverify.ReasonWrongTarget), "", 1, 10 * time.Minute},
		{"three wrong answers within 30 minutes are not enough", wrongFor(2, 20*time.Minute), checked(dnsverify.ReasonNoCNAME), "", 3, 10 * time.Minute},
		{"three wrong answers spanning 30 minutes misconfigure it", wrongFor(2, 30*time.Minute), checked(dnsverify.ReasonNoCNAME), store.TransitionMisconfigured, 3, 15 * time.Minute},
		{"a long span with two answers is not enough", wrongFor(1, 3*time.Hour), checked(dnsverify.ReasonWrongTarget), "", 2, 10 * time.Minute},
		{"a timeout never counts", wrongFor(2, time.Hour), checked(dnsverify.ReasonTimeout), "", 2, 10 * time.Minute},
		{"SERVFAIL never counts", wrongFor(2, time.Hour), checked(dnsverify.ReasonServFail), "", 2, 10 * time.Minute},
		{"disagreeing resolvers do not count", wrongFor(2, time.Hour), checked(dnsverify.ReasonDisagree), "", 2, 10 * time.Minute},
		{"one good answer ends a run", wrongFor(2, time.Hour), checked(dnsverify.ReasonVerified), "", 0, 6 * time.Hour},
		{"misconfigured keeps serving during the grace", misconfigured(48 * time.Hour), checked(dnsverify.ReasonNoCNAME), "", 6, 15 * time.Minute},
		{"the check at the end of the grace comes on time", misconfigured(5 * time.Minute), checked(dnsverify.ReasonNoCNAME), "", 6, 5 * time.Minute},
		{"a wrong answer after the grace deactivates", misconfigured(0), checked(dnsverify.ReasonNoCNAME), store.TransitionDeactivated, 6, time.Hour},
		{"a timeout after the grace does not deactivate", misconfigured(-time.Minute), checked(dnsverify.ReasonTimeout), "", 5, 0},
		{"one good answer recovers a misconfigured domain", misconfigured(time.Hour), checked(dnsverify.ReasonVerified), store.TransitionRecovered, 0, 6 * time.Hour},
		{"a deactivated domain stays so on wrong answers", deactivated, checked(dnsverify.ReasonNoCNAME), "", 6, time.Hour},
		{"one good answer recovers a deactivated domain", deactivated, checked(dnsverify.ReasonVerified), store.TransitionRecovered, 0, 6 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := h.decide(tc.before, tc.res, true, t0, half)
			if c.Transition != tc.transition || c.WrongStreak != tc.streak {
				t.Errorf("transition %q streak %d, want %q and %d", c.Transition, c.WrongStreak, tc.transition, tc.streak)
			}
			if tc.next > 0 && !c.NextCheckAt.Equal(t0.Add(tc.next)) {
				t.Errorf("next check in %v, want %v", c.NextCheckAt.Sub(t0), tc.next)
			}
			if c.Transition == store.TransitionMisconfigured && (c.GraceUntil == nil || !c.GraceUntil.Equal(t0.Add(h.Grace))) {
				t.Errorf("grace until %v, want seven days from now", c.GraceUntil)
			}
			if c.Transition == store.TransitionRecovered && (c.MisconfiguredAt != nil || c.GraceUntil != nil) {
				t.Errorf("recovered but still misconfigured: %+v", c)
			}
		})
	}
}

// A pending domain is checked every minute ten times, then less and less often up to hourly; a
// negative answer's SOA TTL is waited out; the check before expiry comes at the expiry.
func TestPendingBackoff(t *testing.T) {
	t.Parallel()
	h := DefaultHealth()
	var got []time.Duration
	st := store.HealthState{ID: 1}
	for range 25 {
		c := h.decide(st, checked(dnsverify.ReasonNoCNAME), true, t0, half)
		got = append(got, c.NextCheckAt.Sub(t0))
		st.PendingChecks = c.PendingChecks
	}
	for i, d := range got[:10] {
		if d != time.Minute {
			t.Errorf("check %d: next in %v, want 1m", i+1, d)
		}
	}
	for i := 10; i < len(got); i++ {
		if got[i] < got[i-1] || got[i] > time.Hour {
			t.Errorf("check %d: next in %v after %v: the backoff must grow up to 1h", i+1, got[i], got[i-1])
		}
	}
	if got[len(got)-1] != time.Hour {
		t.Errorf("the backoff ends at %v, want 1h", got[len(got)-1])
	}

	manual := h.decide(store.HealthState{ID: 1, PendingChecks: 3}, checked(dnsverify.ReasonNoCNAME), false, t0, half)
	if manual.PendingChecks != 3 {
		t.Errorf("a manual check moved the backoff to %d", manual.PendingChecks)
	}
	neg := checked(dnsverify.ReasonNoCNAME)
	neg.NegativeTTL = 900
	if c := h.decide(store.HealthState{ID: 1}, neg, true, t0, half); c.NextCheckAt.Sub(t0) != 15*time.Minute {
		t.Errorf("with a 900 s negative TTL the next check is in %v, want 15m", c.NextCheckAt.Sub(t0))
	}
	expires := t0.Add(30 * time.Second)
	if c := h.decide(store.HealthState{ID: 1, ExpiresAt: &expires}, checked(dnsverify.ReasonNoCNAME), true, t0, half); !c.NextCheckAt.Equal(expires) {
		t.Errorf("next check %v, want the expiry %v", c.NextCheckAt, expires)
	}
	if c := h.decide(store.HealthState{ID: 1, PendingChecks: 7}, checked(dnsverify.ReasonVerified), true, t0, half); c.Transition != store.TransitionVerified || c.PendingChecks != 0 {
		t.Errorf("a good answer on a pending domain: %+v", c)
	}
}

// Verified domains are spread over ±20% of their interval.
func TestVerifiedJitter(t *testing.T) {
	t.Parallel()
	h := DefaultHealth()
	st := store.HealthState{ID: 1, VerifiedAt: &t0}
	lo := h.decide(st, checked(dnsverify.ReasonVerified), true, t0, func() float64 { return 0 })
	hi := h.decide(st, checked(dnsverify.ReasonVerified), true, t0, func() float64 { return 0.999999 })
	if d := lo.NextCheckAt.Sub(t0); d != time.Duration(0.8*float64(6*time.Hour)) {
		t.Errorf("lowest jitter: %v", d)
	}
	if d := hi.NextCheckAt.Sub(t0); d < 7*time.Hour || d > time.Duration(1.2*float64(6*time.Hour)) {
		t.Errorf("highest jitter: %v", d)
	}
}
