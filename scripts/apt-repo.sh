#!/usr/bin/env bash
# apt-repo.sh -- put built ioc-edge packages into a signed apt repository (reprepro).
#
# Usage: scripts/apt-repo.sh --repo DIR (--key FINGERPRINT | --test-key) [DEB...]
#   --repo DIR    the repository (made if missing; packages are added to an existing one). Serve
#                 DIR over HTTP(S) as it is: dists/ and pool/ are what apt reads.
#   --key FPR     sign with this key from the GnuPG keyring ($GNUPGHOME or ~/.gnupg): the
#                 province's archive key, kept off the office machines.
#   --test-key    make (once) a throwaway signing key in DIR/../<repo name>-gnupg/, for tests
#                 and trials only.
#   DEB...        the packages to add; default: every dist/ioc-edge_*.deb and dist/ioc-receiver_*.deb
#                 (all architectures).
#
# Writes DIR/ioc-edge-archive-keyring.gpg, the public key that offices install as
# /usr/share/keyrings/ioc-edge-archive-keyring.gpg and name in `signed-by` (README, "Installing
# from the province's apt repository"). The distribution is bookworm, component main, for amd64
# and arm64. A version already in the repository is replaced only by the same file.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

repo="" key="" test_key=0 debs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repo) repo=${2:?--repo needs a directory}; shift ;;
        --key) key=${2:?--key needs a key fingerprint}; shift ;;
        --test-key) test_key=1 ;;
        -h|--help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
        -*) echo "apt-repo.sh: unknown option '$1'" >&2; exit 2 ;;
        *) debs+=("$1") ;;
    esac
    shift
done
if [[ -z "$repo" ]] || { [[ -z "$key" ]] && [[ $test_key -eq 0 ]]; }; then
    echo "usage: apt-repo.sh --repo DIR (--key FINGERPRINT | --test-key) [DEB...]" >&2
    exit 2
fi
for tool in reprepro gpg; do
    command -v "$tool" >/dev/null || { echo "apt-repo.sh: $tool not found (apt-get install reprepro gnupg)" >&2; exit 1; }
done
if [[ ${#debs[@]} -eq 0 ]]; then
    shopt -s nullglob
    debs=("$root"/dist/ioc-edge_*.deb "$root"/dist/ioc-receiver_*.deb)
    shopt -u nullglob
    [[ ${#debs[@]} -gt 0 ]] || { echo "apt-repo.sh: no packages in dist/ (scripts/build-deb.sh builds them)" >&2; exit 1; }
fi
mkdir -p "$repo/conf"
repo=$(cd "$repo" && pwd)

if [[ $test_key -eq 1 ]]; then
    export GNUPGHOME="$(dirname "$repo")/$(basename "$repo")-gnupg"
    mkdir -p "$GNUPGHOME"
    chmod 0700 "$GNUPGHOME"
    if [[ -z $(gpg --batch --list-secret-keys 2>/dev/null) ]]; then
        # No passphrase: a key for tests only, never for a real archive.
        gpg --batch --quiet --passphrase '' --quick-gen-key \
            "ioc-edge test archive (tests only) <archive@ioc-edge.invalid>" ed25519 sign 1y
    fi
    key=$(gpg --batch --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
fi
gpg --batch --list-secret-keys "$key" >/dev/null 2>&1 \
    || { echo "apt-repo.sh: no secret key $key in ${GNUPGHOME:-~/.gnupg}" >&2; exit 1; }

cat >"$repo/conf/distributions" <<EOF
Origin: ioc-edge
Label: ioc-edge
Codename: bookworm
Architectures: amd64 arm64
Components: main
Description: ioc-edge gateway packages for district offices
SignWith: $key
EOF
cat >"$repo/conf/options" <<EOF
basedir $repo
EOF

for deb in "${debs[@]}"; do
    case "$deb" in *.deb) ;; *) continue ;; esac   # debug symbols (.ddeb) stay out
    reprepro -b "$repo" includedeb bookworm "$deb"
done
reprepro -b "$repo" export bookworm

# The public key, binary (what signed-by expects), and its fingerprint for the README's check.
gpg --batch --yes --export "$key" >"$repo/ioc-edge-archive-keyring.gpg"
echo "apt-repo.sh: $repo (bookworm main, signed by $key)"
reprepro -b "$repo" list bookworm
