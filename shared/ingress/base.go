package ingress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/net/idna"
	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds what ParseBase and ParseConfig read: a config.yml is a
// few kilobytes plus ~100 bytes per managed rule; anything larger than this
// is a mistake or an attack, not a config.
const MaxFileSize = 32 << 20

// MaxBaseSize bounds the operator's base file, which holds no managed rules.
const MaxBaseSize = 1 << 20

// Base is the operator's file: every top-level key except ingress, kept
// verbatim and in order (tunnel, credentials-file, originRequest, metrics,
// comments …), and the operator's own ingress rules ending in a catch-all.
// A Base is read-only after ParseBase and safe for concurrent Render calls.
type Base struct {
	head     []byte // top-level keys except ingress, as YAML
	tail     []byte // operator rules as YAML list items (indent 2)
	operator []Rule // decoded operator rules, catch-all last
	// names holds the hostnames the operator's rules name, as written and
	// in cloudflared's punycode/lower-case alias form, for conflict checks.
	names map[string]int
}

// OperatorRules returns a copy of the operator's rules, catch-all last.
func (b *Base) OperatorRules() []Rule { return slices.Clone(b.operator) }

// ParseBase parses the operator's base file. The file must be one YAML
// mapping (or empty) of at most MaxBaseSize bytes, without aliases, whose
// optional ingress key is a list of rules with only cloudflared's rule keys.
// If the operator's rules do not end in a catch-all, CatchAll404 is
// appended. The resulting operator list must pass Validate; errors name the
// rule's position in the base file.
func ParseBase(data []byte) (*Base, error) {
	if len(data) > MaxBaseSize {
		return nil, fmt.Errorf("base: file is %d bytes, limit is %d", len(data), MaxBaseSize)
	}
	f, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	if len(f.unknownRuleKeys) > 0 {
		return nil, fmt.Errorf("base: unknown ingress rule key %s", f.unknownRuleKeys[0])
	}
	b := &Base{operator: f.rules}
	opNodes := f.ruleNodes
	if n := len(b.operator); n == 0 || !b.operator[n-1].IsCatchAll() {
		b.operator = append(b.operator, CatchAll404)
		var n yaml.Node
		if err := n.Encode(CatchAll404); err != nil {
			return nil, fmt.Errorf("base: %w", err)
		}
		opNodes = append(slices.Clip(opNodes), &n)
	}
	if err := Validate(b.operator); err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	b.names = make(map[string]int, len(b.operator))
	for i, r := range b.operator {
		if r.Hostname == "" || r.Hostname == "*" {
			continue
		}
		b.names[r.Hostname] = i
		// cloudflared also matches a rule by its idna.Lookup.ToASCII alias,
		// so an operator rule "Café.com" names "xn--caf-dma.com".
		if a, err := toASCII(r.Hostname); err == nil {
			b.names[a] = i
		}
	}
	// Both fixed parts of the output are encoded once, here: Render only
	// splices managed rules between them, so its cost is the managed rules'.
	if b.head, err = encodeHead(f.doc, f.top); err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	if b.tail, err = encodeOperatorRules(opNodes); err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	return b, nil
}

// Config is a parsed config.yml: what the agent reads back from disk to
// detect drift or to validate a hand-edited file.
type Config struct {
	// Rules is the ingress list as written (not validated; call Validate).
	Rules []Rule
	// UnknownKeys lists top-level keys cloudflared does not know and rule
	// keys other than hostname/path/service/originRequest (as
	// "ingress[N].key", N 1-based). cloudflared only warns about unused keys
	// ("Warning: unused keys detected") and exits 0; our apply pipeline
	// treats them as invalid (DESIGN §7).
	UnknownKeys []string
}

// ParseConfig parses a full config.yml (rendered or hand-edited), up to
// MaxFileSize bytes.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: file is %d bytes, limit is %d", len(data), MaxFileSize)
	}
	f, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c := &Config{Rules: f.rules, UnknownKeys: f.unknownRuleKeys}
	for i := 0; i < len(f.top); i += 2 {
		if k := f.top[i].Value; !knownTopLevel[k] {
			c.UnknownKeys = append(c.UnknownKeys, k)
		}
	}
	return c, nil
}

