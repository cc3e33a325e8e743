package diagnose

import (
	"fmt"
	"strings"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/issuers"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Every sentence of the report, in both languages, in one place: what each part found (msg…)
// and what to do about it (fix…). A sentence names the records, servers and values involved, so
// it can be acted on without reading the evidence.

var (
	titleRecursive     = i18n.T("DNS (resolvers)", "DNS (resolvers)")
	titleAuthoritative = i18n.T("DNS (servidores autoritativos)", "DNS (authoritative servers)")
	titleDNSSEC        = i18n.T("DNSSEC", "DNSSEC")
	titleCAA           = i18n.T("CAA (certificado)", "CAA (certificate)")
	titleConflicts     = i18n.T("Registros en conflicto", "Conflicting records")
	titleCloudflare    = i18n.T("Cloudflare", "Cloudflare")
	titleTunnel        = i18n.T("Túnel", "Tunnel")
	titleBackend       = i18n.T("Backend (desde cada host del túnel)", "Backend (from each tunnel host)")
)

func list(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ", ")
}

func summary(works bool, v Verdict, failing []string) i18n.Text {
	switch {
	case works && v == OK:
		return i18n.T("El dominio funciona: el DNS, Cloudflare, el túnel y el backend responden como deben.",
			"The domain works: DNS, Cloudflare, the tunnel and the backend all answer as they should.")
	case works:
		return i18n.T("El dominio funciona, con avisos: revise las partes marcadas.",
			"The domain works, with warnings: see the parts flagged.")
	case len(failing) > 0:
		return i18n.F("El dominio no funciona. Falla: %s.", "The domain does not work. Failing: %s.", list(failing))
	}
	return i18n.T("No se pudo comprobar que el dominio funcione: algunas partes no respondieron.",
		"Could not confirm that the domain works: some parts could not be checked.")
}

func msgCustomerBusy(n int) i18n.Text {
	return i18n.F("Ya hay %d diagnósticos de dominios de este cliente en curso; vuelva a intentarlo cuando terminen.",
		"%d reports of this customer's domains are already running; retry when they finish.", n)
}

func msgDomainTooOften(host string) i18n.Text {
	return i18n.F("%s se diagnosticó demasiadas veces seguidas; vuelva a intentarlo en unos segundos.",
		"%s was diagnosed too often; retry in a few seconds.", host)
}

// Resolvers.

func msgRecursiveOK(d domainFacts, method string) i18n.Text {
	switch method {
	case dnsverify.MethodFlattened:
		return i18n.F("Los resolvers ven %s con las direcciones de %s (CNAME aplanado) y el TXT de verificación.",
			"Resolvers see %s with the addresses of %s (flattened CNAME) and the verification TXT.", d.host, d.expected)
	case dnsverify.MethodCNAMETunnel:
		return i18n.F("Los resolvers ven %s apuntando al túnel %s.", "Resolvers see %s pointing at the tunnel %s.", d.host, d.tunnelTarget)
	}
	return i18n.F("Todos los resolvers ven %s → %s.", "Every resolver sees %s → %s.", d.host, d.expected)
}

var msgRecursiveNoAnswer = i18n.T("Ningún resolver DNS respondió a tiempo; no se pudo comprobar el registro.",
	"No DNS resolver answered in time; the record could not be checked.")

func msgRecursiveDisagree(d domainFacts, stale uint32) i18n.Text {
	return i18n.F("Los resolvers no coinciden: unos ven %s → %s y otros todavía la respuesta anterior, que pueden conservar hasta %s más.",
		"Resolvers disagree: some see %s → %s, others still the previous answer, which they may keep for up to %s more.",
		d.host, d.expected, seconds(stale))
}

var fixWaitTTL = i18n.T("Si ya hizo el cambio, no haga nada: los resolvers dejarán la respuesta vieja cuando venza su TTL.",
	"If you already made the change, do nothing: resolvers drop the old answer when its TTL runs out.")

func msgRecursiveWrong(d domainFacts, reason, found string) i18n.Text {
	switch reason {
	case dnsverify.ReasonNoCNAME:
		return i18n.F("Los resolvers no encuentran nada en %s: falta el CNAME.", "Resolvers find nothing at %s: the CNAME is missing.", d.host)
	case dnsverify.ReasonAddressesInstead:
		return i18n.F("%s tiene direcciones (%s) en lugar del CNAME a %s.", "%s has addresses (%s) instead of the CNAME to %s.", d.host, found, d.expected)
	case dnsverify.ReasonWrongTarget:
		return i18n.F("%s apunta a %s, no a %s.", "%s points at %s, not at %s.", d.host, found, d.expected)
	case dnsverify.ReasonChainLoop:
		return i18n.F("La cadena CNAME de %s forma un bucle.", "The CNAME chain of %s loops.", d.host)
	case dnsverify.ReasonChainTooLong:
		return i18n.F("La cadena CNAME de %s es demasiado larga.", "The CNAME chain of %s is too long.", d.host)
	case dnsverify.ReasonFlattenedMismatch:
		return i18n.F("Las direcciones de %s (%s) no son las de %s.", "The addresses of %s (%s) are not those of %s.", d.host, found, d.expected)
	case dnsverify.ReasonTXTMissing:
		return i18n.F("El CNAME es correcto, pero falta el registro TXT de verificación de %s.",
			"The CNAME is right, but the verification TXT record of %s is missing.", d.host)
	case dnsverify.ReasonTXTMismatch:
		return i18n.F("El registro TXT de verificación de %s tiene otro valor (%s).", "The verification TXT record of %s holds another value (%s).", d.host, found)
	case dnsverify.ReasonServFail:
		return i18n.F("Los resolvers responden SERVFAIL para %s: el DNS del dominio está roto (servidores o DNSSEC).",
			"Resolvers answer SERVFAIL for %s: the domain's DNS is broken (its servers or DNSSEC).", d.host)
	}
	return i18n.F("Los resolvers rechazan la consulta de %s (%s).", "Resolvers refuse the query for %s (%s).", d.host, found)
}

