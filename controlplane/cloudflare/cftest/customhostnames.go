package cftest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// CustomHostname is a Cloudflare for SaaS custom hostname as the fake stores it.
type CustomHostname struct {
	ID                 string
	Hostname           string
	Status             string // pending, active, moved, …
	SSLStatus          string // initializing → pending_validation on the first read; then as set
	SSLMethod          string // txt, http, email
	CustomMetadata     map[string]string
	VerificationErrors []string
	SSLErrors          []string
	CreatedAt          time.Time
	// CertificateExpiresOn is the expiry of the certificate Cloudflare issued for the hostname
	// (ssl.certificates[].expires_on); zero until one is issued (when the certificate becomes
	// active, for 90 days, or by SetCertificateExpiry).
	CertificateExpiresOn time.Time
}

type hostname struct {
	CustomHostname
	ownershipValue string
	httpBody       string
	validation     []validationRecordJSON
}

// certificateJSON is an entry of ssl.certificates[]: what Cloudflare returns for the certificates
// it issued (docs/CLOUDFLARE.md §2; the v7 SDK has no field for it).
type certificateJSON struct {
	ID                string    `json:"id"`
	Issuer            string    `json:"issuer"`
	SerialNumber      string    `json:"serial_number"`
	Signature         string    `json:"signature"`
	ExpiresOn         time.Time `json:"expires_on"`
	IssuedOn          time.Time `json:"issued_on"`
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
}

type validationRecordJSON struct {
	TXTName  string `json:"txt_name,omitempty"`
	TXTValue string `json:"txt_value,omitempty"`
	HTTPURL  string `json:"http_url,omitempty"`
	HTTPBody string `json:"http_body,omitempty"`
	Status   string `json:"status,omitempty"`
}

type customHostnameJSON struct {
	ID                        string            `json:"id"`
	Hostname                  string            `json:"hostname"`
	Status                    string            `json:"status"`
	VerificationErrors        []string          `json:"verification_errors,omitempty"`
	CustomMetadata            map[string]string `json:"custom_metadata,omitempty"`
	OwnershipVerification     map[string]string `json:"ownership_verification"`
	OwnershipVerificationHTTP map[string]string `json:"ownership_verification_http"`
	SSL                       sslJSON           `json:"ssl"`
	CreatedAt                 time.Time         `json:"created_at"`
}

type sslJSON struct {
	ID                   string                 `json:"id"`
	Type                 string                 `json:"type"`
	Method               string                 `json:"method"`
	Status               string                 `json:"status"`
	BundleMethod         string                 `json:"bundle_method"`
	CertificateAuthority string                 `json:"certificate_authority"`
	Wildcard             bool                   `json:"wildcard"`
	Settings             struct{}               `json:"settings"`
	ValidationRecords    []validationRecordJSON `json:"validation_records,omitempty"`
	ValidationErrors     []map[string]string    `json:"validation_errors,omitempty"`
	Certificates         []certificateJSON      `json:"certificates,omitempty"`
}

// notCNAMEd is the verification error Cloudflare shows while the customer's CNAME is missing
// (docs/CLOUDFLARE.md §2).
const notCNAMEd = "custom hostname does not CNAME to this zone."

func (s *Server) hostnameJSON(h *hostname) customHostnameJSON {
	out := customHostnameJSON{
		ID: h.ID, Hostname: h.Hostname, Status: h.Status, VerificationErrors: h.VerificationErrors,
		CustomMetadata: h.CustomMetadata, CreatedAt: h.CreatedAt,
		OwnershipVerification: map[string]string{"type": "txt", "name": "_cf-custom-hostname." + h.Hostname, "value": h.ownershipValue},
		OwnershipVerificationHTTP: map[string]string{
			"http_url":  "http://" + h.Hostname + "/.well-known/cf-custom-hostname-challenge/" + h.ID,
			"http_body": h.httpBody,
		},
		SSL: sslJSON{ID: h.ID + "-ssl", Type: "dv", Method: h.SSLMethod, Status: h.SSLStatus,
			BundleMethod: "ubiquitous", CertificateAuthority: "google", ValidationRecords: h.validation},
	}
	for _, e := range h.SSLErrors {
		out.SSL.ValidationErrors = append(out.SSL.ValidationErrors, map[string]string{"message": e})
	}
	if !h.CertificateExpiresOn.IsZero() {
		issued := h.CertificateExpiresOn.Add(-90 * 24 * time.Hour)
		for _, sig := range []string{"ECDSAWithSHA256", "SHA256WithRSA"} { // Cloudflare issues both
			out.SSL.Certificates = append(out.SSL.Certificates, certificateJSON{ID: h.ID + "-" + sig, Issuer: "GoogleTrustServices",
				SerialNumber: h.ID, Signature: sig, ExpiresOn: h.CertificateExpiresOn, IssuedOn: issued,
				FingerprintSHA256: h.ID + h.ID})
		}
	}
	return out
}

