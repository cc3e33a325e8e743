package domains

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/hostname"
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
)

// State derives the human state of d.
func (s *Service) State(d store.Domain) string {
	switch {
	case d.DeletingAt != nil:
		return StateDeleting
	case d.IsActive:
		return StateActive
	case d.VerificationStatus != "verified" && d.VerifiedAt == nil && d.TXTVerifiedAt == nil && d.ExpiresAt != nil && d.ExpiresAt.Before(time.Now()):
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
	Name   string `json:"name"`
	Status string `json:"status" enum:"done,pending,failed,skipped"`
	Detail string `json:"detail"`
}

// Steps lists the activation conditions of d in the order they happen.
func (s *Service) Steps(d store.Domain) []Step {
	var steps []Step
	switch d.VerificationStatus {
	case "verified":
		detail := fmt.Sprintf("%s apunta a %s", d.ExternalDomain, d.SajetFullDomain)
		if d.LastCheckStatus != nil && *d.LastCheckStatus != "ok" && d.LastError != nil {
			// Verified once; a later check disagrees. The domain stays verified (and keeps its
			// hostname) while the customer fixes it.
			detail = fmt.Sprintf("verificado; la última comprobación falló: %s", *d.LastError)
		}
		steps = append(steps, Step{"dns", StepDone, detail})
	case "failed":
		detail := "la última verificación falló"
		if d.LastError != nil {
			detail = *d.LastError
		}
		steps = append(steps, Step{"dns", StepFailed, detail})
	default:
		steps = append(steps, Step{"dns", StepPending, fmt.Sprintf("configure el CNAME %s → %s y verifique", d.ExternalDomain, d.SajetFullDomain)})
	}

	switch {
	case d.TXTVerifiedAt != nil:
		steps = append(steps, Step{"ownership", StepDone, "registro TXT de verificación encontrado"})
	case d.RequireTXT:
		steps = append(steps, Step{"ownership", StepPending, fmt.Sprintf("publique el TXT %s con el valor %s", TXTName(d.ExternalDomain), d.VerificationToken)})
	default:
		steps = append(steps, Step{"ownership", StepSkipped, "su plan no exige el registro TXT"})
	}

	switch {
	case d.CloudflareConfigured:
		steps = append(steps, Step{"cloudflare", StepDone, fmt.Sprintf("registro %s creado en Cloudflare", d.SajetFullDomain)})
	case d.ProvisionErrorStep != nil && *d.ProvisionErrorStep == "cloudflare" && d.LastError != nil:
		steps = append(steps, Step{"cloudflare", StepFailed, *d.LastError})
	case !s.cfg.ProviderEnabled:
		steps = append(steps, Step{"cloudflare", StepSkipped, fmt.Sprintf(
			"Cloudflare provider disabled (no API token configured): the record %s was not created by this control plane", d.SajetFullDomain)})
	default:
		steps = append(steps, Step{"cloudflare", StepPending, fmt.Sprintf("creando el registro %s en Cloudflare", d.SajetFullDomain)})
	}

	if s.cfg.SaaSMode {
		switch {
		case d.CustomHostnameStatus != nil && *d.CustomHostnameStatus == "active" && d.SSLStatus == "active":
			steps = append(steps, Step{"custom_hostname", StepDone, fmt.Sprintf("Cloudflare for SaaS sirve %s con certificado activo", d.ExternalDomain)})
		case d.ProvisionErrorStep != nil && *d.ProvisionErrorStep == "custom_hostname" && d.LastError != nil:
			steps = append(steps, Step{"custom_hostname", StepFailed, *d.LastError})
		case d.CustomHostnameStatus != nil:
			steps = append(steps, Step{"custom_hostname", StepPending, fmt.Sprintf(
				"custom hostname %s, certificate %s: publish the validation records listed in dns_records", *d.CustomHostnameStatus, d.SSLStatus)})
		default:
			steps = append(steps, Step{"custom_hostname", StepPending, "creando el custom hostname en Cloudflare for SaaS"})
		}
	}

	switch problem := d.IngressProblem(); {
	case problem != "":
		steps = append(steps, Step{"tunnel_ingress", StepFailed, problem})
	case d.TunnelIngressConfigured:
		steps = append(steps, Step{"tunnel_ingress", StepDone, "el túnel enruta ambos nombres al tenant"})
	case d.TenantDeploymentID == nil:
		steps = append(steps, Step{"tunnel_ingress", StepFailed, "the domain has no tenant deployment: set tenant_deployment_id so the tunnel knows where to route it"})
	case d.TunnelUUID == nil:
		steps = append(steps, Step{"tunnel_ingress", StepFailed, "the tenant deployment has no tunnel assigned"})
	case d.ProvisionErrorStep != nil && *d.ProvisionErrorStep == "tunnel" && d.LastError != nil:
		steps = append(steps, Step{"tunnel_ingress", StepFailed, *d.LastError})
	default:
		steps = append(steps, Step{"tunnel_ingress", StepPending, "esperando que el agente del túnel aplique las reglas"})
	}
	return steps
}

// Instruction is a DNS record the customer must create (verification_instructions in docs/API.md).
type Instruction struct {
	Type     string `json:"type"`
	Record   string `json:"record"`
	Value    string `json:"value"`
	Note     string `json:"note"`
	Required bool   `json:"required"`
}

// Instructions returns the records the customer must publish, CNAME first as in the frontend contract (docs/API.md).
func (s *Service) Instructions(d store.Domain) []Instruction {
	cname := Instruction{Type: "CNAME", Record: d.ExternalDomain, Value: d.SajetFullDomain,
		Note: "Configure este CNAME en su proveedor DNS", Required: true}
	if hostname.IsApex(d.ExternalDomain) {
		cname.Note = "Configure este CNAME en su proveedor DNS. Es el dominio raíz: solo funciona si su proveedor soporta CNAME flattening o ALIAS; en ese caso publique también el registro TXT"
	}
	txt := Instruction{Type: "TXT", Record: TXTName(d.ExternalDomain), Value: d.VerificationToken,
		Note: "Registro TXT que prueba que usted controla el dominio", Required: d.RequireTXT || hostname.IsApex(d.ExternalDomain)}
	out := []Instruction{cname, txt}
	if s.cfg.SaaSMode && len(d.CustomHostnameDetail) > 0 {
		var detail store.CustomHostnameDetail
		if json.Unmarshal(d.CustomHostnameDetail, &detail) == nil {
			for _, r := range detail.Records {
				note := "Cloudflare for SaaS: validación de propiedad del dominio"
				if r.Purpose == "ssl" {
					note = "Cloudflare for SaaS: validación del certificado SSL"
				}
				if r.Type == "HTTP" {
					note += " (servir este contenido en la URL indicada)"
				}
				out = append(out, Instruction{Type: r.Type, Record: r.Name, Value: r.Value, Note: note, Required: true})
			}
		}
	}
	return out
}

// Warnings are sentences about the configuration that will stop the domain from working even if
// every step succeeds.
func (s *Service) Warnings(d store.Domain) []string {
	var w []string
	if !s.cfg.SaaSMode {
		w = append(w, fmt.Sprintf("SaaS mode is off: Cloudflare refuses a CNAME from another account's zone into %s "+
			"(error 1014 if %s is on Cloudflare, 1001 if it is not). Traffic for %s only works once the control plane runs "+
			"with --cloudflare-saas, which creates a Cloudflare for SaaS custom hostname for it.",
			s.cfg.Zone, d.ExternalDomain, d.ExternalDomain))
	}
	if d.CustomHostnameDetail != nil {
		var detail store.CustomHostnameDetail
		if json.Unmarshal(d.CustomHostnameDetail, &detail) == nil {
			for _, e := range detail.Errors {
				w = append(w, "Cloudflare: "+e)
			}
		}
	}
	return w
}
