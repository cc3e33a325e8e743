package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Problem is an RFC 9457 problem+json body with a stable machine `code` the frontend can switch on.
type Problem struct {
	Type   string              `json:"type,omitempty"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Code   string              `json:"code" doc:"Stable machine-readable error code"`
	Detail string              `json:"detail,omitempty"`
	Errors []*huma.ErrorDetail `json:"errors,omitempty"`
	// Suggestion is present when the input can be fixed by typing exactly this instead (a pasted
	// URL's hostname): a form offers it one click away.
	Suggestion string `json:"suggestion,omitempty"`
	// Claim is present on domain_taken when the hostname can be claimed with a TXT record.
	Claim *Claim `json:"claim,omitempty"`
	// Steps is present on not_ready: what activation still waits for.
	Steps []Step `json:"steps,omitempty"`
	// RequestID is present on every 5xx: the X-Request-Id under which the error was logged.
	RequestID string `json:"request_id,omitempty"`

	headers http.Header // sent with the problem (Retry-After)
	cause   error       // what went wrong inside; logged, never sent
	// text is Detail in every language; the response gets the request's (localize).
	text i18n.Text
	// fieldTexts are the messages of Errors[i] in every language, where we wrote them.
	fieldTexts map[int]i18n.Text
}

// GetHeaders implements huma.HeadersError.
func (p *Problem) GetHeaders() http.Header { return p.headers }

func (p *Problem) Error() string {
	if !p.text.IsZero() {
		return p.text.EN
	}
	return p.Detail
}

// GetStatus implements huma.StatusError.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType implements huma.ContentTypeFilter: errors are application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" || ct == "" {
		return "application/problem+json"
	}
	return ct
}

// codeForStatus names the errors huma produces itself (validation, body limits, media types).
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusUnprocessableEntity:
		return "validation_failed"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable:
		return "unavailable"
	default:
		if status >= 500 {
			return "internal_error"
		}
		return "error"
	}
}

var installErrorModel sync.Once

// useProblemErrors makes every error huma writes (including its own validation errors) a Problem.
// huma exposes this hook only as a package variable; it is set once and is the same for every
// server in the process, so it holds no per-server state.
func useProblemErrors() {
	installErrorModel.Do(func() {
		huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
			p := &Problem{Status: status, Title: http.StatusText(status), Code: codeForStatus(status), Detail: msg, text: humaSentence(msg)}
			// A sentence of ours travels as a localizedError among errs (writeErr).
			var kept []error
			for _, e := range errs {
				var le localizedError
				if errors.As(e, &le) {
					p.text = le.text
					continue
				}
				kept = append(kept, e)
			}
			errs = kept
			if status >= 500 {
				// Raw errors (SQL, network) are logged with the request id by hideInternal, not sent.
				p.cause = errors.Join(errs...)
				return p
			}
			for _, e := range errs {
				if e == nil {
					continue
				}
				var ed huma.ErrorDetailer
				if errors.As(e, &ed) {
					p.Errors = append(p.Errors, shortDetail(ed.ErrorDetail()))
				} else {
					p.Errors = append(p.Errors, &huma.ErrorDetail{Message: e.Error()})
				}
			}
			if status == http.StatusRequestEntityTooLarge {
				p.text = i18n.T("el cuerpo de la solicitud supera 1 MiB", "request body is larger than 1 MiB")
				p.Detail = p.text.EN
			}
			return p
		}
	})
}

// maxEchoedValue bounds a value a validation error repeats back.
const maxEchoedValue = 200

// shortDetail keeps a validation error from echoing the request back: huma puts the whole body
// into the value of a body that does not parse; that, and values that are not short scalars, are
// dropped (the location and message say what is wrong).
func shortDetail(d *huma.ErrorDetail) *huma.ErrorDetail {
	if d == nil {
		return d
	}
	out := *d
	switch v := d.Value.(type) {
	case nil, bool, float64, float32, int, int32, int64, uint, uint32, uint64, json.Number:
	case string:
		if d.Location == "body" || len(v) > maxEchoedValue {
			out.Value = nil
		}
	default:
		out.Value = nil
	}
	return &out
}

// internalProblem is what a client sees of an error inside the control plane.
func internalProblem(status int, requestID string) *Problem {
	p := problem(status, codeForStatus(status), i18n.F(
		"error interno; quedó registrado con el id de solicitud %[1]s (cítelo al informar del problema)",
		"internal error; it was logged with request id %[1]s (quote it when you report the problem)", requestID))
	p.RequestID = requestID
	return p
}

// hideInternal is a huma transformer: every 5xx problem is logged with the request id and sent
// with it; one made from a raw error (a failed query, say) is sent as internalProblem only.
func (s *Server) hideInternal(ctx huma.Context, _ string, v any) (any, error) {
	p, ok := v.(*Problem)
	if !ok || p.Status < 500 {
		return v, nil
	}
	info := requestInfoFrom(ctx.Context())
	op := ""
	if o := ctx.Operation(); o != nil {
		op = o.OperationID
	}
	attrs := []any{"request_id", info.id, "operation", op, "status", p.Status, "code", p.Code}
	if p.cause != nil {
		attrs = append(attrs, "err", p.cause.Error())
	} else {
		attrs = append(attrs, "detail", p.Error())
	}
	s.cfg.Logger.ErrorContext(ctx.Context(), "request failed", attrs...)
	if p.cause != nil {
		return internalProblem(p.Status, info.id), nil
	}
	out := *p
	out.RequestID = info.id
	return &out, nil
}

// problem is an error answer with a stable code and a sentence in both languages; the response
// carries the request's (localize).
func problem(status int, code string, detail i18n.Text) *Problem {
	return &Problem{Status: status, Title: http.StatusText(status), Code: code, Detail: detail.EN, text: detail}
}

// localize is a huma transformer (after hideInternal): a problem's detail and the messages of its
// errors in the request's language, so one response never mixes languages.
func (s *Server) localize(ctx huma.Context, _ string, v any) (any, error) {
	p, ok := v.(*Problem)
	if !ok {
		return v, nil
	}
	return p.in(i18n.From(ctx.Context())), nil
}

// in returns a copy of p whose human fields are in l.
func (p *Problem) in(l i18n.Lang) *Problem {
	out := *p
	if !p.text.IsZero() {
		out.Detail = p.text.In(l)
	}
	if len(p.Errors) > 0 {
		out.Errors = make([]*huma.ErrorDetail, len(p.Errors))
		for i, e := range p.Errors {
			d := *e
			if t, ok := p.fieldTexts[i]; ok {
				d.Message = t.In(l)
			} else {
				d.Message = humaSentence(e.Message).In(l)
			}
			out.Errors[i] = &d
		}
	}
	return &out
}

// localizedError carries a sentence of ours through huma.WriteErr, which takes a string.
type localizedError struct{ text i18n.Text }

func (e localizedError) Error() string { return e.text.EN }

// writeErr writes a problem from a middleware (where no handler returns it), in both languages.
func (s *Server) writeErr(ctx huma.Context, status int, msg i18n.Text, errs ...error) {
	_ = huma.WriteErr(s.api, ctx, status, msg.EN, append([]error{localizedError{msg}}, errs...)...)
}

// fromDomainError maps the domain rules' errors to HTTP; anything else is a 500 whose detail does
// not leak internals.
func fromDomainError(ctx context.Context, err error) error {
	var de *domains.Error
	if errors.As(err, &de) {
		status := http.StatusInternalServerError
		switch de.Kind {
		case domains.Invalid:
			status = http.StatusUnprocessableEntity
		case domains.Conflict:
			status = http.StatusConflict
		case domains.NotFound:
			status = http.StatusNotFound
		}
		p := problem(status, de.Code, de.Message)
		p.Suggestion = de.Suggestion
		if de.Claim != nil {
			c := claimJSON(ctx, *de.Claim)
			p.Claim = &c
		}
		return p
	}
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return err
}