// read advances a fresh hostname the way Cloudflare does between the create answer and later
// reads: ssl.status initializing → pending_validation, with validation records.
func (h *hostname) read() {
	if h.SSLStatus != "initializing" {
		return
	}
	h.SSLStatus = "pending_validation"
	switch h.SSLMethod {
	case "http":
		h.validation = []validationRecordJSON{{HTTPURL: "http://" + h.Hostname + "/.well-known/acme-challenge/" + randomHex(16),
			HTTPBody: randomHex(32), Status: "pending"}}
	default:
		h.validation = []validationRecordJSON{{TXTName: "_acme-challenge." + h.Hostname, TXTValue: randomHex(22), Status: "pending"}}
	}
}

// CustomHostnames returns a snapshot of the custom hostnames in creation order.
func (s *Server) CustomHostnames() []CustomHostname {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CustomHostname, 0, len(s.hostnames))
	for _, h := range s.hostnames {
		out = append(out, h.snapshot())
	}
	return out
}

func (h *hostname) snapshot() CustomHostname {
	c := h.CustomHostname
	c.VerificationErrors = append([]string(nil), h.VerificationErrors...)
	c.SSLErrors = append([]string(nil), h.SSLErrors...)
	if h.CustomMetadata != nil {
		c.CustomMetadata = make(map[string]string, len(h.CustomMetadata))
		for k, v := range h.CustomMetadata {
			c.CustomMetadata[k] = v
		}
	}
	return c
}

// AddCustomHostname plants a custom hostname (e.g. one created by hand, without our metadata)
// and returns it. Empty fields get the defaults of a fresh hostname.
func (s *Server) AddCustomHostname(c CustomHostname) CustomHostname {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.newHostname(strings.ToLower(c.Hostname), c.SSLMethod, c.CustomMetadata)
	if c.ID != "" {
		h.ID = c.ID
	}
	if c.Status != "" {
		h.Status = c.Status
	}
	if c.SSLStatus != "" {
		h.SSLStatus = c.SSLStatus
	}
	h.CertificateExpiresOn = c.CertificateExpiresOn
	s.hostnames = append(s.hostnames, h)
	return h.snapshot()
}

// SetCustomHostnameStatus drives a custom hostname (by id or hostname) to status and ssl
// status, as Cloudflare does once the customer's records are in place. Active clears the
// matching errors and validation records. It reports whether the hostname exists.
func (s *Server) SetCustomHostnameStatus(idOrHostname, status, sslStatus string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.lookupHostname(idOrHostname)
	if h == nil {
		return false
	}
	h.read()
	if status != "" {
		h.Status = status
		if status == "active" {
			h.VerificationErrors = nil
		}
	}
	if sslStatus != "" {
		h.SSLStatus = sslStatus
		if sslStatus == "active" {
			h.validation, h.SSLErrors = nil, nil
			if h.CertificateExpiresOn.IsZero() {
				h.CertificateExpiresOn = time.Now().UTC().Add(90 * 24 * time.Hour).Truncate(time.Second)
			}
		}
	}
	return true
}

// SetCertificateExpiry sets when the hostname's issued certificate expires (a certificate near
// its end, or one Cloudflare failed to renew). It reports whether the hostname exists.
func (s *Server) SetCertificateExpiry(idOrHostname string, expiresOn time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.lookupHostname(idOrHostname)
	if h == nil {
		return false
	}
	h.CertificateExpiresOn = expiresOn.UTC().Truncate(time.Second)
	return true
}

