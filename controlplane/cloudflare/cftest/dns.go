package cftest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Record is a DNS record as the fake stores it.
type Record struct {
	ID         string
	Type       string
	Name       string // full, lower case
	Content    string
	Proxied    bool
	TTL        float64 // 1 = automatic
	Comment    string
	Tags       []string
	CreatedOn  time.Time
	ModifiedOn time.Time
}

// recordJSON is the v4 DNS record object.
type recordJSON struct {
	ID                string          `json:"id"`
	ZoneID            string          `json:"zone_id"`
	ZoneName          string          `json:"zone_name"`
	Name              string          `json:"name"`
	Type              string          `json:"type"`
	Content           string          `json:"content"`
	Proxiable         bool            `json:"proxiable"`
	Proxied           bool            `json:"proxied"`
	TTL               float64         `json:"ttl"`
	Settings          struct{}        `json:"settings"`
	Meta              struct{}        `json:"meta"`
	Comment           *string         `json:"comment"`
	Tags              []string        `json:"tags"`
	CreatedOn         time.Time       `json:"created_on"`
	ModifiedOn        time.Time       `json:"modified_on"`
	CommentModifiedOn *time.Time      `json:"comment_modified_on,omitempty"`
	Data              json.RawMessage `json:"data,omitempty"`
}

func (s *Server) recordJSON(r *Record) recordJSON {
	out := recordJSON{
		ID: r.ID, ZoneID: s.ZoneID, ZoneName: s.ZoneName, Name: r.Name, Type: r.Type, Content: r.Content,
		Proxiable: r.Type == "A" || r.Type == "AAAA" || r.Type == "CNAME", Proxied: r.Proxied, TTL: r.TTL,
		Tags: append([]string{}, r.Tags...), CreatedOn: r.CreatedOn, ModifiedOn: r.ModifiedOn,
	}
	if r.Comment != "" {
		c, t := r.Comment, r.ModifiedOn
		out.Comment, out.CommentModifiedOn = &c, &t
	}
	return out
}

// Records returns a snapshot of the zone's records in creation order.
func (s *Server) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.records))
	for _, r := range s.records {
		c := *r
		c.Tags = append([]string(nil), r.Tags...)
		out = append(out, c)
	}
	return out
}

// AddRecord plants a record directly (a foreign record, or one of ours made by an earlier run)
// and returns it with its id. It skips the API's conflict rules, so tests can build states the
// API would refuse. Name is made full and lower case; TTL defaults to 1.
func (s *Server) AddRecord(r Record) Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.ID == "" {
		r.ID = randomHex(16)
	}
	r.Name = s.fullName(r.Name)
	r.Type = strings.ToUpper(r.Type)
	if r.TTL == 0 {
		r.TTL = 1
	}
	now := time.Now().UTC()
	if r.CreatedOn.IsZero() {
		r.CreatedOn = now
	}
	if r.ModifiedOn.IsZero() {
		r.ModifiedOn = r.CreatedOn
	}
	c := r
	s.records = append(s.records, &c)
	return r
}

// DeleteRecordBehindBack removes a record as an operator in the dashboard would; it reports
// whether the record existed.
func (s *Server) DeleteRecordBehindBack(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.records {
		if r.ID == id {
			s.records = append(s.records[:i], s.records[i+1:]...)
			return true
		}
	}
	return false
}

// fullName makes a name full and lower case the way Cloudflare stores it: "@" is the apex and
// a name outside the zone gets the zone appended.
func (s *Server) fullName(name string) string {
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	switch {
	case name == "" || name == "@":
		return s.ZoneName
	case name == s.ZoneName || strings.HasSuffix(name, "."+s.ZoneName):
		return name
	}
	return name + "." + s.ZoneName
}

func (s *Server) findRecord(id string) (int, *Record) {
	for i, r := range s.records {
		if r.ID == id {
			return i, r
		}
	}
	return -1, nil
}

var notFoundRecord = failure(http.StatusNotFound, 81044, "Record does not exist.")

func (s *Server) dnsRecords(r *http.Request, id string, body []byte) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case id == "" && r.Method == http.MethodGet:
		return s.listRecords(r.URL.Query())
	case id == "" && r.Method == http.MethodPost:
		return s.writeRecord(nil, body, false)
	case id == "":
		return methodNotAllowed(r)
	}
	i, rec := s.findRecord(id)
	switch r.Method {
	case http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if rec == nil {
			return notFoundRecord
		}
	default:
		return methodNotAllowed(r)
	}
	switch r.Method {
	case http.MethodGet:
		return success(http.StatusOK, s.recordJSON(rec))
	case http.MethodPut:
		return s.writeRecord(rec, body, false)
	case http.MethodPatch:
		return s.writeRecord(rec, body, true)
	default:
		s.records = append(s.records[:i], s.records[i+1:]...)
		return success(http.StatusOK, map[string]string{"id": id})
	}
}

func methodNotAllowed(r *http.Request) response {
	return failure(http.StatusMethodNotAllowed, 7001, "Method "+r.Method+" not available for that URI.")
}

var knownTypes = map[string]bool{"A": true, "AAAA": true, "CNAME": true, "TXT": true, "MX": true, "NS": true,
	"SRV": true, "CAA": true, "PTR": true, "HTTPS": true, "SVCB": true}

