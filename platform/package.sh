#!/usr/bin/env bash
# Builds the Debian package op-lite_<version>_<arch>.deb from the release build:
#
#   bash platform/package.sh x86_64-unknown-linux-gnu        # amd64
#   bash platform/package.sh aarch64-unknown-linux-gnu       # arm64 (cross: see README)
#   bash platform/package.sh armv7-unknown-linux-gnueabihf   # armhf (cross: see README)
#
# Contents: /usr/bin/op-lite; the hardened unit /lib/systemd/system/op-lite.service (the one
# install.sh installs, ExecStart=/usr/bin/op-lite); /etc/op-lite/op-lite.env as a conffile;
# a man page; copyright, changelog and lintian overrides; maintainer scripts from
# platform/debian/ (the unit is enabled, not started, on installation; purge removes the
# configuration and the service's state).
#
# Environment:
#   OP_LITE_BINARY=PATH      package this binary instead of running
#                            `cargo build --release --locked --target TARGET`
#   OP_LITE_DEB_DIR=DIR      output directory (default: target/debian)
#   OP_LITE_DEB_COMPRESSION  dpkg-deb compressor: xz (default), gzip, zstd or none
#
# Needs dpkg-deb, readelf and gzip; dpkg-shlibdeps (dpkg-dev) is used for the host
# architecture when present. The path of the package is the last line printed.
set -euo pipefail

die() {
    echo "package.sh: $1" >&2
    exit "${2:-1}"
}

target=${1:-}
case $target in
    x86_64-unknown-linux-gnu) arch=amd64 machine="Advanced Micro Devices X86-64" triplet=x86_64-linux-gnu ;;
    aarch64-unknown-linux-gnu) arch=arm64 machine=AArch64 triplet=aarch64-linux-gnu ;;
    armv7-unknown-linux-gnueabihf) arch=armhf machine=ARM triplet=arm-linux-gnueabihf ;;
    *) die "${target:+unknown target '$target': }usage: package.sh TARGET (x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf)" 2 ;;
esac

# Paths the caller gave are relative to where it stands; everything else to the repository.
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
binary=${OP_LITE_BINARY:+$(abs "$OP_LITE_BINARY")}
out_dir=${OP_LITE_DEB_DIR:+$(abs "$OP_LITE_DEB_DIR")}
cd "$(dirname "$0")/.."
deb=platform/debian
target_dir=$(abs "${CARGO_TARGET_DIR:-target}") # cargo reads a relative one from here too
out_dir=${out_dir:-$target_dir/debian}
compression=${OP_LITE_DEB_COMPRESSION:-xz}

# Cargo.toml's [package] version; a semver pre-release (0.2.0-rc.1) sorts before its release
# in Debian only as 0.2.0~rc.1.
version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml's [package]"
deb_version=${version/-/\~}
changelog_version=$(sed -n '1s/^op-lite (\([^)]*\)).*/\1/p' "$deb/changelog")
[ "$changelog_version" = "$deb_version" ] ||
    die "$deb/changelog's latest entry is ${changelog_version:-missing}, Cargo.toml's version is $deb_version: add an entry"

if [ -z "$binary" ]; then
    cargo build --release --locked --target "$target" >&2
    binary=$target_dir/$target/release/op-lite
fi
[ -f "$binary" ] && [ -x "$binary" ] || die "no executable at $binary"

# The binary must be the target's: OP_LITE_BINARY could name another architecture's.
header=$(readelf -h "$binary" 2>/dev/null) || die "$binary is not an ELF file"
got=$(sed -n 's/^ *Machine: *//p' <<<"$header")
[ "$got" = "$machine" ] || die "$binary is built for '$got', not $target ($machine)"
if [ "$arch" = armhf ] && ! grep -q 'hard-float ABI' <<<"$header"; then
    die "$binary is not a hard-float (armhf) binary"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/debian/op-lite # dpkg-shlibdeps' layout: it runs from $work with debian/control
mkdir -p "$root"

# Timestamps from the changelog entry: the same sources and binary give the same package.
date_line=$(sed -n 's/^ -- .*>  //p' "$deb/changelog" | head -n1)
epoch=$(date -d "$date_line" +%s) || die "$deb/changelog: unreadable date '$date_line'"
export SOURCE_DATE_EPOCH=$epoch

install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/op-lite" \
    "$root/usr/share/doc/op-lite" "$root/usr/share/man/man1" "$root/usr/share/lintian/overrides"
install -m 0755 "$binary" "$root/usr/bin/op-lite"
# Strip as dh_strip does (symbols, .comment, .note): the release profile already strips symbols;
# a debug build (the tests package one) shrinks from about 100 MB to 14.
strip_tool=$(command -v "$triplet-strip" || true)
if [ -z "$strip_tool" ] && [ "$arch" = "$(dpkg --print-architecture 2>/dev/null)" ]; then
    strip_tool=$(command -v strip || true)
fi
if [ -n "$strip_tool" ]; then
    "$strip_tool" --remove-section=.comment --remove-section=.note "$root/usr/bin/op-lite"
elif readelf -S -W "$root/usr/bin/op-lite" | grep -q ' \.symtab '; then
    die "$binary is not stripped and there is no $triplet-strip to strip it"
