#!/usr/bin/env bash
# Installs a Debian package built by platform/package.sh on this machine and checks it as an
# operator would meet it, then removes and purges it. Needs root, the package's architecture
# and an op-lite not installed otherwise (it refuses to touch one). `.ci/run` runs it on the
# amd64 package.
#
#   sudo bash platform/package-check.sh target/debian/op-lite_0.1.0_amd64.deb
#
# Checks: dpkg installs it; the unit passes `systemd-analyze verify`; /usr/bin/op-lite
# --version runs; the env file is a root-only conffile; the unit is enabled (its wants link)
# and not started; a reinstall (postinst configure with the old version) keeps an edited env
# file; remove keeps the configuration; purge leaves nothing: binary, unit, /etc/op-lite,
# wants link, deb-systemd-helper state, the service's state directory.
set -euo pipefail

deb=${1:?usage: package-check.sh PACKAGE.deb}
[ -f "$deb" ] || { echo "package-check.sh: no file $deb" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "package-check.sh: must run as root (dpkg -i)" >&2; exit 2; }

bin=/usr/bin/op-lite
unit=/lib/systemd/system/op-lite.service
env=/etc/op-lite/op-lite.env
wants=/etc/systemd/system/multi-user.target.wants/op-lite.service
mask=/etc/systemd/system/op-lite.service
state=/var/lib/op-lite
private=/var/lib/private/op-lite

fail() {
    echo "package-check: FAIL: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }
installed() { dpkg-query -W -f='${Status}' op-lite 2>/dev/null | grep -q 'ok installed'; }
# Any process running the packaged binary (other op-lite processes, such as tests, run
# binaries elsewhere).
running() {
    local exe
    for exe in /proc/[0-9]*/exe; do
        [ "$(readlink "$exe" 2>/dev/null)" = "$bin" ] && return 0
    done
    return 1
}

if dpkg-query -W -f='${Status}' op-lite 2>/dev/null | grep -qv 'not-installed'; then
    fail "op-lite is already known to dpkg here (purge it first): refusing to touch it"
fi
for p in "$bin" /etc/op-lite "$state" "$private" "$wants" "$mask"; do
    [ ! -e "$p" ] && [ ! -L "$p" ] || fail "$p exists before installation: refusing to touch it"
done
# Whatever happens, leave the machine as it was.
trap 'if dpkg-query -W op-lite >/dev/null 2>&1; then dpkg --purge op-lite >/dev/null 2>&1 || true; fi' EXIT

echo "== dpkg -i $deb"
dpkg -i "$deb"
installed || fail "dpkg -s op-lite: $(dpkg-query -W -f='${Status}' op-lite)"
ok "dpkg -s op-lite: $(dpkg-query -W -f='${Status} ${Version} ${Architecture}' op-lite)"

out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
[ -z "$out" ] || fail "systemd-analyze verify $unit warns: $out"
grep -qx "ExecStart=$bin" "$unit" || fail "$unit: ExecStart is not $bin"
ok "systemd-analyze verify $unit"

version=$("$bin" --version) || fail "$bin --version failed"
case $version in "op-lite version v"*) ;; *) fail "$bin --version printed '$version'" ;; esac
ok "$bin --version: $version"

[ -f "$env" ] || fail "$env missing"
[ "$(stat -c '%a %U:%G' "$env")" = "640 root:root" ] || fail "$env is $(stat -c '%a %U:%G' "$env")"
dpkg-query -W -f='${Conffiles}\n' op-lite | grep -q "^ $env " || fail "$env is not a conffile"
ok "$env: conffile, 0640 root:root"

[ "$(readlink "$wants")" = "$unit" ] || fail "$wants is not a link to $unit (unit not enabled)"
if [ -d /run/systemd/system ]; then
    state_now=$(systemctl is-enabled op-lite.service || true)
    [ "$state_now" = enabled ] || fail "systemctl is-enabled op-lite: $state_now"
    ! systemctl --quiet is-active op-lite.service || fail "op-lite.service was started on installation"
fi
! running || fail "$bin runs: the installation started it"
ok "enabled ($wants), not started"

echo "== reinstall over itself (postinst configure with the old version), an edited env file"
echo "# edited by package-check" >>"$env"
dpkg -i "$deb"
grep -q '^# edited by package-check$' "$env" || fail "the reinstall replaced the edited $env"
[ "$(readlink "$wants")" = "$unit" ] || fail "the reinstall lost $wants"
! running || fail "$bin runs after the reinstall"
ok "reinstall kept $env and the enabled unit, started nothing"

echo "== dpkg --remove op-lite"
dpkg --remove op-lite
[ ! -e "$bin" ] || fail "$bin left after remove"
[ ! -e "$unit" ] || fail "$unit left after remove"
[ -f "$env" ] || fail "remove deleted $env (only purge should)"
ok "remove: binary and unit gone, configuration kept"

echo "== dpkg --purge op-lite (with state as the service leaves it)"
# StateDirectory= of a DynamicUser service: /var/lib/op-lite -> private/op-lite.
mkdir -p "$private"
echo 0x00 >"$private/jwt.hex"
ln -s private/op-lite "$state"
dpkg --purge op-lite
! dpkg-query -W op-lite >/dev/null 2>&1 || fail "dpkg still knows op-lite: $(dpkg-query -W -f='${Status}' op-lite)"
for p in "$bin" "$unit" /etc/op-lite "$wants" "$mask" "$state" "$private"; do
    [ ! -e "$p" ] && [ ! -L "$p" ] || fail "$p left after purge"
done
left=$(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
    -name 'op-lite*' 2>/dev/null || true)
[ -z "$left" ] || fail "deb-systemd-helper state left after purge: $left"
ok "purge: binary, unit, /etc/op-lite, wants link, mask, state directory all gone"
echo "package-check: $deb passed"
