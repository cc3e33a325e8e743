package systemd

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// unitsLine is the one line of the package's polkit rule that operators edit:
// `var units = ["cloudflared.service"];`.
var unitsLine = regexp.MustCompile(`(?m)^\s*var units = (\[[^\]]*\]);\s*$`)

// PolkitUnits reads the units the polkit rule at path lets the agent restart, from its
// `var units = [...]` line. polkitd alone judges; this is for `sajet-agent --check`, which tells
// the operator before the first apply that agent.yml and the rule disagree.
func PolkitUnits(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the polkit rule: %w", err)
	}
	m := unitsLine.FindSubmatch(data)
	if m == nil {
		return nil, fmt.Errorf("%s: no `var units = [...];` line (the package's rule has one)", path)
	}
	var units []string
	// The list is a JavaScript array of strings; written with double quotes it is JSON too.
	if err := json.Unmarshal(m[1], &units); err != nil {
		return nil, fmt.Errorf("%s: the units list %s is not a list of double-quoted names: %w", path, m[1], err)
	}
	return units, nil
}

// CheckPolkitUnits reports, in words an operator can act on, how the rule's units differ from
// the units agent.yml names; nil when they are the same set.
func CheckPolkitUnits(path string, want []string) error {
	have, err := PolkitUnits(path)
	if err != nil {
		return err
	}
	var missing, extra []string
	for _, u := range want {
		if !slices.Contains(have, u) {
			missing = append(missing, u)
		}
	}
	for _, u := range have {
		if !slices.Contains(want, u) {
			extra = append(extra, u)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "it does not allow "+strings.Join(missing, ", ")+" (restarts would be refused)")
	}
	if len(extra) > 0 {
		parts = append(parts, "it also allows "+strings.Join(extra, ", ")+", which agent.yml does not name")
	}
	list, _ := json.Marshal(want)
	return fmt.Errorf("polkit rule %s: %s; make its list line `var units = %s;`", path, strings.Join(parts, "; "),
		strings.ReplaceAll(string(list), `","`, `", "`))
}
