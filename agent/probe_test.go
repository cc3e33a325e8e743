package agent

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/shared/protocol"
)

// backend is a tenant's backend on loopback that records what reached it.
type backend struct {
	srv   *httptest.Server
	hits  atomic.Int64
	hosts chan string
}

func startBackend(t *testing.T, status int) *backend {
	t.Helper()
	b := &backend{hosts: make(chan string, 16)}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		select {
		case b.hosts <- r.Host:
		default:
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// probe sends req on a stream of its own, as the gateway does, and returns the agent's answer.
func probe(t *testing.T, ys *yamux.Session, req protocol.ProbeRequest) protocol.ProbeResult {
	t.Helper()
	st, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(20 * time.Second))
	if err := protocol.WriteMessage(st, req); err != nil {
		t.Fatal(err)
	}
	m, err := protocol.ReadMessage(st, protocol.MaxProbeResultFrameSize)
	if err != nil {
		t.Fatalf("probe of %s: %v", req.URL, err)
	}
	res, ok := m.(protocol.ProbeResult)
	if !ok {
		t.Fatalf("answer to a probe is a %s", m.MessageType())
	}
	return res
}

// The agent probes only services of the managed rules it applies, with Host: the rule's hostname;
// a URL that is not one of them, or a rule's service asked for under another hostname, is refused
// without any request leaving the tunnel host.
func TestTheAgentProbesOnlyServicesOfItsRules(t *testing.T) {
	h := startAgent(t, nil, nil)
	ys := h.cp.session(t)
	tenant := startBackend(t, http.StatusOK)
	secret := startBackend(t, http.StatusOK) // e.g. the tunnel host's metadata service or admin panel

	// Before anything is applied, nothing can be probed.
	if res := probe(t, ys, protocol.ProbeRequest{URL: tenant.srv.URL, TimeoutMS: 2000, Hostname: "www.impulse-max.com"}); res.OK || res.Failure != protocol.ProbeNotInRules {
		t.Fatalf("a probe before any apply = %+v, want not_in_rules", res)
	}

	d := protocol.Desired{Version: 1, Nonce: protocol.NewNonce(), IssuedAt: time.Now().UTC(), Rules: []protocol.Rule{
		{Hostname: "impulse-max.sajet.us", Service: tenant.srv.URL},
		{Hostname: "www.impulse-max.com", Service: tenant.srv.URL},
	}}
	if ack := push(t, ys, d); !ack.OK {
		t.Fatalf("ack = %+v", ack)
	}

	res := probe(t, ys, protocol.ProbeRequest{URL: tenant.srv.URL, TimeoutMS: 2000, Hostname: "www.impulse-max.com"})
	if !res.OK || res.Status != http.StatusOK || res.Hostname != "www.impulse-max.com" || res.URL != tenant.srv.URL {
		t.Fatalf("probe of a rule's service = %+v", res)
	}
	if host := <-tenant.hosts; host != "www.impulse-max.com" {
		t.Errorf("the backend saw Host %q, want the customer's hostname as cloudflared sends it", host)
	}

	refused := []struct {
		name string
		req  protocol.ProbeRequest
	}{
		{"a URL that is no rule's service", protocol.ProbeRequest{URL: secret.srv.URL, TimeoutMS: 2000, Hostname: "www.impulse-max.com"}},
		{"a URL that is no rule's service, without a hostname", protocol.ProbeRequest{URL: secret.srv.URL, TimeoutMS: 2000}},
		{"a rule's service under a hostname it does not route", protocol.ProbeRequest{URL: tenant.srv.URL, TimeoutMS: 2000, Hostname: "other.example.com"}},
		{"a rule's service with a path", protocol.ProbeRequest{URL: tenant.srv.URL + "/admin", TimeoutMS: 2000, Hostname: "www.impulse-max.com"}},
	}
	for _, tc := range refused {
		res := probe(t, ys, tc.req)
		if res.OK || res.Failure != protocol.ProbeNotInRules || res.Status != 0 {
			t.Errorf("%s: %+v, want refused with not_in_rules", tc.name, res)
		}
	}
	if n := secret.hits.Load(); n != 0 {
		t.Errorf("the service outside the rules received %d requests", n)
	}
	if n := tenant.hits.Load(); n != 1 {
		t.Errorf("the tenant's backend received %d requests, want the one allowed probe", n)
	}

	// A rule removed from the applied set can no longer be probed.
	d = protocol.Desired{Version: 2, Nonce: protocol.NewNonce(), IssuedAt: time.Now().UTC(), Rules: []protocol.Rule{}}
	if ack := push(t, ys, d); !ack.OK {
		t.Fatalf("ack = %+v", ack)
	}
	if res := probe(t, ys, protocol.ProbeRequest{URL: tenant.srv.URL, TimeoutMS: 2000, Hostname: "www.impulse-max.com"}); res.Failure != protocol.ProbeNotInRules {
		t.Errorf("a probe after the rule was removed = %+v, want not_in_rules", res)
	}
}
