package ingress

import (
	"fmt"
	"testing"
)

func managedRules(n int) []Rule {
	rs := make([]Rule, n)
	for i := range rs {
		// Reverse order so Render really sorts.
		j := n - i
		rs[i] = Rule{
			Hostname: fmt.Sprintf("tenant-%06d.sajet.us", j),
			Service:  fmt.Sprintf("http://10.%d.%d.%d:8069", j>>16&255, j>>8&255, j&255),
		}
	}
	return rs
}

// BenchmarkRenderValidate measures Render, which validates (ValidateManaged
// and Validate of the full list), sorts and writes. Budget: 10k ≤ 50 ms,
// 100k ≤ 500 ms.
func BenchmarkRenderValidate(b *testing.B) {
	base := readBase(b, "full.base.yaml")
	for _, n := range []int{10_000, 100_000} {
		rs := managedRules(n)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := Render(base, rs)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(out)))
			}
		})
	}
}

func TestRenderHundredThousandRulesValidates(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: rendering 100,000 rules takes seconds under -race; make test runs it")
	}
	out, err := Render(readBase(t, "noingress.base.yaml"), managedRules(100_000))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 100_001 {
		t.Fatalf("got %d rules", len(cfg.Rules))
	}
	if err := Validate(cfg.Rules); err != nil {
		t.Fatal(err)
	}
}
