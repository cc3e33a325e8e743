package mailer_test

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/mailer"
	"github.com/jeturing/sajet-domains/controlplane/mailer/mailtest"
)

// data has every field any template uses, so missing keys fail Render.
func data() map[string]any {
	return map[string]any{"Hostname": "www.impulse-max.com", "PlatformHostname": "impulse-max.sajet.us",
		"Next": "", "Problem": "resolves to 192.0.2.1", "Fix": "CNAME www.impulse-max.com → impulse-max.sajet.us",
		"GraceUntil": "6 de diciembre de 2026", "Since": "29 de noviembre de 2026", "Days": 7, "ExpiresAt": "",
		"URL": "https://hooks.example.com/sajet", "EndpointID": 3}
}

// Every kind renders in every language, with a one-line subject, a text part and an HTML part.
func TestEveryKindRendersInEveryLanguage(t *testing.T) {
	t.Parallel()
	for _, kind := range mailer.Kinds {
		for _, lang := range mailer.Languages {
			r, err := mailer.Render(kind, lang, data())
			if err != nil {
				t.Fatalf("%s/%s: %v", lang, kind, err)
			}
			if r.Subject == "" || strings.Contains(r.Subject, "\n") || r.Text == "" || !strings.Contains(r.HTML, "<p>") {
				t.Errorf("%s/%s: %+v", lang, kind, r)
			}
		}
	}
	es, _ := mailer.Render(mailer.DomainMisconfigured, "fr", data())
	if es.Lang != "es" || !strings.HasPrefix(es.Subject, "Atención") {
		t.Errorf("an unknown language did not fall back to Spanish: %+v", es)
	}
	h, _ := mailer.Render(mailer.DomainVerified, "en", map[string]any{"Hostname": "<script>x</script>", "PlatformHostname": "p", "Next": ""})
	if strings.Contains(h.HTML, "<script>") {
		t.Error("the HTML part does not escape data")
	}
	if _, err := mailer.Render(mailer.DomainVerified, "es", map[string]any{}); err == nil {
		t.Error("a template with missing data rendered")
	}
}

// Through a real SMTP server: text and HTML alternatives, an encoded Spanish subject, the
// language, the Message-ID we chose.
func TestSendThroughARealSMTPServer(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	m := mailer.New(mailer.Config{Host: srv.Host, Port: srv.Port, TLS: "none", From: "Sajet Domains <dominios@sajet.us>",
		MessageIDDomain: "sajet.us", Timeout: 10 * time.Second})
	r, err := mailer.Render(mailer.DomainMisconfigured, "es", data())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), "ops@impulse-max.com", r, "notification-42"); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Wait(t, 1, 10*time.Second)
	pm, err := msgs[0].Parsed()
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
	if subject != r.Subject || pm.Header.Get("Content-Language") != "es" || pm.Header.Get("Message-Id") != "<notification-42@sajet.us>" {
		t.Errorf("headers: subject %q lang %q id %q", subject, pm.Header.Get("Content-Language"), pm.Header.Get("Message-Id"))
	}
	mt, params, _ := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if mt != "multipart/alternative" {
		t.Fatalf("content type %s", mt)
	}
	parts := multipart.NewReader(pm.Body, params["boundary"])
	var types []string
	for {
		p, err := parts.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts %v", types)
	}
	if len(msgs[0].To) != 1 || msgs[0].To[0] != "ops@impulse-max.com" {
		t.Errorf("recipients %v", msgs[0].To)
	}

	srv.SetRefuse(true)
	if err := m.Send(context.Background(), "ops@impulse-max.com", r, "notification-43"); err == nil {
		t.Error("a refused message reported success")
	}
	if err := mailer.New(mailer.Config{}).Send(context.Background(), "x@y.z", r, "n"); err != mailer.ErrNotConfigured {
		t.Errorf("unconfigured: %v", err)
	}
}

func TestDatesAreWrittenInTheReadersLanguage(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 14, 5, 0, 0, time.FixedZone("x", -3*3600))
	if got, want := mailer.FormatDate(at, "es"), "6 de diciembre de 2026, 17:05 UTC"; got != want {
		t.Errorf("es: %q, want %q", got, want)
	}
	if got, want := mailer.FormatDate(at, "en"), "December 6, 2026, 17:05 UTC"; got != want {
		t.Errorf("en: %q, want %q", got, want)
	}
}