func fixRecord(d domainFacts, reason string) i18n.Text {
	cname := i18n.F("En su proveedor DNS, cree el CNAME %s → %s.", "At your DNS provider, create the CNAME %s → %s.", d.host, d.expected)
	if d.apex {
		cname = i18n.F("%s es el dominio raíz, donde no cabe un CNAME: cree un ALIAS/ANAME (o CNAME aplanado) %s → %s en su proveedor DNS.",
			"%s is the apex, where a CNAME cannot go: create an ALIAS/ANAME (or flattened CNAME) %s → %s at your DNS provider.", d.host, d.host, d.expected)
	}
	switch reason {
	case dnsverify.ReasonAddressesInstead:
		return i18n.Join(" ", i18n.F("Elimine los registros A/AAAA de %s.", "Delete the A/AAAA records of %s.", d.host), cname)
	case dnsverify.ReasonWrongTarget, dnsverify.ReasonChainLoop, dnsverify.ReasonChainTooLong:
		return i18n.F("Cambie el CNAME de %s para que apunte directamente a %s.", "Change the CNAME of %s to point straight at %s.", d.host, d.expected)
	case dnsverify.ReasonTXTMissing, dnsverify.ReasonTXTMismatch:
		return i18n.T("Publique el registro TXT de verificación que indica el dominio (dns_records) y verifique de nuevo.",
			"Publish the verification TXT record the domain lists (dns_records) and verify again.")
	case dnsverify.ReasonServFail, dnsverify.ReasonRcode:
		return i18n.T("Revise en su registrador los servidores de nombres (NS) y el registro DS; las partes «servidores autoritativos» y «DNSSEC» dicen cuál falla.",
			"Check the name servers (NS) and the DS record at your registrar; the «authoritative servers» and «DNSSEC» parts say which one fails.")
	}
	return cname
}

// Authoritative servers.

func msgAuthNoResolver(err string) i18n.Text {
	return i18n.F("No se pudo preguntar a los resolvers por la zona del dominio (%s).", "Could not ask the resolvers for the domain's zone (%s).", err)
}

func msgZoneMissing(zone string) i18n.Text {
	return i18n.F("El dominio %s no existe (NXDOMAIN): no está registrado o expiró.", "The domain %s does not exist (NXDOMAIN): it is not registered, or it expired.", zone)
}

func msgAuthNoParent(zone string) i18n.Text {
	return i18n.F("%s no tiene zona padre a la que preguntar.", "%s has no parent zone to ask.", zone)
}

func msgAuthParentUnreachable(parent string) i18n.Text {
	return i18n.F("No se pudo consultar a los servidores de la zona padre %s.", "Could not reach the servers of the parent zone %s.", parent)
}

func msgNotDelegated(zone, parent string) i18n.Text {
	return i18n.F("La zona padre %s no delega %s a ningún servidor: el dominio no está registrado, expiró o no tiene servidores de nombres.",
		"The parent zone %s delegates %s to no server: the domain is not registered, expired, or has no name servers.", parent, zone)
}

func fixRegister(zone string) i18n.Text {
	return i18n.F("Compruebe en su registrador que %s esté registrado, vigente y con sus servidores de nombres (NS).",
		"Check at your registrar that %s is registered, not expired, and has its name servers (NS).", zone)
}

func msgAuthNoneAnswer(zone string, servers []string) i18n.Text {
	return i18n.F("Ninguno de los servidores de %s (%s) responde por la zona.", "None of the servers of %s (%s) answers for the zone.", zone, list(servers))
}

func fixNameServers(zone string, servers []string) i18n.Text {
	return i18n.F("Revise que los servidores de nombres que su registrador publica para %s (%s) sean los de su proveedor DNS y que sirvan la zona.",
		"Check that the name servers your registrar publishes for %s (%s) are your DNS provider's and serve the zone.", zone, list(servers))
}

func msgAuthWrong(d domainFacts, a AuthAnswer, missing bool, servers []string) i18n.Text {
	switch {
	case missing:
		return i18n.F("Los servidores autoritativos (%s) dicen que %s no existe: el CNAME no está creado en la zona.",
			"The authoritative servers (%s) say %s does not exist: the CNAME is not in the zone.", list(servers), d.host)
	case len(a.Chain) > 0:
		return i18n.F("Los servidores autoritativos (%s) sirven %s → %s, no → %s.", "The authoritative servers (%s) serve %s → %s, not → %s.",
			list(servers), d.host, a.Chain[len(a.Chain)-1], d.expected)
	case len(a.A)+len(a.AAAA) > 0:
		return i18n.F("Los servidores autoritativos (%s) sirven direcciones para %s (%s), no el CNAME a %s.",
			"The authoritative servers (%s) serve addresses for %s (%s), not the CNAME to %s.",
			list(servers), d.host, list(append(prefixed("A ", a.A), prefixed("AAAA ", a.AAAA)...)), d.expected)
	}
	return i18n.F("Los servidores autoritativos (%s) no tienen ningún registro para %s.", "The authoritative servers (%s) hold no record for %s.", list(servers), d.host)
}

