package cloudflare_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
)

// ignoreTimes compares fake records without their timestamps.
var ignoreTimes = cmpopts.IgnoreFields(cftest.Record{}, "CreatedOn", "ModifiedOn")

func TestEnsureCNAMECreatesTheRecordWithOneCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec, err := b.p.EnsureCNAME(context.Background(), 42, "Impulse-Max.SAJET.us.", tunnelTarget, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := methods(b.srv.Calls()); got != "POST" {
		t.Errorf("calls %q, want exactly one POST", got)
	}
	want := cloudflare.Record{ID: rec.ID, Name: subdomain, Type: "CNAME", Content: tunnelTarget, Comment: "managed-by:sajet domain:42", Proxied: true, TTL: 1}
	if diff := cmp.Diff(want, rec); diff != "" {
		t.Errorf("returned record (-want +got):\n%s", diff)
	}
	wantStored := []cftest.Record{{ID: rec.ID, Type: "CNAME", Name: subdomain, Content: tunnelTarget, Proxied: true, TTL: 1, Comment: "managed-by:sajet domain:42"}}
	if diff := cmp.Diff(wantStored, b.srv.Records(), ignoreTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("zone (-want +got):\n%s", diff)
	}
}

func TestEnsureCNAMEWhenTheNameIsTaken(t *testing.T) {
	t.Parallel()
	const domainID = 42
	stale := ours(domainID)
	stale.Content = "0b5e0b5e-0000-4000-8000-000000000000.cfargotunnel.com"
	unproxied := ours(domainID)
	unproxied.Proxied = false
	otherDomain := ours(domainID)
	otherDomain.Comment = cloudflare.Comment(7)
	shouting := ours(domainID)
	shouting.Comment = strings.ToUpper(cloudflare.Comment(domainID))

	for _, tc := range []struct {
		name      string
		existing  cftest.Record
		wantCalls string
		foreign   bool // the zone must be left exactly as it was
	}{
		{name: "an identical record of ours is adopted after one listing", existing: ours(domainID), wantCalls: "POST GET"},
		{name: "a record of ours pointing at another tunnel is overwritten in place", existing: stale, wantCalls: "POST GET PUT"},
		{name: "a record of ours that is not proxied is overwritten in place", existing: unproxied, wantCalls: "POST GET PUT"},
		{name: "a record of ours marked for another domain is re-marked in place", existing: otherDomain, wantCalls: "POST GET PUT"},
		{name: "a foreign A record is never touched",
			existing: cftest.Record{Type: "A", Name: subdomain, Content: "192.0.2.1", Comment: "hand-made"}, wantCalls: "POST GET", foreign: true},
		{name: "a foreign CNAME to the same tunnel is still foreign",
			existing: cftest.Record{Type: "CNAME", Name: subdomain, Content: tunnelTarget, Proxied: true}, wantCalls: "POST GET", foreign: true},
		{name: "a marker in another case is not ours", existing: shouting, wantCalls: "POST GET", foreign: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			planted := b.srv.AddRecord(tc.existing)
			before := b.srv.Records()

			rec, err := b.p.EnsureCNAME(context.Background(), domainID, subdomain, tunnelTarget, false)

			if got := methods(b.srv.Calls()); got != tc.wantCalls {
				t.Errorf("calls %q, want %q", got, tc.wantCalls)
			}
			if tc.foreign {
				var fe *cloudflare.ForeignRecordError
				if !errors.As(err, &fe) {
					t.Fatalf("err %v, want *ForeignRecordError", err)
				}
				if want := "a record for impulse-max.sajet.us already exists and is not managed by Sajet"; err.Error() != want {
					t.Errorf("message %q, want %q", err.Error(), want)
				}
				if retryable, _, _ := cloudflare.Classify(err); retryable {
					t.Error("a foreign record classified as retryable")
				}
				if diff := cmp.Diff(before, b.srv.Records()); diff != "" {
					t.Errorf("the zone changed (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []cftest.Record{{ID: planted.ID, Type: "CNAME", Name: subdomain, Content: tunnelTarget, Proxied: true, TTL: 1, Comment: cloudflare.Comment(domainID)}}
			if diff := cmp.Diff(want, b.srv.Records(), ignoreTimes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("zone (-want +got):\n%s", diff)
			}
			if rec.ID != planted.ID {
				t.Errorf("returned id %s, want the existing %s", rec.ID, planted.ID)
			}
		})
	}
}

// A record of ours that vanishes between the listing and the overwrite (404 on PUT) is looked
// up again instead of failing the job permanently.
func TestEnsureCNAMERelistsWhenTheRecordVanishesDuringTheUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stale := ours(42)
	stale.Content = "old.cfargotunnel.com"
	b.srv.AddRecord(stale)
	b.srv.FailNextMethod("PUT", 1, 404, 81044, "Record does not exist.")
	if _, err := b.p.EnsureCNAME(context.Background(), 42, subdomain, tunnelTarget, false); err != nil {
		t.Fatal(err)
	}
	if got := methods(b.srv.Calls()); got != "POST GET PUT GET PUT" {
		t.Errorf("calls %q, want a second listing and overwrite after the 404", got)
	}
	if recs := b.srv.Records(); len(recs) != 1 || recs[0].Content != tunnelTarget {
		t.Errorf("zone %+v, want the one record pointing at the tunnel", recs)
	}
}

// A create that Cloudflare applied but answered with an error (or no answer at all) is retried
// with retryAfterUncertain and adopted: one record, one call on the retry.
func TestEnsureCNAMEAfterAnUncertainFailureAdopts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		inject func(*cftest.Server)
	}{
		{name: "write applied then answered 500", inject: func(s *cftest.Server) { s.FailAfterApply(1) }},
		{name: "write applied then connection dropped", inject: func(s *cftest.Server) { s.DropAfterApply(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			tc.inject(b.srv)
			ctx := context.Background()
			_, err := b.p.EnsureCNAME(ctx, 42, subdomain, tunnelTarget, false)
			retryable, uncertain, _ := cloudflare.Classify(err)
			if err == nil || !retryable || !uncertain {
				t.Fatalf("first attempt: err=%v retryable=%v uncertain=%v, want a retryable, uncertain error", err, retryable, uncertain)
			}
			b.srv.ResetCalls()
			rec, err := b.p.EnsureCNAME(ctx, 42, subdomain, tunnelTarget, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := methods(b.srv.Calls()); got != "GET" {
				t.Errorf("retry calls %q, want one listing", got)
			}
			if recs := b.srv.Records(); len(recs) != 1 || recs[0].ID != rec.ID {
				t.Errorf("zone %+v, want exactly the adopted record %s", recs, rec.ID)
			}
		})
	}
}

func TestEnsureCNAMERetryWithNothingThereCreates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.p.EnsureCNAME(context.Background(), 42, subdomain, tunnelTarget, true); err != nil {
		t.Fatal(err)
	}
	if got := methods(b.srv.Calls()); got != "GET POST" {
		t.Errorf("calls %q, want a listing then a create", got)
	}
	if n := len(b.srv.Records()); n != 1 {
		t.Errorf("%d records, want 1", n)
	}
}

func TestFindRecordsMatchesTheExactNameOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	want := []cloudflare.Record{}
	for _, r := range []cftest.Record{
		ours(1),
		{Type: "TXT", Name: subdomain, Content: "hello"},
		{Type: "CNAME", Name: "shop." + subdomain, Content: tunnelTarget},
		{Type: "CNAME", Name: "impulse-max2.sajet.us", Content: tunnelTarget},
	} {
		planted := b.srv.AddRecord(r)
		if planted.Name == subdomain {
			want = append(want, cloudflare.Record{ID: planted.ID, Name: planted.Name, Type: planted.Type,
				Content: planted.Content, Comment: planted.Comment, Proxied: planted.Proxied, TTL: 1})
		}
	}
	got, err := b.p.FindRecords(context.Background(), "IMPULSE-MAX.sajet.us")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if q := b.srv.Calls()[0].Query; q.Get("name.exact") != subdomain {
		t.Errorf("query %v, want name.exact=%s", q, subdomain)
	}
}

func TestDeleteRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		existing  *cftest.Record
		wantCalls string
		wantErr   bool // *ForeignRecordError, record kept
	}{
		{name: "a missing record is already deleted", wantCalls: "GET"},
		{name: "a record of ours is deleted", existing: &cftest.Record{Type: "CNAME", Name: subdomain, Content: tunnelTarget, Comment: cloudflare.Comment(3)}, wantCalls: "GET DELETE"},
		{name: "a foreign record is refused", existing: &cftest.Record{Type: "CNAME", Name: subdomain, Content: tunnelTarget, Comment: "ops"}, wantCalls: "GET", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			id := "0123456789abcdef0123456789abcdef"
			if tc.existing != nil {
				id = b.srv.AddRecord(*tc.existing).ID
			}
			err := b.p.DeleteRecord(context.Background(), id)
			var fe *cloudflare.ForeignRecordError
			if tc.wantErr != errors.As(err, &fe) || (!tc.wantErr && err != nil) {
				t.Fatalf("err %v, want foreign=%v", err, tc.wantErr)
			}
			if want := "the record for impulse-max.sajet.us is not managed by Sajet; not deleting it"; tc.wantErr && err.Error() != want {
				t.Errorf("message %q, want %q", err.Error(), want)
			}
			if got := methods(b.srv.Calls()); got != tc.wantCalls {
				t.Errorf("calls %q, want %q", got, tc.wantCalls)
			}
			if n, want := len(b.srv.Records()), map[bool]int{true: 1, false: 0}[tc.wantErr]; n != want {
				t.Errorf("%d records left, want %d", n, want)
			}
		})
	}
}

