package ingress

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// Messages copied from cloudflared ingress/ingress.go so that our NACKs read
// exactly like `cloudflared tunnel ingress validate` would (facts §1).
const (
	msgLastRuleNotCatchAll = "The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)"
	msgBadWildcard         = `Hostname patterns can have at most one wildcard character ("*") and it can only be used for subdomains, e.g. "*.example.com"`
	msgHostnameHasPort     = "Hostname cannot contain a port"
	// msgAccessTeamName is cloudflared's validateAccessConfiguration wording.
	msgAccessTeamName = "access.TeamName cannot be blank when access.audTags are present"
)

// Validate checks a full ingress list the way cloudflared's validateIngress
// does (facts §1), in the same order, so the first failing check of the first
// failing rule is the one reported, as cloudflared would report it:
//
//  1. service: unix:/unix+tls: unchecked; http_status:N with 100 ≤ N ≤ 999;
//     hello_world/hello-world/helloworld, socks-proxy, bastion (or
//     originRequest.bastionMode: true); otherwise a URL with a scheme, a host
//     and an empty path (a trailing "/" fails);
//  2. access: required with audTag but no teamName fails;
//  3. hostname: no port, "*" only as the first character;
//  4. only the last rule, and the last rule always, is a catch-all;
//  5. path compiles as a Go regexp.
//
// Like cloudflared it does not check duplicates or hostname syntax; that is
// ValidateManaged's job. An empty list returns ErrNoIngressRules; anything
// else is a *RuleError.
func Validate(rules []Rule) error {
	if len(rules) == 0 {
		return ErrNoIngressRules
	}
	for i, r := range rules {
		if err := validateRule(i, len(rules), r); err != nil {
			return err
		}
	}
	return nil
}

func validateRule(i, total int, r Rule) *RuleError {
	if msg := checkService(r); msg != "" {
		return ruleErr(i, r, "%s", msg)
	}
	if accessMissingTeam(r.OriginRequest) {
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
func checkService(r Rule) string {
	s := r.Service
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
	case s == "hello_world", s == "hello-world", s == "helloworld", s == "socks-proxy", s == "bastion":
		return ""
	}
	if b, _ := r.OriginRequest["bastionMode"].(bool); b {
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

// accessMissingTeam mirrors cloudflared's validateAccessConfiguration: an
// access block that is required and names audience tags must name the team.
func accessMissingTeam(origin map[string]any) bool {
	acc, ok := origin["access"].(map[string]any)
	if !ok {
		return false
	}
	if req, _ := acc["required"].(bool); !req {
		return false
	}
	team, _ := acc["teamName"].(string)
	if team != "" {
		return false
	}
	switch tags := acc["audTag"].(type) {
	case []any:
		return len(tags) > 0
	case []string:
		return len(tags) > 0
	case string:
		return tags != ""
	}
	return false
}

// ValidateManaged applies our own rules to the control plane's managed rules,
// on top of cloudflared's (Render runs both):
//
//   - hostname: lower-case ASCII (IDNs as punycode), RFC 1123 labels of
//     1–63 letters, digits and hyphens, at least two labels, ≤ 253 octets, no
//     trailing dot, no wildcard, xn-- labels that decode; no duplicates;
//   - no path: a managed rule is one hostname → one backend;
//   - service: http:// or https:// with a host, an optional numeric port and
//     nothing else (no path, not even "/", no query, fragment or userinfo).
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
	}
	return nil
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
