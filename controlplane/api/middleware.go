package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// requestInfo is what the outermost handler learns about a request before routing.
type requestInfo struct {
	id       string     // X-Request-Id: ours, or a trusted proxy's
	client   netip.Addr // the client's address (behind trusted proxies: from X-Forwarded-For); may be invalid
	limitKey string     // the bad-token limiter's key for client
	// https: the request reached us over TLS, directly or (per a trusted proxy's
	// X-Forwarded-Proto) through the proxy; session cookies are then Secure.
	https bool
}

type requestInfoKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// ParseNets parses --trusted-proxy and --allow-backend-net values: CIDRs, or single addresses (/32, /128).
func ParseNets(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		v = strings.TrimSpace(v)
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an address", v)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address a request comes from. The direct peer, unless it is a trusted proxy:
// then X-Forwarded-For is read from the right (each proxy appends the address it received the
// request from), skipping trusted proxies, and the first address that is not one is the client.
// Everything left of it was written by the client and is ignored. An entry that is not an address
// stops the walk at the last trusted hop, so a proxy that writes "unknown" groups those clients
// under its own address instead of trusting anything.
func (s *Server) clientAddr(r *http.Request) (client netip.Addr, peerTrusted bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	client = ap.Addr().Unmap()
	if !s.trusted(client) {
		return client, false
	}
	var hops []string
	for _, line := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(line, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := forwardedAddr(strings.TrimSpace(hops[i]))
		if !ok {
			return client, true
		}
		client = a
		if !s.trusted(a) {
			return client, true
		}
	}
	return client, true
}

// forwardedAddr parses one X-Forwarded-For entry: an address, or an address with a port.
func forwardedAddr(v string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(v); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// saneRequestID accepts a trusted proxy's request id: 1–128 characters a log line can hold as is.
func saneRequestID(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for _, c := range []byte(v) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.:", c) >= 0) {
			return false
		}
	}
	return true
}

// serve is the outermost handler: request id, client address, security headers on every
// response, and a panic becomes a logged 500 instead of a dropped connection.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	client, peerTrusted := s.clientAddr(r)
	info := &requestInfo{client: client}
	if client.IsValid() {
		info.limitKey = authlimit.KeyAddr(client)
	} else {
		info.limitKey = authlimit.Key(r.RemoteAddr)
	}
	info.https = r.TLS != nil || peerTrusted && r.Header.Get("X-Forwarded-Proto") == "https"
	if id := r.Header.Get("X-Request-Id"); peerTrusted && saneRequestID(id) {
		info.id = id
	} else {
		info.id = rand.Text()
	}
	h := w.Header()
	h.Set("X-Request-Id", info.id)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// Every human sentence of the answer is in one language: the one Accept-Language asks for
	// among those we speak, Spanish by default (docs/I18N.md).
	lang := i18n.Negotiate(r.Header.Get("Accept-Language"))
	if strings.HasPrefix(r.URL.Path, "/api/") {
		// Every API answer is per-principal, and several carry secrets (new API and agent tokens,
		// verification and claim tokens): no cache may keep any of them.
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Language", string(lang))
		h.Add("Vary", "Accept-Language")
	}
	ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
	r = r.WithContext(i18n.WithLang(ctx, lang))
	tw := &trackingWriter{ResponseWriter: w}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		s.cfg.Logger.ErrorContext(r.Context(), "request panicked", "request_id", info.id, "method", r.Method,
			"path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if !tw.wrote {
			writeProblem(tw, internalProblem(http.StatusInternalServerError, info.id).in(lang))
		}
	}()
	s.mux.ServeHTTP(tw, r)
}

