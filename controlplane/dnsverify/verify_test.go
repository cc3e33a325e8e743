package dnsverify_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

const (
	token  = "jeturing-verify-0123456789abcdef0123456789abcdef"
	tunnel = "6ff42ae2-765d-4adf-8112-31c55c1551ef.cfargotunnel.com"
)

// platform gives a platform name the addresses Cloudflare's proxy would answer with.
func platform(s *dnstest.Server, name string) {
	s.AddA(name, "203.0.113.10", "203.0.113.11")
	s.AddAAAA(name, "2001:db8::10")
}

// newVerifier returns a Verifier that queries only the given loopback servers.
func newVerifier(t testing.TB, cfg dnsverify.Config, servers ...*dnstest.Server) *dnsverify.Verifier {
	t.Helper()
	for _, s := range servers {
		cfg.Resolvers = append(cfg.Resolvers, s.Addr())
	}
	v, err := dnsverify.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func wwwRequest() dnsverify.Request {
	return dnsverify.Request{
		Hostname: "www.impulse-max.com",
		Expected: "impulse-max.sajet.us",
		TXTName:  "_jeturing-verify.impulse-max.com",
		TXTToken: token,
	}
}

func apexRequest() dnsverify.Request {
	return dnsverify.Request{
		Hostname: "impulse-max.com",
		Expected: "impulse-max.sajet.us",
		TXTName:  "_jeturing-verify.impulse-max.com",
		TXTToken: token,
		Apex:     true,
	}
}

func ptr(s string) *string { return &s }

func TestVerifySeedDomains(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ host, expected string }{
		{"www.impulse-max.com", "impulse-max.sajet.us"},
		{"www.evolucionamujer.com", "evolucionamujer.sajet.us"},
		{"www.techeels.io", "techeels.sajet.us"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			t.Parallel()
			srv := dnstest.Start(t)
			srv.AddCNAME(tc.host, tc.expected)
			srv.AddCNAME(tc.expected, tunnel)
			platform(srv, tunnel)
			v := newVerifier(t, dnsverify.Config{}, srv)

			res := v.Verify(t.Context(), dnsverify.Request{Hostname: tc.host, Expected: tc.expected})

			if !res.Verified || res.Message.ES != "Dominio verificado correctamente" {
				t.Fatalf("Verified=%v Message=%q, want verified: %+v", res.Verified, res.Message.ES, res)
			}
			if res.Method != dnsverify.MethodCNAME || res.CNAMEDetected != tc.expected || res.Found != nil {
				t.Errorf("Method=%q CNAMEDetected=%q Found=%v", res.Method, res.CNAMEDetected, res.Found)
			}
			if got := res.Resolvers[0].Chain; !cmp.Equal(got, []string{tc.expected}) {
				t.Errorf("Chain = %v", got)
			}
			if res.CheckedAt.IsZero() {
				t.Error("CheckedAt is zero")
			}
		})
	}
}

// The seed's 400 body: status failed, "CNAME no detectado", expected, found null, instructions.
func TestVerifyNoRecordMatchesSeedFailure(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	platform(srv, "impulse-max.sajet.us")
	v := newVerifier(t, dnsverify.Config{}, srv)

	res := v.Verify(t.Context(), wwwRequest())

	want := struct {
		Verified                        bool
		Message, Expected, Instructions string
		Found                           *string
		Reason                          string
	}{false, "CNAME no detectado", "impulse-max.sajet.us",
		"Configure el CNAME www.impulse-max.com → impulse-max.sajet.us", nil, dnsverify.ReasonNoCNAME}
	got := want
	got.Verified, got.Message, got.Expected, got.Instructions, got.Found, got.Reason =
		res.Verified, res.Message.ES, res.Expected, res.Instructions.ES, res.Found, res.Reason
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if rc := res.Resolvers[0].Rcode; rc != "NXDOMAIN" {
		t.Errorf("resolver Rcode = %q, want NXDOMAIN", rc)
	}
}

