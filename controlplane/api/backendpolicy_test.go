package api_test

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/api"
)

// A backend the agent would take is still refused when it is the tunnel host's metadata service
// (link-local addresses, well-known names), on create and on patch, unless the operator allows
// the network.
func TestMetadataBackendsAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lang = "en" // the sentences asserted below are the English ones
	c := b.customer("ImpulseMax", "basic")
	for _, bad := range []string{"http://169.254.169.254", "http://169.254.169.254:80", "http://[fd00:ec2::254]",
		"http://[fe80::1]:8069", "http://metadata.google.internal", "http://0.0.0.0:8069"} {
		r := b.problem(422, "POST", "/api/tenant-deployments", b.admin, map[string]any{"customer_id": c, "name": "x", "backend_url": bad})
		if r["code"] != "backend_not_allowed" || !strings.Contains(r["detail"].(string), "metadata") {
			t.Errorf("%s: %v %q", bad, r["code"], r["detail"])
		}
	}
	d := b.deployment(c, "odoo", 0, "http://10.10.10.105:8069")
	r := b.problem(422, "PATCH", "/api/tenant-deployments/"+strconv.FormatInt(d, 10), b.admin, map[string]any{"backend_url": "http://169.254.169.254"})
	if r["code"] != "backend_not_allowed" {
		t.Errorf("patch to the metadata address: %v", r["code"])
	}

	allowed := setup(t, func(o *options) {
		o.configure = func(cfg *api.Config) {
			cfg.AllowedBackendNets = []netip.Prefix{netip.MustParsePrefix("169.254.10.0/24")}
		}
	})
	c2 := allowed.customer("ImpulseMax", "basic")
	allowed.deployment(c2, "odoo", 0, "http://169.254.10.5:8069")
	allowed.problem(422, "POST", "/api/tenant-deployments", allowed.admin, map[string]any{"customer_id": c2, "name": "y", "backend_url": "http://169.254.169.254"})
}
