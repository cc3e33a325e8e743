package ingress

import (
	"errors"
	"testing"
)

const (
	wantSchemeHost = " is an invalid address, please make sure it has a scheme and a hostname"
	wantNoPath     = " is an invalid address, ingress rules don't support proxying to a different path on the origin service. The path will be the same as the eyeball request's path"
)

var catchAll = Rule{Service: "http_status:404"}

func rules(rs ...Rule) []Rule { return rs }

func TestValidateMatchesCloudflared(t *testing.T) {
	t.Parallel()
	web := Rule{Hostname: "a.sajet.us", Service: "http://10.0.0.1:8069"}
	tests := []struct {
		name    string
		rules   []Rule
		wantIdx int    // 0: no RuleError expected
		wantMsg string // exact Msg; "" with wantIdx 0 means valid
	}{
		{name: "a hostname rule followed by a catch-all is valid", rules: rules(web, catchAll)},
		{name: "a unix socket service is not checked", rules: rules(Rule{Hostname: "a.com", Service: "unix:"}, catchAll)},
		{name: "a unix+tls socket service is not checked", rules: rules(Rule{Service: "unix+tls:/run/x.sock"})},
		{name: "http_status 100 is the lowest accepted status", rules: rules(Rule{Service: "http_status:100"})},
		{name: "http_status 999 is the highest accepted status", rules: rules(Rule{Service: "http_status:999"})},
		{name: "http_status 99 is refused", rules: rules(Rule{Service: "http_status:99"}), wantIdx: 1, wantMsg: "invalid HTTP status code: 99"},
		{name: "http_status 1000 is refused", rules: rules(Rule{Service: "http_status:1000"}), wantIdx: 1, wantMsg: "invalid HTTP status code: 1000"},
		{name: "a non-numeric http_status is refused", rules: rules(Rule{Service: "http_status:abc"}), wantIdx: 1, wantMsg: `invalid HTTP status code: strconv.Atoi: parsing "abc": invalid syntax`},
		{name: "hello_world is a keyword service", rules: rules(Rule{Service: "hello_world"})},
		{name: "hello-world is a keyword service", rules: rules(Rule{Service: "hello-world"})},
		{name: "socks-proxy is a keyword service", rules: rules(Rule{Service: "socks-proxy"})},
		{name: "bastion is a keyword service", rules: rules(Rule{Service: "bastion"})},
		{name: "helloworld is not a keyword service", rules: rules(Rule{Service: "helloworld"}), wantIdx: 1, wantMsg: "helloworld" + wantSchemeHost},
		{name: "bastionMode yes (YAML 1.1) is true", rules: rules(Rule{Service: "x", OriginRequest: map[string]any{"bastionMode": "yes"}})},
		{name: "bastionMode false keeps the service checked", rules: rules(Rule{Service: "x", OriginRequest: map[string]any{"bastionMode": false}}), wantIdx: 1, wantMsg: "x" + wantSchemeHost},
		{name: "a socks-proxy ipRule needs a prefix", rules: rules(Rule{Service: "socks-proxy", OriginRequest: map[string]any{"ipRules": []any{map[string]any{"ports": []any{80}}}}}), wantIdx: 1, wantMsg: "unable to create ip rule for socks-proxy: no prefix provided"},
		{name: "a socks-proxy ipRule prefix is a CIDR", rules: rules(Rule{Service: "socks-proxy", OriginRequest: map[string]any{"ipRules": []any{map[string]any{"prefix": "10.0.0.1"}}}}), wantIdx: 1, wantMsg: "unable to create ip rule for socks-proxy: unable to parse cidr: 10.0.0.1"},
		{name: "socks-proxy ipRule ports are checked in ascending order", rules: rules(Rule{Service: "socks-proxy", OriginRequest: map[string]any{"ipRules": []any{map[string]any{"prefix": "10.0.0.0/8", "ports": []any{70000, 0}}}}}), wantIdx: 1, wantMsg: "unable to create ip rule for socks-proxy: invalid port 0, needs to be between 1 and 65535"},
		{name: "ipRules of other services are not checked", rules: rules(Rule{Service: "http_status:404", OriginRequest: map[string]any{"ipRules": []any{map[string]any{"prefix": "x"}}}})},
		{name: "a duration in seconds (JSON style) does not load", rules: rules(Rule{Service: "http_status:404", OriginRequest: map[string]any{"connectTimeout": 30.0}}), wantIdx: 1, wantMsg: "originRequest: cannot unmarshal !!int `30` into time.Duration"},
		{name: "a string is not a bool", rules: rules(Rule{Service: "http_status:404", OriginRequest: map[string]any{"noTLSVerify": "true"}}), wantIdx: 1, wantMsg: "originRequest: cannot unmarshal !!str `true` into bool"},
		{name: "a type error anywhere is reported before any rule check", rules: rules(Rule{Service: "bad"}, Rule{Service: "http_status:404", OriginRequest: map[string]any{"proxyPort": -1}}), wantIdx: 2, wantMsg: "originRequest: cannot unmarshal !!int `-1` into uint"},
		{name: "bastionMode makes any service acceptable", rules: rules(Rule{Service: "", OriginRequest: map[string]any{"bastionMode": true}})},
		{name: "any URL scheme is accepted as TCP over WebSocket", rules: rules(Rule{Hostname: "s.com", Service: "ssh://10.0.0.1:22"}, Rule{Service: "foo://bar"})},
		{name: "a service without a scheme is refused", rules: rules(Rule{Service: "localhost:8080"}), wantIdx: 1, wantMsg: "localhost:8080" + wantSchemeHost},
		{name: "an empty service is refused", rules: rules(Rule{Service: ""}), wantIdx: 1, wantMsg: wantSchemeHost},
		{name: "a service with a trailing slash is refused", rules: rules(Rule{Service: "http://10.0.0.1:8069/"}), wantIdx: 1, wantMsg: "http://10.0.0.1:8069/" + wantNoPath},
		{name: "a service with a path is refused", rules: rules(Rule{Service: "http://x/app"}), wantIdx: 1, wantMsg: "http://x/app" + wantNoPath},
		{name: "a service that does not parse reports url.Parse's error", rules: rules(Rule{Service: "http://[::1"}), wantIdx: 1, wantMsg: `parse "http://[::1": missing ']' in host`},
		{name: "access audTag must be a list", rules: rules(Rule{Service: "http_status:404", OriginRequest: map[string]any{"access": map[string]any{"required": true, "audTag": "abc"}}}), wantIdx: 1, wantMsg: "originRequest: cannot unmarshal !!str `abc` into []string"},
		{name: "access required with an audTag and no teamName is refused", rules: rules(Rule{Service: "http_status:404", OriginRequest: map[string]any{"access": map[string]any{"required": true, "audTag": []any{"abc"}}}}), wantIdx: 1, wantMsg: msgAccessTeamName},
		{name: "access required with an audTag and a teamName is valid", rules: rules(Rule{Service: "http_status:404", OriginRequest: map[string]any{"access": map[string]any{"required": true, "audTag": []any{"abc"}, "teamName": "t"}}})},
		{name: "access not required needs no teamName", rules: rules(Rule{Service: "http_status:404", OriginRequest: map[string]any{"access": map[string]any{"audTag": []any{"abc"}}}})},
		{name: "a hostname with a port is refused", rules: rules(Rule{Hostname: "a.com:443", Service: "http://x"}, catchAll), wantIdx: 1, wantMsg: msgHostnameHasPort},
		{name: "a hostname with a non-numeric port is refused too", rules: rules(Rule{Hostname: "h:abc", Service: "http://x"}, catchAll), wantIdx: 1, wantMsg: msgHostnameHasPort},
		{name: "a wildcard after the first character is refused", rules: rules(Rule{Hostname: "a.*.com", Service: "http://x"}, catchAll), wantIdx: 1, wantMsg: msgBadWildcard},
		{name: "a leading wildcard subdomain is valid", rules: rules(Rule{Hostname: "*.sajet.us", Service: "http://x"}, catchAll)},
		{name: "a leading star without a dot is accepted as cloudflared does", rules: rules(Rule{Hostname: "*example.com", Service: "http://x"}, catchAll)},
		{name: "a last rule with a hostname is refused", rules: rules(web), wantIdx: 1, wantMsg: msgLastRuleNotCatchAll},
		{name: "a last rule with a path is refused", rules: rules(web, Rule{Path: "^/", Service: "http_status:404"}), wantIdx: 2, wantMsg: msgLastRuleNotCatchAll},
		{name: "a last rule with hostname star is a catch-all", rules: rules(web, Rule{Hostname: "*", Service: "http_status:404"})},
		{name: "an earlier catch-all is refused with its 1-based number", rules: rules(web, catchAll, catchAll), wantIdx: 2, wantMsg: "Rule #2 is matching the hostname '', but this will match every hostname, meaning the rules which follow it will never be triggered."},
		{name: "an earlier star catch-all is refused", rules: rules(Rule{Hostname: "*", Service: "http://x"}, catchAll), wantIdx: 1, wantMsg: "Rule #1 is matching the hostname '*', but this will match every hostname, meaning the rules which follow it will never be triggered."},
		{name: "a path that is not RE2 is refused", rules: rules(web, Rule{Hostname: "b.com", Path: "(", Service: "http://x"}, catchAll), wantIdx: 2, wantMsg: "Rule #2 has an invalid regex: error parsing regexp: missing closing ): `(`"},
		{name: "a valid path regex is accepted", rules: rules(Rule{Hostname: "b.com", Path: `^/api/\d+$`, Service: "http://x"}, catchAll)},
		// A rule failing several checks reports the first in cloudflared's order.
		{name: "a bad service is reported before a bad hostname", rules: rules(Rule{Hostname: "a.com:80", Service: "http://x/"}, catchAll), wantIdx: 1, wantMsg: "http://x/" + wantNoPath},
		{name: "a bad service is reported before a bad access block", rules: rules(Rule{Service: "http_status:1", OriginRequest: map[string]any{"access": map[string]any{"required": true, "audTag": []any{"x"}}}}), wantIdx: 1, wantMsg: "invalid HTTP status code: 1"},
		{name: "a bad access block is reported before a port in the hostname", rules: rules(Rule{Hostname: "a.com:80", Service: "http://x", OriginRequest: map[string]any{"access": map[string]any{"required": true, "audTag": []any{"x"}}}}, catchAll), wantIdx: 1, wantMsg: msgAccessTeamName},
		{name: "a port is reported before a misplaced wildcard", rules: rules(Rule{Hostname: "a.*:80", Service: "http://x"}, catchAll), wantIdx: 1, wantMsg: msgHostnameHasPort},
		{name: "a misplaced wildcard is reported before a missing catch-all", rules: rules(Rule{Hostname: "a.*.com", Service: "http://x"}), wantIdx: 1, wantMsg: msgBadWildcard},
		{name: "a missing catch-all is reported before a bad regex", rules: rules(Rule{Hostname: "a.com", Path: "(", Service: "http://x"}), wantIdx: 1, wantMsg: msgLastRuleNotCatchAll},
		{name: "an earlier rule's failure wins over a later one's", rules: rules(Rule{Hostname: "a.com", Service: "bad"}, Rule{Service: "http_status:1"}), wantIdx: 1, wantMsg: "bad" + wantSchemeHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Validate(tt.rules)
			if tt.wantIdx == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("Validate() = %v, want *RuleError", err)
			}
			if re.Index != tt.wantIdx || re.Msg != tt.wantMsg {
				t.Errorf("Validate() = #%d %q\nwant      #%d %q", re.Index, re.Msg, tt.wantIdx, tt.wantMsg)
			}
		})
	}
}

