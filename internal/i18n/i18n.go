// Package i18n is how the control plane says things to people in two languages: Spanish (the
// default, the ERP's language) and English. A sentence is a Text holding both, built where the
// sentence is decided (shared/hostname, dnsverify, domains, store, api) and turned into one
// language only when a response is written, from the request's Accept-Language. So one response
// never mixes languages, and a sentence stored in the database (a domain's last error, why an
// agent refused its rule) is stored as a Text and comes out in the language of whoever reads it.
//
// Adding a sentence: write i18n.T("…", "…") or i18n.F("… %s …", "… %s …", args…) where it is
// decided. Both languages are arguments, so a sentence without its translation does not compile;
// machine fields (codes, reasons, states) are never Texts. docs/I18N.md describes the mechanism.
package i18n

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Lang is a language the API speaks.
type Lang string

// The languages. ES is the default: the ERP and its customers speak Spanish.
const (
	ES Lang = "es"
	EN Lang = "en"
)

// Default is the language of a request that asks for none we speak.
const Default = ES

// Langs lists every language, default first.
var Langs = []Lang{ES, EN}

// Text is one sentence in every language. The zero Text is "nothing to say".
type Text struct {
	ES string `json:"es"`
	EN string `json:"en"`
}

// T is a sentence given in both languages.
func T(es, en string) Text { return Text{ES: es, EN: en} }

// Same is a text that reads the same in every language: a hostname, a code, a value quoted from
// elsewhere (a DNS answer, a cloudflared message).
func Same(s string) Text { return Text{ES: s, EN: s} }

// F formats a sentence in both languages. An argument that is itself a Text (or *Text) is put in
// in the same language as the format around it; every other argument is the same in both.
func F(es, en string, args ...any) Text {
	return Text{ES: fmt.Sprintf(es, in(args, ES)...), EN: fmt.Sprintf(en, in(args, EN)...)}
}

func in(args []any, l Lang) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case Text:
			out[i] = v.In(l)
		case *Text:
			out[i] = v.In(l)
		default:
			out[i] = a
		}
	}
	return out
}

// In returns the sentence in l (the default language for one we do not speak).
func (t Text) In(l Lang) string {
	if l == EN {
		return t.EN
	}
	return t.ES
}

// IsZero reports whether there is nothing to say.
func (t Text) IsZero() bool { return t.ES == "" && t.EN == "" }

// String is the English sentence: for logs and error strings, which operators read.
func (t Text) String() string { return t.EN }

// Join joins texts with sep in each language; zero texts are skipped.
func Join(sep string, ts ...Text) Text {
	var es, en []string
	for _, t := range ts {
		if t.IsZero() {
			continue
		}
		es, en = append(es, t.ES), append(en, t.EN)
	}
	return Text{ES: strings.Join(es, sep), EN: strings.Join(en, sep)}
}

// Map applies f to the sentence in each language (truncation, say).
func (t Text) Map(f func(string) string) Text { return Text{ES: f(t.ES), EN: f(t.EN)} }

// UnmarshalJSON reads {"es": …, "en": …}, and also a plain string (a sentence stored before
// sentences were stored in both languages), which then reads the same in both.
func (t *Text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = Same(s)
		return nil
	}
	type plain Text
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("i18n text: %w", err)
	}
	*t = Text(p)
	return nil
}

// Strings is In over a list.
func Strings(ts []Text, l Lang) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.In(l))
	}
	return out
}

type langKey struct{}

// WithLang returns ctx carrying the language of the request it belongs to.
func WithLang(ctx context.Context, l Lang) context.Context {
	return context.WithValue(ctx, langKey{}, l)
}

// From returns the language ctx carries, or Default.
func From(ctx context.Context) Lang {
	if l, ok := ctx.Value(langKey{}).(Lang); ok {
		return l
	}
	return Default
}
