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

	"github.com/jeturing/sajet-domains/shared/ingress/internal/config"
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
	// origins holds each operator rule's originRequest as cloudflared decodes
	// it, defaults the global originRequest (bastionMode applies to every
	// rule that does not set its own).
	origins  []*config.OriginRequestConfig
	defaults *config.OriginRequestConfig
	// names holds the hostnames the operator's rules name, as written and
	// in cloudflared's punycode/lower-case alias form, for conflict checks.
	names map[string]int
}

// OperatorRules returns a copy of the operator's rules, catch-all last.
func (b *Base) OperatorRules() []Rule { return slices.Clone(b.operator) }

// ParseBase parses the operator's base file. The file must be one YAML
// mapping (or empty) of at most MaxBaseSize bytes that cloudflared loads
// (its types, its flag types), without aliases, and without any key
// cloudflared would warn about (rule keys other than hostname, path, service
// and originRequest, unknown originRequest, access, ipRules or warp-routing
// keys, and top-level keys ValidateFile would refuse). A global
// originRequest.bastionMode: true is refused: managed rules would become
// bastions. If the operator's
// rules do not end in a catch-all, CatchAll404 is appended. The resulting
// operator list must pass cloudflared's validation, with the file's global
// originRequest; errors name the rule's position in the base file.
func ParseBase(data []byte) (*Base, error) {
	if len(data) > MaxBaseSize {
		return nil, fmt.Errorf("base: file is %d bytes, limit is %d", len(data), MaxBaseSize)
	}
	f, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	if len(f.stricter) > 0 {
		return nil, fmt.Errorf("base: %s", f.stricter[0])
	}
	if f.hasURL {
		return nil, fmt.Errorf("base: %w", errURLWithIngress)
	}
	if len(f.unknown) > 0 {
		u := f.unknown[0]
		if strings.Count(u.Path, ".") == 1 && strings.HasPrefix(u.Path, "ingress[") {
			return nil, fmt.Errorf("base: unknown ingress rule key %s (line %d)", u.Path, u.Line)
		}
		return nil, fmt.Errorf("base: unknown key %s (line %d)", u.Path, u.Line)
	}
	if len(f.unknownTop) > 0 {
		// ValidateFile refuses them too: a base with one would make every rendering a file the
		// agent never keeps as its last good copy.
		return nil, fmt.Errorf("base: unknown top-level key %s: cloudflared does not document it; remove it or pass it on cloudflared's command line", f.unknownTop[0])
	}
	if d := f.defaults; d != nil && d.BastionMode != nil && *d.BastionMode {
		// Managed rules cannot opt out (ValidateManaged refuses bastionMode), so
		// every tenant would be served by the bastion instead of its backend.
		return nil, errors.New("base: originRequest.bastionMode: true would serve the managed rules as bastions; set bastionMode on the operator's own rules instead")
	}
	b := &Base{operator: f.rules, origins: f.origins, defaults: f.defaults}
	opNodes := f.ruleNodes
	if n := len(b.operator); n == 0 || !b.operator[n-1].IsCatchAll() {
		b.operator = append(b.operator, CatchAll404)
		b.origins = append(slices.Clip(b.origins), noOrigin)
		var n yaml.Node
		if err := n.Encode(CatchAll404); err != nil {
			return nil, fmt.Errorf("base: %w", err)
		}
		opNodes = append(slices.Clip(opNodes), &n)
	}
	if err := validate(b.operator, b.origins, b.defaults); err != nil {
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
	// UnknownKeys lists the keys cloudflared would ignore, first those it
	// warns about ("Warning: unused keys detected", exit status 0), as
	// "ingress[N].key (line L)" or "originRequest.key (line L)" with N
	// counting from 1, then top-level keys that are neither cloudflared's
	// config keys nor flags we know (cloudflared says nothing about those).
	// Our apply pipeline treats all of them as invalid (docs/ARCHITECTURE.md §5).
	UnknownKeys []string

	file *parsedFile
}

// ErrEmptyConfig is ValidateFile's error for a file without any YAML
// document (empty, or only comments). cloudflared reads such a file as no
// configuration file at all ("No configuration file was found…").
var ErrEmptyConfig = errors.New("config: the file is empty (cloudflared reads it as no configuration file)")

// ParseConfig parses a full config.yml (rendered or hand-edited), up to
// MaxFileSize bytes. It fails where cloudflared fails to load the file, with
// cloudflared's message (a YAML error, a value of the wrong type, a flag of
// the wrong type), prefixed "config: ".
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: file is %d bytes, limit is %d", len(data), MaxFileSize)
	}
	f, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c := &Config{Rules: f.rules, file: f}
	for _, u := range f.unknown {
		c.UnknownKeys = append(c.UnknownKeys, fmt.Sprintf("%s (line %d)", u.Path, u.Line))
	}
	c.UnknownKeys = append(c.UnknownKeys, f.unknownTop...)
	return c, nil
}

