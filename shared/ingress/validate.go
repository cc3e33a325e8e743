package ingress

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
	"gopkg.in/yaml.v3"

	"github.com/jeturing/sajet-domains/shared/ingress/internal/config"
)

// Messages copied from cloudflared ingress/ingress.go so that our NACKs read
// exactly like `cloudflared tunnel ingress validate` would (docs/CLOUDFLARE.md §1).
const (
	msgLastRuleNotCatchAll = "The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)"
	msgBadWildcard         = `Hostname patterns can have at most one wildcard character ("*") and it can only be used for subdomains, e.g. "*.example.com"`
	msgHostnameHasPort     = "Hostname cannot contain a port"
	// msgAccessTeamName is cloudflared's validateAccessConfiguration wording.
	msgAccessTeamName = "access.TeamName cannot be blank when access.audTags are present"
)

// Validate checks a full ingress list the way cloudflared's validateIngress
// does (docs/CLOUDFLARE.md §1), in the same order, so the first failing check of the first
// failing rule is the one reported, as cloudflared would report it:
//
//  0. every rule's originRequest decodes into cloudflared's types, as Render
//     would write it (durations are strings such as "30s", booleans are
//     booleans, ...); cloudflared refuses to load a file otherwise, before it
//     checks any rule;
//  1. service: unix:/unix+tls: unchecked; http_status:N with 100 ≤ N ≤ 999;
//     hello_world/hello-world; socks-proxy, whose own originRequest.ipRules
//     must each have a CIDR prefix and ports in 1–65535; bastion, or any
//     service when bastionMode is true (the rule's own value, else the
//     global one); otherwise a URL with a scheme, a host and an empty path
//     (a trailing "/" fails);
//  2. access (the rule's own): required with audTag but no teamName fails;
//  3. hostname: no port, "*" only as the first character;
//  4. only the last rule, and the last rule always, is a catch-all;
//  5. path compiles as a Go regexp.
//
// Validate knows no global originRequest; ValidateFile and Render pass the
// file's. Like cloudflared it does not check duplicates or hostname syntax;
// that is ValidateManaged's job. An empty list returns ErrNoIngressRules;
// anything else is a *RuleError.
func Validate(rules []Rule) error {
	return validate(rules, nil, nil)
}

// validate is Validate with what a file adds: origins[i], when given, is rule
// i's originRequest as cloudflared decoded it from the file (otherwise it is
// decoded from rules[i].OriginRequest), and defaults is the file's global
// originRequest.
func validate(rules []Rule, origins []*config.OriginRequestConfig, defaults *config.OriginRequestConfig) error {
	if len(rules) == 0 {
		return ErrNoIngressRules
	}
	typed := make([]*config.OriginRequestConfig, len(rules))
	for i, r := range rules {
		if i < len(origins) && origins[i] != nil {
			typed[i] = origins[i]
			continue
		}
		o, err := typedOrigin(r.OriginRequest)
		if err != nil {
			return ruleErr(i, r, "originRequest: %s", err)
		}
		typed[i] = o
	}
	for i, r := range rules {
		if err := validateRule(i, len(rules), r, typed[i], defaults); err != nil {
			return err
		}
	}
	return nil
}

// validateRule checks rule i of total; o is its decoded originRequest.
func validateRule(i, total int, r Rule, o, defaults *config.OriginRequestConfig) *RuleError {
	if msg := checkService(r.Service, o, defaults); msg != "" {
		return ruleErr(i, r, "%s", msg)
	}
	if a := o.Access; a != nil && a.Required && a.TeamName == "" && len(a.AudTag) > 0 {
		return ruleErr(i, r, "%s", msgAccessTeamName)
	}
	// Ensure that the hostname doesn't contain a port (cloudflared uses
	// SplitHostPort, so "h:abc" counts as a port too).
	if strings.IndexByte(r.Hostname, ':') >= 0 {
		if _, _, err := net.SplitHostPort(r.Hostname); err == nil {
			return ruleErr(i, r, "%s", msgHostnameHasPort)
		}
	}
	if strings.LastIndexByte(r.Hostname, '*') > 0 {
		return ruleErr(i, r, "%s", msgBadWildcard)
	}
	last := i == total-1
	if last && !r.IsCatchAll() {
		return ruleErr(i, r, "%s", msgLastRuleNotCatchAll)
	}
	if !last && r.IsCatchAll() {
		return ruleErr(i, r, "Rule #%d is matching the hostname '%s', but "+
			"this will match every hostname, meaning the rules which follow it "+
			"will never be triggered.", i+1, r.Hostname)
	}
	if r.Path != "" {
		if _, err := regexp.Compile(r.Path); err != nil {
			return ruleErr(i, r, "Rule #%d has an invalid regex: %v", i+1, err)
		}
	}
	return nil
}

