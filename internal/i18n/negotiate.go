package i18n

import (
	"strconv"
	"strings"
)

// Negotiate picks the language for an Accept-Language header (RFC 9110 §12.5.4): the one we
// speak with the highest weight, the earlier on a tie; a region is ignored (es-MX is es); the
// default when the header names none we speak. It never fails: a malformed entry is skipped.
func Negotiate(header string) Lang {
	best, bestQ := Default, -1.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(k, "q") {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		var l Lang
		switch primary {
		case string(ES):
			l = ES
		case string(EN):
			l = EN
		default:
			continue
		}
		if q > bestQ && q > 0 {
			best, bestQ = l, q
		}
	}
	return best
}
