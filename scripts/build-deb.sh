#!/usr/bin/env bash
# Build the ioc-edge Debian package and put it in ./dist/.
#
# Usage: scripts/build-deb.sh [--arch ARCH] [--no-deps]
#   --arch ARCH  build for ARCH (e.g. arm64) with Debian's cross compilers: multiarch, the :ARCH
#                -dev packages and crossbuild-essential-ARCH are installed (default: this machine's)
#   --no-deps    do not install build dependencies with apt-get (they are already there)
#
# The build runs in a temporary copy of the tree (tracked and untracked files that git does not
# ignore; no build directories), with packaging/debian copied to debian/ there, so the working
# tree is never touched. Needs root (or sudo) only to install the build dependencies.
set -euo pipefail

install_deps=1
build_arch=$(dpkg --print-architecture)
host_arch=$build_arch
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-deps) install_deps=0 ;;
        --arch)
            [[ $# -ge 2 && -n "$2" ]] || { echo "build-deb.sh: --arch needs an architecture, e.g. arm64" >&2; exit 2; }
            host_arch=$2
            shift ;;
        -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "build-deb.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
cross=()
if [[ $host_arch != "$build_arch" ]]; then
    cross=(-a "$host_arch")
fi

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [[ ! -f packaging/debian/control ]]; then
    echo "build-deb.sh: $top/packaging/debian/control not found" >&2
    exit 1
fi

workdir=$(mktemp -d "${TMPDIR:-/tmp}/ioc-edge-deb.XXXXXX")
trap 'rm -rf "$workdir"' EXIT

version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
src="$workdir/ioc-edge-$version"
mkdir -p "$src"

# --- copy the tree -----------------------------------------------------------------------------
# Build outputs never go in: build*/, obj-*/ (debhelper's), dist/, a stray debian/.
is_excluded() {
    case "$1" in
        build/*|build-*/*|obj-*/*|dist/*|debian/*|.git/*) return 0 ;;
        *) return 1 ;;
    esac
}

if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files plus untracked ones that .gitignore does not exclude; files deleted in the
    # working tree but still in the index are skipped.
    git -C "$top" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            if is_excluded "$f"; then continue; fi
            if [[ -e "$f" || -L "$f" ]] && [[ ! -d "$f" ]]; then printf '%s\0' "$f"; fi
        done |
        sort -zu |
        tar --null --no-recursion -T - -cf - | tar -xf - -C "$src"
else
    tar --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude='./obj-*' \
        --exclude=./dist --exclude=./debian -cf - . | tar -xf - -C "$src"
fi

rm -rf "$src/debian"
cp -a packaging/debian "$src/debian"
chmod 0755 "$src/debian/rules"

# --- build dependencies ------------------------------------------------------------------------
if [[ $install_deps -eq 1 ]]; then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null; then
            echo "build-deb.sh: installing build dependencies needs root or sudo (or use --no-deps)" >&2
            exit 1
        fi
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    tools=(build-essential debhelper dpkg-dev fakeroot)
    if [[ ${#cross[@]} -gt 0 ]]; then
        # Multiarch: the target's libraries install next to this machine's.
        if ! dpkg --print-foreign-architectures | grep -qx "$host_arch"; then
            "${sudo[@]}" dpkg --add-architecture "$host_arch"
        fi
        tools+=("crossbuild-essential-$host_arch")
    fi
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${tools[@]}"
    # Reads Build-Depends from the copied debian/control: one list, kept in one place. For a
    # cross build apt picks the target's -dev packages and this machine's tools (cmake, scdoc).
    "${sudo[@]}" apt-get build-dep -y -q --no-install-recommends "${cross[@]}" "$src"
fi

# --- build -------------------------------------------------------------------------------------
jobs=$(nproc 2>/dev/null || echo 1)
(
    cd "$src"
    DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$jobs}" dpkg-buildpackage -us -uc -b "${cross[@]}"
)

# dpkg-buildpackage writes next to the source directory: the binary package, its debug symbols
# (.ddeb), and .buildinfo/.changes records that are of no use without an archive.
mkdir -p "$top/dist"
shopt -s nullglob
debs=("$workdir"/*.deb "$workdir"/*.ddeb)
if [[ ${#debs[@]} -eq 0 ]]; then
    echo "build-deb.sh: dpkg-buildpackage produced no package" >&2
    exit 1
fi
for f in "${debs[@]}"; do
    mv -f "$f" "$top/dist/"
    echo "build-deb.sh: dist/$(basename "$f")"
done