// checkService returns cloudflared's message for an invalid service, or "".
func checkService(s string, o, defaults *config.OriginRequestConfig) string {
	switch {
	case strings.HasPrefix(s, "unix:"), strings.HasPrefix(s, "unix+tls:"):
		return "" // cloudflared does not check socket paths
	case strings.HasPrefix(s, "http_status:"):
		code, err := strconv.Atoi(strings.TrimPrefix(s, "http_status:"))
		if err != nil {
			return "invalid HTTP status code: " + err.Error()
		}
		if code < 100 || code > 999 {
			return "invalid HTTP status code: " + strconv.Itoa(code)
		}
		return ""
	case s == "hello_world", s == "hello-world":
		// Not "helloworld": cloudflared reads that as an address without a
		// scheme.
		return ""
	case s == "socks-proxy":
		for _, ipr := range o.IPRules {
			if msg := checkIPRule(ipr); msg != "" {
				return "unable to create ip rule for socks-proxy: " + msg
			}
		}
		return ""
	case s == "bastion", bastionMode(o, defaults):
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return err.Error()
	}
	if u.Scheme == "" || u.Hostname() == "" {
		return s + " is an invalid address, please make sure it has a scheme and a hostname"
	}
	if u.Path != "" {
		return s + " is an invalid address, ingress rules don't support proxying to a different path on the origin service. The path will be the same as the eyeball request's path"
	}
	return ""
}

// bastionMode is the rule's bastionMode if it sets one, else the global one.
func bastionMode(o, defaults *config.OriginRequestConfig) bool {
	if o.BastionMode != nil {
		return *o.BastionMode
	}
	return defaults != nil && defaults.BastionMode != nil && *defaults.BastionMode
}

// checkIPRule returns cloudflared's ipaccess message for an invalid ipRules
// entry of a socks-proxy rule, or "". Ports are checked in ascending order.
func checkIPRule(r config.IngressIPRule) string {
	if r.Prefix == nil || *r.Prefix == "" {
		return "no prefix provided"
	}
	if _, _, err := net.ParseCIDR(*r.Prefix); err != nil {
		return "unable to parse cidr: " + *r.Prefix
	}
	for _, p := range slices.Sorted(slices.Values(r.Ports)) {
		if p < 1 || p > 65535 {
			return fmt.Sprintf("invalid port %d, needs to be between 1 and 65535", p)
		}
	}
	return ""
}

// noOrigin is the decoded form of an absent originRequest.
var noOrigin = &config.OriginRequestConfig{}

// typedOrigin decodes a rule's originRequest map as cloudflared will read it
// from the file Render writes (through the same YAML encoding).
func typedOrigin(m map[string]any) (*config.OriginRequestConfig, error) {
	if len(m) == 0 {
		return noOrigin, nil
	}
	data, err := encodeOrigin(m)
	if err != nil {
		return nil, err
	}
	o, err := config.DecodeOriginRequest(data)
	if err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// Line numbers would point into our encoding, not into any file.
			msgs := make([]string, len(te.Errors))
			for i, e := range te.Errors {
				if _, rest, ok := strings.Cut(e, ": "); ok && strings.HasPrefix(e, "line ") {
					e = rest
				}
				msgs[i] = e
			}
			return nil, errors.New(strings.Join(msgs, "; "))
		}
		return nil, err
	}
	return &o, nil
}

// encodeOrigin encodes an originRequest map exactly as Render writes it.
func encodeOrigin(m map[string]any) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("encoding YAML: %v", r)
		}
	}()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ValidateManaged applies our own rules to the control plane's managed rules,