fi

unit=$root/lib/systemd/system/op-lite.service
sed 's|/usr/local/bin/op-lite|/usr/bin/op-lite|' platform/systemd/op-lite.service >"$unit"
chmod 0644 "$unit"
grep -qx 'ExecStart=/usr/bin/op-lite' "$unit" || die "the unit's ExecStart is not /usr/local/bin/op-lite any more"
# 0640: the endpoints may carry credentials (an RPC URL with an API key, a beacon header).
# systemd reads it as root (EnvironmentFile); the service never needs to. The directory stays
# 0755 so the service's dynamic user can read a rollup.json kept there.
install -m 0640 platform/systemd/op-lite.env "$root/etc/op-lite/op-lite.env"

install -m 0644 "$deb/copyright" "$root/usr/share/doc/op-lite/copyright"
gzip -9n <"$deb/changelog" >"$root/usr/share/doc/op-lite/changelog.gz"
gzip -9n <"$deb/op-lite.1" >"$root/usr/share/man/man1/op-lite.1.gz"
install -m 0644 "$deb/lintian-overrides" "$root/usr/share/lintian/overrides/op-lite"
chmod 0644 "$root/usr/share/doc/op-lite/changelog.gz" "$root/usr/share/man/man1/op-lite.1.gz"

# Depends: dpkg-shlibdeps for the host's own architecture; for a cross target (whose libraries
# dpkg does not know) the highest symbol version the binary needs from each library, which is
# what the libc6 and libgcc-s1 symbols files map them to.
depends=
if [ "$arch" = "$(dpkg --print-architecture 2>/dev/null)" ] && command -v dpkg-shlibdeps >/dev/null; then
    printf 'Source: op-lite\n\nPackage: op-lite\nArchitecture: any\n' >"$work/debian/control"
    depends=$(cd "$work" && dpkg-shlibdeps -O debian/op-lite/usr/bin/op-lite 2>/dev/null |
        sed -n 's/^shlibs:Depends=//p') || depends=
fi
if [ -z "$depends" ]; then
    needs=$(readelf -V -W "$root/usr/bin/op-lite" | awk '
        /File: / { for (i = 1; i <= NF; i++) if ($i == "File:") file = $(i + 1) }
        /Name: / && file != "" { for (i = 1; i <= NF; i++) if ($i == "Name:") print file, $(i + 1) }')
    highest() { grep -o "$1[0-9.]*" <<<"$needs" | sed "s/^$1//" | sort -V | tail -n1; }
    for lib in $(readelf -d "$root/usr/bin/op-lite" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        case $lib in
            libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libutil.so.1 | ld-linux*) pkg=libc6 ;;
            libgcc_s.so.1) pkg=libgcc-s1 ;;
            *) die "$binary needs $lib: add its package to package.sh's Depends" ;;
        esac
        case ", $depends, " in *", $pkg "* | *", $pkg, "*) continue ;; esac
        case $pkg in
            libc6) v=$(highest GLIBC_) ;;
            libgcc-s1) v=$(highest GCC_ | cut -d. -f1,2) ;;
        esac
        depends="${depends:+$depends, }$pkg${v:+ (>= $v)}"
    done
    depends=$(sed 's/, /\n/g' <<<"$depends" | LC_ALL=C sort | paste -sd, | sed 's/,/, /g')
fi

# Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, 1 per directory.
size=$(cd "$root" && find . -path ./DEBIAN -prune -o ! -name . -printf '%y %s\n' |
    awk '{ n += ($1 == "f") ? int(($2 + 1023) / 1024) : 1 } END { print n }')
homepage=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^(homepage|repository) *=/ { print $2; exit }' Cargo.toml)

{
    echo "Package: op-lite"
    echo "Version: $deb_version"
    echo "Architecture: $arch"
    echo "Maintainer: $(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$deb/changelog" | head -n1)"
    echo "Installed-Size: $size"
    echo "Depends: $depends"
    echo "Section: net"
    echo "Priority: optional"
    [ -z "$homepage" ] || echo "Homepage: $homepage"
    cat <<'EOF'
Description: OP Stack rollup node for single-board computers and edge boxes
 op-lite is an OP Stack rollup node, compatible with op-node, for constrained
 hosts: it derives the L2 chain from L1 batches and blobs, drives an execution
 engine (op-reth or op-geth) over the engine API, follows unsafe blocks over
 P2P gossip and serves op-node's RPC methods and metrics in a few MB of memory.
 .
 This package runs it as a hardened systemd service configured in
 /etc/op-lite/op-lite.env. The service is enabled but not started on
 installation: set the L1, beacon and engine endpoints first.
EOF
} >"$root/DEBIAN/control"
echo /etc/op-lite/op-lite.env >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
    xargs -d '\n' md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
for script in postinst prerm postrm; do
    install -m 0755 "$deb/$script" "$root/DEBIAN/$script"
done

find "$root" -exec touch -h -d "@$epoch" {} +
mkdir -p "$out_dir"
package=$out_dir/op-lite_${deb_version}_$arch.deb
dpkg-deb --root-owner-group -Z"$compression" --build "$root" "$package" >&2
echo "$package"
