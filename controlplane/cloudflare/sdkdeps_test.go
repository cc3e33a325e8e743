package cloudflare_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const sdk = "github.com/cloudflare/cloudflare-go/v7"

// sdkAllowed are the SDK packages the control plane may link (besides the SDK's internal/…):
// the services we call, their options and result types, and what they import. The root package
// alone would bring in about 130 more (every service of Cloudflare's API) and dominate both a
// cold build and the binary's size; see doc.go.
var sdkAllowed = []string{
	sdk + "/custom_hostnames",
	sdk + "/dns",
	sdk + "/option",
	sdk + "/packages/pagination",
	sdk + "/shared",
}

// TestSDKImports fails when the control plane's binary depends on the SDK's root package, on a
// Zero Trust or Workers package, or on any SDK package not in sdkAllowed.
func TestSDKImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list -deps (a few seconds)")
	}
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	const cmd = "github.com/jeturing/sajet-domains/controlplane/cmd/sajet-controlplane"
	out, err := exec.Command(goBin, "list", "-deps", cmd).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", cmd, err, stderr)
	}
	var used []string
	for _, pkg := range strings.Fields(string(out)) {
		if pkg != sdk && !strings.HasPrefix(pkg, sdk+"/") {
			continue
		}
		used = append(used, pkg)
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, sdk), "/")
		switch {
		case pkg == sdk:
			t.Errorf("%s depends on the SDK's root package %s (use the service packages: dns, custom_hostnames, option)", cmd, sdk)
		case strings.HasPrefix(rel, "zero_trust") || strings.HasPrefix(rel, "workers"):
			t.Errorf("%s depends on %s", cmd, pkg)
		case strings.HasPrefix(rel, "internal/") || rel == "internal": // come with any service package
		case !slices.Contains(sdkAllowed, pkg):
			t.Errorf("%s depends on %s, which is not in sdkAllowed", cmd, pkg)
		}
	}
	if !slices.Contains(used, sdk+"/dns") {
		t.Errorf("go list -deps %s names no %s/dns: the check is looking at the wrong thing\n%s", cmd, sdk, out)
	}
	t.Logf("SDK packages linked: %s", strings.Join(used, " "))
}