func fixAuthRecord(d domainFacts, servers []string, cache uint32) i18n.Text {
	where := i18n.F("En el proveedor DNS que sirve la zona (%s), cree el CNAME %s → %s.", "At the DNS provider serving the zone (%s), create the CNAME %s → %s.",
		list(servers), d.host, d.expected)
	if d.apex {
		where = i18n.F("En el proveedor DNS que sirve la zona (%s), cree un ALIAS/ANAME (CNAME aplanado) %s → %s.",
			"At the DNS provider serving the zone (%s), create an ALIAS/ANAME (flattened CNAME) %s → %s.", list(servers), d.host, d.expected)
	}
	if cache == 0 {
		return where
	}
	return i18n.F("%s Después del cambio, los resolvers pueden seguir dando la respuesta actual hasta %s (su TTL).",
		"%s After the change, resolvers may keep giving the current answer for up to %s (its TTL).", where, seconds(cache))
}

func serials(xs []uint32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return list(s)
}

func msgAuthDisagree(d domainFacts, stale []string, rightSerials, wrongSerials []uint32) i18n.Text {
	return i18n.F("Los servidores de la zona no coinciden: %s todavía sirve(n) otra respuesta para %s (serie %s; los demás, %s).",
		"The zone's servers disagree: %s still serve(s) another answer for %s (serial %s; the others, %s).",
		list(stale), d.host, serials(wrongSerials), serials(rightSerials))
}

func fixSecondaries(zone string) i18n.Text {
	return i18n.F("Espere a que los servidores secundarios de %s reciban la zona (transferencia); si no ocurre, revise la transferencia en su proveedor DNS.",
		"Wait for the secondary servers of %s to receive the zone (transfer); if they do not, check the transfer at your DNS provider.", zone)
}

func msgAuthSomeBroken(d domainFacts, servers []string) i18n.Text {
	return i18n.F("La respuesta para %s es correcta, pero %s no responde(n) por la zona: los resolvers que les pregunten fallarán o tardarán.",
		"The answer for %s is right, but %s do(es) not answer for the zone: resolvers asking them will fail or be slow.", d.host, list(servers))
}

func msgAuthAheadOfResolvers(d domainFacts, stale uint32) i18n.Text {
	return i18n.F("Los servidores autoritativos ya sirven %s → %s; algunos resolvers aún tienen la respuesta anterior en caché, hasta %s más.",
		"The authoritative servers already serve %s → %s; some resolvers still cache the previous answer, for up to %s more.",
		d.host, d.expected, seconds(stale))
}

func msgAuthOK(d domainFacts, servers []string, cache uint32) i18n.Text {
	return i18n.F("Los servidores autoritativos (%s) sirven %s → %s (TTL %s).", "The authoritative servers (%s) serve %s → %s (TTL %s).",
		list(servers), d.host, d.expected, seconds(cache))
}

// DNSSEC.

var msgDNSSECUnknown = i18n.T("No se pudo comprobar DNSSEC: no se llegó a los servidores de la zona.",
	"DNSSEC could not be checked: the zone's servers were not reached.")

func msgDNSSECOff(zone string, signed bool) i18n.Text {
	if signed {
		return i18n.F("%s está firmada pero su registrador no publica un DS: DNSSEC no se aplica, nada que pueda romperse.",
			"%s is signed but its registrar publishes no DS: DNSSEC does not apply, nothing to break.", zone)
	}
	return i18n.F("DNSSEC no está activado para %s (sin DS en el registrador).", "DNSSEC is not enabled for %s (no DS at the registrar).", zone)
}

func msgDNSSECRejectsAnyway(resolvers []string) i18n.Text {
	return i18n.F("%s responde(n) SERVFAIL aunque la zona no usa DNSSEC.", "%s answer(s) SERVFAIL although the zone does not use DNSSEC.", list(resolvers))
}

func msgDNSSECValid(zone string, validated []string) i18n.Text {
	if len(validated) > 0 {
		return i18n.F("La cadena DNSSEC de %s es válida (DS → DNSKEY → firma de la respuesta) y %s la valida(n).",
			"The DNSSEC chain of %s is valid (DS → DNSKEY → the answer's signature) and %s validate(s) it.", zone, list(validated))
	}
	return i18n.F("La cadena DNSSEC de %s es válida: DS → DNSKEY → firma de la respuesta.", "The DNSSEC chain of %s is valid: DS → DNSKEY → the answer's signature.", zone)
}

func msgDNSSECNoKeys(zone string) i18n.Text {
	return i18n.F("El registrador publica un DS para %s, pero la zona no sirve ninguna clave DNSKEY: los resolvers que validan (la mayoría) no pueden resolver el dominio.",
		"The registrar publishes a DS for %s, but the zone serves no DNSKEY: validating resolvers (most) cannot resolve the domain.", zone)
}

