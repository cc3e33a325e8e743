package dnsverify

import (
	"slices"
	"strings"
	"time"

	"github.com/jeturing/sajet-domains/internal/i18n"
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

// Messages are short; the Spanish of the first two are the frontend contract's own strings
// (docs/API.md).
var (
	msgVerified          = i18n.T("Dominio verificado correctamente", "Domain verified")
	msgNoCNAME           = i18n.T("CNAME no detectado", "CNAME not found")
	msgWrongTarget       = i18n.T("CNAME apunta a otro destino", "The CNAME points elsewhere")
	msgChainLoop         = i18n.T("La cadena CNAME forma un bucle", "The CNAME chain loops")
	msgChainTooLong      = i18n.T("La cadena CNAME es demasiado larga", "The CNAME chain is too long")
	msgFlattenedMismatch = i18n.T("Las direcciones del dominio raíz no coinciden con las del destino", "The root domain's addresses are not the target's")
	msgTXTMissing        = i18n.T("Registro TXT de verificación no encontrado", "Verification TXT record not found")
	msgTXTMismatch       = i18n.T("Registro TXT de verificación con valor incorrecto", "The verification TXT record holds another value")
	msgServFail          = i18n.T("El DNS del dominio responde con error (SERVFAIL)", "The domain's DNS answers with an error (SERVFAIL)")
	msgRcode             = i18n.T("El DNS del dominio rechaza la consulta", "The domain's DNS refuses the query")
	msgTimeout           = i18n.T("Ningún resolver DNS respondió a tiempo", "No DNS resolver answered in time")
	msgResolverError     = i18n.T("No se pudo consultar ningún resolver DNS", "No DNS resolver could be queried")
	msgDisagree          = i18n.T("Los resolvers no coinciden", "The resolvers disagree")
	msgInvalidRequest    = i18n.T("Solicitud de verificación incompleta: faltan el dominio o el destino", "Incomplete verification request: the domain or the target is missing")
)

func message(reason string) i18n.Text {
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
func instructions(req Request, o outcome, maxHops int) i18n.Text {
	cname := i18n.F("Configure el CNAME %s → %s", "Create the CNAME %s → %s", req.Hostname, req.Expected)
	txt := i18n.F("Agregue el registro TXT %s con el valor %s", "Add the TXT record %s with the value %s", req.TXTName, req.TXTToken)
	apex := i18n.F("%[1]s es el dominio raíz, donde no se permite un CNAME: cree un registro ALIAS/ANAME "+
		"o un CNAME con aplanamiento (CNAME flattening) %[1]s → %[2]s en su proveedor DNS",
		"%[1]s is the root domain, where a CNAME is not allowed: create an ALIAS/ANAME record "+
			"or a flattened CNAME (CNAME flattening) %[1]s → %[2]s at your DNS provider", req.Hostname, req.Expected)
	// The TXT proof is needed on top of the CNAME when the plan requires it, and always for an
	// apex, where flattening hides the CNAME and the addresses alone prove nothing.
	withTXT := func(s i18n.Text) i18n.Text {
		if (req.RequireTXT || req.Apex) && !o.txtFound && req.TXTName != "" {
			return i18n.Join(". ", s, txt)
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
		return withTXT(i18n.F("Elimine los registros A/AAAA de %[1]s (%[2]s) y configure el CNAME %[1]s → %[3]s",
			"Remove the A/AAAA records of %[1]s (%[2]s) and create the CNAME %[1]s → %[3]s",
			req.Hostname, found, req.Expected))
	case ReasonWrongTarget:
		return withTXT(i18n.F("%s (hoy apunta a %s)", "%s (it points to %s today)", route, found))
	case ReasonChainLoop:
		chain := strings.Join(append([]string{req.Hostname}, o.rr.Chain...), " → ")
		return withTXT(i18n.F("%s: la cadena actual (%s) forma un bucle", "%s: the current chain (%s) loops", route, chain))
	case ReasonChainTooLong:
		return withTXT(i18n.F("%s directamente: la cadena actual, que empieza en %s, tiene más de %d saltos",
			"%s directly: the current chain, starting at %s, has more than %d hops", route, found, maxHops))
	case ReasonFlattenedMismatch:
		return withTXT(i18n.F("%s y elimine los registros A/AAAA fijos del dominio raíz (hoy: %s)",
			"%s and remove the fixed A/AAAA records of the root domain (today: %s)", apex, found))
	case ReasonTXTMissing:
		return txt
	case ReasonTXTMismatch:
		return i18n.F("%s (hoy contiene %s)", "%s (it holds %s today)", txt, found)
	case ReasonServFail:
		return i18n.F("Los servidores DNS de %s fallan (SERVFAIL): revise en su registrador que los servidores de nombres (NS) "+
			"sean los correctos y que DNSSEC (registro DS) no esté roto; después, %s",
			"The DNS servers of %s fail (SERVFAIL): check at your registrar that the name servers (NS) "+
				"are the right ones and that DNSSEC (the DS record) is not broken; then, %s", req.Hostname, withTXT(route).Map(lowerFirst))
	case ReasonRcode:
		return i18n.F("Los servidores DNS de %s rechazan la consulta (%s): revise los servidores de nombres (NS) del dominio; después, %s",
			"The DNS servers of %s refuse the query (%s): check the domain's name servers (NS); then, %s",
			req.Hostname, found, withTXT(route).Map(lowerFirst))
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
		res.NegativeTTL = max(res.NegativeTTL, o.rr.NegativeTTL)
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
		res.Instructions = i18n.T("Vuelva a verificar en unos minutos; si persiste, revise los resolvers DNS configurados en la plataforma",
			"Verify again in a few minutes; if it persists, check the DNS resolvers the platform is configured with")
		if res.Reason == ReasonTimeout {
			res.Instructions = i18n.T("Ningún resolver respondió a tiempo; vuelva a verificar en unos minutos",
				"No resolver answered in time; verify again in a few minutes")
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
	if res.NegativeTTL > 0 {
		res.Instructions = i18n.Join(". ", res.Instructions, negativeCacheNote(time.Duration(res.NegativeTTL)*time.Second))
	}
	if !agree {
		res.Reason = ReasonDisagree
		res.Message = msgDisagree
		res.Instructions = i18n.Join(". ", res.Instructions, i18n.T("Si ya hizo el cambio, espere a que venza el TTL de los registros anteriores "+
			"(los resolvers guardan la respuesta vieja hasta entonces) y vuelva a verificar",
			"If you already made the change, wait for the previous records' TTL to expire "+
				"(resolvers keep the old answer until then) and verify again"))
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
