package domains

import (
	"encoding/json"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/hostname"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// States a domain shows to humans (the `state` field); derived, never stored, so it cannot drift
// from the columns it summarises.
const (
	StatePendingDNS         = "pending_dns"
	StateVerifying          = "verifying"
	StateVerificationFailed = "verification_failed"
	StateExpired            = "expired"
	StateProvisioning       = "provisioning"
	StateReady              = "ready"
	StateActive             = "active"
	StateDeleting           = "deleting"
	// StateMisconfigured: verified, but its DNS no longer points at us; it keeps serving until
	// its grace period ends (docs/AUTOMATION.md).
	StateMisconfigured = "misconfigured"
	// StateDeactivated: misconfigured past its grace period: out of the tunnel and Cloudflare
	// until a good check brings it back.
	StateDeactivated = "deactivated"
)

// State derives the human state of d.
func (s *Service) State(d store.Domain) string {
	switch {
	case d.DeletingAt != nil:
		return StateDeleting
	case d.DeactivatedAt != nil:
		return StateDeactivated
	case d.MisconfiguredAt != nil:
		return StateMisconfigured
	case d.IsActive:
		return StateActive
	case d.VerificationStatus != "verified" && d.VerifiedAt == nil && d.TXTVerifiedAt == nil && d.ExpiresAt != nil && d.ExpiresAt.Before(s.now()):
		return StateExpired
	case d.VerificationStatus == "pending":
		return StatePendingDNS
	case d.VerificationStatus == "verifying":
		return StateVerifying
	case d.VerificationStatus == "failed":
		return StateVerificationFailed
	}
	for _, st := range s.Steps(d) {
		if st.Status != StepDone && st.Status != StepSkipped {
			return StateProvisioning
		}
	}
	return StateReady
}

// Step statuses.
const (
	StepDone    = "done"
	StepPending = "pending"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// Step is one condition of activation, with a sentence saying what it waits for.
type Step struct {
	Name   string
	Status string // StepDone, StepPending, StepFailed or StepSkipped
	Detail i18n.Text
}

// Steps lists the activation conditions of d in the order they happen.
func (s *Service) Steps(d store.Domain) []Step {
	var steps []Step
	switch d.VerificationStatus {
	case "verified":
		detail := i18n.F("%s apunta a %s", "%s points to %s", d.ExternalDomain, d.SajetFullDomain)
		if d.LastCheckStatus != nil && *d.LastCheckStatus != "ok" && d.LastError != nil {
			// Verified once; a later check disagrees. The domain stays verified (and keeps its
			// hostname) while the customer fixes it.
			detail = i18n.F("verificado; la última comprobación falló: %s", "verified; the last check failed: %s", *d.LastError)
		}
		if st := healthStep(d); st != nil {
			steps = append(steps, *st)
		} else {
			steps = append(steps, Step{"dns", StepDone, detail})
		}
	case "failed":
		detail := i18n.T("la última verificación falló", "the last verification failed")
		if d.LastError != nil {
			detail = *d.LastError
		}
		detail = i18n.Join(". ", detail, negativeNote(d))
		steps = append(steps, Step{"dns", StepFailed, detail})
	default:
		steps = append(steps, Step{"dns", StepPending, i18n.Join(". ", i18n.F("configure el CNAME %s → %s y verifique", "create the CNAME %s → %s and verify",
			d.ExternalDomain, d.SajetFullDomain), negativeNote(d))})
	}

	switch {
	case d.TXTVerifiedAt != nil:
		steps = append(steps, Step{"ownership", StepDone, i18n.T("registro TXT de verificación encontrado", "verification TXT record found")})
	case d.RequireTXT:
		steps = append(steps, Step{"ownership", StepPending, i18n.F("publique el TXT %s con el valor %s", "publish the TXT record %s with the value %s",
			TXTName(d.ExternalDomain), d.VerificationToken)})
	default:
		steps = append(steps, Step{"ownership", StepSkipped, i18n.T("su plan no exige el registro TXT", "your plan does not require the TXT record")})
	}

	switch {
	case d.CloudflareConfigured:
		steps = append(steps, Step{"cloudflare", StepDone, i18n.F("registro %s creado en Cloudflare", "record %s created in Cloudflare", d.SajetFullDomain)})
	case d.ProvisionErrorStep != nil && *d.ProvisionErrorStep == "cloudflare" && d.LastError != nil:
		steps = append(steps, Step{"cloudflare", StepFailed, *d.LastError})
	case !s.cfg.ProviderEnabled:
		steps = append(steps, Step{"cloudflare", StepSkipped, i18n.F(
			"proveedor Cloudflare desactivado (sin token de API configurado): este plano de control no creó el registro %s",
			"Cloudflare provider disabled (no API token configured): the record %s was not created by this control plane", d.SajetFullDomain)})
	default:
		steps = append(steps, Step{"cloudflare", StepPending, i18n.F("creando el registro %s en Cloudflare", "creating the record %s in Cloudflare", d.SajetFullDomain)})
	}

	if s.cfg.SaaSMode {
		switch {
		case d.CustomHostnameStatus != nil && *d.CustomHostnameStatus == "active" && d.SSLStatus == "active":
			steps = append(steps, Step{"custom_hostname", StepDone, i18n.F("Cloudflare for SaaS sirve %s con certificado activo",
				"Cloudflare for SaaS serves %s with an active certificate", d.ExternalDomain)})
		case d.ProvisionErrorStep != nil && *d.ProvisionErrorStep == "custom_hostname" && d.LastError != nil:
			steps = append(steps, Step{"custom_hostname", StepFailed, *d.LastError})
		case d.CustomHostnameStatus != nil:
			steps = append(steps, Step{"custom_hostname", StepPending, i18n.F(
				"custom hostname %s, certificado %s: publique los registros de validación de dns_records",
				"custom hostname %s, certificate %s: publish the validation records listed in dns_records", *d.CustomHostnameStatus, d.SSLStatus)})
		default:
			steps = append(steps, Step{"custom_hostname", StepPending, i18n.T("creando el custom hostname en Cloudflare for SaaS",
				"creating the custom hostname in Cloudflare for SaaS")})
		}
	}

	switch problem := d.IngressProblem(); {
	case d.DeactivatedAt != nil:
		steps = append(steps, Step{"tunnel_ingress", StepFailed, i18n.T(
			"desactivado: sus reglas salieron del túnel hasta que el DNS vuelva a apuntar a la plataforma",
			"deactivated: its rules left the tunnel until the DNS points to the platform again")})
	case !problem.IsZero():
		steps = append(steps, Step{"tunnel_ingress", StepFailed, problem})
	case d.TunnelIngressConfigured:
		steps = append(steps, Step{"tunnel_ingress", StepDone, i18n.T("el túnel enruta ambos nombres al tenant", "the tunnel routes both names to the tenant")})
	case d.TenantDeploymentID == nil:
		steps = append(steps, Step{"tunnel_ingress", StepFailed, i18n.T(
			"el dominio no tiene despliegue: asigne tenant_deployment_id para que el túnel sepa adónde enrutarlo",
			"the domain has no tenant deployment: set tenant_deployment_id so the tunnel knows where to route it")})
	case d.TunnelUUID == nil:
		steps = append(steps, Step{"tunnel_ingress", StepFailed, i18n.T("el despliegue no tiene túnel asignado", "the tenant deployment has no tunnel assigned")})
	case d.ProvisionErrorStep != nil && *d.ProvisionErrorStep == "tunnel" && d.LastError != nil:
		steps = append(steps, Step{"tunnel_ingress", StepFailed, *d.LastError})
	default:
		steps = append(steps, Step{"tunnel_ingress", StepPending, i18n.T("esperando que el agente del túnel aplique las reglas",
			"waiting for the tunnel's agent to apply the rules")})
	}
	return steps
}

// Instruction is a DNS record the customer must create (verification_instructions in docs/API.md).
type Instruction struct {
	Type     string
	Record   string
	Value    string
	Note     i18n.Text
	Required bool
}

// Instructions returns the records the customer must publish, CNAME first as in the frontend contract (docs/API.md).
func (s *Service) Instructions(d store.Domain) []Instruction {
	cname := Instruction{Type: "CNAME", Record: d.ExternalDomain, Value: d.SajetFullDomain,
		Note: i18n.T("Configure este CNAME en su proveedor DNS", "Create this CNAME at your DNS provider"), Required: true}
	if hostname.IsApex(d.ExternalDomain) {
		cname.Note = i18n.T("Configure este CNAME en su proveedor DNS. Es el dominio raíz: solo funciona si su proveedor soporta CNAME flattening o ALIAS; en ese caso publique también el registro TXT",
			"Create this CNAME at your DNS provider. It is the root domain: this works only if your provider supports CNAME flattening or ALIAS; then publish the TXT record too")
	}
	txt := Instruction{Type: "TXT", Record: TXTName(d.ExternalDomain), Value: d.VerificationToken,
		Note:     i18n.T("Registro TXT que prueba que usted controla el dominio", "TXT record proving that you control the domain"),
		Required: d.RequireTXT || hostname.IsApex(d.ExternalDomain)}
	out := []Instruction{cname, txt}
	if s.cfg.SaaSMode && len(d.CustomHostnameDetail) > 0 {
		var detail store.CustomHostnameDetail
		if json.Unmarshal(d.CustomHostnameDetail, &detail) == nil {
			for _, r := range detail.Records {
				note := i18n.T("Cloudflare for SaaS: validación de propiedad del dominio", "Cloudflare for SaaS: domain ownership validation")
				if r.Purpose == "ssl" {
					note = i18n.T("Cloudflare for SaaS: validación del certificado SSL", "Cloudflare for SaaS: SSL certificate validation")
				}
				if r.Type == "HTTP" {
					note = i18n.F("%s (servir este contenido en la URL indicada)", "%s (serve this content at the URL shown)", note)
				}
				out = append(out, Instruction{Type: r.Type, Record: r.Name, Value: r.Value, Note: note, Required: true})
			}
		}
	}
	return out
}

// Warnings are sentences about the configuration that will stop the domain from working even if
// every step succeeds.
func (s *Service) Warnings(d store.Domain) []i18n.Text {
	var w []i18n.Text
	if !s.cfg.SaaSMode {
		w = append(w, i18n.F("El modo SaaS está desactivado: Cloudflare rechaza un CNAME desde la zona de otra cuenta hacia %[1]s "+
			"(error 1014 si %[2]s está en Cloudflare, 1001 si no). El tráfico de %[2]s solo funciona cuando el plano de control se ejecuta "+
			"con --cloudflare-saas, que le crea un custom hostname de Cloudflare for SaaS.",
			"SaaS mode is off: Cloudflare refuses a CNAME from another account's zone into %[1]s "+
				"(error 1014 if %[2]s is on Cloudflare, 1001 if it is not). Traffic for %[2]s only works once the control plane runs "+
				"with --cloudflare-saas, which creates a Cloudflare for SaaS custom hostname for it.",
			s.cfg.Zone, d.ExternalDomain))
	}
	if d.CustomHostnameDetail != nil {
		var detail store.CustomHostnameDetail
		if json.Unmarshal(d.CustomHostnameDetail, &detail) == nil {
			for _, e := range detail.Errors {
				// Cloudflare's own words, quoted.
				w = append(w, i18n.F("Cloudflare: %s", "Cloudflare: %s", e))
			}
		}
	}
	return w
}