func fixDNSSECNoKeys(zone string) i18n.Text {
	return i18n.F("Active la firma DNSSEC de %s en su proveedor DNS con la clave que nombra el DS, o elimine el registro DS en su registrador.",
		"Turn on DNSSEC signing for %s at your DNS provider with the key the DS names, or remove the DS record at your registrar.", zone)
}

func msgDNSSECMismatch(zone string, ds, keys []string) i18n.Text {
	return i18n.F("El DS que publica el registrador para %s (clave %s) no corresponde a ninguna clave de la zona (%s): la cadena de confianza está rota.",
		"The DS the registrar publishes for %s (key %s) matches none of the zone's keys (%s): the chain of trust is broken.", zone, list(ds), list(keys))
}

func fixDNSSECMismatch(zone string, current []string) i18n.Text {
	if len(current) == 0 {
		return i18n.F("Elimine el registro DS de %s en su registrador, o publique el DS de la clave actual de la zona.",
			"Remove the DS record of %s at your registrar, or publish the DS of the zone's current key.", zone)
	}
	return i18n.F("En su registrador, reemplace el DS de %s por el de la clave actual (%s), o elimínelo.",
		"At your registrar, replace the DS of %s with the current key's (%s), or remove it.", zone, list(current))
}

func msgDNSSECKeysUnsigned(zone string, tag uint16) i18n.Text {
	return i18n.F("El conjunto DNSKEY de %s no está firmado por la clave %d que nombra el DS.", "The DNSKEY set of %s is not signed by key %d, which the DS names.", zone, tag)
}

func fixResign(zone string) i18n.Text {
	return i18n.F("Vuelva a firmar la zona %s en su proveedor DNS (o desactive DNSSEC eliminando primero el DS en su registrador).",
		"Re-sign the zone %s at your DNS provider (or turn DNSSEC off by first removing the DS at your registrar).", zone)
}

func msgDNSSECUnsigned(zone, what string) i18n.Text {
	return i18n.F("El registro %s de la zona firmada %s no tiene firma (RRSIG): los resolvers que validan lo rechazan.",
		"The record %s of the signed zone %s has no signature (RRSIG): validating resolvers reject it.", what, zone)
}

func msgDNSSECBadSig(zone, what string, tag uint16) i18n.Text {
	return i18n.F("La firma de %s (clave %d) no es válida: la zona %s se modificó sin volver a firmarla o con otra clave; los resolvers que validan rechazan el dominio.",
		"The signature over %s (key %d) does not verify: the zone %s was changed without re-signing or with another key; validating resolvers reject the domain.", what, tag, zone)
}

func msgDNSSECNoKeyForSig(zone, what string) i18n.Text {
	return i18n.F("La firma de %s la hizo una clave que %s no publica.", "The signature over %s was made by a key %s does not publish.", what, zone)
}

func msgDNSSECExpired(zone, what string, from, to time.Time) i18n.Text {
	return i18n.F("La firma de %s solo es válida de %s a %s: la zona %s ya no se vuelve a firmar; los resolvers que validan rechazan el dominio.",
		"The signature over %s is valid only from %s to %s: the zone %s is no longer being re-signed; validating resolvers reject the domain.",
		what, from.Format(time.RFC3339), to.Format(time.RFC3339), zone)
}

func msgDNSSECResolverRejects(host string, resolvers []string) i18n.Text {
	return i18n.F("%s rechaza(n) la respuesta de %s al validarla con DNSSEC (SERVFAIL, y responde(n) sin validar).",
		"%s reject(s) the answer for %s when validating it with DNSSEC (SERVFAIL, and answer(s) without validation).", list(resolvers), host)
}

// CAA.

func msgCAAUnknown(err string) i18n.Text {
	return i18n.F("No se pudieron leer los registros CAA (%s).", "The CAA records could not be read (%s).", err)
}

func msgCAANone(host string) i18n.Text {
	return i18n.F("Ningún registro CAA restringe quién emite el certificado de %s.", "No CAA record restricts who issues the certificate of %s.", host)
}

func msgCAAAllows(owner string, allowed []string) i18n.Text {
	return i18n.F("El CAA de %s permite a las autoridades de Cloudflare %s.", "The CAA of %s allows Cloudflare's authorities %s.", owner, list(allowed))
}

func msgCAABlocks(owner string, named []string) i18n.Text {
	return i18n.F("El CAA de %s solo autoriza a %s: Cloudflare no puede emitir ni renovar el certificado.",
		"The CAA of %s authorises only %s: Cloudflare cannot issue or renew the certificate.", owner, list(named))
}

func fixCAA(owner string) i18n.Text {
	var q []string
	for _, d := range issuers.CAADomains() {
		q = append(q, fmt.Sprintf("%q", d))
	}
	return i18n.F("Agregue en %s un registro CAA por cada autoridad de Cloudflare: %s CAA 0 issue %s.",
		"Add at %s one CAA record per Cloudflare authority: %s CAA 0 issue %s.", owner, owner, strings.Join(q, " / "))
}

func msgCAACritical(owner, tag string) i18n.Text {
	return i18n.F("El CAA de %s tiene la propiedad crítica desconocida %q, que prohíbe emitir cualquier certificado.",
		"The CAA of %s has the unknown critical property %q, which forbids issuing any certificate.", owner, tag)
}

