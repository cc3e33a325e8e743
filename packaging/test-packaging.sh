#!/usr/bin/env bash
# make test-packaging: checks the Debian packages and systemd units end to end.
#
#   1. builds the binaries (`make build`; SAJET_PKGTEST_SKIP_BUILD=1 uses bin/ as it is) and the
#      two .deb files (packaging/build-deb.sh → dist/), plus an "upgrade" build of the same
#      binaries with a higher Debian version;
#   2. lintian on both packages: no errors and no warnings (the remaining ones are overridden in
#      packaging/lintian/<pkg>, each with its justification);
#   3. systemd-analyze verify on both units as installed by the packages, and
#      systemd-analyze security --offline: overall exposure below 2.5 ("OK");
#   4. the polkit rule: JavaScript syntax (node --check), and its behaviour against a fake polkit:
#      only user sajet-agent, only org.freedesktop.systemd1.manage-units, only the listed units
#      (cloudflared.service as shipped; exactly the replicas after the documented edit of its
#      list), only the verb restart; and that systemd's polkit policy defines the
#      action (pkaction, or its policy file when polkitd is not running);
#   5. install → upgrade → remove → purge in a throwaway Debian root made with debootstrap, with
#      the root's own dpkg run chrooted into it. Not the host's `dpkg --root`: that runs the
#      maintainer scripts chrooted too (so the root needs a real base system with sh, adduser,
#      dpkg-statoverride… anyway), but the host's dpkg resolves the statoverride's user and group
#      names with the host's passwd/group, not the root's, and aborts. The base system is cached
#      as a tarball in $SAJET_PKGTEST_CACHE (default ~/.cache/sajet-packaging); the first run downloads it
#      from $DEBIAN_MIRROR (default http://deb.debian.org/debian), about 30 s.
#
# Needs root (chroot, file ownership). Tools: lintian, debootstrap (apt-get install lintian
# debootstrap), systemd-analyze (package systemd), node (for the polkit rule), dpkg-deb.
# A missing tool turns its check into a "SKIP: <tool> unavailable" line; everything else prints
# PASS or FAIL, and the script exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
export VERSION

failures=0
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
skip() { echo "SKIP: $*"; }
# check DESCRIPTION COMMAND...: PASS or FAIL by the command's status.
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}
have() { command -v "$1" >/dev/null 2>&1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sajet-pkgtest.XXXXXX")
cleanup() {
	# The chroot has nothing mounted (no /proc, no binds), so a plain rm is safe.
	rm -rf "$work"
}
trap cleanup EXIT
started=$SECONDS

# ---------------------------------------------------------------------------------------------
# 1. Build.
if [[ ${SAJET_PKGTEST_SKIP_BUILD:-} != 1 ]]; then
	echo "== make build (VERSION=$VERSION)"
	"${MAKE:-make}" build VERSION="$VERSION"
fi
echo "== build-deb.sh"
./packaging/build-deb.sh | tee "$work/build.log"
agent_deb=$(sed -n 's/^built \(.*sajet-agent_.*\.deb\)$/\1/p' "$work/build.log")
cp_deb=$(sed -n 's/^built \(.*sajet-controlplane_.*\.deb\)$/\1/p' "$work/build.log")
v1=$(dpkg-deb -f "$agent_deb" Version)
v2="$v1+pkgtest1"
echo "== upgrade build $v2"
DEB_VERSION=$v2 DIST=$work/dist2 ./packaging/build-deb.sh
agent_deb2=$work/dist2/sajet-agent_${v2}_amd64.deb
cp_deb2=$work/dist2/sajet-controlplane_${v2}_amd64.deb
check "deb files exist: $agent_deb $cp_deb" test -f "$agent_deb" -a -f "$cp_deb" -a -f "$agent_deb2" -a -f "$cp_deb2"
check "Debian version $v1 derived from git version $VERSION; upgrade $v2 is newer" \
	dpkg --compare-versions "$v2" gt "$v1"

# ---------------------------------------------------------------------------------------------
# 2. lintian.
if have lintian; then
	echo "== lintian"
	if lintian --fail-on error,warning "$agent_deb" "$cp_deb" 2> >(grep -v 'running with root privileges' >&2); then
		pass "lintian: no errors or warnings (overrides: packaging/lintian/)"
	else
		fail "lintian reported errors or warnings (see above)"
	fi
else
	skip "lintian unavailable (apt-get install lintian)"
fi

# ---------------------------------------------------------------------------------------------
# 3. systemd units, as the packages install them.
if have systemd-analyze; then
	echo "== systemd-analyze"
	uroot=$work/unitroot
	mkdir -p "$uroot/usr/lib/systemd"
	dpkg-deb -x "$agent_deb" "$uroot"
	dpkg-deb -x "$cp_deb" "$uroot"
	# verify resolves dependencies (sysinit.target, network-online.target…) inside --root.
	if [[ -d /usr/lib/systemd/system ]]; then
		cp -a /usr/lib/systemd/system "$uroot/usr/lib/systemd/"
	fi
	for unit in sajet-agent.service sajet-controlplane.service; do
		# Unknown keys and bad values are only printed, so any output is a failure.
		if out=$(systemd-analyze verify --man=no --root="$uroot" "$unit" 2>&1) && [[ -z $out ]]; then
			pass "systemd-analyze verify $unit"
		else
			printf '%s\n' "$out"
			fail "systemd-analyze verify $unit"
		fi
		if out=$(systemd-analyze security --offline=yes --root="$uroot" "$unit" 2>&1); then
			score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
			if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s < 2.5) }'; then
				pass "systemd-analyze security $unit: exposure $score < 2.5"
			else
				printf '%s\n' "$out" | grep '✗' || true
				fail "systemd-analyze security $unit: exposure '${score:-?}' not below 2.5"
			fi
		else
			skip "systemd-analyze security --offline unavailable ($out)"
		fi
	done
