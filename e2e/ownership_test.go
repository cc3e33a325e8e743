package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// ownershipStack is a control plane that verifies against an in-process DNS server, with the seed
// customer (1, the victim) and a second customer (2, the attacker).
func ownershipStack(t *testing.T, flags ...string) (*controlPlane, *dnstest.Server) {
	t.Helper()
	zone := dnstest.Start(t)
	_, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	cp := startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile, append([]string{"--dns-resolver", zone.Addr()}, flags...)...)
	cp.seed(t)
	var v map[string]any
	cp.call(t, "POST", "/api/customers", `{"email":"mallory@example.net","company_name":"Mallory"}`, &v)
	return cp, zone
}

// raw does a request with the admin token and returns the status and the body.
func (cp *controlPlane) raw(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, cp.api+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cp.admin)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return res.StatusCode, out
}

// The first takeover: a verified domain whose re-check failed once (SERVFAIL) and whose
// unverified TTL passed used to be retired by another customer's plain registration, which then
// got the hostname routed to its own backend. A verified domain now stays verified and held.
func TestAVerifiedDomainCannotBeTakenOver(t *testing.T) {
	t.Parallel()
	cp, zone := ownershipStack(t, "--unverified-ttl", "1s")
	var victim domain
	cp.call(t, "POST", "/api/domains", `{"external_domain":"www.victim-shop.com","customer_id":1,"tenant_deployment_id":1}`, &victim)
	zone.AddCNAME("www.victim-shop.com", victim.SajetFullDomain)
	zone.AddA(victim.SajetFullDomain, "192.0.2.10")
	if code, body := cp.raw(t, "POST", "/api/domains/www.victim-shop.com/verify", ""); code != 200 {
		t.Fatalf("verify: %d %v", code, body)
	}

	zone.SetRcode("www.victim-shop.com", dns.RcodeServerFailure)
	if code, _ := cp.raw(t, "POST", "/api/domains/www.victim-shop.com/verify", ""); code != 400 {
		t.Fatalf("a re-check against a failing resolver answered %d, want 400", code)
	}
	_, got := cp.raw(t, "GET", "/api/domains/www.victim-shop.com", "")
	if got["verification_status"] != "verified" || got["last_check_status"] != "error" || got["expires_at"] != nil {
		t.Fatalf("after a failed re-check: verification_status=%v last_check_status=%v expires_at=%v; want verified, error, null",
			got["verification_status"], got["last_check_status"], got["expires_at"])
	}

	time.Sleep(1500 * time.Millisecond) // past --unverified-ttl, which must not apply to a verified domain
	code, body := cp.raw(t, "POST", "/api/domains", `{"external_domain":"www.victim-shop.com","customer_id":2}`)
	if code != 409 || body["code"] != "domain_taken" {
		t.Fatalf("another customer's registration of a verified domain: %d %v, want 409 domain_taken", code, body)
	}
	_, got = cp.raw(t, "GET", "/api/domains/www.victim-shop.com", "")
	if got["id"] != float64(victim.ID) || got["customer_id"] != float64(1) || got["deleting_at"] != nil {
		t.Fatalf("the victim's registration changed: %v", got)
	}
}

