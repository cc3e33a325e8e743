package cftest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/google/go-cmp/cmp"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
)

// answer is a decoded response: status, headers and the raw envelope.
type answer struct {
	status int
	header http.Header
	env    map[string]json.RawMessage
}

func (a answer) errors(t *testing.T) []map[string]any {
	t.Helper()
	var errs []map[string]any
	if err := json.Unmarshal(a.env["errors"], &errs); err != nil {
		t.Fatalf("errors: %v", err)
	}
	return errs
}

// code returns the first error code, or 0.
func (a answer) code(t *testing.T) int {
	t.Helper()
	if errs := a.errors(t); len(errs) > 0 {
		return int(errs[0]["code"].(float64))
	}
	return 0
}

func (a answer) result(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.env["result"], v); err != nil {
		t.Fatalf("result %s: %v", a.env["result"], err)
	}
}

// do sends one authenticated request (path relative to the zone; "/" for none) and decodes the
// envelope.
func do(t *testing.T, s *cftest.Server, method, path string, body any) answer {
	t.Helper()
	return doAs(t, s, "Bearer "+s.Token, method, s.URL()+"zones/"+s.ZoneID+path, body)
}

func doAs(t *testing.T, s *cftest.Server, auth, method, u string, body any) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header}
	if err := json.Unmarshal(raw, &a.env); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, u, raw, err)
	}
	return a
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for _, k := range []string{"success", "errors", "messages", "result", "result_info"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	if len(out) != len(m) {
		out = append(out, fmt.Sprintf("+%d unexpected", len(m)-len(out)))
	}
	return out
}

func cname(name, content, comment string) map[string]any {
	return map[string]any{"type": "CNAME", "name": name, "content": content, "proxied": true, "ttl": 1, "comment": comment}
}

func TestEnvelopeHasTheV4Shape(t *testing.T) {
	t.Parallel()
	s := cftest.New(t)
	created := do(t, s, "POST", "/dns_records", cname("App.sajet.us", "x.cfargotunnel.com", "c"))
	if created.status != 200 || string(created.env["success"]) != "true" {
		t.Fatalf("create: %d %v", created.status, created.env)
	}
	if diff := cmp.Diff([]string{"success", "errors", "messages", "result"}, keys(created.env)); diff != "" {
		t.Errorf("single-object envelope keys (-want +got):\n%s", diff)
	}
	if string(created.env["errors"]) != "[]" || string(created.env["messages"]) != "[]" {
		t.Errorf("errors %s messages %s, want empty arrays", created.env["errors"], created.env["messages"])
	}
	var rec map[string]any
	created.result(t, &rec)
	for _, k := range []string{"id", "name", "type", "content", "proxied", "proxiable", "ttl", "comment", "created_on", "modified_on"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("record lacks %q: %v", k, rec)
		}
	}
	if rec["name"] != "app.sajet.us" {
		t.Errorf("name %v, want it full and lower case", rec["name"])
	}

	list := do(t, s, "GET", "/dns_records", nil)
	if diff := cmp.Diff([]string{"success", "errors", "messages", "result", "result_info"}, keys(list.env)); diff != "" {
		t.Errorf("list envelope keys (-want +got):\n%s", diff)
	}
	var info map[string]int
	_ = json.Unmarshal(list.env["result_info"], &info)
	if diff := cmp.Diff(map[string]int{"page": 1, "per_page": 100, "count": 1, "total_count": 1, "total_pages": 1}, info); diff != "" {
		t.Errorf("result_info (-want +got):\n%s", diff)
	}

	failed := do(t, s, "GET", "/dns_records/0123456789abcdef0123456789abcdef", nil)
	if failed.status != 404 || string(failed.env["success"]) != "false" || string(failed.env["result"]) != "null" || failed.code(t) != 81044 {
		t.Errorf("missing record: %d %v, want 404 success=false result=null code 81044", failed.status, failed.env)
	}
}

