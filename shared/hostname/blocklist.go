package hostname

import (
	"bufio"
	_ "embed"
	"strings"
	"sync"
)

// The blocklist is data, not code: operators review and extend it without
// reading Go, and the test suite checks every line is a valid label.
//
//go:embed blocklist.txt
var blocklistText string

// builtinBlocklist is parsed once and never modified afterwards, so it is safe
// for concurrent use without locks.
var builtinBlocklist = sync.OnceValue(func() map[string]struct{} {
	return parseBlocklist(blocklistText)
})

// parseBlocklist reads one label per line; '#' starts a comment, blank lines
// are skipped and entries are lower-cased so the file cannot disagree with
// the lower-case labels it is compared against.
func parseBlocklist(text string) map[string]struct{} {
	set := make(map[string]struct{})
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.ToLower(strings.TrimSpace(line))
		if line != "" {
			set[line] = struct{}{}
		}
	}
	return set
}

// Blocked reports whether label is reserved: on the built-in list in
// blocklist.txt or in r.ExtraBlocked. The comparison ignores case and
// surrounding spaces, because ExtraBlocked comes from hand-written
// configuration.
func (r Rules) Blocked(label string) bool {
	label = strings.ToLower(strings.TrimSpace(label))
	if _, ok := builtinBlocklist()[label]; ok {
		return true
	}
	for _, extra := range r.ExtraBlocked {
		if strings.ToLower(strings.TrimSpace(extra)) == label && label != "" {
			return true
		}
	}
	return false
}
