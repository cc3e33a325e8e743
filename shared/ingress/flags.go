package ingress

import (
	"errors"
	"fmt"
	"time"
)

// A top-level key that is not tunnel, ingress, warp-routing or originRequest is a command-line
// flag read from the file. cloudflared checks the type of each flag it knows before it looks at
// the rules, in the order of its flag list (reproduced below: the first bad flag in this order
// is the one it reports), with the messages checkFlag reproduces.
type flagKind int

const (
	flagString flagKind = iota
	flagBool
	flagInt
	flagDuration
	flagStringSlice
)

type fileFlag struct {
	name string
	kind flagKind
}

// validateFlags are the flags `cloudflared tunnel ingress validate` type-checks, in its order
// (found by asking cloudflared 2026.8.2 which of two bad flags it reports). Hidden flags outside
// this list are unknown keys to us.
var validateFlags = []fileFlag{
	{"origincert", flagString},
	{"autoupdate-freq", flagDuration},
	{"no-autoupdate", flagBool},
	{"no-prechecks", flagBool},
	{"metrics", flagString},
	{"pidfile", flagString},
	{"url", flagString},
	{"hello-world", flagBool},
	{"socks5", flagBool},
	{"proxy-connect-timeout", flagDuration},
	{"proxy-tls-timeout", flagDuration},
	{"proxy-tcp-keepalive", flagDuration},
	{"proxy-no-happy-eyeballs", flagBool},
	{"proxy-keepalive-connections", flagInt},
	{"proxy-keepalive-timeout", flagDuration},
	{"proxy-connection-timeout", flagDuration},
	{"proxy-expect-continue-timeout", flagDuration},
	{"http-host-header", flagString},
	{"origin-server-name", flagString},
	{"unix-socket", flagString},
	{"origin-ca-pool", flagString},
	{"no-tls-verify", flagBool},
	{"no-chunked-encoding", flagBool},
	{"http2-origin", flagBool},
	{"bastion", flagBool},
	{"proxy-address", flagString},
	{"proxy-port", flagInt},
	{"loglevel", flagString},
	{"transport-loglevel", flagString},
	{"logfile", flagString},
	{"log-directory", flagString},
	{"trace-output", flagString},
	{"proxy-dns", flagBool},
	{"proxy-dns-port", flagInt},
	{"proxy-dns-address", flagString},
	{"proxy-dns-upstream", flagStringSlice},
	{"proxy-dns-max-upstream-conns", flagInt},
	{"proxy-dns-bootstrap", flagStringSlice},
	{"credentials-file", flagString},
	{"region", flagString},
	{"edge-ip-version", flagString},
	{"edge-bind-address", flagString},
	{"hostname", flagString},
	{"lb-pool", flagString},
	{"metrics-update-freq", flagDuration},
	{"tag", flagStringSlice},
	{"retries", flagInt},
	{"ha-connections", flagInt},
	{"rpc-timeout", flagDuration},
	{"write-stream-timeout", flagDuration},
	{"quic-disable-pmtu-discovery", flagBool},
	{"quic-connection-level-flow-control-limit", flagInt},
	{"quic-stream-level-flow-control-limit", flagInt},
	{"label", flagString},
	{"grace-period", flagDuration},
	{"compression-quality", flagInt},
	{"name", flagString},
	{"post-quantum", flagBool},
	{"management-diagnostics", flagBool},
	{"protocol", flagString},
}

// runFlags are type-checked only by `cloudflared tunnel run` (ingress validate accepts any value):
// a stricter rule of ours, since a file the agent writes must also start.
var runFlags = []fileFlag{
	{"credentials-contents", flagString},
	{"features", flagStringSlice},
}

// untypedFlags are flags cloudflared reads from the file without checking their type.
var untypedFlags = []string{"max-active-flows", "dns-resolver-addrs", "icmpv4-src", "icmpv6-src", "output", "overwrite-dns"}

// errURLWithIngress is cloudflared's error for a url key next to ingress rules, reported after
// the rules pass (the flag's type is checked first, with the others).
//
//lint:ignore ST1005 cloudflared's own words, which our messages must repeat exactly
var errURLWithIngress = errors.New("You can't set the --url flag (or $TUNNEL_URL) when using multiple-origin ingress rules")

// knownTopLevel: cloudflared's config keys plus the tunnel flags listed above. A key outside it
// is reported as unknown, although cloudflared reads any flag from the file and says nothing
// about the others: an unlisted but valid (hidden) flag is refused, the safe direction for an
// automated apply (docs/ARCHITECTURE.md §5).
var knownTopLevel = func() map[string]bool {
	m := map[string]bool{"tunnel": true, "ingress": true, "warp-routing": true, "originRequest": true}
	for _, f := range validateFlags {
		m[f.name] = true
	}
	for _, f := range runFlags {
		m[f.name] = true
	}
	for _, name := range untypedFlags {
		m[name] = true
	}
	return m
}()

// checkFlags returns cloudflared's error for the first flag of list whose value has the wrong
// type.
func checkFlags(settings map[string]any, list []fileFlag) error {
	for _, f := range list {
		raw, ok := settings[f.name]
		if !ok {
			continue
		}
		if err := checkFlag(f, raw); err != nil {
			return err
		}
	}
	return nil
}

// checkFlag reproduces cloudflared's file-flag conversions and their messages (including the
// string-slice one, which names the element's index type rather than the element's).
func checkFlag(f fileFlag, raw any) error {
	switch f.kind {
	case flagString:
		if _, ok := raw.(string); !ok {
			return fmt.Errorf("expected string found %T for %s", raw, f.name)
		}
	case flagBool:
		if _, ok := raw.(bool); !ok {
			return fmt.Errorf("expected boolean found %T for %s", raw, f.name)
		}
	case flagInt:
		if _, ok := raw.(int); !ok {
			return fmt.Errorf("expected int found %T for %s", raw, f.name)
		}
	case flagDuration:
		switch v := raw.(type) {
		case time.Duration:
		case string:
			if _, err := time.ParseDuration(v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("expected duration found %T for %s", raw, f.name)
		}
	case flagStringSlice:
		items, ok := raw.([]any)
		if !ok {
			return fmt.Errorf("expected string slice found %T for %s", raw, f.name)
		}
		for i, v := range items {
			if _, ok := v.(string); !ok {
				return fmt.Errorf("expected string, found %T for %v", i, v)
			}
		}
	}
	return nil
}