func TestVerifyScenarios(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		zone func(s *dnstest.Server)
		req  func() dnsverify.Request
		cfg  dnsverify.Config

		verified     bool
		method       string
		reason       string
		message      string
		found        *string // compared always
		instructions string  // compared when set
		conflict     string  // a Conflicts entry must contain it, when set
		chain        []string
		check        func(t *testing.T, res dnsverify.Result)
	}{
		{
			name: "a CNAME to another target is named as found",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "old-host.example.net")
				s.AddA("old-host.example.net", "192.0.2.50")
			},
			reason: dnsverify.ReasonWrongTarget, message: "CNAME apunta a otro destino",
			found:        ptr("old-host.example.net"),
			instructions: "Configure el CNAME www.impulse-max.com → impulse-max.sajet.us (hoy apunta a old-host.example.net)",
			chain:        []string{"old-host.example.net"},
			check: func(t *testing.T, res dnsverify.Result) {
				if got := res.Resolvers[0].A; !cmp.Equal(got, []string{"192.0.2.50"}) {
					t.Errorf("A = %v, want the wrong target's address", got)
				}
			},
		},
		{
			name: "a CNAME to a name that does not exist names the missing target",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "typo.sajet.us")
			},
			reason: dnsverify.ReasonWrongTarget, message: "CNAME apunta a otro destino",
			found: ptr("typo.sajet.us"), conflict: "typo.sajet.us, no existe (NXDOMAIN)",
			check: func(t *testing.T, res dnsverify.Result) {
				if rc := res.Resolvers[0].Rcode; rc != "NXDOMAIN" {
					t.Errorf("Rcode = %q, want NXDOMAIN (RFC 6604: the end of the chain)", rc)
				}
			},
		},
		{
			name: "a chain through an intermediate name verifies",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "edge.impulse-max.com")
				s.AddCNAME("edge.impulse-max.com", "impulse-max.sajet.us")
			},
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
			chain:   []string{"edge.impulse-max.com", "impulse-max.sajet.us"},
		},
		{
			name: "a CNAME loop fails cleanly",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "a.impulse-max.com")
				s.AddCNAME("a.impulse-max.com", "b.impulse-max.com")
				s.AddCNAME("b.impulse-max.com", "a.impulse-max.com")
			},
			reason: dnsverify.ReasonChainLoop, message: "La cadena CNAME forma un bucle",
			found: ptr("a.impulse-max.com"),
			chain: []string{"a.impulse-max.com", "b.impulse-max.com", "a.impulse-max.com"},
			instructions: "Configure el CNAME www.impulse-max.com → impulse-max.sajet.us: la cadena actual " +
				"(www.impulse-max.com → a.impulse-max.com → b.impulse-max.com → a.impulse-max.com) forma un bucle",
		},
		{
			name: "a CNAME loop behind an authoritative-only server fails cleanly",
			zone: func(s *dnstest.Server) {
				s.SetRecursive(false)
				s.AddCNAME("www.impulse-max.com", "a.impulse-max.com")
				s.AddCNAME("a.impulse-max.com", "www.impulse-max.com")
			},
			reason: dnsverify.ReasonChainLoop, found: ptr("a.impulse-max.com"),
			message: "La cadena CNAME forma un bucle",
			chain:   []string{"a.impulse-max.com", "www.impulse-max.com"},
		},
		{
			name:   "a chain of nine CNAMEs is too long even if it ends at the target",
			zone:   func(s *dnstest.Server) { chain(s, 9) },
			reason: dnsverify.ReasonChainTooLong, message: "La cadena CNAME es demasiado larga",
			found: ptr("hop1.impulse-max.com"),
		},
		{
			name:     "a chain of eight CNAMEs is within the limit",
			zone:     func(s *dnstest.Server) { chain(s, 8) },
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
		},
		{
			name:     "a MaxHops of two rejects a chain of three",
			zone:     func(s *dnstest.Server) { chain(s, 3) },
			cfg:      dnsverify.Config{MaxHops: 2},
			reason:   dnsverify.ReasonChainTooLong,
			message:  "La cadena CNAME es demasiado larga",
			found:    ptr("hop1.impulse-max.com"),
			verified: false,
		},
		{
			name: "a CNAME straight to the tunnel verifies as cname_tunnel",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", tunnel)
			},
			req: func() dnsverify.Request {
				r := wwwRequest()
				r.TunnelTarget = tunnel
				return r
			},
			verified: true, method: dnsverify.MethodCNAMETunnel, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente", chain: []string{tunnel},
		},
		{
			name: "a CNAME to the tunnel without TunnelTarget configured is another target",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", tunnel)
			},
			reason: dnsverify.ReasonWrongTarget, message: "CNAME apunta a otro destino", found: ptr(tunnel),
		},
		{
			name: "A and AAAA records instead of a CNAME are listed",
			zone: func(s *dnstest.Server) {
				s.AddA("www.impulse-max.com", "192.0.2.7", "192.0.2.1")
				s.AddAAAA("www.impulse-max.com", "2001:db8::1")
			},
			reason: dnsverify.ReasonAddressesInstead, message: "CNAME no detectado",
			found:    ptr("A 192.0.2.1, A 192.0.2.7, AAAA 2001:db8::1"),
			conflict: "www.impulse-max.com tiene registros A 192.0.2.1, A 192.0.2.7, AAAA 2001:db8::1 en lugar de un CNAME",
			instructions: "Elimine los registros A/AAAA de www.impulse-max.com (A 192.0.2.1, A 192.0.2.7, AAAA 2001:db8::1) " +
				"y configure el CNAME www.impulse-max.com → impulse-max.sajet.us",
		},
		{
			name: "addresses beside the right CNAME verify but are named as a conflict",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
				s.AddA("www.impulse-max.com", "192.0.2.99")
				s.AddAAAA("www.impulse-max.com", "2001:db8::99")
			},
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message:  "Dominio verificado correctamente",
			conflict: "www.impulse-max.com tiene a la vez un CNAME y registros A 192.0.2.99, AAAA 2001:db8::99",
			check: func(t *testing.T, res dnsverify.Result) {
				if got := res.Resolvers[0].A; !cmp.Equal(got, []string{"203.0.113.10", "203.0.113.11"}) {
					t.Errorf("A = %v, want the target's addresses only", got)
				}
			},
		},
		{
			name: "a flattened apex with the target's addresses and the TXT token verifies",
			zone: func(s *dnstest.Server) {
				platform(s, "impulse-max.com")
				s.AddTXT("_jeturing-verify.impulse-max.com", token)
			},
			req:      apexRequest,
			verified: true, method: dnsverify.MethodFlattened, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
			check: func(t *testing.T, res dnsverify.Result) {
				if !res.TXTFound || res.CNAMEDetected != "impulse-max.sajet.us" {
					t.Errorf("TXTFound=%v CNAMEDetected=%q", res.TXTFound, res.CNAMEDetected)
				}
			},
		},
		{
			name: "a flattened apex without the TXT token asks for it",
			zone: func(s *dnstest.Server) {
				platform(s, "impulse-max.com")
			},
			req:    apexRequest,
			reason: dnsverify.ReasonTXTMissing, message: "Registro TXT de verificación no encontrado",
			instructions: "Agregue el registro TXT _jeturing-verify.impulse-max.com con el valor " + token,
		},
		{
			name: "an apex with other addresses names them",
			zone: func(s *dnstest.Server) {
				s.AddA("impulse-max.com", "198.51.100.4")
				s.AddTXT("_jeturing-verify.impulse-max.com", token)
			},
			req:    apexRequest,
			reason: dnsverify.ReasonFlattenedMismatch, message: "Las direcciones del dominio raíz no coinciden con las del destino",
			found:    ptr("A 198.51.100.4"),
			conflict: "Registro A obsoleto 198.51.100.4 en el dominio raíz impulse-max.com",
		},
		{
			name: "a stale AAAA at a flattened apex is named",
			zone: func(s *dnstest.Server) {
				platform(s, "impulse-max.com")
				s.AddAAAA("impulse-max.com", "2001:db8::dead")
				s.AddTXT("_jeturing-verify.impulse-max.com", token)
			},
			req:      apexRequest,
			reason:   dnsverify.ReasonFlattenedMismatch,
			message:  "Las direcciones del dominio raíz no coinciden con las del destino",
			found:    ptr("A 203.0.113.10, A 203.0.113.11, AAAA 2001:db8::10, AAAA 2001:db8::dead"),
			conflict: "Registro AAAA obsoleto 2001:db8::dead en el dominio raíz impulse-max.com",
		},
		{
			name:   "an empty apex explains flattening and the TXT record",
			zone:   func(s *dnstest.Server) {},
			req:    apexRequest,
			reason: dnsverify.ReasonNoCNAME, message: "CNAME no detectado",
			instructions: "impulse-max.com es el dominio raíz, donde no se permite un CNAME: cree un registro ALIAS/ANAME " +
				"o un CNAME con aplanamiento (CNAME flattening) impulse-max.com → impulse-max.sajet.us en su proveedor DNS. " +
				"Agregue el registro TXT _jeturing-verify.impulse-max.com con el valor " + token,
		},
		{
			name: "RequireTXT without the TXT record fails with the record to add",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
			},
			req:    requireTXT,
			reason: dnsverify.ReasonTXTMissing, message: "Registro TXT de verificación no encontrado",
			instructions: "Agregue el registro TXT _jeturing-verify.impulse-max.com con el valor " + token,
			check: func(t *testing.T, res dnsverify.Result) {
				if res.CNAMEDetected != "impulse-max.sajet.us" || res.TXTFound {
					t.Errorf("CNAMEDetected=%q TXTFound=%v", res.CNAMEDetected, res.TXTFound)
				}
			},
		},
		{
			name: "RequireTXT with another value names the value found",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
				s.AddTXT("_jeturing-verify.impulse-max.com", "jeturing-verify-old")
			},
			req:    requireTXT,
			reason: dnsverify.ReasonTXTMismatch, message: "Registro TXT de verificación con valor incorrecto",
			found:    ptr(`TXT "jeturing-verify-old"`),
			conflict: `contiene "jeturing-verify-old", que no es el token`,
		},
		{
			name: "RequireTXT with the token verifies",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
				s.AddTXT("_jeturing-verify.impulse-max.com", "v=spf1 -all", token)
			},
			req:      requireTXT,
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
			check: func(t *testing.T, res dnsverify.Result) {
				if !res.TXTFound {
					t.Error("TXTFound = false")
				}
				if got := res.Resolvers[0].TXT; !cmp.Equal(got, []string{"v=spf1 -all", token}) {
					t.Errorf("TXT = %v", got)
				}
			},
		},
		{
			name: "a TXT token split into chunks is joined",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
				s.AddTXTChunks("_jeturing-verify.impulse-max.com", token[:10], token[10:30], token[30:])
			},
			req:      requireTXT,
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
		},
		{
			name: "a TXT token typed with quotes and in upper case is accepted",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
				s.AddTXT("_jeturing-verify.impulse-max.com", `"`+strings.ToUpper(token)+`"`)
			},
			req:      requireTXT,
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
		},
		{
			name: "SERVFAIL is reported with what to check",
			zone: func(s *dnstest.Server) {
				s.SetRcode("www.impulse-max.com", dns.RcodeServerFailure)
			},
			reason: dnsverify.ReasonServFail, message: "El DNS del dominio responde con error (SERVFAIL)",
			found: ptr("SERVFAIL"),
			check: func(t *testing.T, res dnsverify.Result) {
				if r := res.Resolvers[0]; r.Rcode != "SERVFAIL" || r.Found != "SERVFAIL" {
					t.Errorf("resolver = %+v", r)
				}
				if !strings.Contains(res.Instructions.ES, "DNSSEC") {
					t.Errorf("Instructions = %q, want a hint about NS/DNSSEC", res.Instructions.ES)
				}
			},
		},
		{
			name: "REFUSED is reported as such",
			zone: func(s *dnstest.Server) {
				s.SetRcode("www.impulse-max.com", dns.RcodeRefused)
			},
			reason: dnsverify.ReasonRcode, message: "El DNS del dominio rechaza la consulta", found: ptr("REFUSED"),
		},
		{
			name: "an authoritative-only server is followed hop by hop",
			zone: func(s *dnstest.Server) {
				s.SetRecursive(false)
				s.AddCNAME("www.impulse-max.com", "edge.impulse-max.com")
				s.AddCNAME("edge.impulse-max.com", "impulse-max.sajet.us")
			},
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
			chain:   []string{"edge.impulse-max.com", "impulse-max.sajet.us"},
		},
		{
			name: "truncated UDP answers are retried over TCP",
			zone: func(s *dnstest.Server) {
				s.SetTruncateUDP(true)
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
			},
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
		},
		{
			name: "names are compared without case or trailing dot",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "Impulse-Max.Sajet.US.")
			},
			req: func() dnsverify.Request {
				r := wwwRequest()
				r.Hostname, r.Expected = "WWW.Impulse-Max.com.", "impulse-max.sajet.us."
				return r
			},
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
			chain:   []string{"impulse-max.sajet.us"},
		},
		{
			name: "a CAA record that allows none of the platform's CAs is named",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
				s.AddCAA("impulse-max.com", 0, "issue", "digicert.com")
				s.AddCAA("impulse-max.com", 0, "iodef", "mailto:sec@impulse-max.com")
			},
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message:  "Dominio verificado correctamente",
			conflict: "El registro CAA de impulse-max.com solo autoriza a digicert.com",
		},
		{
			name: "a CAA record that allows Let's Encrypt is not a conflict",
			zone: func(s *dnstest.Server) {
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
				s.AddCAA("impulse-max.com", 0, "issue", "letsencrypt.org")
			},
			verified: true, method: dnsverify.MethodCNAME, reason: dnsverify.ReasonVerified,
			message: "Dominio verificado correctamente",
			check: func(t *testing.T, res dnsverify.Result) {
				if len(res.Conflicts) != 0 {
					t.Errorf("Conflicts = %q, want none", res.Conflicts)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := dnstest.Start(t)
			platform(srv, "impulse-max.sajet.us")
			platform(srv, tunnel)
			tc.zone(srv)
			v := newVerifier(t, tc.cfg, srv)
			req := wwwRequest()
			if tc.req != nil {
				req = tc.req()
			}

			res := v.Verify(t.Context(), req)

			if res.Verified != tc.verified || res.Method != tc.method || res.Reason != tc.reason || res.Message.ES != tc.message {
				t.Errorf("Verified=%v Method=%q Reason=%q Message=%q\nwant     %v        %q        %q        %q",
					res.Verified, res.Method, res.Reason, res.Message.ES, tc.verified, tc.method, tc.reason, tc.message)
			}
			if diff := cmp.Diff(tc.found, res.Found); diff != "" {
				t.Errorf("Found (-want +got):\n%s", diff)
			}
			if tc.instructions != "" && res.Instructions.ES != tc.instructions {
				t.Errorf("Instructions:\n got %q\nwant %q", res.Instructions.ES, tc.instructions)
			}
			if !tc.verified && res.Instructions.ES == "" {
				t.Error("no Instructions for a failure")
			}
			if tc.conflict != "" && !containsSubstring(i18n.Strings(res.Conflicts, i18n.ES), tc.conflict) {
				t.Errorf("Conflicts = %q, want one containing %q", res.Conflicts, tc.conflict)
			}
			if tc.chain != nil {
				if diff := cmp.Diff(tc.chain, res.Resolvers[0].Chain); diff != "" {
					t.Errorf("Chain (-want +got):\n%s", diff)
				}
			}
			if len(res.Resolvers) != 1 || res.Resolvers[0].Verified != tc.verified || res.Expected != "impulse-max.sajet.us" {
				t.Errorf("Resolvers = %+v, Expected = %q", res.Resolvers, res.Expected)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

func requireTXT() dnsverify.Request {
	r := wwwRequest()
	r.RequireTXT = true
	return r
}

// chain makes www.impulse-max.com reach impulse-max.sajet.us through n CNAMEs.
func chain(s *dnstest.Server, n int) {
	prev := "www.impulse-max.com"
	for i := 1; i < n; i++ {
		next := fmt.Sprintf("hop%d.impulse-max.com", i)
		s.AddCNAME(prev, next)
		prev = next
	}
	s.AddCNAME(prev, "impulse-max.sajet.us")
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestVerifyTruncationUsesTCP(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	srv.SetTruncateUDP(true)
	srv.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
	platform(srv, "impulse-max.sajet.us")
	v := newVerifier(t, dnsverify.Config{DisableCAA: true}, srv)

	res := v.Verify(t.Context(), wwwRequest())

	if !res.Verified {
		t.Fatalf("not verified: %+v", res)
	}
	// Every question (A, AAAA, TXT) was truncated over UDP and asked again over TCP.
	if udp, tcp := srv.UDPQueries(), srv.TCPQueries(); tcp != 3 || udp != 3 {
		t.Errorf("UDP=%d TCP=%d queries, want 3 and 3", udp, tcp)
	}
}

func TestVerifyLargeAnswerFallsBackToTCP(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	srv.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
	platform(srv, "impulse-max.sajet.us")
	// Forty 255-octet TXT records do not fit in 1232 octets: the server truncates by itself.
	for i := range 40 {
		srv.AddTXT("_jeturing-verify.impulse-max.com", strings.Repeat(fmt.Sprint(i%10), 255))
	}
	srv.AddTXT("_jeturing-verify.impulse-max.com", token)
	v := newVerifier(t, dnsverify.Config{DisableCAA: true}, srv)

	res := v.Verify(t.Context(), requireTXT())

	if !res.Verified || !res.TXTFound || len(res.Resolvers[0].TXT) != 41 {
		t.Fatalf("Verified=%v TXTFound=%v TXT=%d values", res.Verified, res.TXTFound, len(res.Resolvers[0].TXT))
	}
	if srv.TCPQueries() != 1 {
		t.Errorf("TCP queries = %d, want 1 (the TXT lookup)", srv.TCPQueries())
	}
}

func TestVerifyMultipleResolvers(t *testing.T) {
	t.Parallel()
	fast := dnsverify.Config{QueryTimeout: 100 * time.Millisecond, CheckTimeout: 400 * time.Millisecond}

	good := func(t *testing.T) *dnstest.Server {
		t.Helper()
		s := dnstest.Start(t)
		s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
		platform(s, "impulse-max.sajet.us")
		return s
	}
	silent := func(t *testing.T) *dnstest.Server {
		t.Helper()
		s := good(t)
		s.SetDrop(true)
		return s
	}

	t.Run("resolvers that agree verify", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, dnsverify.Config{}, good(t), good(t), good(t))
		res := v.Verify(t.Context(), wwwRequest())
		if !res.Verified || len(res.Resolvers) != 3 {
			t.Fatalf("Verified=%v resolvers=%d", res.Verified, len(res.Resolvers))
		}
	})

	t.Run("resolvers that disagree do not verify and show both views", func(t *testing.T) {
		t.Parallel()
		stale := dnstest.Start(t)
		stale.AddA("www.impulse-max.com", "192.0.2.1")
		fresh := good(t)
		v := newVerifier(t, dnsverify.Config{}, fresh, stale)

		res := v.Verify(t.Context(), wwwRequest())

		if res.Verified || res.Message.ES != "Los resolvers no coinciden" || res.Reason != dnsverify.ReasonDisagree {
			t.Fatalf("Verified=%v Message=%q Reason=%q", res.Verified, res.Message.ES, res.Reason)
		}
		if diff := cmp.Diff(ptr("A 192.0.2.1"), res.Found); diff != "" {
			t.Errorf("Found (-want +got):\n%s", diff)
		}
		if !strings.Contains(res.Instructions.ES, "TTL") {
			t.Errorf("Instructions = %q, want a note on propagation", res.Instructions.ES)
		}
		r0, r1 := res.Resolvers[0], res.Resolvers[1]
		if r0.Resolver != fresh.Addr() || !r0.Verified || !cmp.Equal(r0.Chain, []string{"impulse-max.sajet.us"}) {
			t.Errorf("fresh view = %+v", r0)
		}
		if r1.Resolver != stale.Addr() || r1.Verified || !cmp.Equal(r1.A, []string{"192.0.2.1"}) || r1.Reason != dnsverify.ReasonAddressesInstead {
			t.Errorf("stale view = %+v", r1)
		}
	})

	t.Run("failing resolvers with different views are called out", func(t *testing.T) {
		t.Parallel()
		empty := dnstest.Start(t)
		wrong := dnstest.Start(t)
		wrong.AddCNAME("www.impulse-max.com", "old.example.net")
		v := newVerifier(t, dnsverify.Config{}, empty, wrong)

		res := v.Verify(t.Context(), wwwRequest())

		if res.Verified || res.Reason != dnsverify.ReasonDisagree || res.Found != nil {
			t.Fatalf("Verified=%v Reason=%q Found=%v", res.Verified, res.Reason, res.Found)
		}
		if res.Resolvers[0].Rcode != "NXDOMAIN" || res.Resolvers[1].Found != "old.example.net" {
			t.Errorf("views = %+v", res.Resolvers)
		}
	})

	t.Run("SERVFAIL on one resolver blocks and is shown for it", func(t *testing.T) {
		t.Parallel()
		broken := good(t)
		broken.SetRcode("www.impulse-max.com", dns.RcodeServerFailure)
		v := newVerifier(t, dnsverify.Config{}, good(t), broken)

		res := v.Verify(t.Context(), wwwRequest())

		if res.Verified || res.Reason != dnsverify.ReasonDisagree || *res.Found != "SERVFAIL" {
			t.Fatalf("Verified=%v Reason=%q Found=%v", res.Verified, res.Reason, res.Found)
		}
		if res.Resolvers[1].Rcode != "SERVFAIL" || res.Resolvers[0].Rcode != "NOERROR" {
			t.Errorf("views = %+v", res.Resolvers)
		}
	})

	t.Run("a resolver that never answers is listed as a timeout and does not block", func(t *testing.T) {
		t.Parallel()
		dead := silent(t)
		v := newVerifier(t, fast, good(t), dead)

		res := v.Verify(t.Context(), wwwRequest())

		if !res.Verified {
			t.Fatalf("not verified: %+v", res)
		}
		if r := res.Resolvers[1]; r.Error != "timeout" || r.Rcode != "" || r.Verified || r.Resolver != dead.Addr() {
			t.Errorf("dead resolver view = %+v", r)
		}
		// UDP is retransmitted once before the query counts as a timeout.
		if n := dead.QueriesFor("www.impulse-max.com"); n != 6 {
			t.Errorf("dead resolver got %d queries for the hostname, want 6 (A, AAAA and CAA, twice each)", n)
		}
	})

	t.Run("when no resolver answers the call returns with timeout", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, fast, silent(t), silent(t))

		res := v.Verify(t.Context(), wwwRequest())

		if res.Verified || res.Reason != dnsverify.ReasonTimeout || res.Message.ES != "Ningún resolver DNS respondió a tiempo" {
			t.Fatalf("Verified=%v Reason=%q Message=%q", res.Verified, res.Reason, res.Message.ES)
		}
		if diff := cmp.Diff(ptr("timeout"), res.Found); diff != "" {
			t.Errorf("Found (-want +got):\n%s", diff)
		}
		for _, r := range res.Resolvers {
			if r.Error != "timeout" {
				t.Errorf("%s: Error = %q", r.Resolver, r.Error)
			}
		}
	})

	t.Run("a slow answer beyond CheckTimeout is a timeout", func(t *testing.T) {
		t.Parallel()
		slow := good(t)
		slow.SetDelay(time.Hour) // released at cleanup
		v := newVerifier(t, dnsverify.Config{QueryTimeout: time.Hour, CheckTimeout: 200 * time.Millisecond}, slow)

		res := v.Verify(t.Context(), wwwRequest())

		if res.Reason != dnsverify.ReasonTimeout || res.Resolvers[0].Error != "timeout" {
			t.Fatalf("Reason=%q resolver=%+v", res.Reason, res.Resolvers[0])
		}
	})

	t.Run("a TXT lookup that times out makes the resolver inconclusive, not failed", func(t *testing.T) {
		t.Parallel()
		flaky := good(t)
		flaky.SetNameDrop("_jeturing-verify.impulse-max.com", true)
		withTXT := good(t)
		withTXT.AddTXT("_jeturing-verify.impulse-max.com", token)
		v := newVerifier(t, fast, withTXT, flaky)

		res := v.Verify(t.Context(), requireTXT())

		if !res.Verified {
			t.Fatalf("not verified: %+v", res)
		}
		if r := res.Resolvers[1]; r.Error != "TXT: timeout" || r.Rcode != "NOERROR" || r.Verified {
			t.Errorf("flaky view = %+v", r)
		}
	})

	t.Run("a closed port is a transport error", func(t *testing.T) {
		t.Parallel()
		v := newVerifier(t, dnsverify.Config{Resolvers: []string{closedUDPPort(t)}, QueryTimeout: 200 * time.Millisecond, CheckTimeout: 400 * time.Millisecond})

		res := v.Verify(t.Context(), wwwRequest())

		if res.Verified || res.Found == nil {
			t.Fatalf("Verified=%v Found=%v", res.Verified, res.Found)
		}
		// Linux reports ICMP port unreachable as "connection refused"; elsewhere it may time out.
		if res.Reason != dnsverify.ReasonResolverError && res.Reason != dnsverify.ReasonTimeout {
			t.Errorf("Reason = %q", res.Reason)
		}
		if res.Resolvers[0].Error == "" {
			t.Error("no Error for the resolver")
		}
	})
}

// closedUDPPort returns a loopback address where nothing listens.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestVerifyHonoursCallerCancellation(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	srv.SetDrop(true)
	v := newVerifier(t, dnsverify.Config{CheckTimeout: time.Hour, QueryTimeout: time.Hour}, srv)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	res := v.Verify(ctx, wwwRequest())

	if res.Verified || res.Resolvers[0].Error == "" {
		t.Fatalf("Verified=%v resolver=%+v", res.Verified, res.Resolvers[0])
	}
}

