package web_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/api"
)

var update = flag.Bool("update", false, "rewrite openapi.json from the live API (make ui does this before generating the client)")

// liveOpenAPI is the document the API serves, indented as committed.
func liveOpenAPI(t *testing.T) []byte {
	t.Helper()
	srv := httptest.NewServer(api.New(api.Config{}))
	t.Cleanup(srv.Close)
	res, err := srv.Client().Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// The typed client (ui/src/lib/api/schema.d.ts) is generated from the committed openapi.json, so
// an API change that was not followed by `make ui` must fail here, not in a browser.
func TestCommittedOpenAPIIsTheLiveOne(t *testing.T) {
	live := liveOpenAPI(t)
	if *update {
		if err := os.WriteFile("openapi.json", live, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, live) {
		t.Fatalf("controlplane/web/openapi.json differs from the live /openapi.json (%d vs %d bytes): run `make ui` and commit "+
			"openapi.json, ui/src/lib/api/schema.d.ts and dist/", len(committed), len(live))
	}
}
