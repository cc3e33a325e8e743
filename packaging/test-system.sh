#!/usr/bin/env bash
# make test-system: the sajet-agent package on a booted Debian with real systemd, real polkit and
# the real cloudflared (e2e/system_test.go says what it checks, e2e/container_test.go how the
# container runs).
#
#   1. builds the binaries (`make build`; SAJET_PKGTEST_SKIP_BUILD=1 uses bin/ as it is), the
#      sajet-agent .deb and an "upgrade" build of it with a higher Debian version;
#   2. runs TestSystem from the e2e test binary: it boots a Debian root (debootstrap minbase with
#      systemd, dbus, polkitd…, cached as a tarball beside the packaging test's, in
#      $SAJET_PKGTEST_CACHE, default ~/.cache/sajet-packaging; the first run downloads it from
#      $DEBIAN_MIRROR, about 90 s) with systemd-nspawn, installs the package with apt, and checks
#      the agent against a control plane on the host through the real API.
#
# Needs root, debootstrap and systemd-nspawn (package systemd-container; .ci/run installs both).
# A host that cannot boot the container gets a SKIP line saying exactly why; under CI=true that is
# a failure. Figures are printed as JSON lines ({"figure": …}). SAJET_SYSTEM_VERBOSE=1 prints
# every log line (-test.v).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
export VERSION
GO=${GO:-go}
started=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/sajet-systest.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [[ ${SAJET_PKGTEST_SKIP_BUILD:-} != 1 ]]; then
	echo "== make build (VERSION=$VERSION)"
	"${MAKE:-make}" build VERSION="$VERSION"
fi
echo "== build-deb.sh"
DIST=$work/dist ./packaging/build-deb.sh | tee "$work/build.log"
agent_deb=$(sed -n 's/^built \(.*sajet-agent_.*\.deb\)$/\1/p' "$work/build.log")
v1=${agent_deb##*/sajet-agent_}
v1=${v1%_amd64.deb}
v2="$v1+systest1"
DEB_VERSION=$v2 DIST=$work/dist2 ./packaging/build-deb.sh
agent_deb2=$work/dist2/sajet-agent_${v2}_amd64.deb

echo "== e2e test binary"
"$GO" test -c -o "$work/e2e.test" ./e2e/
verbose=()
if [[ ${SAJET_SYSTEM_VERBOSE:-} == 1 ]]; then verbose=(-test.v); fi
echo "== TestSystem"
status=0
(cd e2e && SAJET_SYSTEM_TEST=1 SAJET_SYSTEM_AGENT_DEB=$agent_deb SAJET_SYSTEM_AGENT_DEB_UPGRADE=$agent_deb2 \
	"$work/e2e.test" -test.run '^TestSystem$' -test.count=1 -test.timeout 40m "${verbose[@]}") || status=$?
echo "test-system: $( ((status == 0)) && echo passed || echo FAILED) ($((SECONDS - started)) s)"
exit "$status"