func fixCAACritical(owner, tag string) i18n.Text {
	return i18n.F("Elimine la propiedad %q del CAA de %s (o quite su indicador crítico).", "Remove the property %q from the CAA of %s (or clear its critical flag).", tag, owner)
}

// Conflicts.

var (
	msgConflictsUnknown = i18n.T("No se pudo comprobar: ni los servidores ni los resolvers respondieron.", "Could not check: neither the servers nor the resolvers answered.")
	msgConflictsNone    = i18n.T("Ningún registro estorba.", "No record is in the way.")
)

func msgCNAMEWithData(host string, records []string) i18n.Text {
	return i18n.F("%s tiene a la vez un CNAME y %s: un CNAME no admite otros datos y los resolvers responden una cosa u otra.",
		"%s holds both a CNAME and %s: a CNAME admits no other data, and resolvers answer one or the other.", host, list(records))
}

func fixDelete(host string, records []string) i18n.Text {
	return i18n.F("Elimine %s de %s.", "Delete %s from %s.", list(records), host)
}

func msgApexCNAME(host string) i18n.Text {
	return i18n.F("%s es el vértice de la zona y tiene un CNAME, que el DNS prohíbe junto a sus SOA y NS (rompe el correo y la delegación).",
		"%s is the zone's apex and holds a CNAME, which DNS forbids beside its SOA and NS (it breaks mail and the delegation).", host)
}

func fixApexCNAME(d domainFacts) i18n.Text {
	return i18n.F("Reemplace el CNAME de %s por un ALIAS/ANAME (CNAME aplanado) a %s en su proveedor DNS.",
		"Replace the CNAME of %s with an ALIAS/ANAME (flattened CNAME) to %s at your DNS provider.", d.host, d.expected)
}

func msgAddressesInstead(host string, addrs []string) i18n.Text {
	return i18n.F("%s tiene %s en lugar de un CNAME: los visitantes van a ese servidor, no a la plataforma.",
		"%s holds %s instead of a CNAME: visitors go to that server, not to the platform.", host, list(addrs))
}

func fixAddressesInstead(d domainFacts, addrs []string) i18n.Text {
	return i18n.F("Elimine %s de %s y cree el CNAME %s → %s.", "Delete %s from %s and create the CNAME %s → %s.", list(addrs), d.host, d.host, d.expected)
}

func msgStaleAddresses(host string, stale []string, expected string) i18n.Text {
	return i18n.F("El dominio raíz %s responde %s, que no son direcciones de %s (restos del alojamiento anterior).",
		"The apex %s answers %s, which are not addresses of %s (left over from the previous hosting).", host, list(stale), expected)
}

func fixStaleAddresses(d domainFacts, stale []string) i18n.Text {
	return i18n.F("Elimine los registros fijos %s de %s y deje solo el ALIAS/ANAME a %s.", "Delete the fixed records %s of %s and keep only the ALIAS/ANAME to %s.",
		list(stale), d.host, d.expected)
}

func msgACMEDelegated(host, target string) i18n.Text {
	return i18n.F("_acme-challenge.%s apunta (CNAME) a %s, de otro proveedor: la validación del certificado de Cloudflare puede fallar.",
		"_acme-challenge.%s points (CNAME) at %s, another provider's: Cloudflare's certificate validation may fail.", host, target)
}

func msgACMEStale(host string, values []string) i18n.Text {
	return i18n.F("_acme-challenge.%s tiene valores TXT que Cloudflare no pidió (%s), probablemente de un proveedor anterior.",
		"_acme-challenge.%s holds TXT values Cloudflare did not ask for (%s), probably from a previous provider.", host, list(values))
}

func fixACME(host string) i18n.Text {
	return i18n.F("Si ya no usa ese proveedor, elimine los registros de _acme-challenge.%s.", "If you no longer use that provider, delete the records at _acme-challenge.%s.", host)
}

// Cloudflare.

func msgCloudflareOff(name string) i18n.Text {
	return i18n.F("El aprovisionamiento en Cloudflare está desactivado en este control plane: el registro %s no se gestiona aquí.",
		"Cloudflare provisioning is off on this control plane: the record %s is not managed here.", name)
}

func msgCloudflareUnreachable(err string) i18n.Text {
	return i18n.F("No se pudo consultar a Cloudflare (%s).", "Could not ask Cloudflare (%s).", err)
}

func msgNoTunnelForRecord(name string) i18n.Text {
	return i18n.F("El registro %s no puede apuntar a ningún túnel: el despliegue del dominio no tiene túnel.",
		"The record %s cannot point at a tunnel: the domain's deployment has none.", name)
}

