// Web UI sign-in: an API token (or a one-time sign-in code) is exchanged once for a session, and
// from then on the browser holds only the session cookie (docs/SECURITY.md, "The web UI"):
//
//   - the cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends
//     it), Secure when the request came over TLS (directly, or through a trusted proxy saying so),
//     and carries a random secret whose SHA-256 alone is stored (ui_sessions);
//   - the session expires server-side (idle and absolute limits), ends at logout (DELETE
//     /api/session) and with the token it was opened with (revoked or deleted);
//   - a state-changing request authenticated by the cookie must carry X-CSRF-Token, a value
//     derived from the session secret that only a page of ours can read (GET /api/session), and
//     must not come from another site (Sec-Fetch-Site); Bearer requests, which a browser never
//     sends by itself, need neither;
//   - a sign-in code is single use and short-lived (`make run` prints one in a link; the code sits
//     in the URL fragment, which browsers send to no server and put in no Referer).

package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
	"github.com/jeturing/sajet-domains/internal/secret"
)

// SessionCookie is the name of the web UI's session cookie.
const SessionCookie = "sajet_session"

// CSRFHeader carries the session's CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

const (
	sessionPrefix = "sjs_" // session secrets
	codePrefix    = "sjc_" // sign-in codes
)

// Default session limits: a session ends after 2 hours unused, and after 12 hours in any case.
const (
	DefaultSessionIdle     = 2 * time.Hour
	DefaultSessionAbsolute = 12 * time.Hour
)

// SigninCodeTTL is how long a sign-in code can be used.
const SigninCodeTTL = 15 * time.Minute

// sessionTouchInterval paces the writes that slide a session's expiry.
const sessionTouchInterval = time.Minute

// recentSessionTTL is how long a confirmed session is trusted without a lookup when its address is
// blocked by the bad-token limiter (see sessions.authenticate).
const recentSessionTTL = 10 * time.Second

// NewSigninCode creates a single-use sign-in code for token tokenID, valid for SigninCodeTTL.
func NewSigninCode(ctx context.Context, st *store.Store, tokenID int64) (string, error) {
	code, hash := secret.Token(codePrefix)
	if err := st.CreateSigninCode(ctx, hash, tokenID, SigninCodeTTL); err != nil {
		return "", err
	}
	return code, nil
}

