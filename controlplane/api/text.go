// Human sentences on the wire. The rules (domains, store, dnsverify, shared/hostname) decide their
// sentences in both languages (internal/i18n.Text); the API writes each in the request's language,
// chosen from Accept-Language by serve (docs/I18N.md). Machine fields (code, reason, state, name,
// status) are never translated.

package api

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/danielgtaylor/huma/v2/validation"

	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Step is one condition of activation, with a sentence saying what it waits for.
type Step struct {
	Name   string `json:"name" doc:"dns, ownership, cloudflare, custom_hostname or tunnel_ingress"`
	Status string `json:"status" enum:"done,pending,failed,skipped"`
	Detail string `json:"detail" doc:"What the step waits for, in the request's language"`
}

// Instruction is a DNS record the customer must create (verification_instructions in docs/API.md).
type Instruction struct {
	Type     string `json:"type"`
	Record   string `json:"record"`
	Value    string `json:"value"`
	Note     string `json:"note"`
	Required bool   `json:"required"`
}

// Claim tells a customer how to take over a hostname another customer registered but never proved.
type Claim struct {
	Type   string `json:"type"`
	Record string `json:"record"`
	Value  string `json:"value"`
	Note   string `json:"note"`
}

func stepsJSON(ctx context.Context, steps []domains.Step) []Step {
	l := i18n.From(ctx)
	out := make([]Step, 0, len(steps))
	for _, s := range steps {
		out = append(out, Step{Name: s.Name, Status: s.Status, Detail: s.Detail.In(l)})
	}
	return out
}

func instructionsJSON(ctx context.Context, in []domains.Instruction) []Instruction {
	l := i18n.From(ctx)
	out := make([]Instruction, 0, len(in))
	for _, i := range in {
		out = append(out, Instruction{Type: i.Type, Record: i.Record, Value: i.Value, Note: i.Note.In(l), Required: i.Required})
	}
	return out
}

func claimJSON(ctx context.Context, c domains.Claim) Claim {
	return Claim{Type: c.Type, Record: c.Record, Value: c.Value, Note: c.Note.In(i18n.From(ctx))}
}

// humaSentence gives huma's own English messages (validation, body limits) a Spanish twin; a
// message it does not know stays as it is in both.
func humaSentence(msg string) i18n.Text {
	if msg == "" {
		return i18n.Text{}
	}
	if t, ok := humaExact[msg]; ok {
		return t
	}
	for _, tpl := range humaTemplates {
		if m := tpl.re.FindStringSubmatch(msg); m != nil {
			args := make([]any, len(m)-1)
			for i, a := range m[1:] {
				args[i] = a
			}
			return i18n.T(fmt.Sprintf(tpl.es, args...), msg)
		}
	}
	return i18n.Same(msg)
}

var humaExact = map[string]i18n.Text{
	"validation failed":                                                    i18n.T("la solicitud no es válida", "validation failed"),
	"request body is required":                                             i18n.T("falta el cuerpo de la solicitud", "request body is required"),
	"unexpected property":                                                  i18n.T("propiedad inesperada", "unexpected property"),
	validation.MsgExpectedBoolean:                                          i18n.T("se esperaba un booleano", validation.MsgExpectedBoolean),
	validation.MsgExpectedNumber:                                           i18n.T("se esperaba un número", validation.MsgExpectedNumber),
	validation.MsgExpectedInteger:                                          i18n.T("se esperaba un entero", validation.MsgExpectedInteger),
	validation.MsgExpectedString:                                           i18n.T("se esperaba un texto", validation.MsgExpectedString),
	validation.MsgExpectedArray:                                            i18n.T("se esperaba una lista", validation.MsgExpectedArray),
	validation.MsgExpectedObject:                                           i18n.T("se esperaba un objeto", validation.MsgExpectedObject),
	validation.MsgExpectedRFC3339DateTime:                                  i18n.T("se esperaba una fecha y hora RFC 3339", validation.MsgExpectedRFC3339DateTime),
	validation.MsgExpectedArrayItemsUnique:                                 i18n.T("los elementos de la lista deben ser distintos", validation.MsgExpectedArrayItemsUnique),
	validation.MsgExpectedMatchAtLeastOneSchema:                            i18n.T("el valor no tiene ninguna de las formas permitidas", validation.MsgExpectedMatchAtLeastOneSchema),
	validation.MsgExpectedMatchExactlyOneSchema:                            i18n.T("el valor no tiene exactamente una de las formas permitidas", validation.MsgExpectedMatchExactlyOneSchema),
	"too many requests with invalid tokens from this address; retry later": msgTooManyBadTokens,
}

type humaTemplate struct {
	re *regexp.Regexp
	es string // Spanish format with one %s per placeholder of the English one
}

// humaTemplates are huma's validation messages with placeholders; the English message is matched
// and its values put into the Spanish one.
var humaTemplates = func() []humaTemplate {
	pairs := [][2]string{
		{validation.MsgExpectedMinimumNumber, "se esperaba un número >= %s"},
		{validation.MsgExpectedExclusiveMinimumNumber, "se esperaba un número > %s"},
		{validation.MsgExpectedMaximumNumber, "se esperaba un número <= %s"},
		{validation.MsgExpectedExclusiveMaximumNumber, "se esperaba un número < %s"},
		{validation.MsgExpectedNumberBeMultipleOf, "se esperaba un múltiplo de %s"},
		{validation.MsgExpectedMinLength, "se esperaba una longitud >= %s"},
		{validation.MsgExpectedMaxLength, "se esperaba una longitud <= %s"},
		{validation.MsgExpectedMinItems, "se esperaban al menos %s elementos"},
		{validation.MsgExpectedMaxItems, "se esperaban como máximo %s elementos"},
		{validation.MsgExpectedOneOf, "se esperaba uno de \"%s\""},
		{validation.MsgExpectedRequiredProperty, "falta la propiedad obligatoria %s"},
		{validation.MsgExpectedMatchPattern, "el texto no sigue el patrón %s"},
		{validation.MsgExpectedBePattern, "se esperaba %s"},
		{validation.MsgExpectedDuration, "se esperaba una duración: %s"},
		{validation.MsgExpectedRFC5322Email, "se esperaba una dirección de correo: %s"},
		{validation.MsgExpectedRFC3986URI, "se esperaba una URI: %s"},
		{"unexpected property %s", "propiedad inesperada %s"},
		{"cannot parse %s", "no se puede interpretar %s"},
	}
	verb := regexp.MustCompile(`%[vdsq]`)
	out := make([]humaTemplate, 0, len(pairs))
	for _, p := range pairs {
		parts := verb.Split(p[0], -1)
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		out = append(out, humaTemplate{re: regexp.MustCompile("^" + strings.Join(parts, "(.*)") + "$"), es: p[1]})
	}
	return out
}()

// Sentences of the API's own.
var (
	msgTooManyBadTokens = i18n.T("demasiadas solicitudes con tokens no válidos desde esta dirección; vuelva a intentarlo más tarde",
		"too many requests with invalid tokens from this address; retry later")
	msgNoToken      = i18n.T("falta el token (cabecera Authorization: Bearer) o la sesión", "missing bearer token")
	msgBadToken     = i18n.T("token no válido o revocado", "invalid or revoked token")
	msgAuthDown     = i18n.T("el servicio de autenticación no está disponible", "authentication backend unavailable")
	msgAdminOnly    = i18n.T("esta operación necesita un token de administrador", "this operation needs an admin token")
	msgNotFound     = i18n.T("no encontrado", "not found")
	msgDomainAbsent = i18n.T("dominio no encontrado", "domain not found")
)
