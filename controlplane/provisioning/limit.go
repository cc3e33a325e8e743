package provisioning

import (
	"context"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
)

// limiter bounds concurrent Cloudflare calls independently of River's worker slots. A job spends
// a few milliseconds in River's own bookkeeping (fetch, completion) around its Cloudflare call;
// with more worker slots than call slots that time overlaps with other jobs' calls, so the
// Cloudflare pipe stays full at the configured concurrency.
type limiter struct{ slots chan struct{} }

func newLimiter(n int) *limiter { return &limiter{slots: make(chan struct{}, n)} }

func (l *limiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limiter) release() { <-l.slots }

func limited[T any](ctx context.Context, l *limiter, f func() (T, error)) (T, error) {
	if err := l.acquire(ctx); err != nil {
		var zero T
		return zero, err
	}
	defer l.release()
	return f()
}

type limitedDNS struct {
	l    *limiter
	next DNS
}

func (d limitedDNS) EnsureCNAME(ctx context.Context, domainID int64, name, target string, retryAfterUncertain bool) (cloudflare.Record, error) {
	return limited(ctx, d.l, func() (cloudflare.Record, error) {
		return d.next.EnsureCNAME(ctx, domainID, name, target, retryAfterUncertain)
	})
}

func (d limitedDNS) FindRecords(ctx context.Context, name string) ([]cloudflare.Record, error) {
	return limited(ctx, d.l, func() ([]cloudflare.Record, error) { return d.next.FindRecords(ctx, name) })
}

func (d limitedDNS) DeleteRecord(ctx context.Context, id string) error {
	_, err := limited(ctx, d.l, func() (struct{}, error) { return struct{}{}, d.next.DeleteRecord(ctx, id) })
	return err
}

func (d limitedDNS) ListOurRecords(ctx context.Context) ([]cloudflare.Record, error) {
	return limited(ctx, d.l, func() ([]cloudflare.Record, error) { return d.next.ListOurRecords(ctx) })
}

type limitedSaaS struct {
	l    *limiter
	next SaaS
}

func (s limitedSaaS) EnsureCustomHostname(ctx context.Context, domainID int64, hostname string, retryAfterUncertain bool) (cloudflare.CustomHostname, error) {
	return limited(ctx, s.l, func() (cloudflare.CustomHostname, error) {
		return s.next.EnsureCustomHostname(ctx, domainID, hostname, retryAfterUncertain)
	})
}

func (s limitedSaaS) GetCustomHostname(ctx context.Context, id string) (cloudflare.CustomHostname, error) {
	return limited(ctx, s.l, func() (cloudflare.CustomHostname, error) { return s.next.GetCustomHostname(ctx, id) })
}

func (s limitedSaaS) DeleteCustomHostname(ctx context.Context, id string) error {
	_, err := limited(ctx, s.l, func() (struct{}, error) { return struct{}{}, s.next.DeleteCustomHostname(ctx, id) })
	return err
}
