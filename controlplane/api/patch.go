package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/ingress"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// field records whether a PATCH body named a field, and whether it was null.
type field[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// UnmarshalJSON is called only for fields present in the body (null included).
func (f *field[T]) UnmarshalJSON(b []byte) error {
	f.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		f.Null = true
		return nil
	}
	return json.Unmarshal(b, &f.Value)
}

func (f field[T]) schema(r huma.Registry, nullable bool) *huma.Schema {
	var zero T
	s := *r.Schema(reflect.TypeOf(zero), false, "") // a copy: the field's tags are applied to it
	s.Nullable = nullable
	return &s
}

// Optional is a PATCH field that may be left out but not set to null.
type Optional[T any] struct{ field[T] }

// Schema implements huma.SchemaProvider: the schema of T, so the field's tags (maxLength, enum,
// …) validate the value.
func (o Optional[T]) Schema(r huma.Registry) *huma.Schema { return o.schema(r, false) }

// Nullable is a PATCH field that may be left out, set, or set to null.
type Nullable[T any] struct{ field[T] }

// Schema implements huma.SchemaProvider: the schema of T or null.
func (n Nullable[T]) Schema(r huma.Registry) *huma.Schema { return n.schema(r, true) }

// change converts an Optional into a store change.
func (o Optional[T]) change() store.Change[T] { return store.Change[T]{Set: o.Set, Value: o.Value} }

// change converts a Nullable into a store change of a pointer (nil: set to NULL).
func (n Nullable[T]) change() store.Change[*T] {
	c := store.Change[*T]{Set: n.Set}
	if n.Set && !n.Null {
		v := n.Value
		c.Value = &v
	}
	return c
}

// invalid is a 422 naming the body field at fault.
func invalid(field string, msg i18n.Text, value any) *Problem {
	p := problem(http.StatusUnprocessableEntity, "validation_failed", msg)
	p.Errors = []*huma.ErrorDetail{{Location: "body." + field, Message: msg.EN, Value: value}}
	p.fieldTexts = map[int]i18n.Text{0: msg}
	return p
}

// notNull refuses null for fields that cannot be null (huma's validator lets null through for
// any optional property).
func notNull(fields map[string]bool) error {
	for name, null := range fields {
		if null {
			return invalid(name, i18n.F("%s no puede ser null", "%s must not be null", name), nil)
		}
	}
	return nil
}

// nothingToChange is the answer to a PATCH that names no field.
func nothingToChange(fields ...string) error {
	return problem(http.StatusUnprocessableEntity, "nothing_to_change", i18n.F(
		"nada que cambiar: indique al menos uno de %s", "nothing to change: name at least one of %s", strings.Join(fields, ", ")))
}

// checkText refuses text PostgreSQL cannot store (NUL) or that did not arrive as UTF-8 (the JSON
// decoder turns invalid bytes into U+FFFD, which no name or address legitimately contains), and
// control characters, which have no place in a one-line field.
func checkText(fields map[string]string) error {
	for name, v := range fields {
		var msg i18n.Text
		switch {
		case strings.IndexByte(v, 0) >= 0:
			msg = msgNUL
		case !utf8.ValidString(v) || strings.ContainsRune(v, utf8.RuneError):
			msg = msgNotUTF8
		case strings.IndexFunc(v, unicode.IsControl) >= 0:
			msg = i18n.T("no puede contener caracteres de control", "must not contain control characters")
		default:
			continue
		}
		return invalid(name, i18n.F("%s %s", "%s %s", name, msg), nil)
	}
	return nil
}

// backendExample is the shape of a backend_url, for the hint of a refusal.
const backendExample = "http://10.10.10.105:8069"

// checkBackend judges a backend_url with the code the agent runs on the rule it ends up in
// (ingress.CheckManagedService): the refusal's detail is the sentence the agent would NACK with.
// A URL the agent would take is still refused when it points at the tunnel host's metadata
// services (backendPolicy).
func (s *Server) checkBackend(raw string) error {
	err := ingress.CheckManagedService(raw)
	if err == nil {
		if msg := (backendPolicy{allowed: s.cfg.AllowedBackendNets}).check(raw); !msg.IsZero() {
			p := problem(http.StatusUnprocessableEntity, "backend_not_allowed", msg)
			p.Errors = []*huma.ErrorDetail{{Location: "body.backend_url", Value: raw, Message: msg.EN}}
			p.fieldTexts = map[int]i18n.Text{0: msg}
			return p
		}
		return checkText(map[string]string{"backend_url": raw})
	}
	msg := err.Error()
	var re *ingress.RuleError
	if errors.As(err, &re) {
		msg = re.Msg
	}
	// The agent's own sentence, quoted: what it would refuse the rule with.
	p := problem(http.StatusUnprocessableEntity, "invalid_backend_url", i18n.Same(msg))
	hint := i18n.F("backend_url es adonde el túnel envía el tráfico: solo scheme://host[:port], p. ej. %s",
		"backend_url is where the tunnel sends traffic: scheme://host[:port] only, e.g. %s", backendExample)
	p.Errors = []*huma.ErrorDetail{{Location: "body.backend_url", Value: raw, Message: hint.EN}}
	p.fieldTexts = map[int]i18n.Text{0: hint}
	return p
}
