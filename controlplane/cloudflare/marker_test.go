package cloudflare_test

import (
	"math"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
)

func TestCommentMarksADomain(t *testing.T) {
	t.Parallel()
	if got := cloudflare.Comment(42); got != "managed-by:sajet domain:42" {
		t.Errorf("Comment(42) = %q", got)
	}
	for _, tc := range []struct {
		name    string
		comment string
		wantID  int64
	}{
		{name: "our marker names its domain", comment: "managed-by:sajet domain:42", wantID: 42},
		{name: "the largest id round-trips", comment: cloudflare.Comment(math.MaxInt64), wantID: math.MaxInt64},
		{name: "an empty comment is not ours", comment: ""},
		{name: "another tool's comment is not ours", comment: "managed-by:terraform"},
		{name: "a marker without an id is not ours", comment: "managed-by:sajet domain:"},
		{name: "a marker in another case is not ours", comment: "Managed-By:Sajet domain:42"},
		{name: "a marker with trailing text is not ours", comment: "managed-by:sajet domain:42 keep"},
		{name: "a marker with leading text is not ours", comment: "note managed-by:sajet domain:42"},
		{name: "a non-canonical id is not ours", comment: "managed-by:sajet domain:042"},
		{name: "a signed id is not ours", comment: "managed-by:sajet domain:+42"},
		{name: "id zero is not ours", comment: "managed-by:sajet domain:0"},
		{name: "a negative id is not ours", comment: "managed-by:sajet domain:-1"},
		{name: "an id beyond int64 is not ours", comment: "managed-by:sajet domain:9223372036854775808"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, ours := cloudflare.ParseComment(tc.comment)
			if id != tc.wantID || ours != (tc.wantID != 0) {
				t.Errorf("ParseComment(%q) = %d, %v; want %d, %v", tc.comment, id, ours, tc.wantID, tc.wantID != 0)
			}
		})
	}
}

// FuzzParseComment: comments come from Cloudflare (anyone with dashboard access can write
// them); whatever ParseComment accepts must be exactly the marker Comment writes.
func FuzzParseComment(f *testing.F) {
	for _, s := range []string{"managed-by:sajet domain:1", "managed-by:sajet domain:007", "", "managed-by:sajet domain:-1", "MANAGED-BY:SAJET DOMAIN:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ours := cloudflare.ParseComment(s)
		if !ours {
			if id != 0 {
				t.Errorf("ParseComment(%q) = %d but not ours", s, id)
			}
			return
		}
		if id <= 0 || cloudflare.Comment(id) != s || !strings.HasPrefix(s, "managed-by:sajet domain:") {
			t.Errorf("ParseComment(%q) accepted id %d; Comment gives %q", s, id, cloudflare.Comment(id))
		}
	})
}