// trackingWriter remembers whether the response was started.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) { t.wrote = true; t.ResponseWriter.WriteHeader(code) }
func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
func (t *trackingWriter) Flush() {
	t.wrote = true
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// checkInput refuses, with 422, text PostgreSQL cannot store or that is not text: a NUL byte or
// invalid UTF-8 in the path (every path value), in a query parameter (name or value), or in any
// string of a JSON body (raw bytes, or \u0000 and lone surrogates, which the JSON decoder would
// turn into NUL and U+FFFD). It runs after authentication, before any handler.
func (s *Server) checkInput(ctx huma.Context, next func(huma.Context)) {
	r, _ := humago.Unwrap(ctx)
	if r == nil {
		next(ctx)
		return
	}
	refuse := func(where string, msg i18n.Text) {
		// The field's message is the same sentence; localize writes it in the request's language.
		_ = huma.WriteErr(s.api, ctx, http.StatusUnprocessableEntity, msg.EN, localizedError{msg},
			&huma.ErrorDetail{Location: where, Message: msg.EN})
	}
	if msg := badText(r.URL.Path); !msg.IsZero() {
		refuse("path", i18n.F("la ruta %s", "the path %s", msg))
		return
	}
	for name, values := range r.URL.Query() {
		if msg := badText(name); !msg.IsZero() {
			refuse("query", i18n.F("un nombre de parámetro %s", "a query parameter name %s", msg))
			return
		}
		for _, v := range values {
			if msg := badText(v); !msg.IsZero() {
				refuse("query."+name, i18n.F("el parámetro %s %s", "query parameter %s %s", name, msg))
				return
			}
		}
	}
	if r.Body != nil && r.Body != http.NoBody && strings.Contains(strings.ToLower(r.Header.Get("Content-Type")), "json") {
		buf, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		// The handler reads the body again: what was read, then whatever is left (a body over the
		// limit is huma's to refuse with 413, a read error its to report).
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		if err == nil && len(buf) <= maxBodyBytes {
			if msg := badJSONText(buf); !msg.IsZero() {
				where := badJSONField(buf)
				refuse(where, i18n.F("%s %s", "%s %s", strings.TrimPrefix(where, "body."), msg))
				return
			}
		}
	}
	next(ctx)
}

var (
	msgNUL     = i18n.T("no puede contener bytes NUL", "must not contain NUL bytes")
	msgNotUTF8 = i18n.T("no es UTF-8 válido", "is not valid UTF-8")
)

func badText(v string) i18n.Text {
	switch {
	case strings.IndexByte(v, 0) >= 0:
		return msgNUL
	case !utf8.ValidString(v):
		return msgNotUTF8
	}
	return i18n.Text{}
}

// badJSONText finds text in a JSON document that is not storable text: invalid UTF-8 bytes, or
// escapes of NUL or of a lone UTF-16 surrogate. Syntax errors are left to the decoder.
func badJSONText(b []byte) i18n.Text {
	if !utf8.Valid(b) {
		return msgNotUTF8
	}
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString && i+1 < len(b):
			if b[i+1] != 'u' {
				i++ // \" \\ \n …: skip the escaped character
				continue
			}
			r, ok := hex4(b, i+2)
			if !ok {
				return i18n.Text{} // a syntax error: the decoder reports it
			}
			switch {
			case r == 0:
				return i18n.T(`no puede contener caracteres NUL (\u0000)`, `must not contain NUL characters (\u0000)`)
			case 0xDC00 <= r && r <= 0xDFFF:
				return msgSurrogate
			case 0xD800 <= r && r <= 0xDBFF:
				lo, ok := rune(0), i+11 < len(b) && b[i+6] == '\\' && b[i+7] == 'u'
				if ok {
					lo, ok = hex4(b, i+8)
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return msgSurrogate
				}
				i += 6
			}
			i += 5
		}
	}
	return i18n.Text{}
}

var msgSurrogate = i18n.T("contiene un escape UTF-16 suplente aislado (no es texto válido)", "contains a lone UTF-16 surrogate escape (not valid text)")

// badJSONField names the first string of a JSON document (in key order) that holds NUL or U+FFFD,
// which is what badJSONText's findings decode to, as huma names fields: body.a.b[2].c. It returns
// "body" when it finds none (or the document does not parse).
func badJSONField(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return "body"
	}
	bad := func(s string) bool { return strings.ContainsRune(s, 0) || strings.ContainsRune(s, utf8.RuneError) }
	var walk func(v any, path string) (string, bool)
	walk = func(v any, path string) (string, bool) {
		switch v := v.(type) {
		case string:
			return path, bad(v)
		case []any:
			for i, e := range v {
				if p, ok := walk(e, fmt.Sprintf("%s[%d]", path, i)); ok {
					return p, true
				}
			}
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if bad(k) {
					return path, true
				}
				if p, ok := walk(v[k], path+"."+k); ok {
					return p, true
				}
			}
		}
		return "", false
	}
	if p, ok := walk(v, "body"); ok {
		return p
	}
	return "body"
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
