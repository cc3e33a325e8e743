package diagnose

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// marks are how a verdict reads in a terminal, aligned.
var marks = map[Verdict]string{OK: "[ ok ]", Warn: "[warn]", Fail: "[FAIL]", Unknown: "[ ?? ]"}

// WriteText writes r as a person reads it: the domain and the summary, then one line per part
// (verdict, title, what was found), what to do under a part that is not ok, and its details
// (evidence as sentences) when it is not ok, or for every part when verbose.
func WriteText(w io.Writer, r Report, verbose bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %s\n%s\n\n", r.Domain, r.Expected, r.Summary)
	width := 0
	for _, p := range r.Parts {
		width = max(width, utf8.RuneCountInString(p.Title))
	}
	for _, p := range r.Parts {
		mark := marks[p.Verdict]
		if mark == "" {
			mark = "[" + string(p.Verdict) + "]"
		}
		fmt.Fprintf(&b, "%s %s%s  %s\n", mark, p.Title, strings.Repeat(" ", width-utf8.RuneCountInString(p.Title)), p.Message)
		indent := strings.Repeat(" ", len(mark)+1)
		if p.Fix != "" && p.Verdict != OK {
			fmt.Fprintf(&b, "%s→ %s\n", indent, p.Fix)
		}
		if verbose || p.Verdict != OK {
			for _, d := range p.Details {
				fmt.Fprintf(&b, "%s· %s\n", indent, d)
			}
		}
	}
	fmt.Fprintf(&b, "\n%s · %d ms\n", r.CheckedAt.Format("2006-01-02 15:04:05 MST"), r.DurationMS)
	_, err := io.WriteString(w, b.String())
	return err
}