// ValidateFile reports whether a complete config.yml is one cloudflared would run as written.
// Checks run in cloudflared's order, so that when cloudflared refuses the file the error carries
// cloudflared's own reason:
//
//  1. it loads (ParseConfig; "config: " + what cloudflared prints after
//     "error parsing YAML in config file at PATH: ", or its flag error);
//  2. it is not empty (ErrEmptyConfig);
//  3. its rules pass cloudflared's validation with the file's global
//     originRequest ("validate: rule #N: " + what cloudflared prints after
//     "Validation failed: ", or ErrNoIngressRules);
//  4. it has no url key, which cloudflared refuses next to ingress rules;
//
// and then our stricter rules, for files cloudflared accepts:
//
//  5. one YAML document, without anchors or aliases, with string keys;
//  6. credentials-contents and features have the types `cloudflared tunnel
//     run` requires (ingress validate does not check them);
//  7. no unknown keys (Config.UnknownKeys): cloudflared only warns about
//     them; docs/ARCHITECTURE.md §5 treats them as invalid.
func ValidateFile(data []byte) error {
	cfg, err := ParseConfig(data)
	if err != nil {
		return err
	}
	f := cfg.file
	if f.empty {
		return ErrEmptyConfig
	}
	if err := validate(cfg.Rules, f.origins, f.defaults); err != nil {
		if errors.Is(err, ErrNoIngressRules) {
			return err
		}
		return fmt.Errorf("validate: %w", err)
	}
	if f.hasURL {
		return fmt.Errorf("config: %w", errURLWithIngress)
	}
	if len(f.stricter) > 0 {
		return fmt.Errorf("config: %s", f.stricter[0])
	}
	if len(cfg.UnknownKeys) > 0 {
		return fmt.Errorf("config: unknown keys %s", strings.Join(cfg.UnknownKeys, ", "))
	}
	return nil
}

type parsedFile struct {
	empty     bool       // no YAML document at all
	hasURL    bool       // a top-level url key (cloudflared refuses it with ingress rules)
	doc       *yaml.Node // the first document
	top       []*yaml.Node
	ruleNodes []*yaml.Node
	rules     []Rule
	// origins[i] is rules[i]'s originRequest and defaults the global one, as
	// cloudflared decoded them.
	origins  []*config.OriginRequestConfig
	defaults *config.OriginRequestConfig
	// unknown: keys cloudflared warns about; unknownTop: top-level keys it
	// ignores silently; stricter: what else we refuse in a file cloudflared
	// loads (our rules, not cloudflared's).
	unknown    []config.Unknown
	unknownTop []string
	stricter   []string
}

// parseFile reads data first as cloudflared does (config.Load: its types,
// its errors; then its flag types), and only then as a YAML tree, for
// Render (which re-emits the tree) and for our stricter checks.
func parseFile(data []byte) (*parsedFile, error) {
	cf, settings, err := config.Load(data)
	if errors.Is(err, config.ErrEmpty) {
		return &parsedFile{empty: true, doc: &yaml.Node{Kind: yaml.DocumentNode}}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := checkFlags(settings, validateFlags); err != nil {
		return nil, err
	}
	_, hasURL := settings["url"]
	f := &parsedFile{defaults: &cf.OriginRequest, hasURL: hasURL}
	if err := checkFlags(settings, runFlags); err != nil {
		f.stricter = append(f.stricter, err.Error()+" (cloudflared tunnel run refuses it)")
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, err // cannot happen: config.Load decoded the same document
	}
	f.doc = &doc
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			f.stricter = append(f.stricter, fmt.Sprintf("after the first YAML document: %v", err))
		} else {
			f.stricter = append(f.stricter, fmt.Sprintf("line %d: more than one YAML document (cloudflared reads only the first)", extra.Line))
		}
	}
	if err := rejectAliases(&doc); err != nil {
		f.stricter = append(f.stricter, err.Error())
	}
	root := resolveAlias(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return f, nil // null: config.Load accepted nothing else
	}
	var ingress *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			f.stricter = append(f.stricter, fmt.Sprintf("line %d: top-level keys must be strings", k.Line))
		}
		if k.Value == "ingress" {
			ingress = resolveAlias(v)
			continue
		}
		if !knownTopLevel[k.Value] {
			f.unknownTop = append(f.unknownTop, k.Value)
		}
		f.top = append(f.top, k, v)
	}
	f.unknown = config.UnknownKeys(&doc)
	if ingress == nil || ingress.Kind != yaml.SequenceNode {
		return f, nil // absent or null
	}
	for _, n := range ingress.Content {
		// yaml.v3 leaves a null entry out of a list of structs, so for
		// cloudflared "- ~" is no rule at all (and does not count).
		if resolveAlias(n).ShortTag() == "!!null" {
			continue
		}
		f.ruleNodes = append(f.ruleNodes, n)
	}
	if len(f.ruleNodes) != len(cf.Ingress) {
		return nil, fmt.Errorf("internal error: %d rule nodes, cloudflared reads %d rules", len(f.ruleNodes), len(cf.Ingress))
	}
	f.rules = make([]Rule, len(f.ruleNodes))
	f.origins = make([]*config.OriginRequestConfig, len(f.ruleNodes))
	for i, n := range f.ruleNodes {
		if err := n.Decode(&f.rules[i]); err != nil {
			return nil, fmt.Errorf("ingress rule #%d: %w", i+1, err)
		}
		f.origins[i] = &cf.Ingress[i].OriginRequest
	}
	return f, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
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
