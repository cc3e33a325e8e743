#!/usr/bin/env bash
# Builds dist/sajet-agent_<debversion>_amd64.deb and dist/sajet-controlplane_<debversion>_amd64.deb
# from bin/ (run `make build` first; `make deb` does) with nfpm, run as a Go tool so that it never
# enters go.mod.
#
# Environment:
#   VERSION      the git version, as `git describe --tags --always --dirty` prints it (the Makefile
#                passes the same value it embeds in the binaries); default: that command.
#   DEB_VERSION  use this Debian version as is instead of deriving it from VERSION (the packaging
#                test builds an "upgrade" this way).
#   DIST         output directory (default dist).
#   NFPM         the nfpm command (default: go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2).
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_MODULE=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
GO=${GO:-go}
DIST=${DIST:-dist}

# deb_version turns a git version into a valid Debian version of a native package (no "-", which
# would start a Debian revision), keeping the ordering of successive builds:
#   v1.2.3                 → 1.2.3
#   v1.2.3-rc1             → 1.2.3~rc1             (a pre-release sorts before the release)
#   v1.2.3-4-gabc1234      → 1.2.3+git4.gabc1234   (commits after a tag sort after it)
#   9d85c88 (no tag)       → 0.0~git9d85c88        (sorts before any tagged release)
#   …-dirty                → …+dirty / ….dirty     (a build of a modified tree; sorts after the
#                                                   clean build of the same commit)
#   dev / empty            → 0.0~dev
# The result is checked against Debian's version syntax; anything else fails the build.
deb_version() {
	local v=${1#v} dirty=
	if [[ $v == *-dirty ]]; then
		dirty=1
		v=${v%-dirty}
	fi
	local out
	if [[ -z $v || $v == dev ]]; then
		out=0.0~dev
	elif [[ $v =~ ^[0-9a-f]{4,40}$ && ! $1 =~ ^v ]] && ! [[ $v =~ ^[0-9]+(\.[0-9]+)+$ ]]; then
		out=0.0~git$v
	elif [[ $v =~ ^(.+)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		out="${BASH_REMATCH[1]//-/\~}+git${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
	else
		out=${v//-/\~}
	fi
	if [[ -n $dirty ]]; then
		if [[ $out == *+* ]]; then out=$out.dirty; else out=$out+dirty; fi
	fi
	if ! [[ $out =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
		echo "build-deb: cannot turn version '$1' into a Debian version (got '$out')" >&2
		return 1
	fi
	printf '%s\n' "$out"
}

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
if [[ -z ${DEB_VERSION:-} ]]; then
	DEB_VERSION=$(deb_version "$VERSION")
fi
export DEB_VERSION

for b in sajet-agent sajet-controlplane; do
	if [[ ! -x bin/$b ]]; then
		echo "build-deb: bin/$b is missing: run \`make build\` first (or \`make deb\`)" >&2
		exit 1
	fi
done

NFPM=${NFPM:-"$GO run $NFPM_MODULE"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$DIST"

date_rfc2822=$(date -R -u ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH})
for pkg in sajet-agent sajet-controlplane; do
	export BUILD_DIR=$work/$pkg
	mkdir -p "$BUILD_DIR"
	# Native package → /usr/share/doc/<pkg>/changelog.gz, gzip -n (no timestamp: reproducible).
	cat >"$BUILD_DIR/changelog" <<-CHANGELOG
	$pkg ($DEB_VERSION) unstable; urgency=medium

	  * Build of $VERSION. See the git history of
	    https://github.com/jeturing/sajet-domains for changes.

	 -- Sajet Domains maintainers <ops@sajet.us>  $date_rfc2822
	CHANGELOG
	gzip -9n <"$BUILD_DIR/changelog" >"$BUILD_DIR/changelog.gz"
	gzip -9n <"packaging/man/$pkg.1" >"$BUILD_DIR/$pkg.1.gz"
	# The binaries are linked against glibc when cgo is on (Go's default): depend on the newest
	# GLIBC_x.y symbol version they reference (what dpkg-shlibdeps would compute for libc6; Go
	# links nothing else). A static binary references none and gets no dependency.
	glibc=$(LC_ALL=C grep -aoE 'GLIBC_2\.[0-9]+' "bin/$pkg" | sort -t. -k2,2n -u | tail -n1 || true)
	export LIBC_DEPENDS=${glibc:+"libc6 (>= ${glibc#GLIBC_})"}
	out=$DIST/${pkg}_${DEB_VERSION}_amd64.deb
	rm -f "$out"
	$NFPM package --config "packaging/$pkg.nfpm.yaml" --packager deb --target "$out" >"$BUILD_DIR/nfpm.log" 2>&1 || {
		cat "$BUILD_DIR/nfpm.log" >&2
		echo "build-deb: nfpm failed for $pkg" >&2
		exit 1
	}
	echo "built $out"
done
