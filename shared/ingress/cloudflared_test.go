package ingress

// Differential tests: the real cloudflared binary (internal/cloudflaredtest) judges the same
// files as ValidateFile, CheckManagedRule and Render. cloudflared is the reference; any
// difference is a bug in this package unless it is one of the stricter rules ValidateFile
// documents, which agreement() names one by one.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/internal/cloudflaredtest"
)

// agreement compares cloudflared's verdict on data with ValidateFile's and returns "" when they
// agree as documented:
//
//   - cloudflared's rules refuse the file ("Validation failed: R"): ValidateFile refuses it at
//     the validate stage with R (a *RuleError's Msg, or ErrNoIngressRules);
//   - cloudflared cannot load it (YAML, types, flags): ValidateFile refuses it with "config: "
//     and cloudflared's words; an empty file (cloudflared: "No configuration file was found")
//     is ErrEmptyConfig;
//   - cloudflared accepts it with "unused keys" warnings: ValidateFile refuses it, and
//     Config.UnknownKeys names exactly the keys cloudflared lists (same lines, same types);
//   - cloudflared accepts it silently: ValidateFile accepts it, unless one of our stricter rules
//     applies (a second YAML document, anchors or aliases, a non-string key, a run-only flag of
//     the wrong type, a top-level key we do not know), and then only for that reason.
func agreement(data []byte, cf cloudflaredtest.Result) string {
	err := ValidateFile(data)
	mismatch := func(what string) string {
		return fmt.Sprintf("%s\ncloudflared: %+v\nValidateFile: %v", what, cf, err)
	}
	switch {
	case cf.Failed != "":
		var re *RuleError
		switch {
		case err == nil:
			return mismatch("cloudflared refuses the rules, ValidateFile accepts them")
		case errors.Is(err, ErrNoIngressRules):
			if cf.Failed != ErrNoIngressRules.Error() {
				return mismatch("different reasons")
			}
		case !errors.As(err, &re) || !strings.HasPrefix(err.Error(), "validate: "):
			return mismatch("cloudflared refuses the rules, ValidateFile refuses something else")
		case re.Msg != cf.Failed:
			return mismatch("different reasons")
		}
		return ""
	case cf.LoadError != "":
		if strings.HasPrefix(cf.LoadError, "No configuration file was found") {
			if !errors.Is(err, ErrEmptyConfig) {
				return mismatch("cloudflared reads an empty file, ValidateFile does not")
			}
			return ""
		}
		if err == nil || err.Error() != "config: "+cf.LoadError {
			return mismatch("cloudflared cannot load the file; ValidateFile's error differs")
		}
		return ""
	}
	// cloudflared accepts the file.
	cfg, perr := ParseConfig(data)
	if perr != nil {
		return mismatch("cloudflared accepts the file, ParseConfig fails: " + perr.Error())
	}
	f := cfg.file
	var ours []string
	for _, u := range f.unknown {
		ours = append(ours, fmt.Sprintf("line %d: field %s not found in type %s", u.Line, u.Key, u.Type))
	}
	theirs, odd := warningLines(cf.Warnings)
	if odd != "" {
		return mismatch("unexpected warning " + odd)
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	if !slices.Equal(ours, theirs) {
		return mismatch(fmt.Sprintf("unknown keys differ:\nours   %q\ntheirs %q", ours, theirs))
	}
	stricter := len(f.unknown) > 0 || len(f.unknownTop) > 0 || len(f.stricter) > 0
	switch {
	case err == nil && stricter:
		return mismatch("ValidateFile accepts a file its stricter rules refuse")
	case err != nil && !stricter:
		return mismatch("cloudflared accepts the file, ValidateFile refuses it")
	case err != nil && (strings.HasPrefix(err.Error(), "validate: ") || errors.Is(err, ErrNoIngressRules) || errors.Is(err, ErrEmptyConfig)):
		return mismatch("cloudflared accepts the rules, ValidateFile refuses them")
	}
	return ""
}

var warningLine = regexp.MustCompile(`^line \d+: field .* not found in type \S+$`)

func warningLines(w string) (lines []string, odd string) {
	for line := range strings.Lines(w) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line == "yaml: unmarshal errors:":
		case warningLine.MatchString(line):
			lines = append(lines, line)
		default:
			return nil, line
		}
	}
	return lines, ""
}

// judge runs cloudflared on data and fails t on a disagreement.
func judge(t *testing.T, bin string, data []byte) {
	t.Helper()
	if d := agreement(data, cloudflaredtest.Validate(t, bin, data)); d != "" {
		t.Errorf("%s\n--- file:\n%s", d, data)
	}
}

const catchAllLine = "  - service: http_status:404\n"

// rule1 is a one-rule ingress followed by a catch-all.
func rule1(lines string) string { return "ingress:\n" + lines + catchAllLine }