func TestVerifyRejectsIncompleteRequest(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	v := newVerifier(t, dnsverify.Config{}, srv)

	res := v.Verify(t.Context(), dnsverify.Request{Hostname: "www.impulse-max.com"})

	if res.Verified || res.Reason != dnsverify.ReasonInvalidRequest || srv.Queries() != 0 {
		t.Fatalf("Verified=%v Reason=%q queries=%d", res.Verified, res.Reason, srv.Queries())
	}
}

// The zone changes between calls (the customer fixes the record): each call sees the new state,
// because nothing is cached.
func TestVerifySeesZoneChanges(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	platform(srv, "impulse-max.sajet.us")
	v := newVerifier(t, dnsverify.Config{}, srv)

	if res := v.Verify(t.Context(), wwwRequest()); res.Reason != dnsverify.ReasonNoCNAME {
		t.Fatalf("before: Reason = %q", res.Reason)
	}
	srv.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
	if res := v.Verify(t.Context(), wwwRequest()); !res.Verified {
		t.Fatalf("after adding the CNAME: %+v", res)
	}
	srv.Remove("www.impulse-max.com")
	if res := v.Verify(t.Context(), wwwRequest()); res.Reason != dnsverify.ReasonNoCNAME {
		t.Fatalf("after removing it: Reason = %q", res.Reason)
	}
}
