package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// forbidden are the special-purpose ranges of the IANA registries: a customer's URL must never
// reach our own network, the host's metadata service or anything not on the public internet.
// IPv6 outside 2000::/3 is refused separately (loopback, ULA, link-local, multicast, mapped).
var forbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.31.196.0/24"),
	netip.MustParsePrefix("192.52.193.0/24"),
	netip.MustParsePrefix("192.88.99.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("192.175.48.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("2620:4f:8000::/48"),
	netip.MustParsePrefix("3fff::/20"),
}

var globalUnicast = netip.MustParsePrefix("2000::/3")

// Guard decides which addresses webhook requests may reach. Allow exempts networks (tests deliver
// to loopback receivers through it; an operator may list an internal receiver on purpose).
type Guard struct {
	Allow []netip.Prefix
	// Ports, when not empty, are the only destination ports allowed; empty allows any.
	Ports []int
}

// ErrForbiddenAddress is returned for a destination the guard refuses.
var ErrForbiddenAddress = errors.New("the address is not a public internet address")

// allowed reports whether addr may be reached.
func (g Guard) allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range g.Allow {
		if p.Contains(addr) {
			return true
		}
	}
	if addr.Is6() && !globalUnicast.Contains(addr) {
		return false
	}
	for _, p := range forbidden {
		if p.Contains(addr) {
			return false
		}
	}
	return addr.IsValid()
}

// Control is a net.Dialer Control function: it runs on the resolved address of every connection
// (so DNS rebinding, a redirect target or a reconnect cannot slip past the check).
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
	}
	if !g.allowed(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
	}
	if len(g.Ports) > 0 {
		ok := false
		for _, p := range g.Ports {
			ok = ok || int(ap.Port()) == p
		}
		if !ok {
			return fmt.Errorf("%w: port %d", ErrForbiddenAddress, ap.Port())
		}
	}
	return nil
}

// Resolver resolves a hostname; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL judges an endpoint URL when it is saved: https (http only towards an allowed network,
// for tests and internal receivers), no credentials, no fragment, at most 2,048 bytes, and a host
// whose every address is allowed. The same guard runs again at dial time, so a name that later
// resolves elsewhere is still refused.
func (g Guard) CheckURL(ctx context.Context, r Resolver, raw string) error {
	if len(raw) > 2048 {
		return errors.New("the URL is longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return errors.New("the URL must be absolute, e.g. https://hooks.example.com/sajet")
	}
	if u.User != nil {
		return errors.New("the URL must not carry credentials; authenticate with the signature")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("the URL must not have a fragment")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("the URL must start with https://")
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if addrs, err = r.LookupNetIP(ctx, "ip", host); err != nil {
			return fmt.Errorf("%s does not resolve: %v", host, err)
		}
	}
	for _, a := range addrs {
		if !g.allowed(a) {
			return fmt.Errorf("%s resolves to %s, which is not a public internet address", host, a.Unmap())
		}
		if u.Scheme == "http" && !g.explicitlyAllowed(a) {
			return errors.New("the URL must start with https://")
		}
	}
	return nil
}

func (g Guard) explicitlyAllowed(a netip.Addr) bool {
	for _, p := range g.Allow {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// dialer returns a net.Dialer that refuses what the guard refuses.
func (g Guard) dialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, Control: g.Control}
}
