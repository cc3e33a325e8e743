package api

import (
	"net/netip"
	"net/url"
	"strings"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// forbiddenBackendNets are addresses a tenant's backend must not be, unless the operator allows
// them (--allow-backend-net): the tunnel host's link-local range holds cloud metadata services
// (169.254.169.254 on AWS, GCP, Azure, OpenStack; fd00:ec2::254 on AWS over IPv6), which answer
// with credentials of the host. A backend there would put them behind a customer's hostname.
var forbiddenBackendNets = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
	netip.MustParsePrefix("0.0.0.0/8"),
}

// metadataHostnames name the same services.
var metadataHostnames = map[string]bool{
	"metadata":                   true,
	"metadata.google.internal":   true,
	"metadata.goog":              true,
	"instance-data":              true,
	"instance-data.ec2.internal": true,
}

// backendPolicy refuses backend URLs that point at the tunnel host's metadata services.
type backendPolicy struct {
	allowed []netip.Prefix
}

// check returns a sentence saying why raw (already a valid managed service URL) is refused, or
// the zero Text.
func (p backendPolicy) check(raw string) i18n.Text {
	u, err := url.Parse(raw)
	if err != nil {
		return i18n.Text{}
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if metadataHostnames[host] {
		return i18n.F("backend_url %s nombra un servicio de metadatos de la nube, que responde con las credenciales del servidor del túnel; use la dirección propia del tenant",
			"backend_url %s names a cloud metadata service, which answers with the tunnel host's credentials; use the tenant's own address", raw)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return i18n.Text{} // a name: the agent resolves it, nothing more to know here
	}
	addr = addr.Unmap()
	for _, a := range p.allowed {
		if a.Contains(addr) {
			return i18n.Text{}
		}
	}
	for _, n := range forbiddenBackendNets {
		if n.Contains(addr) {
			return i18n.F("backend_url %[1]s está en %[2]s (enlace local: ahí viven los servicios de metadatos de la nube, que responden con las credenciales "+
				"del servidor del túnel); use la dirección propia del tenant, o inicie el plano de control con --allow-backend-net %[2]s si este backend está de verdad ahí",
				"backend_url %[1]s is in %[2]s (link-local: cloud metadata services live there and answer with the tunnel host's credentials); "+
					"use the tenant's own address, or start the control plane with --allow-backend-net %[2]s if this backend is really there", raw, n)
		}
	}
	return i18n.Text{}
}
