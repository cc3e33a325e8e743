package cloudflare_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
)

const external = "www.impulse-max.com"

// A custom hostname goes pending → (customer publishes records) → active, and each step is
// visible through the provider.
func TestCustomHostnameLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	ch, err := b.p.EnsureCustomHostname(ctx, 42, "WWW.Impulse-Max.com", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := methods(b.srv.Calls()); got != "POST" {
		t.Errorf("create calls %q, want one POST", got)
	}
	var body map[string]any
	if err := json.Unmarshal(b.srv.Calls()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{"hostname": external, "ssl": map[string]any{"method": "txt", "type": "dv"}}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("create body (-want +got):\n%s", diff)
	}
	if ch.Hostname != external || ch.Status != "pending" || ch.SSLStatus != "initializing" || ch.SSLMethod != "txt" {
		t.Errorf("created %+v, want pending / initializing / txt", ch)
	}
	wantOwnership := &cloudflare.ValidationRecord{Purpose: "ownership", Type: "TXT", Name: "_cf-custom-hostname." + external, Value: ch.Ownership.Value}
	if diff := cmp.Diff(wantOwnership, ch.Ownership); diff != "" || ch.Ownership.Value == "" {
		t.Errorf("ownership record (-want +got):\n%s", diff)
	}
	if ch.OwnershipHTTP == nil || ch.OwnershipHTTP.URL == "" || ch.OwnershipHTTP.Body == "" {
		t.Errorf("ownership HTTP token missing: %+v", ch.OwnershipHTTP)
	}

	got, err := b.p.GetCustomHostname(ctx, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SSLStatus != "pending_validation" || len(got.SSLValidation) != 1 || got.SSLValidation[0].Type != "TXT" ||
		got.SSLValidation[0].Name != "_acme-challenge."+external {
		t.Errorf("after a read %+v, want pending_validation with a TXT validation record", got)
	}
	if diff := cmp.Diff([]string{"custom hostname does not CNAME to this zone."}, got.Errors()); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if n := len(got.Records()); n != 3 {
		t.Errorf("%d records to publish (%+v), want ownership TXT, ownership HTTP and the SSL TXT", n, got.Records())
	}

	b.srv.SetCustomHostnameStatus(external, "active", "active")
	got, err = b.p.GetCustomHostname(ctx, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "active" || got.SSLStatus != "active" || len(got.Errors()) != 0 || len(got.SSLValidation) != 0 {
		t.Errorf("after activation %+v, want active / active without errors or validation records", got)
	}

	if err := b.p.DeleteCustomHostname(ctx, ch.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.p.DeleteCustomHostname(ctx, ch.ID); err != nil {
		t.Errorf("deleting a deleted custom hostname: %v, want nil", err)
	}
	if n := len(b.srv.CustomHostnames()); n != 0 {
		t.Errorf("%d custom hostnames left", n)
	}
	var apiErr *cloudflare.APIError
	if _, err := b.p.GetCustomHostname(ctx, ch.ID); !errors.As(err, &apiErr) || !apiErr.NotFound() {
		t.Errorf("reading a deleted custom hostname: %v, want a not-found *APIError", err)
	}
}

func TestEnsureCustomHostnameAdoptsAnExistingOne(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		uncertain bool
		wantCalls string
	}{
		{name: "a duplicate create (409/1406) is adopted after a lookup", wantCalls: "POST GET"},
		{name: "a retry after an uncertain failure looks first", uncertain: true, wantCalls: "GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			first, err := b.p.EnsureCustomHostname(ctx, 42, external, false)
			if err != nil {
				t.Fatal(err)
			}
			b.srv.ResetCalls()
			again, err := b.p.EnsureCustomHostname(ctx, 42, external, tc.uncertain)
			if err != nil {
				t.Fatal(err)
			}
			if again.ID != first.ID {
				t.Errorf("adopted %s, want %s", again.ID, first.ID)
			}
			if got := methods(b.srv.Calls()); got != tc.wantCalls {
				t.Errorf("calls %q, want %q", got, tc.wantCalls)
			}
			if q := b.srv.Calls()[len(b.srv.Calls())-1].Query; q.Get("hostname.exact") != external {
				t.Errorf("lookup query %v, want hostname.exact", q)
			}
			if n := len(b.srv.CustomHostnames()); n != 1 {
				t.Errorf("%d custom hostnames, want 1", n)
			}
		})
	}
}

func TestCustomHostnameMetadataMarksOurs(t *testing.T) {
	t.Parallel()
	withMetadata := func(c *cloudflare.Config) { c.CustomHostnameMetadata = true }
	ctx := context.Background()

	t.Run("created with our metadata", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMetadata)
		b.srv.SetCustomMetadataAccess(true)
		ch, err := b.p.EnsureCustomHostname(ctx, 42, external, false)
		if err != nil {
			t.Fatal(err)
		}
		if ch.DomainID != 42 {
			t.Errorf("domain id %d, want 42", ch.DomainID)
		}
		want := map[string]string{"managed_by": "sajet", "domain_id": "42"}
		if diff := cmp.Diff(want, b.srv.CustomHostnames()[0].CustomMetadata); diff != "" {
			t.Errorf("metadata (-want +got):\n%s", diff)
		}
	})
	t.Run("one made by hand is foreign", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMetadata)
		b.srv.SetCustomMetadataAccess(true)
		b.srv.AddCustomHostname(cftest.CustomHostname{Hostname: external})
		_, err := b.p.EnsureCustomHostname(ctx, 42, external, false)
		var fe *cloudflare.ForeignRecordError
		if !errors.As(err, &fe) || err.Error() != "a custom hostname for www.impulse-max.com already exists and is not managed by Sajet" {
			t.Errorf("err %v, want *ForeignRecordError", err)
		}
	})
	t.Run("one of ours for another domain is re-marked", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMetadata)
		b.srv.SetCustomMetadataAccess(true)
		planted := b.srv.AddCustomHostname(cftest.CustomHostname{Hostname: external, CustomMetadata: map[string]string{"managed_by": "sajet", "domain_id": "7"}})
		ch, err := b.p.EnsureCustomHostname(ctx, 42, external, false)
		if err != nil {
			t.Fatal(err)
		}
		if ch.ID != planted.ID || ch.DomainID != 42 || methods(b.srv.Calls()) != "POST GET PATCH" {
			t.Errorf("got %+v after %q, want %s re-marked for 42 with POST GET PATCH", ch, methods(b.srv.Calls()), planted.ID)
		}
	})
	t.Run("a zone without metadata access refuses it permanently", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMetadata)
		_, err := b.p.EnsureCustomHostname(ctx, 42, external, false)
		var apiErr *cloudflare.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 403 || !apiErr.Has(1413) {
			t.Fatalf("err %v, want 403 code 1413", err)
		}
		if retryable, _, _ := cloudflare.Classify(err); retryable {
			t.Error("classified as retryable")
		}
	})
}