func TestValidateEmptyListFailsLikeCloudflared(t *testing.T) {
	t.Parallel()
	if err := Validate(nil); !errors.Is(err, ErrNoIngressRules) || err.Error() != "The config file doesn't contain any ingress rules" {
		t.Fatalf("Validate(nil) = %v", err)
	}
}

func TestRuleErrorNamesTheRule(t *testing.T) {
	t.Parallel()
	err := Validate(rules(Rule{Hostname: "a.com", Service: "http://x"}, Rule{Hostname: "b.com", Service: "http://x"}))
	if got, want := err.Error(), "rule #2: "+msgLastRuleNotCatchAll; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	var re *RuleError
	if errors.As(err, &re); re.Hostname != "b.com" {
		t.Fatalf("Hostname = %q, want b.com", re.Hostname)
	}
}

func TestValidateManaged(t *testing.T) {
	t.Parallel()
	ok := func(h string) Rule { return Rule{Hostname: h, Service: "http://10.10.10.105:8069"} }
	tests := []struct {
		name    string
		rules   []Rule
		wantIdx int
		wantMsg string
	}{
		{name: "the seed's hostnames are accepted", rules: rules(ok("impulse-max.sajet.us"), ok("www.impulse-max.com"), Rule{Hostname: "techeels.sajet.us", Service: "https://10.10.10.107"})},
		{name: "a punycode hostname is accepted", rules: rules(ok("xn--caf-dma.com"))},
		{name: "no managed rules is valid", rules: nil},
		{name: "an upper-case hostname is refused", rules: rules(ok("Impulse-Max.sajet.us")), wantIdx: 1, wantMsg: `hostname "Impulse-Max.sajet.us": must be lower case`},
		{name: "a unicode hostname is refused", rules: rules(ok("café.com")), wantIdx: 1, wantMsg: `hostname "café.com": must be ASCII (give IDNs as punycode, xn--…)`},
		{name: "a non-canonical punycode label is refused", rules: rules(ok("xn--zz.com")), wantIdx: 1},
		{name: "a reserved hyphen position outside xn-- is refused", rules: rules(ok("ab--cd.com")), wantIdx: 1},
		{name: "a trailing dot is refused", rules: rules(ok("a.sajet.us.")), wantIdx: 1, wantMsg: `hostname "a.sajet.us.": trailing dot`},
		{name: "a single label is refused", rules: rules(ok("localhost")), wantIdx: 1, wantMsg: `hostname "localhost": not a fully qualified name`},
		{name: "an empty label is refused", rules: rules(ok("a..com")), wantIdx: 1, wantMsg: `hostname "a..com": empty label`},
		{name: "a wildcard is refused", rules: rules(ok("*.sajet.us")), wantIdx: 1, wantMsg: `hostname "*.sajet.us": wildcards are not allowed in managed rules`},
		{name: "an empty hostname is refused", rules: rules(ok("")), wantIdx: 1},
		{name: "a label starting with a hyphen is refused", rules: rules(ok("-a.com")), wantIdx: 1},
		{name: "a label of 64 characters is refused", rules: rules(ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com")), wantIdx: 1},
		{name: "an underscore is refused", rules: rules(ok("a_b.com")), wantIdx: 1},
		{name: "a port in the hostname is refused", rules: rules(ok("a.com:80")), wantIdx: 1},
		{name: "a duplicate hostname names both rules", rules: rules(ok("a.com"), ok("b.com"), ok("a.com")), wantIdx: 3, wantMsg: `hostname "a.com" is already managed by rule #1`},
		{name: "a path is refused", rules: rules(Rule{Hostname: "a.com", Path: "^/", Service: "http://x"}), wantIdx: 1},
		{name: "a trailing slash on the service is refused", rules: rules(Rule{Hostname: "a.com", Service: "http://x:80/"}), wantIdx: 1, wantMsg: `service "http://x:80/": must not have a path (not even a trailing "/"): cloudflared forwards the request's own path`},
		{name: "an ssh service is refused", rules: rules(Rule{Hostname: "a.com", Service: "ssh://x:22"}), wantIdx: 1, wantMsg: `service "ssh://x:22": scheme must be http or https`},
		{name: "an http_status service is refused", rules: rules(Rule{Hostname: "a.com", Service: "http_status:404"}), wantIdx: 1},
		{name: "a query is refused", rules: rules(Rule{Hostname: "a.com", Service: "http://x?a=b"}), wantIdx: 1},
		{name: "userinfo is refused", rules: rules(Rule{Hostname: "a.com", Service: "http://u:p@x"}), wantIdx: 1},
		{name: "port 0 is refused", rules: rules(Rule{Hostname: "a.com", Service: "http://x:0"}), wantIdx: 1},
		{name: "port 65536 is refused", rules: rules(Rule{Hostname: "a.com", Service: "http://x:65536"}), wantIdx: 1},
		{name: "an IPv6 backend is accepted", rules: rules(Rule{Hostname: "a.com", Service: "http://[fd00::5]:8069"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateManaged(tt.rules)
			if tt.wantIdx == 0 {
				if err != nil {
					t.Fatalf("ValidateManaged() = %v, want nil", err)
				}
				return
			}
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("ValidateManaged() = %v, want *RuleError", err)
			}
			if re.Index != tt.wantIdx || (tt.wantMsg != "" && re.Msg != tt.wantMsg) {
				t.Errorf("ValidateManaged() = #%d %q\nwant             #%d %q", re.Index, re.Msg, tt.wantIdx, tt.wantMsg)
			}
		})
	}
}