// handCases are cloudflared's own ingress test inputs (re-derived) and every suspect we know of.
var handCases = []struct{ name, yaml string }{
	// cloudflared's own cases.
	{"empty file", ""},
	{"comment only", "# nothing\n"},
	{"null document", "~\n"},
	{"multiple rules ending in star", "ingress:\n - hostname: tunnel1.example.com\n   service: https://localhost:8000\n - hostname: \"*\"\n   service: https://localhost:8001\n"},
	{"extra top-level key", "ingress:\n - hostname: \"*\"\n   service: https://localhost:8000\nextraKey: extraValue\n"},
	{"hostname omitted", "ingress:\n - service: https://localhost:8000\n"},
	{"space in service host", "ingress:\n - hostname: \"*\"\n   service: https://local host:8000\n"},
	{"last rule not catch-all", "ingress:\n - hostname: example.com\n   service: https://localhost:8000\n"},
	{"first rule catch-all", "ingress:\n - service: https://localhost:8000\n - hostname: example.com\n   service: https://localhost:8000\n"},
	{"catch-all with a path", "ingress:\n - service: https://localhost:8001\n   path: /subpath1/(.*)/subpath2\n"},
	{"invalid regex", "ingress:\n - hostname: example.com\n   service: https://localhost:8000\n   path: \"*/subpath2\"\n - service: https://localhost:8001\n"},
	{"service without scheme", "ingress:\n - service: localhost:8000\n"},
	{"wildcard not at start", "ingress:\n - hostname: \"test.*.example.com\"\n   service: https://localhost:8000\n"},
	{"service with a path", "ingress:\n - service: https://localhost:8000/static/\n"},
	{"http_status not a number", "ingress:\n - service: http_status:asdf\n"},
	{"http_status 404", "ingress:\n - service: http_status:404\n"},
	{"hello_world", "ingress:\n - service: hello_world\n"},
	{"tcp services", "ingress:\n- hostname: tcp.foo.com\n  service: tcp://127.0.0.1\n- hostname: tcp2.foo.com\n  service: tcp://localhost:8000\n- service: http_status:404\n"},
	{"ssh rdp smb ftp", "ingress:\n- hostname: a.foo.com\n  service: ssh://127.0.0.1\n- hostname: b.foo.com\n  service: rdp://127.0.0.1\n- hostname: c.foo.com\n  service: smb://127.0.0.1\n- service: ftp://127.0.0.1\n"},
	{"socks with ipRules", "ingress:\n- hostname: socks.foo.com\n  service: socks-proxy\n  originRequest:\n    ipRules:\n      - prefix: 1.1.1.0/24\n        ports: [80, 443]\n        allow: true\n      - prefix: 0.0.0.0/0\n        allow: false\n- service: http_status:404\n"},
	{"bastionMode without service", "ingress:\n- hostname: bastion.foo.com\n  originRequest:\n    bastionMode: true\n- service: http_status:404\n"},
	{"bastion service", "ingress:\n- hostname: bastion.foo.com\n  service: bastion\n- service: http_status:404\n"},
	{"hostname with port", "ingress:\n - hostname: \"test.example.com:443\"\n   service: https://localhost:8000\n - hostname: \"*\"\n   service: https://localhost:8001\n"},
	{"unix socket", "ingress:\n- service: unix:/tmp/echo.sock\n"},
	{"unix+tls socket", "ingress:\n- service: unix+tls:/tmp/echo.sock\n"},

	// Keyword services.
	{"helloworld is not a keyword", rule1("  - hostname: a.com\n    service: helloworld\n")},
	{"Hello_World upper case", rule1("  - hostname: a.com\n    service: Hello_World\n")},
	{"warp-routing is not a service", rule1("  - hostname: a.com\n    service: warp-routing\n")},
	{"empty service", rule1("  - hostname: a.com\n    service: \"\"\n")},
	{"null service", rule1("  - hostname: a.com\n    service: ~\n")},
	{"numeric service", rule1("  - hostname: a.com\n    service: 8080\n")},
	{"list service", rule1("  - hostname: a.com\n    service: [a]\n")},

	// bastionMode, per rule and global, and how YAML spells booleans.
	{"global bastionMode makes any service a bastion", "originRequest:\n  bastionMode: true\n" + rule1("  - hostname: a.com\n    service: garbage\n")},
	{"a rule's bastionMode false overrides the global true", "originRequest:\n  bastionMode: true\n" + rule1("  - hostname: a.com\n    service: garbage\n    originRequest:\n      bastionMode: false\n")},
	{"global bastionMode with an empty catch-all", "originRequest:\n  bastionMode: true\ningress:\n  - ~\n"},
	{"bastionMode yes is true", rule1("  - hostname: a.com\n    service: garbage\n    originRequest:\n      bastionMode: yes\n")},
	{"bastionMode quoted yes is true", rule1("  - hostname: a.com\n    service: garbage\n    originRequest:\n      bastionMode: 'yes'\n")},
	{"bastionMode quoted true is a string", rule1("  - hostname: a.com\n    service: garbage\n    originRequest:\n      bastionMode: 'true'\n")},
	{"bastionMode 1 is not a bool", rule1("  - hostname: a.com\n    service: garbage\n    originRequest:\n      bastionMode: 1\n")},
	{"socks-proxy wins over bastionMode", rule1("  - hostname: a.com\n    service: socks-proxy\n    originRequest:\n      bastionMode: true\n      ipRules: [{prefix: 10.0.0.1}]\n")},
	{"unix wins over bastionMode", rule1("  - hostname: a.com\n    service: unix:\n    originRequest:\n      bastionMode: true\n")},

	// socks-proxy ipRules.
	{"ipRules port 0 and 70000", rule1("  - hostname: a.com\n    service: socks-proxy\n    originRequest:\n      ipRules:\n        - prefix: 10.0.0.0/8\n          ports: [70000, 0]\n")},
	{"ipRules without prefix", rule1("  - hostname: a.com\n    service: socks-proxy\n    originRequest:\n      ipRules:\n        - ports: [1]\n")},
	{"ipRules address without length", rule1("  - hostname: a.com\n    service: socks-proxy\n    originRequest:\n      ipRules:\n        - prefix: 10.0.0.1\n")},
	{"invalid global ipRules are ignored", "originRequest:\n  ipRules:\n    - prefix: 10.0.0.1\n" + rule1("  - hostname: a.com\n    service: socks-proxy\n")},
	{"ipRules of a non-socks rule are not checked", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      ipRules: [{prefix: nope, ports: [0]}]\n")},
	{"ipRules prefix as a number", rule1("  - hostname: a.com\n    service: socks-proxy\n    originRequest:\n      ipRules: [{prefix: 10}]\n")},
	{"ipRules ports as strings", rule1("  - hostname: a.com\n    service: socks-proxy\n    originRequest:\n      ipRules: [{prefix: 10.0.0.0/8, ports: ['80']}]\n")},

	// access.
	{"access required with audTag and no teamName", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      access:\n        required: true\n        audTag: [x]\n")},
	{"access with teamName", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      access: {required: true, audTag: [x], teamName: t}\n")},
	{"access empty audTag list", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      access: {required: true, audTag: []}\n")},
	{"access audTag of an empty string", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      access: {required: true, audTag: ['']}\n")},
	{"access audTag scalar", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      access: {required: true, audTag: x}\n")},
	{"access audTag numbers", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      access: {required: on, audTag: [1, 2]}\n")},
	{"global access is not checked", "originRequest:\n  access: {required: true, audTag: [x]}\n" + rule1("  - hostname: a.com\n    service: http://x\n")},
	{"access environment", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      access: {required: true, teamName: t, audTag: [x], environment: fed}\n")},
	{"access unknown key", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      access: {requird: true}\n")},
	{"access bad service first", rule1("  - hostname: a.com\n    service: http_status:1\n    originRequest:\n      access: {required: true, audTag: [x]}\n")},

	// originRequest types (cloudflared fails to load the file).
	{"connectTimeout as seconds", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      connectTimeout: 30\n")},
	{"connectTimeout as a date", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      connectTimeout: 2001-12-14\n")},
	{"connectTimeout valid", "originRequest:\n  connectTimeout: 1m30s\n  tlsTimeout: 10s\n  tcpKeepAlive: 30s\n  keepAliveTimeout: 90s\n" + rule1("  - hostname: a.com\n    service: http://x\n")},
	{"keepAliveConnections float", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      keepAliveConnections: 1.5\n")},
	{"originRequest scalar", rule1("  - hostname: a.com\n    service: http://x\n    originRequest: 5\n")},
	{"originRequest unknown key", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      conectTimeout: 5s\n")},
	{"global originRequest unknown key", "originRequest:\n  maxActiveFlows: 5\n" + rule1("  - hostname: a.com\n    service: http://x\n")},
	{"two type errors", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      connectTimeout: 30\n      noTLSVerify: maybe\n")},
	{"duplicate originRequest key", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      noTLSVerify: true\n      noTLSVerify: false\n")},
	{"all known originRequest keys", rule1("  - hostname: a.com\n    service: http://x\n    originRequest:\n      connectTimeout: 5s\n      tlsTimeout: 5s\n      tcpKeepAlive: 5s\n      noHappyEyeballs: true\n      keepAliveConnections: 5\n      keepAliveTimeout: 5s\n      httpHostHeader: h\n      originServerName: h\n      matchSNItoHost: true\n      caPool: /x\n      noTLSVerify: true\n      disableChunkedEncoding: true\n      bastionMode: false\n      proxyAddress: 127.0.0.1\n      proxyPort: 1\n      proxyType: socks\n      http2Origin: true\n")},

	// JSON syntax (YAML's subset): durations are strings in YAML, seconds only in JSON APIs.
	{"JSON file", `{"tunnel": "t", "ingress": [{"hostname": "a.com", "service": "http://x"}, {"service": "http_status:404"}]}`},
	{"JSON with duration in seconds", `{"originRequest": {"connectTimeout": 30}, "ingress": [{"service": "http_status:404"}]}`},
	{"JSON with duration string", `{"originRequest": {"connectTimeout": "30s"}, "ingress": [{"service": "http_status:404"}]}`},

	// warp-routing.
	{"warp-routing enabled is no longer a key", "warp-routing:\n  enabled: true\n" + rule1("  - hostname: a.com\n    service: http://x\n")},
	{"warp-routing bad type", "warp-routing:\n  maxActiveFlows: -1\n" + rule1("  - hostname: a.com\n    service: http://x\n")},

	// Top-level flags.
	{"flag of the wrong type", "loglevel: 5\n" + rule1("  - hostname: a.com\n    service: http://x\n")},
	{"duration flag garbage", "grace-period: abc\n" + rule1("  - hostname: a.com\n    service: http://x\n")},
	{"string slice flag with a number", "tag: [5]\n" + rule1("  - hostname: a.com\n    service: http://x\n")},
	{"flag error before a rule error", "loglevel: 5\ningress:\n  - hostname: a.com\n    service: x\n" + catchAllLine},
	{"first bad flag in cloudflared's order", "retries: x\nloglevel: 5\n" + rule1("")},
	{"valid flags", "loglevel: info\nmetrics: 127.0.0.1:20241\nno-autoupdate: true\ngrace-period: 30s\nretries: 5\ntag: [a=b]\nprotocol: quic\n" + rule1("")},
	{"run-only flag of the wrong type", "features: abc\n" + rule1("")},
	{"credentials-contents number", "credentials-contents: 5\n" + rule1("")},
	{"url flag", "url: http://x\n" + rule1("")},
	{"tunnel as a number", "tunnel: 5\n" + rule1("")},

	// YAML shapes.
	{"top-level list", "[]\n"},
	{"syntax error", "ingress: [\n"},
	{"ingress map", "ingress: {}\n"},
	{"ingress empty list", "ingress: []\n"},
	{"no ingress", "tunnel: t\n"},
	{"rule scalar", "ingress:\n  - 5\n"},
	{"null rule in the middle", "ingress:\n  - ~\n" + catchAllLine},
	{"duplicate top-level key", "tunnel: a\ntunnel: b\n" + rule1("")},
	{"duplicate rule key", "ingress:\n  - hostname: a.com\n    hostname: b.com\n    service: http://x\n" + catchAllLine},
	{"unknown rule key", "ingress:\n  - hostname: a.com\n    servce: http://x\n    service: http://x\n" + catchAllLine},
	{"numeric keys", "1: x\ningress:\n  - service: http_status:404\n    2: y\n"},
	{"complex key", "[a]: x\n" + rule1("")},
	{"aliases", "a: &x 1\nb: *x\n" + rule1("")},
	{"alias to the rules", "rules: &r\n  - service: http_status:404\ningress: *r\n"},
	{"second document", rule1("") + "---\nx: 1\n"},
	{"broken second document", rule1("") + "---\nx: [\n"},
	{"tabs", "ingress:\n\t- service: http_status:404\n"},
	{"binary tag service", rule1("  - hostname: a.com\n    service: !!binary aHR0cDovL3g=\n")},
	{"BOM", "\ufeff" + rule1("")},
	{"merge key with an unknown key", "x: &a {bogus: 1}\ningress:\n  - <<: *a\n    service: http_status:404\n"},
	{"keys equal once decoded", rule1("  - hostname: a.com\n    service: http://x\n    originRequest: {1: a, \"1\": b}\n")},
	{"null ipRules entry", "ingress:\n  - service: socks-proxy\n    originRequest: {ipRules: [~, {prefix: 1.0.0.0/8}]}\n"},
	{"explicit tags", "--- !!map\ningress: !!seq [!!map {service: !!str http_status:404}]\n"},
	{"int flag overflowing to float", "retries: 99999999999999999999\n" + rule1("")},

	// Hostnames.
	{"hostname star is a catch-all", "ingress:\n  - hostname: \"*\"\n    service: http_status:404\n"},
	{"hostname star without a dot", rule1("  - hostname: \"*example.com\"\n    service: http://x\n")},
	{"hostname double star", rule1("  - hostname: \"**.example.com\"\n    service: http://x\n")},
	{"hostname with a non-numeric port", rule1("  - hostname: h:abc\n    service: http://x\n")},
	{"hostname with an empty port", rule1("  - hostname: \"h:\"\n    service: http://x\n")},
	{"hostname IPv6 literal", rule1("  - hostname: \"::1\"\n    service: http://x\n")},
	{"hostname bracketed IPv6 with port", rule1("  - hostname: \"[::1]:80\"\n    service: http://x\n")},
	{"hostname unicode", rule1("  - hostname: Café.example\n    service: http://x\n")},
	{"hostname upper case", rule1("  - hostname: MyApp.Example.COM\n    service: http://x\n")},
	{"hostname star with a port", rule1("  - hostname: \"*:80\"\n    service: http://x\n")},
	{"path only, no hostname", rule1("  - path: ^/api\n    service: http://x\n")},
	{"catch-all star with a path", "ingress:\n  - hostname: \"*\"\n    path: /x\n    service: http_status:404\n"},

	// Services: URLs.
	{"service trailing slash", rule1("  - hostname: a.com\n    service: http://x:8080/\n")},
	{"service userinfo", rule1("  - hostname: a.com\n    service: http://u:p@x\n")},
	{"service port 0", rule1("  - hostname: a.com\n    service: http://x:0\n")},
	{"service port abc", rule1("  - hostname: a.com\n    service: http://x:abc\n")},
	{"service IPv6 unclosed", rule1("  - hostname: a.com\n    service: http://[::1\n")},
	{"service IPv6 zone", rule1("  - hostname: a.com\n    service: http://[fe80::1%25en0]:80\n")},
	{"service upper-case scheme", rule1("  - hostname: a.com\n    service: HTTP://X\n")},
	{"service odd scheme", rule1("  - hostname: a.com\n    service: foo://bar\n")},
	{"service percent-escaped host", rule1("  - hostname: a.com\n    service: http://%41\n")},
	{"service bad percent escape", rule1("  - hostname: a.com\n    service: http://x%zz\n")},
	{"service percent-escaped path", rule1("  - hostname: a.com\n    service: http://x/%2f\n")},
	{"service no host", rule1("  - hostname: a.com\n    service: \"http://\"\n")},
	{"service opaque", rule1("  - hostname: a.com\n    service: mailto:x@y\n")},
	{"service scheme-relative", rule1("  - hostname: a.com\n    service: //x:80\n")},
	{"service control character", rule1("  - hostname: a.com\n    service: \"http://x\\n\"\n")},
	{"service leading space", rule1("  - hostname: a.com\n    service: \" http://x\"\n")},
	{"service port only", rule1("  - hostname: a.com\n    service: \"http://:80\"\n")},

	// http_status edges.
	{"http_status 99", "ingress:\n  - service: http_status:99\n"},
	{"http_status 999", "ingress:\n  - service: http_status:999\n"},
	{"http_status 1000", "ingress:\n  - service: http_status:1000\n"},
	{"http_status plus sign", "ingress:\n  - service: http_status:+200\n"},
	{"http_status huge", "ingress:\n  - service: http_status:99999999999999999999\n"},
	{"http_status negative", "ingress:\n  - service: http_status:-404\n"},

	// Paths.
	{"path backreference", rule1("  - hostname: a.com\n    path: \"(a)\\\\1\"\n    service: http://x\n")},
	{"path repeat too large", rule1("  - hostname: a.com\n    path: \"a{1001}\"\n    service: http://x\n")},
	{"path unclosed class", rule1("  - hostname: a.com\n    path: \"[a-\"\n    service: http://x\n")},
}

func TestCloudflaredAgreesOnHandCases(t *testing.T) {
	t.Parallel()
	bin := cloudflaredtest.Path(t)
	for _, tc := range handCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			judge(t, bin, []byte(tc.yaml))
		})
	}
}

// corpusSize is how many generated files TestCloudflaredAgreesOnGeneratedFiles judges: each
// costs one cloudflared run (~60 ms of a core).
func corpusSize() int {
	if testing.Short() {
		return 20
	}
	return 60
}

func TestCloudflaredAgreesOnGeneratedFiles(t *testing.T) {
	t.Parallel()
	bin := cloudflaredtest.Path(t)
	rng := rand.New(rand.NewPCG(20260802, 1))
	for i := range corpusSize() {
		data := genConfig(rng)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			judge(t, bin, data)
		})
	}
}

// --- the generator -------------------------------------------------------------------------

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// q writes s as a double-quoted YAML scalar.
func q(s string) string { return string(appendQuoted(nil, s)) }

// Each pool has values cloudflared accepts (tricky ones included) and values it refuses; a file
// draws from the second kind with its own probability, so the corpus has clean files, files
// with one defect and files with several.
var (
	goodHostnames = []string{
		"a.example.com", "www.impulse-max.com", "*.example.com", "*example.com", "Café.example",
		"MyApp.Example.COM", "xn--caf-dma.com", "a..com", " a.com", "a.com.", "127.0.0.1", "例え.テスト",
		"a_b.example", "-a.example", "*.", ".", "a b.com", "::1", "[::1]", "*.sajet.us", "a:b:c",
	}
	badHostnames = []string{
		"*", "", "a.*.com", "ex*.com", "a.com*", "**.a.com", "h:abc", "a.com:443", "[::1]:80", "*.*.a.com",
		":80", "*:443", "a.com:", ":80x",
	}
	goodServices = []string{
		"http://127.0.0.1:8080", "https://h", "http://h?x=1", "http://h#f", "http://u:p@h", "http://h:0",
		"http://h:65536", "http://h:99999", "http://h:", "http://[::1]:80", "http://[fe80::1%25en0]:80",
		"http://[::1]:", "HTTP://H", "Https://h:443", "ssh://h:22", "tcp://h:1", "foo://bar", "rdp://h",
		"smb://h", "ws://h", "wss://h:443", "unix:/run/x.sock", "unix:", "unix+tls:/x", "unix+tls:",
		"http_status:404", "http_status:100", "http_status:999", "http_status:+200", "hello_world",
		"hello-world", "socks-proxy", "bastion", "http://例え.テスト", "git+ssh://h",
	}
	badServices = []string{
		"http://h/", "http://h/x", "http://h:abc", "http://[::1", "localhost:8080", "localhost", "",
		"http://", "http:", "http://%41", "http://h%2f", "http://h%zz", "http_status:99",
		"http_status:1000", "http_status:abc", "http_status:", "http_status: 200", "helloworld",
		"Hello_World", "Bastion", "warp-routing", "http://h:8080 ", " http://h", "http://h\t",
		"h t t p://x", "http//h", "mailto:x@y", "//h:80", "http:///x", "file:///tmp", "http://h/%2f",
		"http://a b", "http://h\n", "http://[::1]/",
	}
	goodPaths = []string{"^/api", "/x", `\d+`, "(?i)abc", "(?P<n>x)", "$^", ".*"}
	badPaths  = []string{"(", "[a-", "a{1001}", `\C`, "*", "x**", "(?=a)"}
)

// draw picks from bad with probability p, else from good.
func draw(r *rand.Rand, p float64, good, bad []string) string {
	if chance(r, p) {
		return pick(r, bad...)
	}
	return pick(r, good...)
}

// originKeys are originRequest keys with values cloudflared accepts and values that make it
// refuse the file (or, for socks-proxy ipRules and access, the rule).
var originKeys = []struct {
	key       string
	good, bad []string
}{
	{"bastionMode", []string{"true", "false", "yes", "'no'", "~", "on"}, []string{"'true'", "1", "[a]"}},
	{"connectTimeout", []string{"30s", "'1m'", "-5s", "1h2m"}, []string{"30", "abc", "2001-12-14"}},
	{"noTLSVerify", []string{"true", "off"}, []string{"'x'", "[a]"}},
	{"keepAliveConnections", []string{"10", "-1", "0x10"}, []string{"x", "1.5"}},
	{"proxyPort", []string{"8080", "0"}, []string{"-1", "1e3"}},
	{"httpHostHeader", []string{"h.example", "5", "~"}, []string{"[a]"}},
	{"access", []string{"{required: true, audTag: [a], teamName: t}", "{required: false, audTag: [a]}", "{required: yes, audTag: []}", "{audTag: [1]}", "{required: true}", "~", "{required: true, teamName: t, environment: fed}"},
		[]string{"{required: true, audTag: [a]}", "{required: on, audTag: ['']}", "{required: true, audTag: x}", "{required: 'true'}", "{audTag: [[a]]}", "{teamName: [t]}", "{requird: true}"}},
	{"ipRules", []string{"[{prefix: 10.0.0.0/8, ports: [80, 443], allow: true}]", "[{prefix: '::/0'}]", "[{prefix: 1.1.1.0/24, ports: [65535]}, {prefix: 0.0.0.0/0, allow: false}]", "[]"},
		[]string{"[{prefix: 10.0.0.1}]", "[{ports: [1]}]", "[{prefix: ''}]", "[{prefix: 10.0.0.0/8, ports: [70000, 0]}]", "[{prefix: 10.0.0.0/8, ports: ['80']}]", "[{prefix: 10, allow: 'x'}]", "[{prefix: 10.0.0.0/8, alow: true}]", "[{prefix: 1.1.1.0/33}]"}},
	{"matchSNItoHost", []string{"true"}, []string{"maybe"}},
	{"http2Origin", []string{"false"}, []string{"'no'"}},
	{"bogus", nil, []string{"1"}},
	{"conectTimeout", nil, []string{"5s"}},
}

// genOrigin returns the lines of an originRequest block (keys at indent) or "".
func genOrigin(r *rand.Rand, p float64, indent string, socks bool) string {
	var b strings.Builder
	keys := r.Perm(len(originKeys))[:1+r.IntN(3)]
	if socks && !slices.Contains(keys, 7) {
		keys = append(keys, 7)
	}
	for _, k := range keys {
		o := originKeys[k]
		v := ""
		switch {
		case len(o.good) == 0:
			if !chance(r, p) {
				continue
			}
			v = pick(r, o.bad...)
		default:
			v = draw(r, p, o.good, o.bad)
		}
		b.WriteString(indent + o.key + ": " + v + "\n")
	}
	return b.String()
}

var genSpecial = []string{
	"", "# only a comment\n", "~\n", "ingress: []\n", "tunnel: t\n", "[]\n", "ingress: {}\n",
	"a: &x 1\nb: *x\n" + rule1(""), rule1("") + "---\nb: 2\n",
	`{"ingress": [{"service": "http_status:404"}], "originRequest": {"connectTimeout": 30}}`,
	`{"ingress": [{"hostname": "a.com", "service": "http://x"}, {"service": "hello_world"}]}`,
	"ingress:\n  - ~\n" + catchAllLine,
}

var badFlags = []string{"loglevel: 5", "grace-period: abc", "no-autoupdate: maybe", "retries: x", "tag: abc", "tag: [5]", "metrics: ~", "features: abc", "credentials-contents: 5", "rpc-timeout: 5", "url: http://x", "proxy-dns-upstream: [1]"}
var goodFlags = []string{"loglevel: info", "grace-period: 30s", "no-autoupdate: true", "retries: 3", "tag: [a=b]", "metrics: 127.0.0.1:20241", "protocol: quic", "hello-world: true", "edge-ip-version: auto", "features: [x]"}

// genConfig writes one random config.yml. Each file has its own probability p of drawing a
// value cloudflared refuses.
func genConfig(r *rand.Rand) []byte {
	if chance(r, 0.04) {
		return []byte(pick(r, genSpecial...))
	}
	p := pick(r, 0.0, 0.05, 0.15, 0.3)
	var b strings.Builder
	b.WriteString("tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\n")
	if chance(r, 0.5) {
		b.WriteString("credentials-file: /etc/cloudflared/t.json\n")
	}
	if chance(r, 0.15) {
		b.WriteString(draw(r, p*2, goodFlags, badFlags) + "\n")
	}
	if chance(r, p/2) {
		b.WriteString(pick(r, "tunel: x\n", "1: x\n", "is-autoupdated: true\n"))
	}
	if chance(r, 0.08) {
		b.WriteString("warp-routing:\n  " + draw(r, p*2, []string{"maxActiveFlows: 10", "connectTimeout: 5s", "tcpKeepAlive: 1m"}, []string{"enabled: true", "connectTimeout: 5", "maxActiveFlows: -1"}) + "\n")
	}
	if chance(r, 0.2) {
		if chance(r, 0.4) {
			b.WriteString("originRequest:\n  bastionMode: true\n")
		} else {
			b.WriteString("originRequest:\n" + genOrigin(r, p, "  ", false))
		}
	}
	n := r.IntN(6)
	catchAt := n // after all rules
	if chance(r, p) {
		catchAt = -1 // none
		if n > 0 && chance(r, 0.5) {
			catchAt = r.IntN(n)
		}
	}
	if n == 0 && catchAt == -1 {
		if chance(r, 0.5) {
			return []byte(b.String())
		}
		b.WriteString("ingress:\n")
		return []byte(b.String())
	}
	b.WriteString("ingress:\n")
	for i := 0; i <= n; i++ {
		if i == catchAt {
			b.WriteString("  - ")
			switch r.IntN(4) {
			case 0:
				b.WriteString("hostname: \"*\"\n    ")
			case 1:
				b.WriteString("hostname: \"\"\n    ")
			}
			b.WriteString("service: " + q(draw(r, p, []string{"http_status:404", "http_status:503", "hello_world", "http://127.0.0.1:8080"}, []string{"http_status:1", "localhost"})) + "\n")
			continue
		}
		if i == n {
			break
		}
		svc := draw(r, p, goodServices, badServices)
		host := draw(r, p, goodHostnames, badHostnames)
		if chance(r, 0.3) {
			host = fmt.Sprintf("t%d.sajet.us", r.IntN(100))
		}
		b.WriteString("  - hostname: " + q(host) + "\n")
		if chance(r, 0.2) {
			b.WriteString("    path: " + q(draw(r, p*2, goodPaths, badPaths)) + "\n")
		}
		if svc != "" || chance(r, 0.5) {
			b.WriteString("    service: " + q(svc) + "\n")
		}
		if chance(r, 0.15) || svc == "socks-proxy" {
			if o := genOrigin(r, p, "      ", svc == "socks-proxy"); o != "" {
				b.WriteString("    originRequest:\n" + o)
			}
		}
		if chance(r, p) {
			b.WriteString("    " + pick(r, "servce: x", "originRequest: {bogus: 1}", "paths: x") + "\n")
		}
	}
	return []byte(b.String())
}

// --- managed rules and Render --------------------------------------------------------------

// genManagedRule draws a rule as the control plane might send it: mostly sane, often not
// (upper case, unicode, wildcards, odd ports and schemes, JSON-typed originRequest values).
func genManagedRule(r *rand.Rand) Rule {
	labels := []string{"a", "www", "impulse-max", "xn--caf-dma", "t7", strings.Repeat("x", 63), "a-b", "0",
		"xn--evolucinmujer-7kb", "Upper", "café", "*", "a_b", "-x", "xn--zz", "ab--c", ""}
	tlds := []string{"com", "us", "io", "sajet.us", "xn--p1ai", "example"}
	parts := make([]string, 1+r.IntN(3))
	for i := range parts {
		parts[i] = pick(r, labels...)
		if chance(r, 0.5) {
			parts[i] = fmt.Sprintf("t%d", r.IntN(1000))
		}
	}
	host := strings.Join(append(parts, pick(r, tlds...)), ".")
	svc := pick(r, "http", "http", "https", "HTTP", "ftp", "ssh", "ws") + "://" +
		pick(r, "10.0.0.1", "[fd00::5]", "odoo.internal", "localhost", "[::1]", "例え.jp", "h%41", "", "u@h") +
		pick(r, "", ":8069", ":8069", ":0", ":1", ":65535", ":65536", ":abc", ":") +
		pick(r, "", "", "", "", "/", "?x", "#f", "/x")
	rule := Rule{Hostname: host, Service: svc}
	if chance(r, 0.35) {
		origins := []map[string]any{
			{"httpHostHeader": "tenant.example"}, {"connectTimeout": "5s"}, {"connectTimeout": 30.0},
			{"noTLSVerify": true}, {"noTLSVerify": "true"}, {"keepAliveConnections": 10.0},
			{"keepAliveConnections": 1.5}, {"access": map[string]any{"required": true, "audTag": []any{"a"}}},
			{"access": map[string]any{"required": true, "audTag": []any{"a"}, "teamName": "t"}},
			{"bogus": 1.0}, {"bastionMode": true}, {"originServerName": "h", "http2Origin": true},
			{"proxyPort": -1.0}, {"ipRules": []any{map[string]any{"prefix": "x"}}}, {"caPool": 5.0},
			{"tlsTimeout": "10s", "tcpKeepAlive": "1m", "matchSNItoHost": true}, {"access": "yes"},
		}
		rule.OriginRequest = pick(r, origins...)
	}
	return rule
}

// acceptedManaged returns n distinct managed rules CheckManagedRule accepts, and how many
// candidates it took.
func acceptedManaged(r *rand.Rand, n int) ([]Rule, int) {
	var out []Rule
	seen := map[string]bool{}
	tried := 0
	for len(out) < n {
		tried++
		rule := genManagedRule(r)
		if seen[rule.Hostname] || CheckManagedRule(rule) != nil {
			continue
		}
		seen[rule.Hostname] = true
		out = append(out, rule)
	}
	return out, tried
}

// Any rule CheckManagedRule accepts is accepted by cloudflared (without a warning) wherever
// it sits before the catch-all of a valid config. Rules are judged in batches: cloudflared
// checks each rule on its own (only the catch-all's position involves the others), so a batch
// is accepted exactly when each of its rules is.
func TestCloudflaredAcceptsWhatCheckManagedRuleAccepts(t *testing.T) {
	t.Parallel()
	bin := cloudflaredtest.Path(t)
	rng := rand.New(rand.NewPCG(20260802, 2))
	const batch = 40
	rules, tried := acceptedManaged(rng, 5*batch)
	t.Logf("%d of %d generated managed rules accepted by CheckManagedRule", len(rules), tried)
	heads := []string{
		"tunnel: t\n",
		"tunnel: t\noriginRequest:\n  bastionMode: true\n",
		"tunnel: t\noriginRequest:\n  connectTimeout: 10s\n  access: {required: true, audTag: [x]}\n",
		"tunnel: t\nloglevel: info\nwarp-routing:\n  maxActiveFlows: 10\n",
		"tunnel: t\noriginRequest:\n  bastionMode: false\n  ipRules: [{prefix: nope}]\n",
	}
	for i := range 5 {
		data := []byte(heads[i] + "ingress:\n  - hostname: \"*.sajet.us\"\n    service: http://10.0.0.9\n" +
			string(writeRules(t, rules[i*batch:(i+1)*batch])) +
			"  - hostname: ops.example.com\n    path: ^/x\n    service: ssh://h:22\n" + catchAllLine)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			res := cloudflaredtest.Validate(t, bin, data)
			if !res.OK || res.Warnings != "" {
				t.Errorf("cloudflared refuses rules CheckManagedRule accepts: %+v\n%s", res, data)
			}
		})
	}
}

func writeRules(t testing.TB, rules []Rule) []byte {
	t.Helper()
	var buf []byte
	for _, r := range rules {
		var err error
		if buf, err = appendRule(buf, r); err != nil {
			t.Fatal(err)
		}
	}
	return buf
}

// Render's output, for generated bases and managed sets, is a file cloudflared accepts
// without a warning, and one ValidateFile accepts (unless the base has a top-level key we do
// not know, which ParseBase leaves to the operator).
func TestCloudflaredAcceptsRenderedFiles(t *testing.T) {
	t.Parallel()
	bin := cloudflaredtest.Path(t)
	rng := rand.New(rand.NewPCG(20260802, 3))
	pool, _ := acceptedManaged(rng, 60)
	n := 10
	if testing.Short() {
		n = 4
	}
	for i := 0; i < n; {
		base, err := ParseBase(genConfig(rng))
		if err != nil {
			continue
		}
		set := slices.Clone(pool[:rng.IntN(len(pool))])
		rng.Shuffle(len(set), func(a, b int) { set[a], set[b] = set[b], set[a] })
		for _, rej := range slices.Backward(Rejections(base, set)) {
			set = slices.Delete(set, rej.Index-1, rej.Index)
		}
		out, err := Render(base, set)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		i++
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			res := cloudflaredtest.Validate(t, bin, out)
			if !res.OK || res.Warnings != "" {
				t.Errorf("cloudflared refuses Render's output: %+v\n%s", res, out)
			}
			cfg, err := ParseConfig(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateFile(out); (err != nil) != (len(cfg.file.unknownTop) > 0) {
				t.Errorf("ValidateFile(Render output) = %v\n%s", err, out)
			}
		})
	}
}

// cloudflared routes each request of a rendered file to the rule Render meant: managed rules
// (exact hostnames) first, even inside an operator wildcard; then the operator's rules in
// their order, path rules included; the catch-all for anything else.
func TestCloudflaredMatchesRenderedRules(t *testing.T) {
	t.Parallel()
	bin := cloudflaredtest.Path(t)
	base, err := ParseBase([]byte("tunnel: t\ningress:\n" +
		"  - hostname: \"*.sajet.us\"\n    service: http://10.0.0.9\n" +
		"  - hostname: ops.example.com\n    path: ^/grafana\n    service: http://127.0.0.1:3000\n" +
		"  - hostname: ops.example.com\n    service: http://127.0.0.1:9000\n" +
		"  - hostname: Café.example\n    service: http://127.0.0.1:4000\n" +
		"  - service: http_status:404\n"))
	if err != nil {
		t.Fatal(err)
	}
	managed := []Rule{
		{Hostname: "www.impulse-max.com", Service: "http://10.10.10.105:8069"},
		{Hostname: "impulse-max.sajet.us", Service: "http://10.10.10.105:8069"},
		{Hostname: "xn--caf-dma.com", Service: "http://10.10.10.108:8069"},
		{Hostname: "www.xn--evolucinmujer-7kb.com", Service: "https://10.10.10.106"},
		{Hostname: "sajet.us", Service: "http://10.10.10.110:8069"},
	}
	out, err := Render(base, managed)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	// ruleOf finds the rendered rule with this hostname (and path), as cloudflared numbers them.
	ruleOf := func(host, path string) int {
		for i, r := range cfg.Rules {
			if r.Hostname == host && r.Path == path {
				return i
			}
		}
		t.Fatalf("no rendered rule %q %q:\n%s", host, path, out)
		return -1
	}
	last := len(cfg.Rules) - 1
	tests := []struct {
		name, url string
		want      int
	}{
		{"a managed subdomain beats the operator's wildcard", "https://impulse-max.sajet.us/web", ruleOf("impulse-max.sajet.us", "")},
		{"the port of the request is ignored", "https://impulse-max.sajet.us:8443/", ruleOf("impulse-max.sajet.us", "")},
		{"another subdomain goes to the wildcard", "https://other.sajet.us/", ruleOf("*.sajet.us", "")},
		{"a deeper subdomain goes to the wildcard", "https://a.b.sajet.us/", ruleOf("*.sajet.us", "")},
		{"the zone itself is a managed exact name", "https://sajet.us/", ruleOf("sajet.us", "")},
		{"a customer domain", "https://www.impulse-max.com/shop", ruleOf("www.impulse-max.com", "")},
		{"the apex of a customer domain is not managed", "https://impulse-max.com/", last},
		{"an IDN customer domain, as browsers send it", "https://xn--caf-dma.com/", ruleOf("xn--caf-dma.com", "")},
		{"an IDN subdomain", "https://www.xn--evolucinmujer-7kb.com/web/login", ruleOf("www.xn--evolucinmujer-7kb.com", "")},
		{"an operator path rule", "https://ops.example.com/grafana/d/1", ruleOf("ops.example.com", "^/grafana")},
		{"the operator's rule for the other paths", "https://ops.example.com/", ruleOf("ops.example.com", "")},
		{"the operator's unicode rule matches its punycode", "https://xn--caf-dma.example/", ruleOf("Café.example", "")},
		{"an unknown host gets the catch-all", "https://unknown.example.org/", last},
		// cloudflared compares the request's Host byte for byte (cloudflared#1715): an
		// upper-case request misses the managed rule and falls to the wildcard.
		{"upper case requests miss exact rules", "https://IMPULSE-MAX.sajet.us/", ruleOf("*.sajet.us", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := cloudflaredtest.MatchRule(t, bin, out, tt.url); got != tt.want {
				t.Errorf("cloudflared matches %s to rule #%d (%+v), want #%d (%+v)\n%s", tt.url, got, cfg.Rules[got], tt.want, cfg.Rules[tt.want], out)
			}
		})
	}
}

// --- fuzzing -------------------------------------------------------------------------------

// fuzzConfig builds a file around one fuzzed rule: hostname, path and service are written as
// quoted scalars, origin and global (originRequest blocks, rule and top level) as raw YAML on one
// line. mode%3 puts the catch-all after the rule, nowhere, or before it.
func fuzzConfig(host, path, service, origin, global string, mode uint8) []byte {
	oneLine := func(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }
	var b strings.Builder
	b.WriteString("tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\n")
	if global != "" {
		b.WriteString("originRequest: " + oneLine(global) + "\n")
	}
	b.WriteString("ingress:\n")
	if mode%3 == 2 {
		b.WriteString(catchAllLine)
	}
	b.WriteString("  - hostname: " + q(host) + "\n")
	if path != "" {
		b.WriteString("    path: " + q(path) + "\n")
	}
	b.WriteString("    service: " + q(service) + "\n")
	if origin != "" {
		b.WriteString("    originRequest: " + oneLine(origin) + "\n")
	}
	if mode%3 == 0 {
		b.WriteString(catchAllLine)
	}
	return []byte(b.String())
}

// FuzzDifferential: for any rule, cloudflared and ValidateFile agree (agreement's terms).
func FuzzDifferential(f *testing.F) {
	bin := cloudflaredtest.Path(f)
	seeds := []struct {
		host, path, service, origin, global string
		mode                                uint8
	}{
		{"a.example.com", "", "http://10.0.0.1:8069", "", "", 0},
		{"a.com", "", "helloworld", "", "", 0},
		{"a.com", "", "garbage", "", "{bastionMode: true}", 0},
		{"a.com", "", "socks-proxy", "{ipRules: [{prefix: 10.0.0.1, ports: [0]}]}", "", 0},
		{"a.com", "", "http://x", "{connectTimeout: 30}", "", 0},
		{"a.com", "", "http://x", "{access: {required: true, audTag: [x]}}", "", 0},
		{"h:abc", "", "http://x", "", "", 0},
		{"a.*.com", "(", "http://x/", "", "", 1},
		{"*", "", "http://x", "", "", 2},
		{"a.com", "", "HTTP://h?x#y", "&a {noTLSVerify: true}", "", 0},
		{"a.com", "", "unix+tls:", "[1]", "", 0},
		{"a.com", "", "http_status:+200", "{keepAliveConnections: 1.5, proxyPort: -1}", "", 0},
	}
	for _, s := range seeds {
		f.Add(s.host, s.path, s.service, s.origin, s.global, s.mode)
	}
	f.Fuzz(func(t *testing.T, host, path, service, origin, global string, mode uint8) {
		if len(host)+len(path)+len(service)+len(origin)+len(global) > 400 {
			t.Skip("too long to be interesting")
		}
		data := fuzzConfig(host, path, service, origin, global, mode)
		if d := agreement(data, cloudflaredtest.Validate(t, bin, data)); d != "" {
			t.Errorf("%s\n--- file:\n%s", d, data)
		}
	})
}