func (s *Server) lookupHostname(idOrHostname string) *hostname {
	for _, h := range s.hostnames {
		if h.ID == idOrHostname || h.Hostname == strings.ToLower(idOrHostname) {
			return h
		}
	}
	return nil
}

func (s *Server) newHostname(name, method string, metadata map[string]string) *hostname {
	if method == "" {
		method = "txt"
	}
	return &hostname{
		CustomHostname: CustomHostname{
			ID: randomHex(16), Hostname: name, Status: "pending", SSLStatus: "initializing", SSLMethod: method,
			CustomMetadata: metadata, VerificationErrors: []string{notCNAMEd}, CreatedAt: time.Now().UTC(),
		},
		ownershipValue: randomHex(16), httpBody: randomHex(16),
	}
}

var notFoundHostname = failure(http.StatusNotFound, 1436, "The custom hostname was not found.")

func (s *Server) customHostnames(r *http.Request, id string, body []byte) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case id == "" && r.Method == http.MethodGet:
		return s.listHostnames(r)
	case id == "" && r.Method == http.MethodPost:
		return s.createHostname(body)
	case id == "":
		return methodNotAllowed(r)
	}
	i := -1
	for j, h := range s.hostnames {
		if h.ID == id {
			i = j
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodPatch, http.MethodDelete:
		if i < 0 {
			return notFoundHostname
		}
	default:
		return methodNotAllowed(r)
	}
	h := s.hostnames[i]
	switch r.Method {
	case http.MethodGet:
		h.read()
		return success(http.StatusOK, s.hostnameJSON(h))
	case http.MethodPatch:
		return s.patchHostname(h, body)
	default:
		s.hostnames = append(s.hostnames[:i], s.hostnames[i+1:]...)
		return success(http.StatusOK, map[string]string{"id": id})
	}
}

type hostnameInput struct {
	Hostname       *string           `json:"hostname"`
	CustomMetadata map[string]string `json:"custom_metadata"`
	SSL            *struct {
		Method string `json:"method"`
		Type   string `json:"type"`
	} `json:"ssl"`
}

func decodeHostnameInput(body []byte) (hostnameInput, *response) {
	var in hostnameInput
	if err := json.Unmarshal(body, &in); err != nil {
		r := failure(http.StatusBadRequest, 1400, "Unable to decode the JSON request body. Check your input and try again.")
		return in, &r
	}
	if in.SSL != nil {
		var r response
		switch {
		case in.SSL.Method == "" || in.SSL.Type == "":
			r = failure(http.StatusBadRequest, 1440, "Both validation type and validation method are required. Check your input and try again.")
		case in.SSL.Method != "http" && in.SSL.Method != "txt" && in.SSL.Method != "email":
			r = failure(http.StatusBadRequest, 1432, "The validation method is not supported. Only `http`, `email`, or `txt` are accepted. Check your input and try again.")
		case in.SSL.Type != "dv":
			r = failure(http.StatusBadRequest, 1433, "The validation type is not supported. Only 'dv' is accepted. Check your input and try again.")
		default:
			return in, nil
		}
		return in, &r
	}
	return in, nil
}

func (s *Server) metadataDenied(in hostnameInput) *response {
	if in.CustomMetadata != nil && !s.metadataAccess {
		r := failure(http.StatusForbidden, 1413, "No custom metadata access has been allocated for this zone.")
		return &r
	}
	return nil
}

func (s *Server) createHostname(body []byte) response {
	in, bad := decodeHostnameInput(body)
	if bad != nil {
		return *bad
	}
	if in.Hostname == nil {
		return failure(http.StatusBadRequest, 1407, "Invalid custom hostname. Custom hostnames have to be smaller than 256 characters in length, cannot be IP addresses, cannot contain any special characters.")
	}
	name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(*in.Hostname)), ".")
	if r := validateHostname(name); r != nil {
		return *r
	}
	if r := s.metadataDenied(in); r != nil {
		return *r
	}
	if s.lookupHostname(name) != nil {
		return failure(http.StatusConflict, 1406, "Duplicate custom hostname found.")
	}
	method := "txt"
	if in.SSL != nil {
		method = in.SSL.Method
	}
	h := s.newHostname(name, method, in.CustomMetadata)
	s.hostnames = append(s.hostnames, h)
	// The create answer has no validation records yet (docs/CLOUDFLARE.md §2: "GET again later").
	return success(http.StatusCreated, s.hostnameJSON(h))
}