var (
	fixAssignTunnel     = i18n.T("Un administrador debe asignar un túnel al despliegue del tenant (PATCH /api/tenant-deployments/{id}).", "An administrator must assign a tunnel to the tenant deployment (PATCH /api/tenant-deployments/{id}).")
	fixAssignDeployment = i18n.T("Asigne el dominio a un despliegue del tenant (PATCH /api/domains/{d} con tenant_deployment_id).", "Assign the domain to a tenant deployment (PATCH /api/domains/{d} with tenant_deployment_id).")
	fixProvisionPending = i18n.T("El aprovisionamiento se reintenta solo; vuelva a diagnosticar en un minuto. Si persiste, contacte a soporte.", "Provisioning retries by itself; diagnose again in a minute. If it persists, contact support.")
	fixProvisionError   = i18n.T("Un administrador debe corregir lo que dice el error; el aprovisionamiento se reintenta después.", "An administrator must fix what the error says; provisioning retries afterwards.")
	fixNoSaaS           = i18n.T("Un administrador debe activar el modo SaaS (--cloudflare-saas) para que Cloudflare acepte el CNAME desde la zona del cliente.", "An administrator must turn SaaS mode on (--cloudflare-saas) so that Cloudflare accepts the CNAME from the customer's zone.")
	fixWaitCloudflare   = i18n.T("Cloudflare está validando; vuelva a diagnosticar en unos minutos.", "Cloudflare is validating; diagnose again in a few minutes.")
)

func msgForeignRecord(name, typ, content string) i18n.Text {
	return i18n.F("En Cloudflare ya existe %s %s → %s y no lo gestiona Sajet: la plataforma no lo cambia.",
		"Cloudflare already holds %s %s → %s, not managed by Sajet: the platform does not change it.", name, typ, content)
}

func fixForeignRecord(name string) i18n.Text {
	return i18n.F("Un administrador debe eliminar ese registro de %s en Cloudflare (o marcarlo como de Sajet).",
		"An administrator must delete that record of %s in Cloudflare (or mark it as Sajet's).", name)
}

func msgRecordMissingError(name string, lastErr i18n.Text) i18n.Text {
	return i18n.F("El registro %s no existe en Cloudflare; el último intento falló: %s", "The record %s does not exist in Cloudflare; the last attempt failed: %s", name, lastErr)
}

func msgRecordMissing(name string) i18n.Text {
	return i18n.F("El registro %s todavía no existe en Cloudflare.", "The record %s does not exist in Cloudflare yet.", name)
}

func msgRecordWrongTarget(name, typ, content, want string) i18n.Text {
	return i18n.F("En Cloudflare, %s es %s → %s; debería ser CNAME → %s.", "In Cloudflare, %s is %s → %s; it should be CNAME → %s.", name, typ, content, want)
}

func msgRecordNotProxied(name string) i18n.Text {
	return i18n.F("El registro %s no está proxied: el túnel solo recibe tráfico de registros proxied.", "The record %s is not proxied: the tunnel only receives traffic for proxied records.", name)
}

func msgRecordOK(name, target string) i18n.Text {
	return i18n.F("Cloudflare tiene %s → %s, proxied.", "Cloudflare holds %s → %s, proxied.", name, target)
}

func msgNoSaaS(host, expected string) i18n.Text {
	return i18n.F("El registro está bien, pero el modo SaaS está desactivado: Cloudflare rechaza el CNAME de %s a %s desde la zona de otra cuenta (errores 1014/1001).",
		"The record is right, but SaaS mode is off: Cloudflare refuses the CNAME from %s to %s from another account's zone (errors 1014/1001).", host, expected)
}

func msgCustomHostnameMissing(host string, lastErr i18n.Text) i18n.Text {
	if !lastErr.IsZero() {
		return i18n.F("El custom hostname de %s no existe en Cloudflare for SaaS; el último intento falló: %s",
			"The custom hostname of %s does not exist in Cloudflare for SaaS; the last attempt failed: %s", host, lastErr)
	}
	return i18n.F("El custom hostname de %s todavía no existe en Cloudflare for SaaS.", "The custom hostname of %s does not exist in Cloudflare for SaaS yet.", host)
}

func msgCustomHostnameActive(host, expected string) i18n.Text {
	return i18n.F("Cloudflare tiene el registro y sirve %s (custom hostname activo, certificado activo).",
		"Cloudflare holds the record and serves %s (custom hostname active, certificate active).", host)
}

func msgCustomHostnameMoved(host string) i18n.Text {
	return i18n.F("Cloudflare marcó el custom hostname de %s como «moved»: su DNS dejó de apuntar a la plataforma (se borra a los 7 días).",
		"Cloudflare marked the custom hostname of %s «moved»: its DNS stopped pointing at the platform (it is deleted after 7 days).", host)
}

func msgCustomHostnamePending(host, status, ssl string, errs []string) i18n.Text {
	m := i18n.F("El custom hostname de %s está «%s» y su certificado «%s».", "The custom hostname of %s is «%s» and its certificate «%s».", host, status, ssl)
	if len(errs) > 0 {
		m = i18n.F("%s Cloudflare dice: %s", "%s Cloudflare says: %s", m, strings.Join(errs, "; "))
	}
	return m
}

func fixValidationRecords(recs []cloudflare.ValidationRecord) i18n.Text {
	var parts []string
	for _, r := range recs {
		parts = append(parts, fmt.Sprintf("%s %s = %s", r.Type, r.Name, r.Value))
	}
	return i18n.F("Publique en su DNS los registros de validación: %s.", "Publish the validation records in your DNS: %s.", strings.Join(parts, "; "))
}

// Tunnel.

func msgTunnelUnreadable(err string) i18n.Text {
	return i18n.F("No se pudo leer el estado del túnel (%s).", "Could not read the tunnel's state (%s).", err)
}

