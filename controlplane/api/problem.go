package api

import (
	"errors"
	"net/http"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"github.com/jeturing/sajet-domains/controlplane/domains"
)

// Problem is an RFC 9457 problem+json body with a stable machine `code` the frontend can switch on.
type Problem struct {
	Type   string              `json:"type,omitempty"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Code   string              `json:"code" doc:"Stable machine-readable error code"`
	Detail string              `json:"detail,omitempty"`
	Errors []*huma.ErrorDetail `json:"errors,omitempty"`
	// Claim is present on domain_taken when the hostname can be claimed with a TXT record.
	Claim *domains.Claim `json:"claim,omitempty"`
	// Steps is present on not_ready: what activation still waits for.
	Steps []domains.Step `json:"steps,omitempty"`
}

func (p *Problem) Error() string { return p.Detail }

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
			p := &Problem{Status: status, Title: http.StatusText(status), Code: codeForStatus(status), Detail: msg}
			for _, e := range errs {
				if e == nil {
					continue
				}
				var ed huma.ErrorDetailer
				if errors.As(e, &ed) {
					p.Errors = append(p.Errors, ed.ErrorDetail())
				} else {
					p.Errors = append(p.Errors, &huma.ErrorDetail{Message: e.Error()})
				}
			}
			if status == http.StatusRequestEntityTooLarge {
				p.Detail = "request body is larger than 1 MiB"
			}
			return p
		}
	})
}

func problem(status int, code, detail string) *Problem {
	return &Problem{Status: status, Title: http.StatusText(status), Code: code, Detail: detail}
}

// fromDomainError maps the domain rules' errors to HTTP; anything else is a 500 whose detail does
// not leak internals.
func fromDomainError(err error) error {
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
		p.Claim = de.Claim
		return p
	}
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return err
}