func TestAuthenticationAndZone(t *testing.T) {
	t.Parallel()
	s := cftest.New(t)
	for _, tc := range []struct {
		name       string
		auth, zone string
		wantStatus int
		wantCode   int
	}{
		{name: "no token is an authentication error", zone: s.ZoneID, wantStatus: 401, wantCode: 10000},
		{name: "a wrong token is an authentication error", auth: "Bearer nope", zone: s.ZoneID, wantStatus: 401, wantCode: 10000},
		{name: "a zone the token cannot see is forbidden", auth: "Bearer " + s.Token, zone: "0123456789abcdef0123456789abcdef", wantStatus: 403, wantCode: 10000},
		{name: "a malformed zone id cannot be routed", auth: "Bearer " + s.Token, zone: "sajet.us", wantStatus: 400, wantCode: 7003},
		{name: "the right token and zone work", auth: "Bearer " + s.Token, zone: s.ZoneID, wantStatus: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := doAs(t, s, tc.auth, "GET", s.URL()+"zones/"+tc.zone+"/dns_records", nil)
			if a.status != tc.wantStatus || a.code(t) != tc.wantCode {
				t.Errorf("got %d code %d, want %d code %d", a.status, a.code(t), tc.wantStatus, tc.wantCode)
			}
		})
	}
}

