package ingress

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/jeturing/sajet-domains/shared/ingress/internal/config"
)

// Render produces config.yml: the base's top-level keys in their original
// order, then ingress: the managed rules sorted by hostname, the operator's
// rules as written, and the catch-all.
//
// Contract:
//   - managed rules must pass ValidateManaged (errors: "managed: rule #N: …",
//     N counting the caller's slice);
//   - a managed hostname that an operator rule also names (as written or as
//     cloudflared's punycode alias) is an error, not a silent shadow;
//   - the rendered list passes Validate (errors: "validate: rule #N: …", N
//     counting the rendered list), so Render never returns a file that
//     cloudflared would refuse;
//   - the output depends only on the base and the set of managed rules: the
//     same input, in any order, gives the same bytes and so the same SHA-256,
//     which is how the agent decides "no write, no restart".
func Render(base *Base, managed []Rule) ([]byte, error) {
	if base == nil {
		return nil, errors.New("render: nil base")
	}
	if err := ValidateManaged(managed); err != nil {
		return nil, fmt.Errorf("managed: %w", err)
	}
	for i, r := range managed {
		if j, ok := base.names[r.Hostname]; ok {
			return nil, fmt.Errorf("managed: %w", ruleErr(i, r,
				"hostname %q is also named by rule #%d of the base file; remove one of them", r.Hostname, j+1))
		}
	}
	all := make([]Rule, 0, len(managed)+len(base.operator))
	all = append(all, managed...)
	// Hostnames are unique (ValidateManaged), so this order is total.
	slices.SortFunc(all, func(a, b Rule) int { return strings.Compare(a.Hostname, b.Hostname) })
	all = append(all, base.operator...)
	// Managed rules' originRequest is decoded from the map, as written below;
	// the operator's as cloudflared decoded it from the base file.
	origins := make([]*config.OriginRequestConfig, len(managed), len(all))
	origins = append(origins, base.origins...)
	if err := validate(all, origins, base.defaults); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}

	size := len(base.head) + len("ingress:\n") + len(base.tail)
	for _, r := range managed {
		size += len(r.Hostname) + len(r.Service) + 40
	}
	buf := make([]byte, 0, size)
	buf = append(buf, base.head...)
	buf = append(buf, "ingress:\n"...)
	var err error
	for _, r := range all[:len(managed)] {
		if buf, err = appendRule(buf, r); err != nil {
			return nil, fmt.Errorf("render: rule for %q: %w", r.Hostname, err)
		}
	}
	buf = append(buf, base.tail...)
	return buf, nil
}

// appendRule writes one list item at indent 2. Managed rules are written by
// hand rather than through yaml.Marshal of a node tree, which costs several
// times more for 100,000 rules; TestRenderRoundTrip proves yaml.v3 reads the
// result back to the same rules for awkward strings.
func appendRule(buf []byte, r Rule) ([]byte, error) {
	var err error
	buf = append(buf, "  - hostname: "...)
	if buf, err = appendScalar(buf, r.Hostname); err != nil {
		return nil, err
	}
	if r.Path != "" {
		buf = append(buf, "\n    path: "...)
		if buf, err = appendScalar(buf, r.Path); err != nil {
			return nil, err
		}
	}
	buf = append(buf, "\n    service: "...)
	if buf, err = appendScalar(buf, r.Service); err != nil {
		return nil, err
	}
	buf = append(buf, '\n')
	if len(r.OriginRequest) > 0 {
		// Rare (per-tenant overrides): yaml.v3 sorts map keys, so this is
		// deterministic too.
		b, err := encodeOrigin(r.OriginRequest)
		if err != nil {
			return nil, fmt.Errorf("originRequest: %w", err)
		}
		buf = append(buf, "    originRequest:\n"...)
		for line := range strings.Lines(string(b)) {
			buf = append(buf, "      "...)
			buf = append(buf, line...)
		}
	}
	return buf, nil
}

// appendScalar writes s plain when that cannot be misread (the common
// hostname and URL case), double-quoted otherwise.
func appendScalar(buf []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%q is not valid UTF-8", s)
	}
	if plainSafe(s) {
		return append(buf, s...), nil
	}
	return appendQuoted(buf, s), nil
}

// plainSafe accepts strings that YAML can only read back as the same string:
// they start with a letter (so no number, timestamp, .inf, indicator or
// "~"), contain only [A-Za-z0-9._/:-], at least one non-letter (so none of
// true/false/null/yes/no/on/off), and do not end in ':' (a mapping key).
func plainSafe(s string) bool {
	if s == "" || !isLetter(s[0]) || s[len(s)-1] == ':' {
		return false
	}
	nonLetter := false
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case isLetter(c):
		case c >= '0' && c <= '9', c == '.', c == '_', c == '/', c == ':', c == '-':
			nonLetter = true
		default:
			return false
		}
	}
	return nonLetter
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// appendQuoted writes a YAML double-quoted scalar; everything that is not a
// printable character is escaped, so the file stays one rule per line.
func appendQuoted(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for _, r := range s {
		switch {
		case r == '"':
			buf = append(buf, `\"`...)
		case r == '\\':
			buf = append(buf, `\\`...)
		case r < utf8.RuneSelf && r >= 0x20 && r != 0x7f:
			buf = append(buf, byte(r))
		case r >= utf8.RuneSelf && unicode.IsPrint(r) && r != '\ufeff':
			buf = utf8.AppendRune(buf, r)
		case r <= 0xff:
			buf = append(buf, `\x`...)
			buf = appendHex(buf, uint32(r), 2)
		case r <= 0xffff:
			buf = append(buf, `\u`...)
			buf = appendHex(buf, uint32(r), 4)
		default:
			buf = append(buf, `\U`...)
			buf = appendHex(buf, uint32(r), 8)
		}
	}
	return append(buf, '"')
}

func appendHex(buf []byte, v uint32, digits int) []byte {
	h := strconv.FormatUint(uint64(v), 16)
	for i := len(h); i < digits; i++ {
		buf = append(buf, '0')
	}
	return append(buf, h...)
}

// encodeHead encodes the base's top-level keys (without ingress) in their
// original order, with the document's comments.
func encodeHead(doc *yaml.Node, top []*yaml.Node) ([]byte, error) {
	if len(top) == 0 {
		return nil, nil
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: top}
	if len(doc.Content) > 0 {
		orig := doc.Content[0]
		root.HeadComment, root.LineComment = orig.HeadComment, orig.LineComment
	}
	out := &yaml.Node{Kind: yaml.DocumentNode, HeadComment: doc.HeadComment, Content: []*yaml.Node{root}}
	return encodeNode(out)
}

// encodeOperatorRules encodes the operator's rule nodes (their key order and
// comments kept) as the list items that follow "ingress:".
func encodeOperatorRules(rules []*yaml.Node) ([]byte, error) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: rules}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "ingress"}, seq,
	}}
	b, err := encodeNode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}})
	if err != nil {
		return nil, err
	}
	const prefix = "ingress:\n"
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return nil, fmt.Errorf("encoding operator rules: unexpected output %.40q", b)
	}
	return b[len(prefix):], nil
}

func encodeNode(n *yaml.Node) (out []byte, err error) {
	// yaml.v3 panics on some trees it cannot emit; never let a base file
	// crash the agent.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("encoding YAML: %v", r)
		}
	}()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encoding YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding YAML: %w", err)
	}
	return b.Bytes(), nil
}