// ValidateFile reports whether a complete config.yml is one cloudflared would run as written:
// it parses, its rules pass Validate, and it has no key cloudflared would ignore (cloudflared only
// warns about those; DESIGN §7 treats them as invalid).
func ValidateFile(data []byte) error {
	cfg, err := ParseConfig(data)
	if err != nil {
		return err
	}
	if err := Validate(cfg.Rules); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	if len(cfg.UnknownKeys) > 0 {
		return fmt.Errorf("config: unknown keys %s", strings.Join(cfg.UnknownKeys, ", "))
	}
	return nil
}

// knownTopLevel: cloudflared's config struct keys plus the tunnel-run flags
// operators commonly put in config.yml (cloudflared reads any CLI flag from
// the file). Conservative: an unlisted but valid flag is reported, which is
// the safe direction for an automated apply.
var knownTopLevel = map[string]bool{
	"tunnel": true, "ingress": true, "warp-routing": true, "originRequest": true,
	"credentials-file": true, "credentials-contents": true, "origincert": true,
	"metrics": true, "loglevel": true, "transport-loglevel": true, "logfile": true,
	"log-directory": true, "protocol": true, "no-autoupdate": true,
	"autoupdate-freq": true, "grace-period": true, "edge-ip-version": true,
	"edge-bind-address": true, "region": true, "retries": true, "tag": true,
	"pidfile": true, "post-quantum": true, "ha-connections": true,
	"management-diagnostics": true, "compression-quality": true, "label": true,
	"features": true, "max-active-flows": true, "dns-resolver-addrs": true,
	"icmpv4-src": true, "icmpv6-src": true, "rpc-timeout": true,
	"write-stream-timeout": true, "quic-disable-pmtu-discovery": true,
	"quic-connection-level-flow-control-limit": true,
	"quic-stream-level-flow-control-limit":     true,
}

var ruleKeys = map[string]bool{"hostname": true, "path": true, "service": true, "originRequest": true}

type parsedFile struct {
	doc             *yaml.Node
	top             []*yaml.Node
	ruleNodes       []*yaml.Node
	rules           []Rule
	unknownRuleKeys []string
}

func parseFile(data []byte) (*parsedFile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	f := &parsedFile{doc: &yaml.Node{Kind: yaml.DocumentNode}}
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil // empty file: no keys, no rules
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("line %d: more than one YAML document", extra.Line)
	}
	if err := rejectAliases(&doc); err != nil {
		return nil, err
	}
	f.doc = &doc
	if len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return f, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: top level must be a mapping", root.Line)
	}
	seen := make(map[string]bool, len(root.Content)/2)
	var ingress *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			return nil, fmt.Errorf("line %d: top-level keys must be strings", k.Line)
		}
		if seen[k.Value] {
			return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
		}
		seen[k.Value] = true
		if k.Value == "ingress" {
			ingress = v
			continue
		}
		f.top = append(f.top, k, v)
	}
	if ingress == nil || (ingress.Kind == yaml.ScalarNode && ingress.Tag == "!!null") {
		return f, nil
	}
	if ingress.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: ingress must be a list", ingress.Line)
	}
	f.ruleNodes = ingress.Content
	f.rules = make([]Rule, len(ingress.Content))
	for i, n := range ingress.Content {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: ingress rule #%d must be a mapping", n.Line, i+1)
		}
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], n.Content[j+1]
			if !ruleKeys[k.Value] {
				f.unknownRuleKeys = append(f.unknownRuleKeys, fmt.Sprintf("ingress[%d].%s (line %d)", i+1, k.Value, k.Line))
				continue
			}
			if k.Value != "originRequest" && v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: ingress rule #%d: %s must be a string", v.Line, i+1, k.Value)
			}
		}
		if err := n.Decode(&f.rules[i]); err != nil {
			return nil, fmt.Errorf("ingress rule #%d: %w", i+1, err)
		}
	}
	return f, nil
}

// rejectAliases refuses anchors' aliases anywhere: Render re-emits parts of
// the tree separately, which would leave an alias without its anchor, and
// aliases are how small YAML files expand into huge ones.
func rejectAliases(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return fmt.Errorf("line %d: YAML aliases are not supported", n.Line)
	}
	if n.Anchor != "" {
		return fmt.Errorf("line %d: YAML anchors are not supported", n.Line)
	}
	for _, c := range n.Content {
		if err := rejectAliases(c); err != nil {
			return err
		}
	}
	return nil
}

func toASCII(h string) (string, error) {
	a, err := idna.Lookup.ToASCII(h)
	return strings.ToLower(a), err
}