func TestListingFiltersAndPages(t *testing.T) {
	t.Parallel()
	s := cftest.New(t)
	s.AddRecord(cftest.Record{Type: "CNAME", Name: "a", Content: "t.cfargotunnel.com", Comment: "managed-by:sajet domain:1"})
	s.AddRecord(cftest.Record{Type: "TXT", Name: "a.sajet.us", Content: "hello", Comment: "MANAGED-BY:SAJET domain:2"})
	s.AddRecord(cftest.Record{Type: "A", Name: "b", Content: "192.0.2.1", Comment: "ops"})
	s.AddRecord(cftest.Record{Type: "A", Name: "sub.a", Content: "192.0.2.2"})
	s.AddRecord(cftest.Record{Type: "CNAME", Name: "c", Content: "t.cfargotunnel.com", Comment: "managed-by:sajet domain:3"})

	names := func(a answer) []string {
		var recs []struct{ Name, Type string }
		a.result(t, &recs)
		var out []string
		for _, r := range recs {
			out = append(out, r.Type+" "+r.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		query string
		want  []string
	}{
		{name: "name.exact matches one name, any type, ignoring case", query: "name.exact=A.SAJET.US", want: []string{"CNAME a.sajet.us", "TXT a.sajet.us"}},
		{name: "the legacy name parameter is exact too", query: "name=a.sajet.us&type=TXT", want: []string{"TXT a.sajet.us"}},
		{name: "comment.startswith ignores case", query: "comment.startswith=managed-by:sajet", want: []string{"CNAME a.sajet.us", "TXT a.sajet.us", "CNAME c.sajet.us"}},
		{name: "type narrows", query: "type=A", want: []string{"A b.sajet.us", "A sub.a.sajet.us"}},
		{name: "comment.absent finds uncommented records", query: "comment.absent=", want: []string{"A sub.a.sajet.us"}},
		{name: "page 2 of 2-per-page", query: "per_page=2&page=2", want: []string{"A b.sajet.us", "A sub.a.sajet.us"}},
		{name: "the last, short page", query: "per_page=2&page=3", want: []string{"CNAME c.sajet.us"}},
		{name: "a page past the end is empty", query: "per_page=2&page=4", want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, s, "GET", "/dns_records?"+tc.query, nil)
			if a.status != 200 {
				t.Fatalf("status %d %v", a.status, a.env)
			}
			if diff := cmp.Diff(tc.want, names(a)); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}

	s.SetMaxPerPage(2)
	a := do(t, s, "GET", "/dns_records?per_page=5000&page=4", nil)
	var info map[string]int
	_ = json.Unmarshal(a.env["result_info"], &info)
	if diff := cmp.Diff(map[string]int{"page": 4, "per_page": 2, "count": 0, "total_count": 5, "total_pages": 3}, info); diff != "" {
		t.Errorf("capped page past the end: result_info (-want +got):\n%s", diff)
	}
	if string(a.env["result"]) != "[]" {
		t.Errorf("result %s, want []", a.env["result"])
	}
}

// The SDK's auto-pager stops only on an empty page: the fake must give one.
func TestTheSDKAutoPagerTerminates(t *testing.T) {
	t.Parallel()
	s := cftest.New(t)
	s.SetMaxPerPage(3)
	for i := range 10 {
		s.AddRecord(cftest.Record{Type: "A", Name: fmt.Sprintf("h%d", i), Content: "192.0.2.1"})
	}
	svc := dns.NewRecordService(option.WithBaseURL(s.URL()), option.WithAPIToken(s.Token), option.WithMaxRetries(0), option.WithHTTPClient(s.Client()))
	var params dns.RecordListParams
	params.ZoneID.Value, params.ZoneID.Present = s.ZoneID, true
	iter := svc.ListAutoPaging(context.Background(), params)
	n := 0
	for iter.Next() {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 10 || s.CallCount() != 5 {
		t.Errorf("%d records in %d calls, want 10 in 5 (4 pages + the empty one)", n, s.CallCount())
	}
}

func TestConflictRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		existing cftest.Record
		create   map[string]any
		wantCode int // 0: created
	}{
		{name: "a CNAME cannot join an A record", existing: cftest.Record{Type: "A", Name: "x", Content: "192.0.2.1"},
			create: cname("x.sajet.us", "t.cfargotunnel.com", ""), wantCode: 81053},
		{name: "a CNAME cannot join a TXT record", existing: cftest.Record{Type: "TXT", Name: "x", Content: "v"},
			create: cname("x.sajet.us", "t.cfargotunnel.com", ""), wantCode: 81053},
		{name: "a second CNAME is refused", existing: cftest.Record{Type: "CNAME", Name: "x", Content: "other.example.net"},
			create: cname("x.sajet.us", "t.cfargotunnel.com", ""), wantCode: 81054},
		{name: "an identical CNAME is refused as identical", existing: cftest.Record{Type: "CNAME", Name: "x", Content: "t.cfargotunnel.com"},
			create: cname("X.sajet.us.", "T.cfargotunnel.com", "other comment"), wantCode: 81058},
		{name: "an A record cannot join a CNAME", existing: cftest.Record{Type: "CNAME", Name: "x", Content: "t.cfargotunnel.com"},
			create: map[string]any{"type": "A", "name": "x.sajet.us", "content": "192.0.2.9", "ttl": 1}, wantCode: 81054},
		{name: "a second A record with another address is fine", existing: cftest.Record{Type: "A", Name: "x", Content: "192.0.2.1"},
			create: map[string]any{"type": "A", "name": "x.sajet.us", "content": "192.0.2.2", "ttl": 1}},
		{name: "an A record beside a TXT record is fine", existing: cftest.Record{Type: "TXT", Name: "x", Content: "v"},
			create: map[string]any{"type": "A", "name": "x.sajet.us", "content": "192.0.2.2", "ttl": 1}},
		{name: "a CNAME under another name is fine", existing: cftest.Record{Type: "A", Name: "x", Content: "192.0.2.1"},
			create: cname("y.sajet.us", "t.cfargotunnel.com", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := cftest.New(t)
			s.AddRecord(tc.existing)
			a := do(t, s, "POST", "/dns_records", tc.create)
			wantStatus := 200
			if tc.wantCode != 0 {
				wantStatus = 400
			}
			if a.status != wantStatus || a.code(t) != tc.wantCode {
				t.Errorf("got %d code %d (%s), want %d code %d", a.status, a.code(t), a.env["errors"], wantStatus, tc.wantCode)
			}
			if want := map[bool]int{true: 1, false: 2}[tc.wantCode != 0]; len(s.Records()) != want {
				t.Errorf("%d records, want %d", len(s.Records()), want)
			}
		})
	}
}

func TestUpdatesAndDeletes(t *testing.T) {
	t.Parallel()
	s := cftest.New(t)
	r := s.AddRecord(cftest.Record{Type: "CNAME", Name: "x", Content: "old.cfargotunnel.com", Comment: "c"})
	s.AddRecord(cftest.Record{Type: "A", Name: "y", Content: "192.0.2.1"})

	if a := do(t, s, "PUT", "/dns_records/"+r.ID, cname("x.sajet.us", "new.cfargotunnel.com", "c2")); a.status != 200 {
		t.Errorf("PUT over itself: %d %s (a record does not conflict with itself)", a.status, a.env["errors"])
	}
	if a := do(t, s, "PATCH", "/dns_records/"+r.ID, map[string]any{"proxied": false}); a.status != 200 {
		t.Errorf("PATCH: %d %s", a.status, a.env["errors"])
	}
	got := s.Records()[0]
	if got.Content != "new.cfargotunnel.com" || got.Comment != "c2" || got.Proxied {
		t.Errorf("after PUT and PATCH %+v, want new content, comment c2, not proxied", got)
	}
	if a := do(t, s, "PATCH", "/dns_records/"+r.ID, map[string]any{"name": "y.sajet.us"}); a.status != 400 || a.code(t) != 81053 {
		t.Errorf("PATCH a CNAME onto an A record's name: %d code %d, want 400 81053", a.status, a.code(t))
	}
	if a := do(t, s, "POST", "/dns_records", "{not json"); a.status != 400 || a.code(t) != 9207 {
		t.Errorf("invalid JSON: %d code %d, want 400 9207", a.status, a.code(t))
	}
	if a := do(t, s, "DELETE", "/dns_records/"+r.ID, nil); a.status != 200 {
		t.Errorf("DELETE: %d", a.status)
	}
	if a := do(t, s, "DELETE", "/dns_records/"+r.ID, nil); a.status != 404 || a.code(t) != 81044 {
		t.Errorf("DELETE again: %d code %d, want 404 81044", a.status, a.code(t))
	}
	if !s.DeleteRecordBehindBack(s.Records()[0].ID) || len(s.Records()) != 0 {
		t.Error("DeleteRecordBehindBack did not remove the record")
	}
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	t.Run("FailNext fails before applying", func(t *testing.T) {
		t.Parallel()
		s := cftest.New(t)
		s.FailNext(2, 502, 10000, "Bad gateway")
		for range 2 {
			if a := do(t, s, "POST", "/dns_records", cname("x", "t.cfargotunnel.com", "")); a.status != 502 || a.code(t) != 10000 {
				t.Errorf("got %d code %d, want 502 10000", a.status, a.code(t))
			}
		}
		if len(s.Records()) != 0 {
			t.Error("a failed request was applied")
		}
		if a := do(t, s, "POST", "/dns_records", cname("x", "t.cfargotunnel.com", "")); a.status != 200 {
			t.Errorf("third request %d, want 200", a.status)
		}
	})
	t.Run("FailNextMethod fails only that method", func(t *testing.T) {
		t.Parallel()
		s := cftest.New(t)
		s.FailNextMethod("DELETE", 1, 503, 10000, "unavailable")
		if a := do(t, s, "GET", "/dns_records", nil); a.status != 200 {
			t.Errorf("GET %d, want 200", a.status)
		}
		if a := do(t, s, "DELETE", "/dns_records/0123456789abcdef0123456789abcdef", nil); a.status != 503 {
			t.Errorf("DELETE %d, want 503", a.status)
		}
	})
	t.Run("RateLimit answers 429 with retry-after", func(t *testing.T) {
		t.Parallel()
		s := cftest.New(t)
		s.RateLimit(1, 1500*time.Millisecond)
		a := do(t, s, "GET", "/dns_records", nil)
		if a.status != 429 || a.code(t) != 971 || a.header.Get("Retry-After") != "2" {
			t.Errorf("got %d code %d retry-after %q, want 429 971 \"2\"", a.status, a.code(t), a.header.Get("Retry-After"))
		}
	})
	t.Run("FailAfterApply writes, then answers 500", func(t *testing.T) {
		t.Parallel()
		s := cftest.New(t)
		s.FailAfterApply(1)
		if a := do(t, s, "GET", "/dns_records", nil); a.status != 200 {
			t.Errorf("a read consumed FailAfterApply: %d", a.status)
		}
		if a := do(t, s, "POST", "/dns_records", cname("x", "t.cfargotunnel.com", "")); a.status != 500 {
			t.Errorf("write answered %d, want 500", a.status)
		}
		if len(s.Records()) != 1 {
			t.Error("the write was not applied")
		}
	})
	t.Run("DropAfterApply writes, then closes the connection", func(t *testing.T) {
		t.Parallel()
		s := cftest.New(t)
		s.DropAfterApply(1)
		req, _ := http.NewRequest("POST", s.URL()+"zones/"+s.ZoneID+"/dns_records", strings.NewReader(`{"type":"A","name":"x","content":"192.0.2.1","ttl":1}`))
		req.Header.Set("Authorization", "Bearer "+s.Token)
		if res, err := s.Client().Do(req); err == nil {
			res.Body.Close()
			t.Fatalf("got an answer (%d), want a dropped connection", res.StatusCode)
		}
		if len(s.Records()) != 1 {
			t.Error("the write was not applied")
		}
		if calls := s.Calls(); len(calls) != 1 || calls[0].Status != 0 || calls[0].Method != "POST" {
			t.Errorf("calls %+v, want one POST with status 0", calls)
		}
	})
	t.Run("SetLatency delays and InFlight sees the request", func(t *testing.T) {
		t.Parallel()
		s := cftest.New(t)
		s.SetLatency(200 * time.Millisecond)
		done := make(chan struct{})
		go func() {
			defer close(done)
			do(t, s, "GET", "/dns_records", nil)
		}()
		deadline := time.Now().Add(5 * time.Second)
		for s.InFlight() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if s.InFlight() != 1 {
			t.Error("InFlight never saw the slow request")
		}
		<-done
		if s.InFlight() != 0 {
			t.Errorf("InFlight %d after the answer, want 0", s.InFlight())
		}
	})
}

func TestCallsAreRecorded(t *testing.T) {
	t.Parallel()
	s := cftest.New(t)
	do(t, s, "POST", "/dns_records", cname("x", "t.cfargotunnel.com", ""))
	do(t, s, "GET", "/dns_records?name.exact=x.sajet.us", nil)
	calls := s.Calls()
	if len(calls) != 2 || s.CallCount() != 2 {
		t.Fatalf("%d calls", len(calls))
	}
	want := cftest.Call{Method: "GET", Path: "/client/v4/zones/" + s.ZoneID + "/dns_records", Query: url.Values{"name.exact": {"x.sajet.us"}}, Status: 200}
	if diff := cmp.Diff(want, calls[1]); diff != "" {
		t.Errorf("call (-want +got):\n%s", diff)
	}
	if calls[0].Status != 200 || !strings.Contains(string(calls[0].Body), `"content":"t.cfargotunnel.com"`) {
		t.Errorf("POST call %+v", calls[0])
	}
	s.ResetCalls()
	if s.CallCount() != 0 {
		t.Error("ResetCalls kept calls")
	}
}

// Concurrent creates of one CNAME: the conflict rules hold under -race, exactly one wins.
func TestConcurrentCreatesOfOneName(t *testing.T) {
	t.Parallel()
	s := cftest.New(t)
	var wg sync.WaitGroup
	statuses := make([]int, 10)
	for i := range statuses {
		wg.Go(func() {
			statuses[i] = do(t, s, "POST", "/dns_records", cname("x", fmt.Sprintf("t%d.cfargotunnel.com", i), "")).status
		})
	}
	wg.Wait()
	ok := 0
	for _, st := range statuses {
		if st == 200 {
			ok++
		}
	}
	if ok != 1 || len(s.Records()) != 1 {
		t.Errorf("%d creates succeeded, %d records; want 1 and 1", ok, len(s.Records()))
	}
}

func TestCustomHostnames(t *testing.T) {
	t.Parallel()
	s := cftest.New(t)
	create := map[string]any{"hostname": "WWW.Impulse-Max.com", "ssl": map[string]any{"method": "txt", "type": "dv"}}
	a := do(t, s, "POST", "/custom_hostnames", create)
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.env["errors"])
	}
	type ch struct {
		ID                    string            `json:"id"`
		Hostname              string            `json:"hostname"`
		Status                string            `json:"status"`
		VerificationErrors    []string          `json:"verification_errors"`
		OwnershipVerification map[string]string `json:"ownership_verification"`
		OwnershipHTTP         map[string]string `json:"ownership_verification_http"`
		SSL                   struct {
			Status            string              `json:"status"`
			Method            string              `json:"method"`
			Type              string              `json:"type"`
			ValidationRecords []map[string]string `json:"validation_records"`
		} `json:"ssl"`
	}
	var created ch
	a.result(t, &created)
	if created.Hostname != "www.impulse-max.com" || created.Status != "pending" || created.SSL.Status != "initializing" ||
		created.SSL.Method != "txt" || created.SSL.Type != "dv" || len(created.SSL.ValidationRecords) != 0 {
		t.Errorf("created %+v, want pending, ssl initializing (txt, dv) without validation records yet", created)
	}
	if created.OwnershipVerification["type"] != "txt" || created.OwnershipVerification["name"] != "_cf-custom-hostname.www.impulse-max.com" ||
		created.OwnershipVerification["value"] == "" || created.OwnershipHTTP["http_url"] == "" || created.OwnershipHTTP["http_body"] == "" {
		t.Errorf("ownership %v / %v", created.OwnershipVerification, created.OwnershipHTTP)
	}

	var read ch
	do(t, s, "GET", "/custom_hostnames/"+created.ID, nil).result(t, &read)
	if read.SSL.Status != "pending_validation" || len(read.SSL.ValidationRecords) != 1 ||
		read.SSL.ValidationRecords[0]["txt_name"] != "_acme-challenge.www.impulse-max.com" || read.SSL.ValidationRecords[0]["txt_value"] == "" {
		t.Errorf("read %+v, want pending_validation with a TXT validation record", read.SSL)
	}
	if diff := cmp.Diff([]string{"custom hostname does not CNAME to this zone."}, read.VerificationErrors); diff != "" {
		t.Errorf("verification errors (-want +got):\n%s", diff)
	}

	if a := do(t, s, "POST", "/custom_hostnames", create); a.status != 409 || a.code(t) != 1406 {
		t.Errorf("duplicate: %d code %d, want 409 1406", a.status, a.code(t))
	}
	var found []ch
	do(t, s, "GET", "/custom_hostnames?hostname=www.impulse-max.com", nil).result(t, &found)
	if len(found) != 1 || found[0].ID != created.ID {
		t.Errorf("list ?hostname= found %+v", found)
	}
	do(t, s, "GET", "/custom_hostnames?hostname.exact=impulse-max.com", nil).result(t, &found)
	if len(found) != 0 {
		t.Errorf("hostname.exact matched a longer name: %+v", found)
	}

	if !s.SetCustomHostnameStatus(created.ID, "active", "active") {
		t.Fatal("SetCustomHostnameStatus: not found")
	}
	read = ch{} // decoding over the old value would keep fields the answer omits
	do(t, s, "GET", "/custom_hostnames/"+created.ID, nil).result(t, &read)
	if read.Status != "active" || read.SSL.Status != "active" || len(read.VerificationErrors) != 0 || len(read.SSL.ValidationRecords) != 0 {
		t.Errorf("after activation %+v", read)
	}

	if a := do(t, s, "PATCH", "/custom_hostnames/"+created.ID, map[string]any{"ssl": map[string]any{"method": "http", "type": "dv"}}); a.status != 202 {
		t.Errorf("PATCH: %d %s", a.status, a.env["errors"])
	}
	for _, tc := range []struct {
		name     string
		body     any
		wantCode int
	}{
		{name: "invalid JSON", body: "{", wantCode: 1400},
		{name: "an IP address", body: map[string]any{"hostname": "192.0.2.1"}, wantCode: 1407},
		{name: "a reserved example domain", body: map[string]any{"hostname": "www.example.com"}, wantCode: 1411},
		{name: "an unknown validation method", body: map[string]any{"hostname": "a.impulse-max.com", "ssl": map[string]any{"method": "dns", "type": "dv"}}, wantCode: 1432},
		{name: "custom metadata on a zone without access", body: map[string]any{"hostname": "b.impulse-max.com", "custom_metadata": map[string]string{"k": "v"}}, wantCode: 1413},
	} {
		if a := do(t, s, "POST", "/custom_hostnames", tc.body); a.code(t) != tc.wantCode {
			t.Errorf("%s: %d code %d, want code %d", tc.name, a.status, a.code(t), tc.wantCode)
		}
	}

	if a := do(t, s, "DELETE", "/custom_hostnames/"+created.ID, nil); a.status != 200 {
		t.Errorf("DELETE: %d", a.status)
	}
	if a := do(t, s, "GET", "/custom_hostnames/"+created.ID, nil); a.status != 404 || a.code(t) != 1436 {
		t.Errorf("GET deleted: %d code %d, want 404 1436", a.status, a.code(t))
	}
}