else
	skip "systemd-analyze unavailable (apt-get install systemd)"
fi

# ---------------------------------------------------------------------------------------------
# 4. polkit rule.
rule=packaging/polkit/50-sajet-agent.rules
if have node; then
	echo "== polkit rule"
	cp "$rule" "$work/rule.js"
	check "polkit rule parses (node --check)" node --check "$work/rule.js"
	cat >"$work/rule-test.js" <<'JS'
const fs = require("fs");
const rules = [];
const polkit = { Result: { YES: "yes", NO: "no", AUTH_ADMIN: "auth_admin", NOT_HANDLED: null },
                 addRule: (f) => rules.push(f), log: () => {} };
new Function("polkit", fs.readFileSync(process.argv[2], "utf8"))(polkit);
if (rules.length !== 1) { console.error("want exactly one rule, got " + rules.length); process.exit(1); }
const decide = (user, id, unit, verb) => rules[0](
  { id, lookup: (k) => ({ unit, verb })[k] }, { user, isInGroup: () => false });
const M = "org.freedesktop.systemd1.manage-units";
// argv[3] = "replicas": the file was edited as packaging/README-ops.md says for two replicas.
const cases = process.argv[3] === "replicas" ? [
  ["sajet-agent", M, "cloudflared@1.service", "restart", "yes"],
  ["sajet-agent", M, "cloudflared@2.service", "restart", "yes"],
  ["sajet-agent", M, "cloudflared@3.service", "restart", null],
  ["sajet-agent", M, "cloudflared.service", "restart", null],
  ["sajet-agent", M, "cloudflared@1.service", "stop", null],
  ["sajet-agent", M, "cloudflared@1.service", "start", null],
  ["nobody", M, "cloudflared@1.service", "restart", null],
] : [
  ["sajet-agent", M, "cloudflared.service", "restart", "yes"],
  ["sajet-agent", M, "cloudflared.service", "start", null],
  ["sajet-agent", M, "cloudflared.service", "stop", null],
  ["sajet-agent", M, "cloudflared.service", "reload", null],
  ["sajet-agent", M, "cloudflared.service", "try-restart", null],
  ["sajet-agent", M, "ssh.service", "restart", null],
  ["sajet-agent", M, "cloudflared@x.service", "restart", null],
  ["sajet-agent", M, undefined, undefined, null],
  ["sajet-agent", "org.freedesktop.systemd1.manage-unit-files", "cloudflared.service", "restart", null],
  ["sajet-agent", "org.freedesktop.login1.reboot", undefined, undefined, null],
  ["nobody", M, "cloudflared.service", "restart", null],
  ["root", M, "cloudflared.service", "restart", null],
];
let bad = 0;
for (const [u, id, unit, verb, want] of cases) {
  const got = decide(u, id, unit, verb) ?? null;
  if (got !== want) { bad++; console.error(`user=${u} action=${id} unit=${unit} verb=${verb}: got ${got}, want ${want}`); }
}
process.exit(bad ? 1 : 0);
JS
	check "polkit rule grants only sajet-agent restart of cloudflared.service (12 cases)" \
		node "$work/rule-test.js" "$rule"
	sed 's|^    var units = .*|    var units = ["cloudflared@1.service", "cloudflared@2.service"];|' "$rule" >"$work/rule-replicas.js"
	check "polkit rule with the replicas listed grants exactly their restart (7 cases)" \
		node "$work/rule-test.js" "$work/rule-replicas.js" replicas
