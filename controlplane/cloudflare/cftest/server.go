package cftest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server is a fake Cloudflare API for one zone. All methods are safe for concurrent use.
type Server struct {
	Token    string // the only accepted bearer token
	ZoneID   string // the only zone (32 hex digits)
	ZoneName string // "sajet.us"

	srv      *httptest.Server
	inFlight atomic.Int64

	mu             sync.Mutex
	records        []*Record // creation order
	hostnames      []*hostname
	calls          []Call
	faults         []fault
	failAfterApply int
	dropAfterApply int
	latency        time.Duration
	maxPerPage     int
	metadataAccess bool
}

// Call is one request the server received.
type Call struct {
	Method string
	Path   string // full path, e.g. /client/v4/zones/<zone>/dns_records
	Query  url.Values
	Body   []byte
	Status int // 0 when the connection was dropped
}

type fault struct {
	method     string // "" = any request
	status     int
	code       int
	message    string
	retryAfter time.Duration
	rawBody    string // non-JSON body (an edge error page) when set
}

// DefaultMaxPerPage is the largest per_page the fake honours for DNS listings (Cloudflare's
// schema maximum, dns-records_per_page); larger values are capped, like SetMaxPerPage.
const DefaultMaxPerPage = 5_000_000

// New starts a fake on 127.0.0.1 for zone "sajet.us" with a random token and zone id; t.Cleanup
// closes it.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{Token: "cftest-" + randomHex(16), ZoneID: randomHex(16), ZoneName: "sajet.us", maxPerPage: DefaultMaxPerPage}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

// URL returns the API base including /client/v4/, e.g. http://127.0.0.1:41234/client/v4/.
func (s *Server) URL() string { return s.srv.URL + "/client/v4/" }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// SetMaxPerPage caps per_page for DNS listings (to test paging with few records).
func (s *Server) SetMaxPerPage(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPerPage = n
}

// SetCustomMetadataAccess enables custom_metadata on custom hostnames. Off (the default, as on
// a zone Cloudflare has not enabled it for), a request carrying it gets 403 code 1413.
func (s *Server) SetCustomMetadataAccess(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metadataAccess = on
}

// FailNext makes the next n requests, whatever they are (checked before authentication), fail
// with status and a Cloudflare error without applying anything (e.g. a burst of 502s).
func (s *Server) FailNext(n, status, code int, message string) {
	s.addFaults(n, fault{status: status, code: code, message: message})
}

// FailNextMethod is FailNext for the next n requests with the given method only (e.g. make a
// PUT find its record gone: FailNextMethod("PUT", 1, 404, 81044, "Record does not exist.")).
func (s *Server) FailNextMethod(method string, n, status, code int, message string) {
	s.addFaults(n, fault{method: method, status: status, code: code, message: message})
}

// FailNextRaw makes the next n requests fail with status and a non-JSON body, like an edge
// error page.
func (s *Server) FailNextRaw(n, status int, body string) {
	s.addFaults(n, fault{status: status, rawBody: body})
}

// RateLimit makes the next n requests answer 429 (code 971) with a Retry-After header of
// retryAfter rounded up to whole seconds.
func (s *Server) RateLimit(n int, retryAfter time.Duration) {
	s.addFaults(n, fault{status: http.StatusTooManyRequests, code: 971,
		message: "Please wait and consider throttling your request speed", retryAfter: retryAfter})
}

func (s *Server) addFaults(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// FailAfterApply makes the next n successful writes (POST, PUT, PATCH, DELETE) take effect and
// then answer 500: the client cannot tell whether its write happened.
func (s *Server) FailAfterApply(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAfterApply += n
}

// DropAfterApply is FailAfterApply with the connection closed instead of an answer.
func (s *Server) DropAfterApply(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAfterApply += n
}

// SetLatency makes every request wait d before it is handled. The request is handled even if
// the client gave up meanwhile (Cloudflare does not undo a write when the caller disconnects).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// InFlight returns how many requests are being handled now.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// Calls returns the requests handled so far, in the order they finished.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallCount returns len(Calls()).
func (s *Server) CallCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// ResetCalls forgets the recorded calls (to count only what a test step does).
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// ServeHTTP handles one API request: latency, injected faults, authentication, routing, and
// FailAfterApply/DropAfterApply on successful writes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(body) == 0 {
		body = nil
	}
	call := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body}
	defer func() { // runs on the http.ErrAbortHandler panic too (Status stays 0)
		s.mu.Lock()
		s.calls = append(s.calls, call)
		s.mu.Unlock()
	}()

	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}

	resp := s.handle(r, body)
	if resp.status < 300 && isWrite(r.Method) {
		s.mu.Lock()
		drop := s.dropAfterApply > 0
		fail := !drop && s.failAfterApply > 0
		if drop {
			s.dropAfterApply--
		} else if fail {
			s.failAfterApply--
		}
		s.mu.Unlock()
		if drop {
			panic(http.ErrAbortHandler) // the server closes the connection without an answer
		}
		if fail {
			resp = failure(http.StatusInternalServerError, 1500, "Internal Server Error")
		}
	}
	call.Status = resp.status
	resp.write(w)
}