func TestListOurRecordsPagesThroughTheZone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		maxPage   int // server cap on per_page; 0 = Cloudflare's
		pageSize  int // provider per_page; 0 = default
		ours      int
		wantCalls int
	}{
		{name: "250 of ours fit one default page", ours: 250, wantCalls: 1},
		{name: "250 of ours at 100 per page (the server caps per_page)", maxPage: 100, ours: 250, wantCalls: 3},
		{name: "exactly 200 matches at 100 per page need no empty page", maxPage: 100, ours: 197, wantCalls: 2},
		{name: "no records of ours cost one call", ours: 0, wantCalls: 1},
		{name: "250 of ours at a configured page size of 50", pageSize: 50, ours: 250, wantCalls: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *cloudflare.Config) { c.PageSize = tc.pageSize })
			if tc.maxPage > 0 {
				b.srv.SetMaxPerPage(tc.maxPage)
			}
			want := map[string]bool{}
			for i := range tc.ours {
				r := b.srv.AddRecord(cftest.Record{Type: "CNAME", Name: fmt.Sprintf("t%d", i), Content: tunnelTarget, Proxied: true, Comment: cloudflare.Comment(int64(i + 1))})
				want[r.ID] = true
			}
			// 30 foreign records; the last three pass Cloudflare's case-insensitive prefix filter
			// (so they fill pages) but are not our marker.
			nearMisses := []string{"MANAGED-BY:SAJET domain:5", "managed-by:sajet domain:abc", "managed-by:sajet domain:07"}
			for i := range 30 {
				comment := []string{"", "ops"}[i%2]
				if i >= 27 {
					comment = nearMisses[i-27]
				}
				b.srv.AddRecord(cftest.Record{Type: "A", Name: fmt.Sprintf("f%d", i), Content: "192.0.2.1", Comment: comment})
			}
			b.srv.ResetCalls()

			got, err := b.p.ListOurRecords(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			gotIDs := map[string]bool{}
			for _, r := range got {
				gotIDs[r.ID] = true
			}
			if diff := cmp.Diff(want, gotIDs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			calls := b.srv.Calls()
			if len(calls) != tc.wantCalls {
				t.Errorf("%d calls for %d records, want %d", len(calls), tc.ours, tc.wantCalls)
			}
			if q := calls[0].Query; q.Get("comment.startswith") != "managed-by:sajet domain:" {
				t.Errorf("query %v, want the comment.startswith filter", q)
			}
			t.Logf("listing %d of ours among %d records: %d calls", tc.ours, tc.ours+30, len(calls))
		})
	}
}
