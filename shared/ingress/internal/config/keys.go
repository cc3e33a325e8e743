package config

import (
	"reflect"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Unknown is a key that no field of its block declares: cloudflared's second, strict decode lists
// it as "line Line: field Key not found in type Type" under "Warning: unused keys detected", and
// exits 0.
type Unknown struct {
	// Path names the key from the top of the file, e.g. "ingress[2].originRequest.acces"
	// (ingress and ipRules entries count from 1).
	Path string
	Key  string
	Line int
	// Type is the Go type cloudflared names, e.g. "config.OriginRequestConfig".
	Type string
}

// UnknownKeys lists, in document order, the keys of doc (a document or its root mapping) that
// cloudflared would warn about. Top-level keys are never among them: cloudflared reads every
// top-level key it does not declare as a command-line flag, without a warning.
func UnknownKeys(doc *yaml.Node) []Unknown {
	var out []Unknown
	if doc != nil && doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		doc = doc.Content[0]
	}
	walkKeys(doc, reflect.TypeFor[configFileSettings](), "", &out)
	return out
}

// UnknownOriginRequestKeys is UnknownKeys for one originRequest block; paths start at prefix.
func UnknownOriginRequestKeys(n *yaml.Node, prefix string) []Unknown {
	var out []Unknown
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	walkKeys(n, reflect.TypeFor[OriginRequestConfig](), prefix, &out)
	return out
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
var obsoleteUnmarshalerType = reflect.TypeFor[interface {
	UnmarshalYAML(func(interface{}) error) error
}]()

func walkKeys(n *yaml.Node, t reflect.Type, path string, out *[]Unknown) {
	if n == nil {
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(obsoleteUnmarshalerType) {
		return // decoded by its own method (durations): a scalar, no keys
	}
	switch t.Kind() {
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			walkKeys(item, t.Elem(), path+"["+strconv.Itoa(i+1)+"]", out)
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields, inlineMap := structKeys(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				// "<<: *x" merges the aliased mapping(s) into this one.
				walkKeys(v, t, path, out)
				if v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						walkKeys(m, t, path, out)
					}
				}
				continue
			}
			name := k.Value
			if ft, ok := fields[name]; ok {
				walkKeys(v, ft, join(path, name), out)
			} else if !inlineMap {
				*out = append(*out, Unknown{Path: join(path, name), Key: name, Line: k.Line, Type: t.String()})
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type structInfo struct {
	keys      map[string]reflect.Type
	inlineMap bool
}

var structInfos sync.Map // reflect.Type → structInfo

// structKeys returns the YAML keys of t's fields as yaml.v3 names them (the tag's name, else the
// lower-cased field name; inline structs contribute their fields) and whether t has an inline map.
func structKeys(t reflect.Type) (map[string]reflect.Type, bool) {
	if si, ok := structInfos.Load(t); ok {
		return si.(structInfo).keys, si.(structInfo).inlineMap
	}
	keys, inlineMap := computeStructKeys(t)
	structInfos.Store(t, structInfo{keys, inlineMap})
	return keys, inlineMap
}

func computeStructKeys(t reflect.Type) (map[string]reflect.Type, bool) {
	keys := make(map[string]reflect.Type)
	inlineMap := false
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			if f.Type.Kind() == reflect.Map {
				inlineMap = true
				continue
			}
			inner, m := computeStructKeys(f.Type)
			for k, v := range inner {
				keys[k] = v
			}
			inlineMap = inlineMap || m
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys[name] = f.Type
	}
	return keys, inlineMap
}
