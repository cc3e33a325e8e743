// Package envflag gives every command-line flag an environment twin: SAJET_ + the flag's name in
// upper snake case (--database-url ↔ SAJET_DATABASE_URL). A flag given on the command line wins.
// Both binaries follow this contract (docs/ARCHITECTURE.md §6), so ops can configure either through a unit's
// Environment= lines without a wrapper script.
package envflag

import (
	"flag"
	"fmt"
	"strings"
)

// Name returns the environment variable for a flag name.
func Name(flagName string) string {
	return "SAJET_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Apply sets, from lookup (os.LookupEnv in production), every flag of fs that was not set on the
// command line. Call it after fs.Parse. A list flag (flag.Value accepting repeated Set) receives
// the variable split on commas.
func Apply(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		v, ok := lookup(Name(f.Name))
		if !ok {
			return
		}
		values := []string{v}
		if _, isList := f.Value.(*List); isList {
			values = strings.Split(v, ",")
		}
		for _, one := range values {
			if e := f.Value.Set(strings.TrimSpace(one)); e != nil {
				err = fmt.Errorf("%s=%q: %w", Name(f.Name), v, e)
				return
			}
		}
	})
	return err
}

// List is a repeatable string flag.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Set appends one value.
func (l *List) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty value")
	}
	*l = append(*l, v)
	return nil
}