else
	skip "node unavailable: polkit rule not syntax-checked (apt-get install nodejs)"
fi
# The action the rule matches must be systemd's: pkaction asks polkitd over D-Bus (not running in
# a build container), so fall back to systemd's policy file, which pkaction would read.
policy=/usr/share/polkit-1/actions/org.freedesktop.systemd1.policy
if have pkaction && pkaction --action-id org.freedesktop.systemd1.manage-units >/dev/null 2>&1; then
	pass "pkaction knows org.freedesktop.systemd1.manage-units (the action the rule matches)"
elif [[ -r $policy ]]; then
	check "systemd's polkit policy defines org.freedesktop.systemd1.manage-units (the action the rule matches)" \
		grep -q '<action id="org.freedesktop.systemd1.manage-units">' "$policy"
else
	skip "pkaction/polkitd and systemd's polkit policy unavailable: action id not cross-checked"
fi

# ---------------------------------------------------------------------------------------------
# 5. install → upgrade → remove → purge in a throwaway Debian root.
cycle() {
	local R=$work/root
	local suite mirror cache tarball
	# shellcheck disable=SC1091 # a subshell: os-release's VERSION does not leak
	suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
	suite=${suite:-bookworm}
	mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
	cache=${SAJET_PKGTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sajet-packaging}
	tarball=$cache/$suite-minbase-adduser.tar.gz
	mkdir -p "$R" "$cache"
	if [[ -s $tarball ]]; then
		echo "== throwaway root from $tarball"
		tar -xzf "$tarball" -C "$R"
	else
		echo "== debootstrap $suite from $mirror (cached afterwards in $tarball)"
		if ! debootstrap --variant=minbase --include=adduser "$suite" "$R" "$mirror" >"$work/debootstrap.log" 2>&1; then
			tail -n 20 "$work/debootstrap.log"
			fail "debootstrap $suite from $mirror"
			return
		fi
		tar -czf "$tarball.tmp" -C "$R" . && mv "$tarball.tmp" "$tarball"
	fi
	local in=(chroot "$R")
	# st PATH → "mode owner:group" as the throwaway root's own passwd/group resolve them.
	st() { "${in[@]}" stat -c '%a %U:%G' "$1" 2>/dev/null || echo missing; }
	expect_st() { # DESCRIPTION PATH WANT
		local got
		got=$(st "$2")
		if [[ $got == "$3" ]]; then pass "$1: $2 is $3"; else fail "$1: $2 is '$got', want '$3'"; fi
	}
	as_agent() { "${in[@]}" setpriv --reuid=sajet-agent --regid=sajet-agent --init-groups sh -c "$1" 2>/dev/null; }
	dpkg_r() { "${in[@]}" dpkg --force-confdef --force-confold "$@" </dev/null >>"$work/dpkg.log" 2>&1; }
	# shellcheck disable=SC2016 # dpkg-query's own ${field} syntax
	status() { "${in[@]}" dpkg-query -W -f '${db:Status-Abbrev}${Version}' "$1" 2>/dev/null || echo "not-installed"; }
	mkdir -p "$R/tmp/pkgs"
	cp "$agent_deb" "$cp_deb" "$agent_deb2" "$cp_deb2" "$R/tmp/pkgs/"
	local p1a=/tmp/pkgs/${agent_deb##*/} p1c=/tmp/pkgs/${cp_deb##*/}
	local p2a=/tmp/pkgs/${agent_deb2##*/} p2c=/tmp/pkgs/${cp_deb2##*/}

	# The operator's existing cloudflared set-up.
	mkdir -p "$R/etc/cloudflared"
	chmod 0755 "$R/etc/cloudflared"
	local creds=$R/etc/cloudflared/11111111-2222-3333-4444-555555555555.json
	cat >"$R/etc/cloudflared/config.yml" <<-'YAML'
	tunnel: 11111111-2222-3333-4444-555555555555
	credentials-file: /etc/cloudflared/11111111-2222-3333-4444-555555555555.json
	ingress:
	  - hostname: ssh.example.com
	    service: ssh://localhost:22
	  - service: http_status:404
	YAML
	chmod 0644 "$R/etc/cloudflared/config.yml"
	echo '{"AccountTag":"x","TunnelSecret":"c2VjcmV0","TunnelID":"11111111-2222-3333-4444-555555555555"}' >"$creds"
	chmod 0400 "$creds"
	cp "$R/etc/cloudflared/config.yml" "$work/operator-config.yml"
	cp "$creds" "$work/creds.json"

	# --- install
	echo "== install $v1"
	if dpkg_r -i "$p1a" "$p1c"; then pass "dpkg -i (install $v1)"; else
		cat "$work/dpkg.log"
		fail "dpkg -i (install $v1)"
		return
	fi
	check "sajet-agent installed at $v1" test "$(status sajet-agent)" = "ii $v1"
	check "sajet-controlplane installed at $v1" test "$(status sajet-controlplane)" = "ii $v1"
	expect_st "binary" /usr/bin/sajet-agent "755 root:root"
	expect_st "binary" /usr/bin/sajet-controlplane "755 root:root"
	expect_st "unit" /lib/systemd/system/sajet-agent.service "644 root:root"
	expect_st "unit" /lib/systemd/system/sajet-controlplane.service "644 root:root"
	expect_st "polkit rule" /etc/polkit-1/rules.d/50-sajet-agent.rules "644 root:root"
	check "conffiles registered: the polkit rule (operators edit its unit list)" grep -qx /etc/polkit-1/rules.d/50-sajet-agent.rules "$R/var/lib/dpkg/info/sajet-agent.conffiles"
	expect_st "agent conffile (token)" /etc/sajet-agent/agent.yml "640 root:sajet-agent"
	expect_st "control-plane env file (secrets)" /etc/sajet-controlplane/controlplane.env "640 root:sajet-controlplane"
	expect_st "state dir" /var/lib/sajet-agent "750 sajet-agent:sajet-agent"
	expect_st "imported base file" /etc/sajet-agent/base.yml "640 root:sajet-agent"
	expect_st "cloudflared dir, group-writable for the agent, still root's" /etc/cloudflared "775 root:sajet-agent"
	expect_st "tunnel credentials untouched" "/etc/cloudflared/${creds##*/}" "400 root:root"
	check "base.yml imported from the pre-seeded /etc/cloudflared/config.yml" \
		cmp -s "$R/etc/sajet-agent/base.yml" "$work/operator-config.yml"
	check "conffiles registered: agent.yml" grep -qx /etc/sajet-agent/agent.yml "$R/var/lib/dpkg/info/sajet-agent.conffiles"
	local pw
	pw=$("${in[@]}" getent passwd sajet-agent || true)
	check "user sajet-agent: system uid, home /var/lib/sajet-agent, no login shell ($pw)" \
		awk -F: -v l="$pw" 'BEGIN { split(l, f, ":"); exit !(f[3] > 0 && f[3] < 1000 && f[6] == "/var/lib/sajet-agent" && f[7] == "/usr/sbin/nologin") }'
	pw=$("${in[@]}" getent passwd sajet-controlplane || true)
	check "user sajet-controlplane: system uid, no login shell ($pw)" \
		awk -F: -v l="$pw" 'BEGIN { split(l, f, ":"); exit !(f[3] > 0 && f[3] < 1000 && f[7] == "/usr/sbin/nologin") }'
	local uid_before
	uid_before=$("${in[@]}" id -u sajet-agent)
	check "sajet-agent --version prints $VERSION (embedded at build time)" \
		test "$("${in[@]}" /usr/bin/sajet-agent --version)" = "$VERSION"
	check "sajet-controlplane version prints $VERSION" \
		test "$("${in[@]}" /usr/bin/sajet-controlplane version 2>&1 | tail -n1)" = "$VERSION"
	check "statoverrides registered" test "$("${in[@]}" dpkg-statoverride --list | sort)" = \
		"$(printf '%s\n' 'root sajet-agent 640 /etc/sajet-agent/agent.yml' 'root sajet-controlplane 640 /etc/sajet-controlplane/controlplane.env' | sort)"

	# Least privilege, as the agent user: what the agent needs works, the rest is refused.
	check "agent user can read agent.yml and base.yml" as_agent 'cat /etc/sajet-agent/agent.yml /etc/sajet-agent/base.yml >/dev/null'
	check "agent user cannot write agent.yml" eval '! as_agent "echo x >> /etc/sajet-agent/agent.yml"'
	check "agent user cannot read the tunnel credentials" eval "! as_agent 'cat /etc/cloudflared/${creds##*/} >/dev/null'"
	# What the agent does on each apply: read config.yml, temp file in the dir, rename over it.
	# shellcheck disable=SC2016 # expanded by the chrooted sh
	check "agent user can replace /etc/cloudflared/config.yml atomically (temp file + rename)" as_agent '
		cat /etc/cloudflared/config.yml >/dev/null &&
		t=$(mktemp /etc/cloudflared/.sajet-tmp-config.yml-XXXXXX) &&
		{ cat /etc/cloudflared/config.yml; echo "# rendered by sajet-agent (test)"; } >"$t" &&
		chmod 0644 "$t" && mv "$t" /etc/cloudflared/config.yml'
	cp "$R/etc/cloudflared/config.yml" "$work/rendered-config.yml"
	check "agent user can write its state dir" as_agent 'echo lastgood >/var/lib/sajet-agent/last-good.yml'
	check "agent user cannot write elsewhere in /etc" eval '! as_agent "touch /etc/sajet-agent/x"'

	# The shipped agent.yml must be accepted by the agent (unknown keys are errors). Run it for a
	# moment as the agent user, with the files it would write redirected into /tmp so that the
	# cycle's own checks are unaffected; only a config error counts (no control plane is there).
	sed -e 's|^unit: .*|unit: ""|' -e 's|^state_dir: .*|state_dir: /tmp/smoke/state|' \
		-e 's|^config_path: .*|config_path: /tmp/smoke/config.yml|' -e 's|^health_addr: .*|health_addr: "off"|' \
		"$R/etc/sajet-agent/agent.yml" >"$R/tmp/agent-smoke.yml"
	mkdir -p "$R/tmp/smoke"
	chown --reference="$R/var/lib/sajet-agent" "$R/tmp/smoke" "$R/tmp/agent-smoke.yml"
	local smoke
	smoke=$("${in[@]}" setpriv --reuid=sajet-agent --regid=sajet-agent --init-groups \
		timeout 3 /usr/bin/sajet-agent --config /tmp/agent-smoke.yml 2>&1 || true)
	if grep -q 'config /tmp/agent-smoke.yml' <<<"$smoke"; then
		printf '%s\n' "$smoke"
		fail "the shipped agent.yml is accepted by sajet-agent"
	else
		pass "the shipped agent.yml is accepted by sajet-agent"
	fi

	# Operator edits before the upgrade.
	sed -i 's/^token: .*/token: sja_operator_edit_survives/' "$R/etc/sajet-agent/agent.yml"
	echo 'SAJET_ZONE=edit.example' >>"$R/etc/sajet-controlplane/controlplane.env"

	# --- upgrade
	echo "== upgrade to $v2"
	if dpkg_r -i "$p2a" "$p2c"; then pass "dpkg -i (upgrade to $v2)"; else
		cat "$work/dpkg.log"
		fail "dpkg -i (upgrade to $v2)"
		return
	fi
	check "sajet-agent upgraded to $v2" test "$(status sajet-agent)" = "ii $v2"
	check "sajet-controlplane upgraded to $v2" test "$(status sajet-controlplane)" = "ii $v2"
	check "agent.yml edit survives the upgrade" grep -q '^token: sja_operator_edit_survives$' "$R/etc/sajet-agent/agent.yml"
	check "controlplane.env edit survives the upgrade" grep -q '^SAJET_ZONE=edit.example$' "$R/etc/sajet-controlplane/controlplane.env"
	expect_st "after upgrade, agent conffile" /etc/sajet-agent/agent.yml "640 root:sajet-agent"
	expect_st "after upgrade, env file" /etc/sajet-controlplane/controlplane.env "640 root:sajet-controlplane"
	check "state survives the upgrade" grep -qx lastgood "$R/var/lib/sajet-agent/last-good.yml"
	expect_st "after upgrade, state dir" /var/lib/sajet-agent "750 sajet-agent:sajet-agent"
	check "base.yml not re-imported on upgrade (still the operator's original)" \
		cmp -s "$R/etc/sajet-agent/base.yml" "$work/operator-config.yml"
	check "config.yml not touched by the upgrade" cmp -s "$R/etc/cloudflared/config.yml" "$work/rendered-config.yml"
	check "user keeps its uid across the upgrade" test "$("${in[@]}" id -u sajet-agent)" = "$uid_before"
	check "postinst configure is idempotent (run again)" \
		"${in[@]}" env DPKG_MAINTSCRIPT_NAME=postinst sh -c "DPKG_MAINTSCRIPT_PACKAGE=sajet-agent /var/lib/dpkg/info/sajet-agent.postinst configure '$v1' >/dev/null && DPKG_MAINTSCRIPT_PACKAGE=sajet-controlplane /var/lib/dpkg/info/sajet-controlplane.postinst configure '$v1' >/dev/null"
	expect_st "after a second configure, cloudflared dir" /etc/cloudflared "775 root:sajet-agent"

	# --- remove
	echo "== remove"
	if dpkg_r -r sajet-agent sajet-controlplane; then pass "dpkg -r (remove)"; else
		cat "$work/dpkg.log"
		fail "dpkg -r (remove)"
		return
	fi
	check "sajet-agent removed, config kept (rc)" test "$(status sajet-agent)" = "rc $v2"
	check "sajet-controlplane removed, config kept (rc)" test "$(status sajet-controlplane)" = "rc $v2"
	check "remove deletes the binaries and units" eval "[ ! -e '$R/usr/bin/sajet-agent' ] && [ ! -e '$R/usr/bin/sajet-controlplane' ] && [ ! -e '$R/lib/systemd/system/sajet-agent.service' ]"
	check "remove keeps the polkit rule (a conffile; purge removes it)" test -f "$R/etc/polkit-1/rules.d/50-sajet-agent.rules"
	check "remove keeps agent.yml (with the edit)" grep -q '^token: sja_operator_edit_survives$' "$R/etc/sajet-agent/agent.yml"
	check "remove keeps the state" grep -qx lastgood "$R/var/lib/sajet-agent/last-good.yml"
	check "remove keeps the user" eval "${in[*]} getent passwd sajet-agent >/dev/null"
	check "remove keeps /etc/cloudflared/config.yml" cmp -s "$R/etc/cloudflared/config.yml" "$work/rendered-config.yml"

	# --- purge
	echo "== purge"
	if dpkg_r -P sajet-agent sajet-controlplane; then pass "dpkg -P (purge)"; else
		cat "$work/dpkg.log"
		fail "dpkg -P (purge)"
		return
	fi
	check "sajet-agent purged" test "$(status sajet-agent)" = "not-installed"
	check "purge removes user and group sajet-agent" eval "! ${in[*]} getent passwd sajet-agent >/dev/null && ! ${in[*]} getent group sajet-agent >/dev/null"
	check "purge removes user and group sajet-controlplane" eval "! ${in[*]} getent passwd sajet-controlplane >/dev/null && ! ${in[*]} getent group sajet-controlplane >/dev/null"
	check "purge removes the state dir" test ! -e "$R/var/lib/sajet-agent"
	check "purge removes /etc/sajet-agent (agent.yml, base.yml)" test ! -e "$R/etc/sajet-agent"
	check "purge removes the polkit rule" test ! -e "$R/etc/polkit-1/rules.d/50-sajet-agent.rules"
	check "purge removes /etc/sajet-controlplane" test ! -e "$R/etc/sajet-controlplane"
	check "purge removes the statoverrides" test -z "$("${in[@]}" dpkg-statoverride --list)"
	check "purge keeps /etc/cloudflared/config.yml with its content" cmp -s "$R/etc/cloudflared/config.yml" "$work/rendered-config.yml"
	check "purge keeps the tunnel credentials with their content" cmp -s "$creds" "$work/creds.json"
	expect_st "after purge, credentials" "/etc/cloudflared/${creds##*/}" "400 root:root"
	expect_st "after purge, cloudflared dir back to root, no group write" /etc/cloudflared "755 root:root"
	expect_st "after purge, config.yml the agent wrote is root's" /etc/cloudflared/config.yml "644 root:root"
	check "after purge, nothing in /etc/cloudflared belongs to a deleted user or group" \
		test -z "$("${in[@]}" find /etc/cloudflared \( -nouser -o -nogroup \) -print)"
}

if [[ $(id -u) != 0 ]]; then
	skip "install/upgrade/remove/purge cycle needs root (chroot)"
elif ! have debootstrap; then
	skip "debootstrap unavailable: install/upgrade/remove/purge cycle not run (apt-get install debootstrap)"
else
	cycle
fi

echo
if ((failures > 0)); then
	echo "test-packaging: $failures check(s) FAILED ($((SECONDS - started)) s)"
	exit 1
fi
echo "test-packaging: all checks passed ($((SECONDS - started)) s)"
