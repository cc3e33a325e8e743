package i18n

import (
	"context"
	"encoding/json"
	"testing"
)

func TestNegotiate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header string
		want   Lang
	}{
		{"", ES},
		{"en", EN},
		{"en-US,en;q=0.9", EN},
		{"es-MX", ES},
		{"fr-FR, en;q=0.5", EN},
		{"fr, de", ES},
		{"es;q=0.4, en;q=0.8", EN},
		{"en;q=0, es", ES},
		{"en;q=abc", ES},
		{"EN", EN},
		{"es, en", ES},
	}
	for _, tc := range tests {
		if got := Negotiate(tc.header); got != tc.want {
			t.Errorf("Negotiate(%q) = %s, want %s", tc.header, got, tc.want)
		}
	}
}

func TestFPutsTextArgumentsInTheSameLanguage(t *testing.T) {
	t.Parallel()
	inner := T("el túnel", "the tunnel")
	got := F("%s falló (%d)", "%s failed (%d)", inner, 3)
	if got.ES != "el túnel falló (3)" || got.EN != "the tunnel failed (3)" {
		t.Errorf("F = %+v", got)
	}
	if j := Join("; ", T("a", "b"), Text{}, T("c", "d")); j.ES != "a; c" || j.EN != "b; d" {
		t.Errorf("Join = %+v", j)
	}
}

func TestTextJSONAcceptsOldPlainStrings(t *testing.T) {
	t.Parallel()
	var got []Text
	if err := json.Unmarshal([]byte(`["vieja", {"es":"hola","en":"hello"}]`), &got); err != nil {
		t.Fatal(err)
	}
	if got[0] != Same("vieja") || got[1] != T("hola", "hello") {
		t.Errorf("decoded %+v", got)
	}
	if err := json.Unmarshal([]byte(`42`), &got[0]); err == nil {
		t.Error("a number decoded as a text")
	}
}

func TestLangTravelsInTheContext(t *testing.T) {
	t.Parallel()
	if From(context.Background()) != ES {
		t.Error("a context without a language is not the default")
	}
	if From(WithLang(context.Background(), EN)) != EN {
		t.Error("the language was lost")
	}
}
