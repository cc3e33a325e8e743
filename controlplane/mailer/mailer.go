// Package mailer writes and sends the emails customers get about their domains: one template per
// kind and language (templates/<lang>/<kind>.tmpl, each defining "subject", "text" and "html"),
// sent as multipart/alternative over SMTP with go-mail. Spanish is the default language.
package mailer

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/wneessen/go-mail"
)

//go:embed templates
var templates embed.FS

// Kinds of email.
const (
	DomainVerified          = "domain_verified"
	DomainMisconfigured     = "domain_misconfigured"
	DomainRecovered         = "domain_recovered"
	DomainDeactivated       = "domain_deactivated"
	DomainUnverified        = "domain_unverified"
	CertificateTrouble      = "certificate_trouble"
	WebhookEndpointDisabled = "webhook_endpoint_disabled"
)

// Kinds lists every kind, for tests and docs.
var Kinds = []string{DomainVerified, DomainMisconfigured, DomainRecovered, DomainDeactivated, DomainUnverified,
	CertificateTrouble, WebhookEndpointDisabled}

// Languages are the languages every kind is written in; the first is the default.
var Languages = []string{"es", "en"}

// Rendered is an email ready to send.
type Rendered struct {
	Lang, Subject, Text, HTML string
}

// Render writes kind in lang (Spanish when lang is not one of Languages) with data.
func Render(kind, lang string, data any) (Rendered, error) {
	if !contains(Languages, lang) {
		lang = Languages[0]
	}
	if !contains(Kinds, kind) {
		return Rendered{}, fmt.Errorf("unknown email kind %q", kind)
	}
	path := "templates/" + lang + "/" + kind + ".tmpl"
	tt, err := texttemplate.New(kind).Option("missingkey=error").ParseFS(templates, path)
	if err != nil {
		return Rendered{}, err
	}
	ht, err := htmltemplate.New(kind).Option("missingkey=error").ParseFS(templates, path)
	if err != nil {
		return Rendered{}, err
	}
	r := Rendered{Lang: lang}
	var b bytes.Buffer
	for _, part := range []struct {
		name string
		dst  *string
		exec func(*bytes.Buffer) error
	}{
		{"subject", &r.Subject, func(b *bytes.Buffer) error { return tt.ExecuteTemplate(b, "subject", data) }},
		{"text", &r.Text, func(b *bytes.Buffer) error { return tt.ExecuteTemplate(b, "text", data) }},
		{"html", &r.HTML, func(b *bytes.Buffer) error { return ht.ExecuteTemplate(b, "html", data) }},
	} {
		b.Reset()
		if err := part.exec(&b); err != nil {
			return Rendered{}, fmt.Errorf("render %s/%s %s: %w", lang, kind, part.name, err)
		}
		*part.dst = strings.TrimSpace(b.String())
	}
	// A subject is one line whatever the data holds.
	r.Subject = strings.Join(strings.Fields(r.Subject), " ")
	return r, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Config is the SMTP server mail goes through.
type Config struct {
	Host     string // empty: mail is not sent (notifications are recorded and shown only)
	Port     int    // 587 by default
	Username string
	Password string
	From     string // e.g. "Sajet Domains <dominios@sajet.us>"
	// TLS: "mandatory" (default: STARTTLS or fail), "opportunistic", "none" (tests, a local relay).
	TLS string
	// MessageIDDomain is the right-hand side of Message-IDs (go-mail would use the host name).
	MessageIDDomain string
	Timeout         time.Duration
}

// Mailer sends rendered emails.
type Mailer struct {
	cfg Config
}

// ErrNotConfigured is returned by Send when no SMTP server is configured.
var ErrNotConfigured = errors.New("no SMTP server configured")

// New returns a Mailer; with cfg.Host empty, Send returns ErrNotConfigured.
func New(cfg Config) *Mailer {
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.MessageIDDomain == "" {
		cfg.MessageIDDomain = "sajet.invalid"
	}
	return &Mailer{cfg: cfg}
}

// Configured reports whether Send can send.
func (m *Mailer) Configured() bool { return m.cfg.Host != "" }

// Send delivers r to the address to. id names the message (the notification's id) so a retry
// after a crash sends the same Message-ID.
func (m *Mailer) Send(ctx context.Context, to string, r Rendered, id string) error {
	if !m.Configured() {
		return ErrNotConfigured
	}
	msg := mail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return fmt.Errorf("from %q: %w", m.cfg.From, err)
	}
	if err := msg.To(to); err != nil {
		return fmt.Errorf("to %q: %w", to, err)
	}
	msg.Subject(r.Subject)
	msg.SetMessageIDWithValue(id + "@" + m.cfg.MessageIDDomain)
	msg.SetGenHeader(mail.HeaderContentLang, r.Lang)
	msg.SetBodyString(mail.TypeTextPlain, r.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, r.HTML)
	opts := []mail.Option{mail.WithPort(m.cfg.Port), mail.WithTimeout(m.cfg.Timeout)}
	switch m.cfg.TLS {
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case "opportunistic":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if m.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(m.cfg.Username), mail.WithPassword(m.cfg.Password))
	}
	c, err := mail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("send to %s through %s: %w", to, m.cfg.Host, err)
	}
	return nil
}