func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete
}

// faultFor returns the index of the first pending fault for method, or -1. Caller holds s.mu.
func (s *Server) faultFor(method string) int {
	for i, f := range s.faults {
		if f.method == "" || f.method == method {
			return i
		}
	}
	return -1
}

var zoneIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (s *Server) handle(r *http.Request, body []byte) response {
	s.mu.Lock()
	if i := s.faultFor(r.Method); i >= 0 {
		f := s.faults[i]
		s.faults = append(s.faults[:i], s.faults[i+1:]...)
		s.mu.Unlock()
		if f.rawBody != "" {
			return response{status: f.status, raw: f.rawBody}
		}
		resp := failure(f.status, f.code, f.message)
		if f.retryAfter > 0 {
			resp.header = http.Header{"Retry-After": {strconv.Itoa(int(math.Ceil(f.retryAfter.Seconds())))}}
		}
		return resp
	}
	s.mu.Unlock()

	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		return failure(http.StatusUnauthorized, 10000, "Authentication error")
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/client/v4/")
	if !ok {
		return failure(http.StatusBadRequest, 7000, "No route for that URI")
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) < 3 || parts[0] != "zones" || len(parts) > 4 {
		return failure(http.StatusBadRequest, 7000, "No route for that URI")
	}
	zone, collection, id := parts[1], parts[2], ""
	if len(parts) == 4 {
		id = parts[3]
	}
	switch {
	case !zoneIDPattern.MatchString(zone):
		return response{status: http.StatusBadRequest, env: envelope{Errors: []apiMessage{
			{Code: 7003, Message: fmt.Sprintf("Could not route to %s, perhaps your object identifier is invalid?", r.URL.Path)},
			{Code: 7000, Message: "No route for that URI"},
		}}}
	case zone != s.ZoneID:
		return failure(http.StatusForbidden, 10000, "Authentication error")
	}
	switch collection {
	case "dns_records":
		return s.dnsRecords(r, id, body)
	case "custom_hostnames":
		return s.customHostnames(r, id, body)
	}
	return failure(http.StatusBadRequest, 7000, "No route for that URI")
}

// The v4 envelope.
type envelope struct {
	Success    bool         `json:"success"`
	Errors     []apiMessage `json:"errors"`
	Messages   []apiMessage `json:"messages"`
	Result     any          `json:"result"`
	ResultInfo *resultInfo  `json:"result_info,omitempty"`
}

type apiMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
	TotalPages int `json:"total_pages"`
}

type response struct {
	status int
	header http.Header
	env    envelope
	raw    string
}

func success(status int, result any) response {
	return response{status: status, env: envelope{Success: true, Result: result}}
}

func failure(status, code int, message string) response {
	return response{status: status, env: envelope{Errors: []apiMessage{{Code: code, Message: message}}}}
}

func (r response) write(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if r.raw != "" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, r.raw)
		return
	}
	env := r.env
	if env.Errors == nil {
		env.Errors = []apiMessage{}
	}
	if env.Messages == nil {
		env.Messages = []apiMessage{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(env)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.status)
	_, _ = w.Write(buf.Bytes())
}

// paginate slices items for page/per_page (defaults 1 and def, per_page capped at limit) and
// says so in result_info. A page past the end is empty, as on Cloudflare.
func paginate[T any](q url.Values, items []T, def, limit int) ([]T, *resultInfo) {
	page, _ := strconv.Atoi(q.Get("page"))
	if page < 1 {
		page = 1
	}
	perF, _ := strconv.ParseFloat(q.Get("per_page"), 64)
	per := int(perF)
	if per < 1 {
		per = def
	}
	if per > limit {
		per = limit
	}
	total := len(items)
	pages := (total + per - 1) / per
	start := min((page-1)*per, total)
	end := min(start+per, total)
	out := append([]T{}, items[start:end]...)
	return out, &resultInfo{Page: page, PerPage: per, Count: len(out), TotalCount: total, TotalPages: pages}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
