package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// The gateway is ready once it accepts connections and knows the valid agent tokens; its
// listener once it holds a LISTEN connection. Each says what is missing until then.
func TestReadiness(t *testing.T) {
	t.Parallel()
	var idle gateway.Server
	if err := idle.Ready(); err == nil {
		t.Error("a gateway that does not serve says it is ready")
	}
	g := startGateway(t)
	testwait.Until(t, 15*time.Second, "the gateway is ready", func() bool { return g.srv.Ready() == nil })

	_, url := storetest.NewDBURL(t)
	good, _ := pgx.ParseConfig(url)
	l := &gateway.Listener{ConnConfig: good, ReconcileInterval: time.Hour}
	if err := l.Ready(); err == nil {
		t.Error("a listener that never connected says it is ready")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Run(ctx, g.srv) }()
	testwait.Until(t, 15*time.Second, "the listener is ready", func() bool { return l.Ready() == nil })
	cancel()
	<-done
	if err := l.Ready(); err == nil {
		t.Error("a stopped listener says it is ready")
	}
}
