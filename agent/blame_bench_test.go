package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jeturing/sajet-domains/agent/apply"
	"github.com/jeturing/sajet-domains/internal/cloudflaredtest"
	"github.com/jeturing/sajet-domains/shared/ingress"
)

// BenchmarkBlameWithCloudflared measures what it costs to find the one rule a cloudflared refuses
// among n managed rules: the NACK's attribution by bisection, each step a real
// `cloudflared tunnel ingress validate` (through a wrapper that refuses one hostname, since the
// real binary accepts everything our validator does).
//
//	go test -run '^$' -bench BenchmarkBlameWithCloudflared -benchtime 3x ./agent/
func BenchmarkBlameWithCloudflared(b *testing.B) {
	real := cloudflaredtest.Path(b)
	for _, n := range []int{100, 2000, 20000} {
		b.Run(fmt.Sprintf("%d-rules", n), func(b *testing.B) {
			dir := b.TempDir()
			wrapper := filepath.Join(dir, "cloudflared")
			culprit := fmt.Sprintf("h%05d.example.com", n/3)
			script := "#!/bin/sh\nif grep -q '" + culprit + "' \"$3\"; then echo 'Validation failed: no' >&2; exit 1; fi\nexec " + real + " \"$@\"\n"
			if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
				b.Fatal(err)
			}
			base := filepath.Join(dir, "base.yml")
			if err := os.WriteFile(base, []byte("tunnel: x\ncredentials-file: /etc/cloudflared/x.json\ningress:\n  - service: http_status:404\n"), 0o644); err != nil {
				b.Fatal(err)
			}
			rules := make([]ingress.Rule, n)
			for i := range rules {
				rules[i] = ingress.Rule{Hostname: fmt.Sprintf("h%05d.example.com", i), Service: "http://10.0.0.5:8069"}
			}
			b.ResetTimer()
			for range b.N {
				a := &apply.Applier{ConfigPath: filepath.Join(dir, "config.yml"), BaseConfig: base, StateDir: filepath.Join(dir, "state"),
					Check: CloudflaredCheck(wrapper)}
				if err := a.Open(context.Background()); err != nil {
					b.Fatal(err)
				}
				res := a.Apply(context.Background(), 1, rules)
				if res.OK || len(res.Rejected) != 1 || res.Rejected[0].Hostname != culprit {
					b.Fatalf("got %+v", res.Rejected)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/nack")
		})
	}
}