func (s *Server) patchHostname(h *hostname, body []byte) response {
	in, bad := decodeHostnameInput(body)
	if bad != nil {
		return *bad
	}
	if in.Hostname != nil && !strings.EqualFold(*in.Hostname, h.Hostname) {
		return failure(http.StatusConflict, 1439, "Modifying the custom hostname is not supported. Check your input and try again.")
	}
	if r := s.metadataDenied(in); r != nil {
		return *r
	}
	if in.CustomMetadata != nil {
		h.CustomMetadata = in.CustomMetadata
	}
	if in.SSL != nil && in.SSL.Method != h.SSLMethod {
		h.SSLMethod, h.SSLStatus, h.validation = in.SSL.Method, "initializing", nil
	}
	if h.Status == "moved" { // a PATCH revalidates a moved hostname (docs/CLOUDFLARE.md §2)
		h.Status = "pending"
	}
	if in.SSL != nil && strings.HasSuffix(h.SSLStatus, "_timed_out") {
		// The same ssl.method and ssl.type again restart validation of a timed-out certificate.
		h.SSLStatus, h.validation = "initializing", nil
	}
	h.read()
	return success(http.StatusAccepted, s.hostnameJSON(h))
}

func validateHostname(name string) *response {
	var r response
	switch {
	case name == "" || len(name) > 255 || net.ParseIP(name) != nil || strings.ContainsAny(name, "`~!@#$%^&*()=+{}[]\\|;:'\",<>/? ") || !strings.Contains(name, "."):
		r = failure(http.StatusBadRequest, 1407, fmt.Sprintf("Invalid custom hostname. Custom hostnames have to be smaller than 256 characters in length, cannot be IP addresses, cannot contain any special characters such as ``~`!@#$%%^&*()=+{}[]\\ (%s)", name))
	case strings.IndexFunc(name, func(c rune) bool { return c > 127 }) >= 0:
		r = failure(http.StatusBadRequest, 1408, "Custom hostnames with non-ASCII characters are not supported. Check your input and try again.")
	case name == "example.com" || name == "example.net" || name == "example.org" ||
		strings.HasSuffix(name, ".example.com") || strings.HasSuffix(name, ".example.net") || strings.HasSuffix(name, ".example.org"):
		r = failure(http.StatusBadRequest, 1411, "Custom hostnames ending in example.com, example.net, or example.org are prohibited. Check your input and try again.")
	default:
		return nil
	}
	return &r
}

// listHostnames supports id, hostname (legacy exact), hostname.exact, hostname.contain,
// hostname.startsWith, ssl_status, hostname_status, page and per_page (default 20, max 50).
func (s *Server) listHostnames(r *http.Request) response {
	q := r.URL.Query()
	var matched []customHostnameJSON
	for _, h := range s.hostnames {
		if v := q.Get("id"); v != "" && h.ID != v {
			continue
		}
		if v := strings.ToLower(q.Get("hostname")); v != "" && h.Hostname != v {
			continue
		}
		if v := strings.ToLower(q.Get("hostname.exact")); v != "" && h.Hostname != v {
			continue
		}
		if v := strings.ToLower(q.Get("hostname.contain")); v != "" && !strings.Contains(h.Hostname, v) {
			continue
		}
		if v := strings.ToLower(q.Get("hostname.startsWith")); v != "" && !strings.HasPrefix(h.Hostname, v) {
			continue
		}
		h.read()
		if v := q.Get("ssl_status"); v != "" && h.SSLStatus != v {
			continue
		}
		if v := q.Get("hostname_status"); v != "" && h.Status != v {
			continue
		}
		matched = append(matched, s.hostnameJSON(h))
	}
	page, info := paginate(q, matched, 20, 50)
	resp := success(http.StatusOK, page)
	resp.env.ResultInfo = info
	return resp
}
