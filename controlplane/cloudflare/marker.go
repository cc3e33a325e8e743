package cloudflare

import (
	"strconv"
	"strings"
)

// markerPrefix starts the comment of every DNS record this package creates. The domain id that
// follows ties the record to one row of custom_domains. The listing filter (comment.startswith)
// uses the prefix; Cloudflare's comment filters are case-insensitive, so ParseComment re-checks
// the exact bytes.
const markerPrefix = "managed-by:sajet domain:"

// Comment returns the marker comment for domainID's records: "managed-by:sajet domain:<id>",
// with the id in canonical decimal (no sign, no leading zeros).
func Comment(domainID int64) string {
	return markerPrefix + strconv.FormatInt(domainID, 10)
}

// ParseComment reports whether comment is exactly the marker Comment writes and, if so, the
// domain id it names. Anything else (another tool's comment, a marker an operator edited, a
// different case, trailing text, id ≤ 0) is not ours: this package never changes or deletes
// such a record.
func ParseComment(comment string) (domainID int64, ours bool) {
	rest, ok := strings.CutPrefix(comment, markerPrefix)
	if !ok || rest == "" || rest[0] == '0' || rest[0] == '+' || rest[0] == '-' {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}