// on top of cloudflared's (Render runs both):
//
//   - hostname: lower-case ASCII (IDNs as punycode), RFC 1123 labels of
//     1–63 letters, digits and hyphens, at least two labels, ≤ 253 octets, no
//     trailing dot, no wildcard, xn-- labels that decode; no duplicates;
//   - no path: a managed rule is one hostname → one backend;
//   - service: http:// or https:// with a host, an optional numeric port and
//     nothing else (no path, not even "/", no query, fragment or userinfo);
//   - originRequest: only keys cloudflared knows (it ignores others with a
//     warning), and no bastionMode, which would replace the service.
//
// Errors are *RuleError with Index counting the caller's slice from 1.
func ValidateManaged(rules []Rule) error {
	seen := make(map[string]int, len(rules))
	for i, r := range rules {
		if msg := checkManagedHostname(r.Hostname); msg != "" {
			return ruleErr(i, r, "hostname %q: %s", r.Hostname, msg)
		}
		if j, dup := seen[r.Hostname]; dup {
			return ruleErr(i, r, "hostname %q is already managed by rule #%d", r.Hostname, j+1)
		}
		seen[r.Hostname] = i
		if r.Path != "" {
			return ruleErr(i, r, "managed rules match a whole hostname; path %q is not allowed", r.Path)
		}
		if msg := checkManagedService(r.Service); msg != "" {
			return ruleErr(i, r, "service %q: %s", r.Service, msg)
		}
		if len(r.OriginRequest) > 0 {
			if msg := checkManagedOrigin(r.OriginRequest); msg != "" {
				return ruleErr(i, r, "originRequest: %s", msg)
			}
		}
	}
	return nil
}

// checkManagedOrigin refuses keys cloudflared would ignore with a warning
// (the agent treats that warning as a failure) and bastionMode, which would
// replace the rule's service.
func checkManagedOrigin(m map[string]any) string {
	if _, ok := m["bastionMode"]; ok {
		return "bastionMode is not allowed in a managed rule (it replaces the service)"
	}
	data, err := encodeOrigin(m)
	if err != nil {
		return err.Error()
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return err.Error()
	}
	if unknown := config.UnknownOriginRequestKeys(&n, "originRequest"); len(unknown) > 0 {
		return "unknown key " + unknown[0].Path + " (cloudflared would ignore it)"
	}
	return ""
}

func checkManagedHostname(h string) string {
	if h == "" {
		return "empty hostname (the catch-all is not a managed rule)"
	}
	if len(h) > 253 {
		return "longer than 253 characters"
	}
	if strings.HasSuffix(h, ".") {
		return "trailing dot"
	}
	labels := 0
	for rest := h; ; {
		label, tail, more := strings.Cut(rest, ".")
		if msg := checkLabel(label); msg != "" {
			return msg
		}
		labels++
		if !more {
			break
		}
		rest = tail
	}
	if labels < 2 {
		return "not a fully qualified name"
	}
	return ""
}

func checkLabel(l string) string {
	if l == "" {
		return "empty label"
	}
	if len(l) > 63 {
		return "label longer than 63 characters"
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c == '*':
			return "wildcards are not allowed in managed rules"
		case c >= 'A' && c <= 'Z':
			// cloudflared compares the request's Host byte for byte and
			// only the rule side is lower-cased (cloudflared#1715).
			return "must be lower case"
		case c >= 0x80:
			return "must be ASCII (give IDNs as punycode, xn--…)"
		default:
			return "invalid character " + strconv.QuoteRune(rune(c))
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return "label starts or ends with a hyphen"
	}
	if len(l) >= 4 && l[2] == '-' && l[3] == '-' {
		if !strings.HasPrefix(l, "xn--") {
			return "label has hyphens in 3rd and 4th position but is not an xn-- label"
		}
		// The A-label must decode and re-encode to itself, or two spellings
		// of one name could both be managed.
		u, err := idna.Lookup.ToUnicode(l)
		if err != nil {
			return "invalid punycode label: " + err.Error()
		}
		if a, err := idna.Lookup.ToASCII(u); err != nil || a != l {
			return "punycode label is not in canonical form"
		}
	}
	return ""
}

func checkManagedService(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return err.Error()
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "scheme must be http or https"
	}
	if u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "only scheme://host[:port] is allowed"
	}
	if u.Path != "" {
		return "must not have a path (not even a trailing \"/\"): cloudflared forwards the request's own path"
	}
	host := u.Hostname()
	if host == "" {
		return "missing host"
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return "host must be ASCII"
		}
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "invalid port"
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "empty port"
	}
	return ""
}