// Certificates issued for a hostname appear in ssl.certificates[] with their expiry; listing
// filters by ssl_status and hostname_status; a PATCH with the same SSL settings revives a moved
// hostname and restarts a timed-out validation.
func TestCustomHostnameCertificatesAndRevival(t *testing.T) {
	t.Parallel()
	s := cftest.New(t)
	type ch struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		SSL    struct {
			Status       string `json:"status"`
			Certificates []struct {
				ExpiresOn time.Time `json:"expires_on"`
				Signature string    `json:"signature"`
			} `json:"certificates"`
		} `json:"ssl"`
	}
	var a, b ch
	do(t, s, "POST", "/custom_hostnames", map[string]any{"hostname": "a.impulse-max.com", "ssl": map[string]any{"method": "txt", "type": "dv"}}).result(t, &a)
	do(t, s, "POST", "/custom_hostnames", map[string]any{"hostname": "b.impulse-max.com", "ssl": map[string]any{"method": "txt", "type": "dv"}}).result(t, &b)
	s.SetCustomHostnameStatus(a.ID, "active", "active")
	var read ch
	do(t, s, "GET", "/custom_hostnames/"+a.ID, nil).result(t, &read)
	if len(read.SSL.Certificates) != 2 || time.Until(read.SSL.Certificates[0].ExpiresOn) < 89*24*time.Hour {
		t.Errorf("an active certificate: %+v, want two certificates expiring in 90 days", read.SSL.Certificates)
	}
	soon := time.Now().Add(5 * 24 * time.Hour)
	s.SetCertificateExpiry(a.ID, soon)
	s.SetCustomHostnameStatus(a.ID, "", "pending_issuance")
	read = ch{}
	do(t, s, "GET", "/custom_hostnames/"+a.ID, nil).result(t, &read)
	if read.SSL.Status != "pending_issuance" || !read.SSL.Certificates[0].ExpiresOn.Equal(soon.UTC().Truncate(time.Second)) {
		t.Errorf("after a failed renewal: %+v", read.SSL)
	}

	var found []ch
	do(t, s, "GET", "/custom_hostnames?ssl_status=pending_issuance", nil).result(t, &found)
	if len(found) != 1 || found[0].ID != a.ID {
		t.Errorf("ssl_status filter found %+v", found)
	}
	s.SetCustomHostnameStatus(b.ID, "moved", "validation_timed_out")
	do(t, s, "GET", "/custom_hostnames?hostname_status=moved", nil).result(t, &found)
	if len(found) != 1 || found[0].ID != b.ID {
		t.Errorf("hostname_status filter found %+v", found)
	}
	before := len(s.CustomHostnames())
	if r := do(t, s, "PATCH", "/custom_hostnames/"+b.ID, map[string]any{"ssl": map[string]any{"method": "txt", "type": "dv"}}); r.status != 202 {
		t.Fatalf("revive: %d", r.status)
	}
	read = ch{}
	do(t, s, "GET", "/custom_hostnames/"+b.ID, nil).result(t, &read)
	if read.ID != b.ID || read.Status != "pending" || read.SSL.Status != "pending_validation" || len(s.CustomHostnames()) != before {
		t.Errorf("after the PATCH: %+v (%d hostnames, was %d): want the same hostname pending again", read, len(s.CustomHostnames()), before)
	}
}