func msgNoDeployment(host string) i18n.Text {
	return i18n.F("%s no está asignado a ningún despliegue de tenant: el túnel no sabe adónde enviarlo.",
		"%s is not assigned to a tenant deployment: the tunnel does not know where to send it.", host)
}

func msgNoTunnel(host string) i18n.Text {
	return i18n.F("El despliegue de %s no tiene túnel.", "The deployment of %s has no tunnel.", host)
}

func msgNotQualified(host string) i18n.Text {
	return i18n.F("%s todavía no entra en el túnel (falta la verificación TXT, o el despliegue no tiene backend).",
		"%s does not go into the tunnel yet (the TXT proof is missing, or the deployment has no backend).", host)
}

func msgNotInTunnel(host string, reason i18n.Text) i18n.Text {
	return i18n.F("Las reglas de %s no están en el túnel: %s", "The rules of %s are not in the tunnel: %s", host, reason)
}

func fixNotInTunnel(d store.Domain) i18n.Text {
	if d.RequireTXT && d.TXTVerifiedAt == nil {
		return i18n.T("Publique el registro TXT de verificación (dns_records) y verifique el dominio.", "Publish the verification TXT record (dns_records) and verify the domain.")
	}
	return i18n.T("Corrija lo que dice el motivo (un administrador, si se trata del backend o de la configuración del túnel).",
		"Fix what the reason says (an administrator, when it is about the backend or the tunnel's configuration).")
}

var (
	msgNoAgents      = i18n.T("El túnel no tiene ningún agente inscrito: nadie aplica sus reglas.", "The tunnel has no enrolled agent: nobody applies its rules.")
	fixEnrolAgent    = i18n.T("Un administrador debe inscribir el agente del host del túnel (POST /api/agents).", "An administrator must enrol the tunnel host's agent (POST /api/agents).")
	fixNACK          = i18n.T("Un administrador debe revisar el error del agente (GET /api/agents y journalctl -u sajet-agent en el host).", "An administrator must read the agent's error (GET /api/agents and journalctl -u sajet-agent on the host).")
	fixWaitAgents    = i18n.T("Los agentes aplican las versiones nuevas en segundos; si no ocurre, revise su conexión.", "Agents apply new versions within seconds; if they do not, check their connection.")
	fixAgentsOffline = i18n.T("Un administrador debe revisar los agentes desconectados (systemctl status sajet-agent en cada host).", "An administrator must check the disconnected agents (systemctl status sajet-agent on each host).")
	msgGatewayOff    = i18n.T("La pasarela de agentes está desactivada en este control plane: no se puede sondear el backend.", "The agent gateway is off on this control plane: the backend cannot be probed.")
)

func msgTunnelNACK(host string, agents []string) i18n.Text {
	return i18n.F("Ningún agente aplica las reglas de %s: %s rechazó la última versión.", "No agent applies the rules of %s: %s refused the last version.", host, list(agents))
}

func msgTunnelNotApplied(host string, agents []string) i18n.Text {
	return i18n.F("%s todavía no aplica(n) la versión con las reglas de %s.", "%s do(es) not apply the version with the rules of %s yet.", list(agents), host)
}

func msgTunnelOffline(agents []string) i18n.Text {
	return i18n.F("Ningún agente del túnel está conectado (%s).", "No agent of the tunnel is connected (%s).", list(agents))
}

func msgTunnelPartial(host string, routing, missing, offline, nacked []string) i18n.Text {
	m := i18n.F("%s enruta(n) %s", "%s route(s) %s", list(routing), host)
	if len(missing) > 0 {
		m = i18n.F("%s; %s aún no", "%s; %s not yet", m, list(missing))
	}
	if len(offline) > 0 {
		m = i18n.F("%s; %s desconectado(s)", "%s; %s disconnected", m, list(offline))
	}
	if len(nacked) > 0 {
		m = i18n.F("%s; %s rechazó una versión", "%s; %s refused a version", m, list(nacked))
	}
	return i18n.F("%s.", "%s.", m)
}

func msgTunnelOK(host string, routing []string, version int64) i18n.Text {
	return i18n.F("Todos los agentes del túnel (%s) aplican la versión %d con las reglas de %s.",
		"Every agent of the tunnel (%s) applies version %d with the rules of %s.", list(routing), version, host)
}

// Backend.

func msgNothingToProbe(host string) i18n.Text {
	return i18n.F("No hay regla de túnel para %s que sondear.", "There is no tunnel rule for %s to probe.", host)
}

func msgNotProbed(connected bool) i18n.Text {
	if connected {
		return i18n.T("conectado a otra réplica del control plane: no sondeado desde esta", "connected to another control-plane replica: not probed from this one")
	}
	return i18n.T("desconectado: no sondeado", "disconnected: not probed")
}