// The second takeover: after a customer deletes a domain, its CNAME to the platform
// subdomain stays in their DNS. The next customer to register the hostname used to get the same
// subdomain and verify through that CNAME. Now the subdomain is never handed to another
// customer, and that registration needs the TXT proof whatever the plan.
func TestAReleasedSubdomainIsNeverHandedToAnotherCustomer(t *testing.T) {
	t.Parallel()
	cp, zone := ownershipStack(t)
	var first domain
	cp.call(t, "POST", "/api/domains", `{"external_domain":"www.old-shop.com","customer_id":1,"tenant_deployment_id":1}`, &first)
	zone.AddCNAME("www.old-shop.com", first.SajetFullDomain)
	zone.AddA(first.SajetFullDomain, "192.0.2.20")
	if code, body := cp.raw(t, "POST", "/api/domains/www.old-shop.com/verify", ""); code != 200 {
		t.Fatalf("verify: %d %v", code, body)
	}
	if code := cp.call(t, "DELETE", "/api/domains/www.old-shop.com", "", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	testwait.For(t, 10*time.Second, func() string {
		if code, _ := cp.raw(t, "GET", "/api/domains/"+first.SajetFullDomain, ""); code != 404 {
			return "the deleted domain is still there"
		}
		return ""
	})

	code, second := cp.raw(t, "POST", "/api/domains", `{"external_domain":"www.old-shop.com","customer_id":2}`)
	if code != 201 {
		t.Fatalf("registration by another customer: %d %v", code, second)
	}
	if second["sajet_full_domain"] == first.SajetFullDomain {
		t.Fatalf("the released subdomain %s was handed to another customer", first.SajetFullDomain)
	}
	if code, _ := cp.raw(t, "POST", "/api/domains", `{"external_domain":"www.other.com","customer_id":2,"sajet_subdomain":"`+strings.TrimSuffix(first.SajetFullDomain, ".sajet.us")+`"}`); code != 409 {
		t.Errorf("asking for the released subdomain explicitly: %d, want 409", code)
	}
	// The CNAME the first customer left, even pointed at the tunnel itself, proves nothing now.
	zone.AddCNAME("www.old-shop.com", storetest.TunnelUUID+".cfargotunnel.com")
	zone.AddA(storetest.TunnelUUID+".cfargotunnel.com", "192.0.2.21")
	code, res := cp.raw(t, "POST", "/api/domains/www.old-shop.com/verify", "")
	if code != 400 || !strings.Contains(strings.ToLower(res["message"].(string)+" "+res["instructions"].(string)), "txt") {
		t.Fatalf("verify through the left-behind CNAME: %d %v, want 400 asking for the TXT record", code, res)
	}
}

// Look-alike names: a label mixing alphabets ("pаypal" with a Cyrillic "а") is refused, and an
// all-Cyrillic name that reads like a Latin one is shown in its xn-- form, never as "apple".
func TestLookAlikeHostnames(t *testing.T) {
	t.Parallel()
	cp, _ := ownershipStack(t)
	for _, host := range []string{"pаypal.com", "www.аcorp.com"} {
		code, body := cp.raw(t, "POST", "/api/domains", `{"external_domain":"`+host+`","customer_id":2}`)
		if code != 422 || body["code"] != "hostname_mixed_script" {
			t.Errorf("%s: %d %v, want 422 hostname_mixed_script", host, code, body)
		}
	}
	code, body := cp.raw(t, "POST", "/api/domains", `{"external_domain":"аррӏе.com","customer_id":2}`)
	if code != 201 {
		t.Fatalf("all-Cyrillic name: %d %v", code, body)
	}
	if body["external_domain_unicode"] != body["external_domain"] || !strings.HasPrefix(body["external_domain"].(string), "xn--") {
		t.Errorf("a whole-script confusable is shown as %q (stored %q), want the xn-- form", body["external_domain_unicode"], body["external_domain"])
	}
}

// An admin-set backend at the tunnel host's metadata service would put the host's cloud
// credentials behind a customer's hostname: refused, unless the operator allows that network.
func TestMetadataBackendsAreRefusedByTheBinary(t *testing.T) {
	t.Parallel()
	cp, _ := ownershipStack(t, "--allow-backend-net", "169.254.10.0/24")
	for _, bad := range []string{"http://169.254.169.254", "http://[fd00:ec2::254]:80", "http://metadata.google.internal"} {
		code, body := cp.raw(t, "POST", "/api/tenant-deployments", `{"customer_id":2,"name":"x","backend_url":"`+bad+`"}`)
		if code != 422 || body["code"] != "backend_not_allowed" {
			t.Errorf("%s: %d %v, want 422 backend_not_allowed", bad, code, body)
		}
	}
	if code, body := cp.raw(t, "POST", "/api/tenant-deployments", `{"customer_id":2,"name":"y","backend_url":"http://169.254.10.5:8069"}`); code != 201 {
		t.Errorf("a backend in an allowed network: %d %v", code, body)
	}
}
