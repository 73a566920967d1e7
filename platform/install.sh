#!/bin/sh
# Installs op-lite as a systemd service: the binary, the unit, an example environment file and
# (through DynamicUser) its user. Idempotent: re-running upgrades the binary and unit and keeps
# an existing /etc/op-lite/op-lite.env. `--uninstall` removes the binary and unit and keeps the
# configuration and state.
#
#   sudo platform/install.sh [BINARY]        default BINARY: target/release/op-lite
#   sudo platform/install.sh --uninstall
#
# DESTDIR and PREFIX relocate the files (packaging, tests); systemctl is skipped when
# DESTDIR is set or systemd is not running.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-/usr/local}
dest=${DESTDIR:-}
bin_dir="$dest$prefix/bin"
unit_dir="$dest/etc/systemd/system"
conf_dir="$dest/etc/op-lite"

have_systemd() {
    [ -z "$dest" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

if [ "${1:-}" = "--uninstall" ]; then
    if have_systemd; then
        systemctl disable --now op-lite.service 2>/dev/null || true
    fi
    rm -f "$bin_dir/op-lite" "$unit_dir/op-lite.service"
    if have_systemd; then
        systemctl daemon-reload
    fi
    echo "op-lite removed (configuration in $conf_dir and state in /var/lib/op-lite kept)"
    exit 0
fi

binary=${1:-target/release/op-lite}
if [ ! -x "$binary" ]; then
    echo "install.sh: no executable at $binary (build it first: cargo build --release)" >&2
    exit 1
fi

install -d -m 0755 "$bin_dir" "$unit_dir"
# 0755: the service runs as a dynamic user, which must be able to read a rollup.json or JWT
# secret kept here; the env file itself is 0640 (systemd reads it as root).
install -d -m 0755 "$conf_dir"
install -m 0755 "$binary" "$bin_dir/op-lite"
sed "s|/usr/local/bin/op-lite|$prefix/bin/op-lite|" "$here/systemd/op-lite.service" > "$unit_dir/op-lite.service.tmp"
chmod 0644 "$unit_dir/op-lite.service.tmp"
mv "$unit_dir/op-lite.service.tmp" "$unit_dir/op-lite.service"
if [ ! -e "$conf_dir/op-lite.env" ]; then
    install -m 0640 "$here/systemd/op-lite.env" "$conf_dir/op-lite.env"
    echo "wrote $conf_dir/op-lite.env: set your L1, beacon and engine endpoints there"
else
    echo "kept existing $conf_dir/op-lite.env"
fi
if have_systemd; then
    systemctl daemon-reload
    echo "installed; start with: systemctl enable --now op-lite"
else
    echo "installed under ${dest:-/}"
fi