// failureText says what a probe failure means on a tunnel host.
func failureText(code string) i18n.Text {
	switch code {
	case protocol.ProbeRefused:
		return i18n.T("conexión rechazada: nada escucha en esa dirección", "connection refused: nothing listens at that address")
	case protocol.ProbeTimeout:
		return i18n.T("sin respuesta a tiempo", "no answer in time")
	case protocol.ProbeDNS:
		return i18n.T("el nombre del backend no resuelve en el host del túnel", "the backend's name does not resolve on the tunnel host")
	case protocol.ProbeTLS:
		return i18n.T("fallo de TLS con el backend (certificado o protocolo)", "TLS failure with the backend (certificate or protocol)")
	case protocol.ProbeReset:
		return i18n.T("el backend cerró la conexión sin responder", "the backend closed the connection without answering")
	case protocol.ProbeUnreachable:
		return i18n.T("sin ruta a la red del backend", "no route to the backend's network")
	case protocol.ProbeProtocol:
		return i18n.T("el servicio no responde HTTP (¿http en lugar de https, o al revés?)", "the service does not answer HTTP (http instead of https, or the other way round?)")
	case protocol.ProbeNotInRules:
		return i18n.T("el agente no tiene esa regla aplicada", "the agent does not have that rule applied")
	case protocol.ProbeRateLimited:
		return i18n.T("demasiados sondeos; reintente en unos segundos", "too many probes; retry in a few seconds")
	case protocol.ProbeBusy:
		return i18n.T("el agente está aplicando una configuración", "the agent is applying a configuration")
	}
	return i18n.T("error", "error")
}

func msgBackendFails(host string, sample ProbeOutcome, bad, all int, service string) i18n.Text {
	var what i18n.Text
	if sample.Status != 0 {
		what = i18n.F("el backend responde HTTP %d", "the backend answers HTTP %d", sample.Status)
	} else {
		what = failureText(sample.Failure)
	}
	if bad < all {
		return i18n.F("Desde %s, %s no llega al backend %s (%s): Cloudflare reparte las visitas entre los hosts del túnel, así que parte de ellas falla.",
			"From %s, %s does not reach the backend %s (%s): Cloudflare spreads visits over the tunnel's hosts, so some of them fail.",
			sample.Agent, host, service, what)
	}
	return i18n.F("Desde el túnel, %s no llega al backend %s: %s.", "From the tunnel, %s does not reach the backend %s: %s.", host, service, what)
}

func fixBackend(sample ProbeOutcome, service string) i18n.Text {
	switch {
	case sample.Status >= 500:
		return i18n.F("La aplicación detrás de %s está fallando (HTTP %d): revise el tenant (logs de Odoo).",
			"The application behind %s is failing (HTTP %d): check the tenant (Odoo's logs).", service, sample.Status)
	case sample.Failure == protocol.ProbeRefused || sample.Failure == protocol.ProbeReset:
		return i18n.F("Arranque el servicio en %s o corrija backend_url del despliegue.", "Start the service at %s or correct the deployment's backend_url.", service)
	case sample.Failure == protocol.ProbeTimeout || sample.Failure == protocol.ProbeUnreachable:
		return i18n.F("Revise que %s esté encendido y que la red o el firewall permitan llegar desde el host del túnel.",
			"Check that %s is up and that the network or firewall lets the tunnel host reach it.", service)
	case sample.Failure == protocol.ProbeTLS || sample.Failure == protocol.ProbeProtocol:
		return i18n.F("Revise el esquema (http/https) de backend_url (%s) y el certificado del backend.", "Check the scheme (http/https) of backend_url (%s) and the backend's certificate.", service)
	case sample.Failure == protocol.ProbeDNS:
		return i18n.F("Use en backend_url (%s) un nombre que resuelva en el host del túnel, o su dirección IP.", "Use in backend_url (%s) a name that resolves on the tunnel host, or its IP address.", service)
	}
	return i18n.T("Un administrador debe revisar el backend y el host del túnel.", "An administrator must check the backend and the tunnel host.")
}

func msgBackendSlow(sample ProbeOutcome, threshold time.Duration) i18n.Text {
	if sample.Status >= 400 {
		return i18n.F("Desde %s el backend responde HTTP %d en la raíz del sitio.", "From %s the backend answers HTTP %d at the site's root.", sample.Agent, sample.Status)
	}
	return i18n.F("Desde %s el backend responde, pero lento: %d ms (más de %s).", "From %s the backend answers, but slowly: %d ms (over %s).", sample.Agent, sample.DurationMS, threshold)
}

func fixBackendSlow(sample ProbeOutcome) i18n.Text {
	if sample.Status >= 400 {
		return i18n.T("Si la raíz del sitio no debe dar error, revise la configuración del tenant.", "If the site's root should not give an error, check the tenant's configuration.")
	}
	return i18n.T("Revise la carga del tenant; las visitas lentas pueden agotar el tiempo de Cloudflare (error 524).", "Check the tenant's load; slow visits can run out Cloudflare's time (error 524).")
}

func msgBackendUnprobed(agents []string) i18n.Text {
	return i18n.F("No se pudo sondear el backend desde ningún host del túnel (%s).", "The backend could not be probed from any tunnel host (%s).", list(agents))
}

func msgBackendPartlyProbed(good, unknown []string) i18n.Text {
	return i18n.F("El backend responde desde %s; %s no se pudo(ieron) sondear.", "The backend answers from %s; %s could not be probed.", list(good), list(unknown))
}

func msgBackendOK(host string, good []string, service string) i18n.Text {
	return i18n.F("Desde cada host del túnel (%s), una petición para %s llega al backend %s y obtiene respuesta.",
		"From every tunnel host (%s), a request for %s reaches the backend %s and gets an answer.", list(good), host, service)
}
