package dnsverify

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reasons reported in Result.Reason and ResolverResult.Reason: stable codes for programs (API
// problem codes, metrics), while Message says the same to humans.
const (
	ReasonVerified          = "verified"
	ReasonNoCNAME           = "no_cname"           // nothing at the hostname (NXDOMAIN or no data)
	ReasonAddressesInstead  = "addresses_instead"  // A/AAAA at the hostname instead of a CNAME
	ReasonWrongTarget       = "wrong_target"       // the CNAME chain ends elsewhere
	ReasonChainLoop         = "chain_loop"         // the CNAME chain repeats a name
	ReasonChainTooLong      = "chain_too_long"     // more than MaxHops CNAMEs
	ReasonFlattenedMismatch = "flattened_mismatch" // apex addresses differ from Expected's
	ReasonTXTMissing        = "txt_missing"        // the verification TXT record is absent
	ReasonTXTMismatch       = "txt_mismatch"       // a TXT record exists with another value
	ReasonServFail          = "servfail"           // the resolver answered SERVFAIL
	ReasonRcode             = "rcode"              // another failing rcode (REFUSED, NOTIMP…)
	ReasonTimeout           = "timeout"            // no resolver answered in time
	ReasonResolverError     = "resolver_error"     // no resolver could be queried
	ReasonDisagree          = "resolvers_disagree" // resolvers that answered see different things
	ReasonInvalidRequest    = "invalid_request"    // Hostname or Expected missing
)

// Messages are short and Spanish, like the frontend contract's; the first two are its own strings (docs/API.md).
const (
	msgVerified          = "Dominio verificado correctamente"
	msgNoCNAME           = "CNAME no detectado"
	msgWrongTarget       = "CNAME apunta a otro destino"
	msgChainLoop         = "La cadena CNAME forma un bucle"
	msgChainTooLong      = "La cadena CNAME es demasiado larga"
	msgFlattenedMismatch = "Las direcciones del dominio raíz no coinciden con las del destino"
	msgTXTMissing        = "Registro TXT de verificación no encontrado"
	msgTXTMismatch       = "Registro TXT de verificación con valor incorrecto"
	msgServFail          = "El DNS del dominio responde con error (SERVFAIL)"
	msgRcode             = "El DNS del dominio rechaza la consulta"
	msgTimeout           = "Ningún resolver DNS respondió a tiempo"
	msgResolverError     = "No se pudo consultar ningún resolver DNS"
	msgDisagree          = "Los resolvers no coinciden"
	msgInvalidRequest    = "Solicitud de verificación incompleta: faltan el dominio o el destino"
)

func message(reason string) string {
	switch reason {
	case ReasonVerified:
		return msgVerified
	case ReasonNoCNAME, ReasonAddressesInstead:
		return msgNoCNAME
	case ReasonWrongTarget:
		return msgWrongTarget
	case ReasonChainLoop:
		return msgChainLoop
	case ReasonChainTooLong:
		return msgChainTooLong
	case ReasonFlattenedMismatch:
		return msgFlattenedMismatch
	case ReasonTXTMissing:
		return msgTXTMissing
	case ReasonTXTMismatch:
		return msgTXTMismatch
	case ReasonServFail:
		return msgServFail
	case ReasonRcode:
		return msgRcode
	case ReasonTimeout:
		return msgTimeout
	case ReasonResolverError:
		return msgResolverError
	case ReasonDisagree:
		return msgDisagree
	}
	return msgInvalidRequest
}

// instructions says which record to create or change for a failure, with the names and values
// spelled out so they can be pasted into a DNS panel.
func instructions(req Request, o outcome, maxHops int) string {
	cname := fmt.Sprintf("Configure el CNAME %s → %s", req.Hostname, req.Expected)
	txt := fmt.Sprintf("Agregue el registro TXT %s con el valor %s", req.TXTName, req.TXTToken)
	apex := fmt.Sprintf("%s es el dominio raíz, donde no se permite un CNAME: cree un registro ALIAS/ANAME "+
		"o un CNAME con aplanamiento (CNAME flattening) %s → %s en su proveedor DNS", req.Hostname, req.Hostname, req.Expected)
	// The TXT proof is needed on top of the CNAME when the plan requires it, and always for an
	// apex, where flattening hides the CNAME and the addresses alone prove nothing.
	withTXT := func(s string) string {
		if (req.RequireTXT || req.Apex) && !o.txtFound && req.TXTName != "" {
			return s + ". " + txt
		}
		return s
	}
	route := cname
	if req.Apex {
		route = apex
	}
	found := o.rr.Found

	switch o.rr.Reason {
	case ReasonNoCNAME:
		return withTXT(route)
	case ReasonAddressesInstead:
		return withTXT(fmt.Sprintf("Elimine los registros A/AAAA de %s (%s) y configure el CNAME %s → %s",
			req.Hostname, found, req.Hostname, req.Expected))
	case ReasonWrongTarget:
		return withTXT(fmt.Sprintf("%s (hoy apunta a %s)", route, found))
	case ReasonChainLoop:
		return withTXT(fmt.Sprintf("%s: la cadena actual (%s) forma un bucle", route,
			strings.Join(append([]string{req.Hostname}, o.rr.Chain...), " → ")))
	case ReasonChainTooLong:
		return withTXT(fmt.Sprintf("%s directamente: la cadena actual, que empieza en %s, tiene más de %d saltos", route, found, maxHops))
	case ReasonFlattenedMismatch:
		return withTXT(fmt.Sprintf("%s y elimine los registros A/AAAA fijos del dominio raíz (hoy: %s)", apex, found))
	case ReasonTXTMissing:
		return txt
	case ReasonTXTMismatch:
		return fmt.Sprintf("%s (hoy contiene %s)", txt, found)
	case ReasonServFail:
		return fmt.Sprintf("Los servidores DNS de %s fallan (SERVFAIL): revise en su registrador que los servidores de nombres (NS) "+
			"sean los correctos y que DNSSEC (registro DS) no esté roto; después, %s", req.Hostname, lowerFirst(withTXT(route)))
	case ReasonRcode:
		return fmt.Sprintf("Los servidores DNS de %s rechazan la consulta (%s): revise los servidores de nombres (NS) del dominio; después, %s",
			req.Hostname, found, lowerFirst(withTXT(route)))
	}
	return withTXT(route)
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

// explain combines the resolvers' outcomes into one Result (see Verify for the rule).
func explain(req Request, outs []outcome, maxHops int, checkedAt time.Time) Result {
	res := Result{Expected: req.Expected, CheckedAt: checkedAt}
	var answered, verified, failed []outcome
	txtSeen := 0
	txtAll := true
	for _, o := range outs {
		res.Resolvers = append(res.Resolvers, o.rr)
		for _, c := range o.conflicts {
			if !slices.Contains(res.Conflicts, c) {
				res.Conflicts = append(res.Conflicts, c)
			}
		}
		if !o.answered {
			continue
		}
		answered = append(answered, o)
		if o.rr.Verified {
			verified = append(verified, o)
		} else {
			failed = append(failed, o)
		}
		if o.txtAsked {
			txtSeen++
			txtAll = txtAll && o.txtFound
		}
		if res.CNAMEDetected == "" && o.target != "" {
			res.CNAMEDetected = o.target
		}
	}
	res.TXTFound = txtSeen > 0 && txtAll

	switch {
	case len(answered) == 0:
		res.Reason = ReasonTimeout
		found := "timeout"
		for _, o := range outs {
			if !o.timeout {
				res.Reason, found = ReasonResolverError, o.errText
				break
			}
		}
		res.Found = &found
		res.Message = message(res.Reason)
		res.Instructions = "Vuelva a verificar en unos minutos; si persiste, revise los resolvers DNS configurados en la plataforma"
		if res.Reason == ReasonTimeout {
			res.Instructions = "Ningún resolver respondió a tiempo; vuelva a verificar en unos minutos"
		}
		return res

	case len(failed) == 0:
		first := verified[0]
		res.Verified = true
		res.Reason = ReasonVerified
		res.Method = first.rr.Method
		res.Message = msgVerified
		return res
	}

	// Not verified: explain with the first resolver (in configured order) that failed, so the
	// answer is deterministic, and say so when the answering resolvers do not all see the same.
	first := failed[0]
	res.Reason = first.rr.Reason
	res.Found = first.found
	res.Message = message(first.rr.Reason)
	res.Instructions = instructions(req, first, maxHops)
	agree := len(verified) == 0
	for _, o := range failed[1:] {
		if o.rr.Reason != first.rr.Reason || o.rr.Found != first.rr.Found {
			agree = false
		}
	}
	if !agree {
		res.Reason = ReasonDisagree
		res.Message = msgDisagree
		res.Instructions += ". Si ya hizo el cambio, espere a que venza el TTL de los registros anteriores " +
			"(los resolvers guardan la respuesta vieja hasta entonces) y vuelva a verificar"
	}
	return res
}

func invalidRequest(req Request, checkedAt time.Time) Result {
	return Result{
		Reason:    ReasonInvalidRequest,
		Message:   msgInvalidRequest,
		Expected:  req.Expected,
		CheckedAt: checkedAt,
	}
}