// csrfToken derives the CSRF token of a session from its secret: the server needs to store
// nothing more, and a page can only learn it from GET /api/session, which another site's page
// cannot read.
func csrfToken(sessionSecret string) string {
	sum := sha256.Sum256([]byte("sajet-csrf\x00" + sessionSecret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// session is what a request authenticated by cookie carries besides its Principal.
type session struct {
	id     int64
	secret string
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// sessions authenticates session cookies.
type sessions struct {
	store  *store.Store
	limits store.SessionLimits

	mu     sync.Mutex
	recent map[[32]byte]recentSession
}

type recentSession struct {
	p         Principal
	id        int64
	confirmed time.Time
}

var (
	errNoSession  = errors.New("session expired or ended")
	errBadSession = errors.New("malformed session cookie")
)

// authenticate returns the principal of a session secret from the client whose limiter key is
// addr. A session is looked up on every request (so logout and revocation end it at once on every
// replica), except from an address the bad-token limiter blocks: there only a session confirmed
// in the last recentSessionTTL is accepted, and an unknown one is refused without a lookup, so a
// flood of made-up cookies costs the database nothing. An unknown session counts against addr.
func (s *Server) authenticateSession(ctx context.Context, secretValue, addr string) (Principal, *session, error) {
	ss := s.sessions
	if !secret.WellFormed(secretValue, sessionPrefix) {
		return Principal{}, nil, errBadSession
	}
	key := secret.Sum(secretValue)
	now := time.Now()
	if wait := s.auth.limiter.Blocked(addr, now); wait > 0 {
		ss.mu.Lock()
		r, ok := ss.recent[key]
		ss.mu.Unlock()
		if ok && now.Sub(r.confirmed) < recentSessionTTL {
			return r.p, &session{id: r.id, secret: secretValue}, nil
		}
		return Principal{}, nil, &rateLimited{wait: wait}
	}
	row, err := ss.store.LookupUISession(ctx, key[:])
	if errors.Is(err, store.ErrNotFound) {
		s.auth.limiter.Fail(addr, now)
		ss.forget(key)
		return Principal{}, nil, errNoSession
	}
	if err != nil {
		return Principal{}, nil, err
	}
	p := principalOf(row.TokenID, row.Role, row.CustomerID)
	ss.mu.Lock()
	if len(ss.recent) > 10000 {
		clear(ss.recent) // bounded; forgetting costs a lookup
	}
	ss.recent[key] = recentSession{p: p, id: row.ID, confirmed: now}
	ss.mu.Unlock()
	if now.Sub(row.LastSeenAt) > sessionTouchInterval {
		if err := ss.store.TouchUISession(ctx, row.ID, ss.limits); err != nil {
			s.cfg.Logger.WarnContext(ctx, "slide ui session expiry", "session_id", row.ID, "err", err)
		}
	}
	return p, &session{id: row.ID, secret: secretValue}, nil
}

func (ss *sessions) forget(key [32]byte) {
	ss.mu.Lock()
	delete(ss.recent, key)
	ss.mu.Unlock()
}

// safeMethod reports whether a request with this method changes nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// crossSite reports whether the browser says the request comes from another site's page.
func crossSite(ctx huma.Context) bool {
	switch ctx.Header("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return false
	}
	return true
}

// checkCSRF refuses a state-changing request authenticated by a session cookie unless it carries
// the session's CSRF token and does not come from another site.
func checkCSRF(ctx huma.Context, sess *session) bool {
	if safeMethod(ctx.Method()) {
		return true
	}
	if crossSite(ctx) {
		return false
	}
	got := ctx.Header(CSRFHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(sess.secret))) == 1
}

var (
	msgNoSession   = i18n.T("la sesión terminó o caducó: inicie sesión de nuevo", "the session ended or expired: sign in again")
	msgCSRF        = i18n.T("solicitud rechazada: falta el token CSRF de la sesión o viene de otro sitio", "request refused: the session's CSRF token is missing or it comes from another site")
	msgBadSignin   = i18n.T("el enlace de acceso caducó o ya se usó: pida uno nuevo", "the sign-in link expired or was already used: ask for a new one")
	msgSigninInput = i18n.T("indique un token o un código de acceso", "give a token or a sign-in code")
)

// SessionInfo describes who the caller is; csrf_token is present when the caller is a session.
type SessionInfo struct {
	SignedIn   bool       `json:"signed_in" doc:"false: no valid token or session came with the request (GET /api/session only)"`
	Role       string     `json:"role,omitempty" enum:"admin,customer"`
	CustomerID *int64     `json:"customer_id,omitempty"`
	Via        string     `json:"via,omitempty" enum:"session,token" doc:"How this request was authenticated"`
	CSRFToken  string     `json:"csrf_token,omitempty" doc:"Send as X-CSRF-Token on every state-changing request made with the session cookie"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

type createSessionInput struct {
	SecFetchSite string `header:"Sec-Fetch-Site" doc:"Set by browsers; a request from another site is refused"`
	Body         struct {
		Token string `json:"token,omitempty" maxLength:"100" doc:"An API token (sjt_…); it is not kept by the browser"`
		Code  string `json:"code,omitempty" maxLength:"100" doc:"A one-time sign-in code (sjc_…)"`
	}
}

type sessionOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie"`
	Body      SessionInfo
}

func infoOf(p Principal, via string) SessionInfo {
	info := SessionInfo{SignedIn: true, Role: p.Role, Via: via}
	if p.Role == RoleCustomer {
		id := p.CustomerID
		info.CustomerID = &id
	}
	return info
}

func (s *Server) registerSessions() {
	huma.Register(s.api, huma.Operation{
		OperationID: "create-session", Method: http.MethodPost, Path: "/api/session",
		Summary: "Sign in: exchange an API token or a one-time sign-in code for a session cookie", Tags: []string{"session"},
		Description: "For the web UI. The answer sets an HttpOnly, SameSite=Strict cookie; its csrf_token must accompany every " +
			"state-changing request made with it (X-CSRF-Token). Scripts keep using Authorization: Bearer.",
		DefaultStatus: http.StatusCreated, MaxBodyBytes: 4096, Security: []map[string][]string{},
		Metadata: map[string]any{"public": true},
		Errors:   []int{401, 403, 415, 422, 429},
	}, s.createSession)

	huma.Register(s.api, huma.Operation{
		OperationID: "get-session", Method: http.MethodGet, Path: "/api/session",
		Summary: "Who am I: the caller's role, customer and (for a session) CSRF token", Tags: []string{"session"},
		Description: "Answers 200 with signed_in false, not 401, when no valid token or session came with the request.",
		Metadata:    map[string]any{"authOptional": true}, Errors: []int{429},
	}, func(ctx context.Context, _ *struct{}) (*itemOutput[SessionInfo], error) {
		p := principalFrom(ctx)
		if p.Role == "" {
			return &itemOutput[SessionInfo]{Body: SessionInfo{}}, nil
		}
		if sess := sessionFrom(ctx); sess != nil {
			info := infoOf(p, "session")
			info.CSRFToken = csrfToken(sess.secret)
			return &itemOutput[SessionInfo]{Body: info}, nil
		}
		return &itemOutput[SessionInfo]{Body: infoOf(p, "token")}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-session", Method: http.MethodDelete, Path: "/api/session",
		Summary: "Sign out: end the session and clear its cookie", Tags: []string{"session"},
		DefaultStatus: http.StatusNoContent, Errors: []int{401, 403},
	}, func(ctx context.Context, _ *struct{}) (*struct {
		SetCookie http.Cookie `header:"Set-Cookie"`
	}, error) {
		if sess := sessionFrom(ctx); sess != nil {
			key := secret.Sum(sess.secret)
			if err := s.sessions.store.DeleteUISession(ctx, key[:]); err != nil {
				return nil, err
			}
			s.sessions.forget(key)
		}
		out := &struct {
			SetCookie http.Cookie `header:"Set-Cookie"`
		}{}
		out.SetCookie = http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode}
		return out, nil
	})
}

// createSession is POST /api/session. It runs without authentication (its body is the
// credential): a token goes through the same checks and bad-token limiter as a Bearer header, and
// a failed sign-in code counts against the address too.
func (s *Server) createSession(ctx context.Context, in *createSessionInput) (*sessionOutput, error) {
	switch in.SecFetchSite {
	case "", "same-origin", "none":
	default:
		return nil, problem(http.StatusForbidden, "csrf_failed", msgCSRF)
	}
	info := requestInfoFrom(ctx)
	addr := info.limitKey
	var tokenID int64
	var p Principal
	switch {
	case in.Body.Token != "" && in.Body.Code == "":
		var err error
		p, err = s.auth.authenticate(ctx, "Bearer "+in.Body.Token, addr)
		var limited *rateLimited
		switch {
		case errors.As(err, &limited):
			pr := problem(http.StatusTooManyRequests, "rate_limited", msgTooManyBadTokens)
			pr.headers = http.Header{"Retry-After": {retryAfterSeconds(limited.wait)}}
			return nil, pr
		case errors.Is(err, errNoToken), errors.Is(err, errBadToken):
			return nil, problem(http.StatusUnauthorized, "unauthorized", msgBadToken)
		case err != nil:
			return nil, problem(http.StatusServiceUnavailable, "unavailable", msgAuthDown)
		}
		tokenID = p.TokenID
	case in.Body.Code != "" && in.Body.Token == "":
		now := time.Now()
		if wait := s.auth.limiter.Blocked(addr, now); wait > 0 {
			pr := problem(http.StatusTooManyRequests, "rate_limited", msgTooManyBadTokens)
			pr.headers = http.Header{"Retry-After": {retryAfterSeconds(wait)}}
			return nil, pr
		}
		if !secret.WellFormed(in.Body.Code, codePrefix) {
			return nil, problem(http.StatusUnauthorized, "signin_code_invalid", msgBadSignin)
		}
		id, err := s.sessions.store.ConsumeSigninCode(ctx, secret.Hash(in.Body.Code))
		if errors.Is(err, store.ErrNotFound) {
			s.auth.limiter.Fail(addr, now)
			return nil, problem(http.StatusUnauthorized, "signin_code_invalid", msgBadSignin)
		}
		if err != nil {
			return nil, err
		}
		tokenID = id
	default:
		return nil, invalid("token", msgSigninInput, nil)
	}
	value, hash := secret.Token(sessionPrefix)
	row, err := s.sessions.store.CreateUISession(ctx, hash, tokenID, s.sessions.limits)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem(http.StatusUnauthorized, "unauthorized", msgBadToken)
	}
	if err != nil {
		return nil, err
	}
	p = principalOf(row.TokenID, row.Role, row.CustomerID)
	out := &sessionOutput{}
	out.Body = infoOf(p, "session")
	out.Body.CSRFToken = csrfToken(value)
	exp := row.ExpiresAt
	out.Body.ExpiresAt = &exp
	out.SetCookie = http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: info.https, MaxAge: int(s.sessions.limits.Absolute.Seconds())}
	s.cfg.Logger.InfoContext(ctx, "ui session opened", "session_id", row.ID, "token_id", row.TokenID, "role", row.Role)
	return out, nil
}

func sessionKeyOf(sess *session) [32]byte { return secret.Sum(sess.secret) }
