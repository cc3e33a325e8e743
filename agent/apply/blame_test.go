package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/jeturing/sajet-domains/shared/protocol"
)

// A NACK at validate names every rule the built-in validator refuses, with why, so the control
// plane can leave exactly those out.
func TestBuiltInRefusalNamesTheRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, operatorFile)
	want := rules("a.example.com", "ops.sajet.us", "b.example.com")
	want[2].Service = "http://admin@10.0.0.5:8069"
	res := e.a.Apply(context.Background(), 3, want)
	if res.OK || res.Stage != protocol.StageValidate {
		t.Fatalf("got %+v, want a NACK at validate", res)
	}
	got := res.Rejected
	for i := range got {
		got[i].Error = ""
	}
	if diff := cmp.Diff([]protocol.Rejection{
		{Hostname: "ops.sajet.us", Reason: protocol.RejectBaseConflict},
		{Hostname: "b.example.com", Reason: protocol.RejectInvalid},
	}, got); diff != "" {
		t.Errorf("rejected (-want +got):\n%s", diff)
	}
	if e.unit.restarts() != 0 || e.config(t) != operatorFile {
		t.Error("a refused version touched config.yml or cloudflared")
	}
}

// When the checker (cloudflared) refuses what the built-in validator accepted, bisection blames
// the one rule that makes it refuse, in about log2(n) checker runs.
func TestCheckerRefusalIsBlamedOnOneRule(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 7, 64} {
		for _, bad := range []int{0, n / 2, n - 1} {
			t.Run(fmt.Sprintf("%d rules, rule %d refused", n, bad), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, operatorFile)
				hosts := make([]string, n)
				for i := range hosts {
					hosts[i] = fmt.Sprintf("h%03d.example.com", i)
				}
				culprit := hosts[bad]
				var runs atomic.Int64
				e.a.Check = func(_ context.Context, path string) error {
					runs.Add(1)
					data, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					if strings.Contains(string(data), culprit) {
						return &Refusal{Reason: "cloudflared: " + culprit + " is not to my taste"}
					}
					return nil
				}
				res := e.a.Apply(context.Background(), 5, rules(hosts...))
				want := []protocol.Rejection{{Hostname: culprit, Reason: protocol.RejectCloudflared, Error: "cloudflared: " + culprit + " is not to my taste"}}
				if diff := cmp.Diff(want, res.Rejected); diff != "" {
					t.Fatalf("rejected (-want +got):\n%s", diff)
				}
				if max := int64(log2ceil(n) + 3); runs.Load() > max {
					t.Errorf("%d checker runs, want at most %d", runs.Load(), max)
				}
				if e.config(t) != operatorFile {
					t.Error("config.yml changed")
				}
				if left := strayTemps(t, e.dir); len(left) > 0 {
					t.Errorf("temp files left behind: %v", left)
				}
			})
		}
	}
}

// No rule is blamed when the base alone is refused, or when the checker could not run at all.
func TestCheckerFailuresThatNoRuleCaused(t *testing.T) {
	t.Parallel()
	for name, check := range map[string]Checker{
		"base refused":    func(context.Context, string) error { return &Refusal{Reason: "cloudflared: the base is wrong"} },
		"checker missing": func(context.Context, string) error { return errors.New("exec: cloudflared: not found") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, operatorFile)
			e.a.Check = check
			res := e.a.Apply(context.Background(), 2, rules("a.example.com", "b.example.com"))
			if res.OK || res.Stage != protocol.StageValidate || len(res.Rejected) != 0 {
				t.Fatalf("got %+v, want a NACK at validate naming no rule", res)
			}
		})
	}
}

func log2ceil(n int) int {
	k := 0
	for 1<<k < n {
		k++
	}
	return k
}

func strayTemps(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// A push that finds config.yml edited behind the agent's back replaces it and counts the edit as
// drift, as a rescan would have; a reconcile does not count the same edit twice.
func TestAPushOverAHandEditCountsDrift(t *testing.T) {
	t.Parallel()
	e := newEnv(t, operatorFile)
	if res := e.a.Apply(context.Background(), 1, rules("a.example.com")); !res.OK {
		t.Fatal(res.Err)
	}
	mustWrite(t, e.a.ConfigPath, e.config(t)+"# an operator was here\n")
	if res := e.a.Apply(context.Background(), 2, rules("a.example.com", "b.example.com")); !res.OK {
		t.Fatal(res.Err)
	}
	if d := e.a.Snapshot().Drift; d != 1 {
		t.Fatalf("drift after a push over a hand edit: %d, want 1", d)
	}
	mustWrite(t, e.a.ConfigPath, e.config(t)+"# and again\n")
	if _, changed := e.a.Reconcile(context.Background()); !changed {
		t.Fatal("the reconcile did not restore the file")
	}
	if d := e.a.Snapshot().Drift; d != 2 {
		t.Fatalf("drift after a reconcile of a second edit: %d, want 2", d)
	}
}