// writeRecord creates (old == nil), overwrites (PUT) or patches a record after Cloudflare's
// validation and conflict rules.
func (s *Server) writeRecord(old *Record, body []byte, patch bool) response {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil || in == nil {
		return failure(http.StatusBadRequest, 9207, "Request body is invalid.")
	}
	next := Record{TTL: 1}
	if patch {
		next = *old
	}
	var bad bool
	str := func(key string, dst *string) {
		if v, ok := in[key]; ok && string(v) != "null" {
			bad = bad || json.Unmarshal(v, dst) != nil
		}
	}
	str("type", &next.Type)
	str("name", &next.Name)
	str("content", &next.Content)
	str("comment", &next.Comment)
	if v, ok := in["proxied"]; ok {
		bad = bad || json.Unmarshal(v, &next.Proxied) != nil
	}
	if v, ok := in["ttl"]; ok {
		bad = bad || json.Unmarshal(v, &next.TTL) != nil
	}
	if v, ok := in["tags"]; ok {
		bad = bad || json.Unmarshal(v, &next.Tags) != nil
	}
	if bad {
		return failure(http.StatusBadRequest, 9207, "Request body is invalid.")
	}
	next.Type = strings.ToUpper(next.Type)
	switch {
	case !knownTypes[next.Type]:
		return failure(http.StatusBadRequest, 9020, "Invalid DNS record type")
	case strings.TrimSpace(next.Name) == "":
		return failure(http.StatusBadRequest, 9000, "DNS name is invalid.")
	case strings.TrimSpace(next.Content) == "":
		return failure(http.StatusBadRequest, 9004, "Content for "+next.Type+" record is invalid.")
	case next.TTL != 1 && (next.TTL < 60 || next.TTL > 86400):
		return failure(http.StatusBadRequest, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for automatic.")
	}
	next.Name = s.fullName(next.Name)
	if next.Type == "CNAME" {
		next.Content = strings.TrimSuffix(strings.ToLower(next.Content), ".")
	}
	if next.Proxied {
		next.TTL = 1 // proxied records are always automatic
	}
	exclude := ""
	if old != nil {
		exclude = old.ID
	}
	if code, msg, conflict := s.conflict(next, exclude); conflict {
		return failure(http.StatusBadRequest, code, msg)
	}
	now := time.Now().UTC()
	if old == nil {
		next.ID, next.CreatedOn, next.ModifiedOn = randomHex(16), now, now
		c := next
		s.records = append(s.records, &c)
		return success(http.StatusOK, s.recordJSON(&c))
	}
	next.ID, next.CreatedOn, next.ModifiedOn = old.ID, old.CreatedOn, now
	*old = next
	return success(http.StatusOK, s.recordJSON(old))
}

// conflict applies Cloudflare's same-name rules: an identical record is refused (81058); a
// CNAME cannot share its name with another CNAME (81054) or any other record (81053), and no
// record can join a CNAME (81054).
func (s *Server) conflict(n Record, exclude string) (code int, msg string, conflict bool) {
	var others []*Record
	for _, r := range s.records {
		if r.ID != exclude && r.Name == n.Name {
			others = append(others, r)
		}
	}
	for _, r := range others {
		if r.Type == n.Type && strings.EqualFold(r.Content, n.Content) {
			return 81058, "An identical record already exists.", true
		}
	}
	for _, r := range others {
		switch {
		case n.Type == "CNAME" && r.Type == "CNAME", n.Type != "CNAME" && r.Type == "CNAME":
			return 81054, "A CNAME record with that host already exists.", true
		case n.Type == "CNAME":
			return 81053, "An A, AAAA, or CNAME record with that host already exists.", true
		}
	}
	return 0, "", false
}

// listRecords supports the filters the SDK sends (match=all semantics; name and comment filters
// are case-insensitive like Cloudflare's): type, name (legacy exact), name.exact,
// name.contains, name.startswith, name.endswith, content / content.exact, proxied,
// comment.exact, comment.contains, comment.startswith, comment.endswith, comment.present,
// comment.absent.
func (s *Server) listRecords(q url.Values) response {
	var matched []recordJSON
	for _, r := range s.records {
		if recordMatches(r, q, s) {
			matched = append(matched, s.recordJSON(r))
		}
	}
	page, info := paginate(q, matched, 100, s.maxPerPage)
	resp := success(http.StatusOK, page)
	resp.env.ResultInfo = info
	return resp
}

func recordMatches(r *Record, q url.Values, s *Server) bool {
	lower := strings.ToLower
	has := func(k string) (string, bool) {
		if _, ok := q[k]; !ok {
			return "", false
		}
		return q.Get(k), true
	}
	if v, ok := has("type"); ok && !strings.EqualFold(v, r.Type) {
		return false
	}
	for _, k := range []string{"name", "name.exact"} {
		if v, ok := has(k); ok && s.fullName(v) != r.Name {
			return false
		}
	}
	if v, ok := has("name.contains"); ok && !strings.Contains(r.Name, lower(v)) {
		return false
	}
	if v, ok := has("name.startswith"); ok && !strings.HasPrefix(r.Name, lower(v)) {
		return false
	}
	if v, ok := has("name.endswith"); ok && !strings.HasSuffix(r.Name, lower(v)) {
		return false
	}
	for _, k := range []string{"content", "content.exact"} {
		if v, ok := has(k); ok && !strings.EqualFold(v, r.Content) {
			return false
		}
	}
	if v, ok := has("proxied"); ok {
		if b, err := strconv.ParseBool(v); err == nil && b != r.Proxied {
			return false
		}
	}
	c := lower(r.Comment)
	if v, ok := has("comment.exact"); ok && c != lower(v) {
		return false
	}
	if v, ok := has("comment.contains"); ok && !strings.Contains(c, lower(v)) {
		return false
	}
	if v, ok := has("comment.startswith"); ok && !strings.HasPrefix(c, lower(v)) {
		return false
	}
	if v, ok := has("comment.endswith"); ok && !strings.HasSuffix(c, lower(v)) {
		return false
	}
	if _, ok := has("comment.present"); ok && r.Comment == "" {
		return false
	}
	if _, ok := has("comment.absent"); ok && r.Comment != "" {
		return false
	}
	return true
}
