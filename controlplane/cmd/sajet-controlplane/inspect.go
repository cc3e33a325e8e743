package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/internal/envflag"
)

// errDomainDoesNotWork makes the command exit 1: the report was read and the domain does not
// work (2 is for every other failure: usage, the API unreachable, a refused token).
var errDomainDoesNotWork = errors.New("the domain does not work")

// inspectCmd prints a domain's diagnostics report: `inspect --api URL --token T HOST` (flags may
// also follow HOST). Exit 0 only when the domain works.
func inspectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api", "", "the control plane's API, e.g. https://cp.sajet.us")
	token := fs.String("token", "", "an API token (sjt_…): admin, or the domain's customer")
	asJSON := fs.Bool("json", false, "print the report as the API returns it")
	lang := fs.String("lang", "es", "language of the report's sentences: es or en")
	verbose := fs.Bool("verbose", false, "print every part's details, not only those of parts that are not ok")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sajet-controlplane inspect --api URL --token T [--json] [--lang es|en] [--verbose] HOST")
		fs.PrintDefaults()
	}
	// Go's flag package stops at the first argument that is not a flag; HOST may come first.
	var hosts []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		hosts = append(hosts, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if err := envflag.Apply(fs, os.LookupEnv); err != nil {
		return err
	}
	switch {
	case len(hosts) != 1:
		fs.Usage()
		return errors.New("give exactly one hostname")
	case *apiURL == "":
		return errors.New("--api (or SAJET_API) is required")
	case *token == "":
		return errors.New("--token (or SAJET_TOKEN) is required")
	case *lang != "es" && *lang != "en":
		return fmt.Errorf("--lang must be es or en, not %q", *lang)
	}
	raw, r, err := diagnose.Fetch(ctx, diagnose.DefaultClient, *apiURL, *token, strings.TrimSpace(hosts[0]), *lang)
	if err != nil {
		return err
	}
	if *asJSON {
		if _, err := stdout.Write(raw); err != nil {
			return err
		}
		if len(raw) > 0 && raw[len(raw)-1] != '\n' {
			fmt.Fprintln(stdout)
		}
	} else if err := diagnose.WriteText(stdout, r, *verbose); err != nil {
		return err
	}
	if !r.Works {
		return errDomainDoesNotWork
	}
	return nil
}
