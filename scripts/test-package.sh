#!/usr/bin/env bash
# test-package.sh -- the Debian package on a clean Debian 12 (bookworm), proven rather than read:
# installs it from a signed apt repository into a fresh root made with debootstrap and checks
# files, owners and modes, the user, check-config, the unit (systemd-analyze verify and security),
# an upgrade that keeps an edited configuration and a buffer, remove, and purge with and without
# unsent readings. Prints each check; exit 0 when all passed. README "Packaging tests" records
# the last result.
#
# Usage: scripts/test-package.sh [--no-build] [--fresh-root]
#   --no-build    use dist/ioc-edge_*_amd64.deb as it is (default: scripts/build-deb.sh first)
#   --fresh-root  debootstrap again instead of copying the cached clean root
#                 (/var/cache/ioc-edge-test/bookworm, made on the first run)
#
# The newer version for the upgrade is the same build repacked with a higher version
# (VERSION+upgradetest1): what is tested is dpkg's and the maintainer scripts' handling of an
# upgrade, not the compiler. Needs root, debootstrap, reprepro and gnupg (installed if missing)
# and Debian's mirror. Services do not run in the root (a policy-rc.d forbids it, as in any
# chroot); the script runs the daemon itself, as user ioc-edge, to fill a buffer, and then boots the
# root with systemd-nspawn -b for the service's own checks (READY, upgrade, remove, reinstall).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

build=1 fresh=0
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        --fresh-root) fresh=1 ;;
        -h|--help) sed -n '2,19s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "test-package.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done
[[ $(id -u) -eq 0 ]] || { echo "test-package.sh: run as root (debootstrap, chroot)" >&2; exit 1; }

need=(debootstrap reprepro gnupg openssl dpkg-dev)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ $build -eq 1 ]]; then
    bash scripts/build-deb.sh
fi
shopt -s nullglob
debs=(dist/ioc-edge_*_amd64.deb)
shopt -u nullglob
[[ ${#debs[@]} -gt 0 ]] || { echo "test-package.sh: no dist/ioc-edge_*_amd64.deb (scripts/build-deb.sh)" >&2; exit 1; }
deb=$(ls -t "${debs[@]}" | head -n1)
version=$(dpkg-deb -f "$deb" Version)

work=$(mktemp -d /tmp/ioc-edge-pkgtest.XXXXXX)
target="$work/root"
mounted=()
# Cleanup is best effort on every step (a daemon already gone, an agent never started, a mount
# already undone must not stop the rest of it); only the deletion is guarded.
cleanup() {
    [[ -n "${daemon_pid:-}" ]] && kill "$daemon_pid" 2>/dev/null || true
    for home in "$work/repo-gnupg" "$work/other-gnupg"; do
        [[ -d $home ]] && gpgconf --homedir "$home" --kill gpg-agent 2>/dev/null || true
    done
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
    # Never delete through a mount of the host's /proc, /sys or /dev: if anything is still mounted
    # under the work directory, leave it for a human.
    if grep -q " $work/" /proc/self/mounts; then
        echo "test-package: $work still has mounts; not deleting it" >&2
        return
    fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
ok() { passed=$((passed + 1)); echo "  ok  $*"; }
fail() { echo "  FAILED  $*" >&2; exit 1; }
in_root() { chroot "$target" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"; }
expect_contains() {  # expect_contains TEXT NEEDLE WHAT
    [[ $1 == *"$2"* ]] || { echo "$1" | sed 's/^/      /' >&2; fail "$3: no '$2'"; }
}
stat_of() { in_root stat -c '%U:%G %a' "$1"; }

echo "test-package: $(basename "$deb") on a fresh Debian bookworm root"

# --- a clean root ------------------------------------------------------------------------------
cache=/var/cache/ioc-edge-test/bookworm
if [[ $fresh -eq 1 || ! -x "$cache/usr/bin/apt-get" ]]; then
    rm -rf "$cache.new"
    mkdir -p "$(dirname "$cache")"
    # systemd for systemd-analyze and the unit's directories; nothing else beyond minbase.
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$cache.new" \
        http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
    rm -rf "$cache" && mv "$cache.new" "$cache"
fi
cp -a "$cache" "$target"
bind_system() {  # /proc, /sys, /dev for dpkg and apt inside the root
    for m in proc sys dev dev/pts; do
        mounted+=("$target/$m")   # listed first: a signal between the two still unmounts it
        mount --bind "/$m" "$target/$m"
    done
}
unbind_system() {  # before booting the root: systemd-nspawn mounts its own
    local m kept=()
    for m in dev/pts dev sys proc; do umount "$target/$m"; done
    for m in "${mounted[@]}"; do
        case "$m" in "$target/proc"|"$target/sys"|"$target/dev"|"$target/dev/pts") ;; *) kept+=("$m") ;; esac
    done
    mounted=("${kept[@]}")
}
bind_system
cp /etc/resolv.conf "$target/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$target/usr/sbin/policy-rc.d"   # no service starts in a chroot
chmod 0755 "$target/usr/sbin/policy-rc.d"
ok "debootstrap bookworm root ($(du -shx "$target" | cut -f1))"

# --- the signed repository with this version ---------------------------------------------------
repo="$work/repo"
bash scripts/apt-repo.sh --repo "$repo" --test-key "$deb" >"$work/repo.log" 2>&1 \
    || { cat "$work/repo.log" >&2; fail "apt-repo.sh"; }
mkdir -p "$target/srv/ioc-edge-repo"
mounted+=("$target/srv/ioc-edge-repo")
mount --bind "$repo" "$target/srv/ioc-edge-repo"
# A wrong key first: apt must refuse the repository.
mkdir -m 0700 "$work/other-gnupg"
gpg --batch --quiet --homedir "$work/other-gnupg" --passphrase '' --quick-gen-key "not the archive" ed25519 sign 1d
gpg --batch --homedir "$work/other-gnupg" --export >"$target/usr/share/keyrings/ioc-edge-archive-keyring.gpg"
echo "deb [signed-by=/usr/share/keyrings/ioc-edge-archive-keyring.gpg] file:/srv/ioc-edge-repo bookworm main" \
    >"$target/etc/apt/sources.list.d/ioc-edge.list"
# apt-get update may exit 0 with the repository left out (a warning) or 100: either way it must
# say why, and the package must not be installable from it.
if out=$(in_root apt-get update 2>&1); then :; fi
expect_contains "$out" "NO_PUBKEY" "apt-get update with the wrong key"
[[ $(in_root apt-cache policy ioc-edge) != *"Candidate: "[0-9]* ]] \
    || fail "apt offers ioc-edge from a repository signed by another key: $(in_root apt-cache policy ioc-edge)"
ok "apt refuses the repository when signed-by names another key"
cp "$repo/ioc-edge-archive-keyring.gpg" "$target/usr/share/keyrings/ioc-edge-archive-keyring.gpg"
in_root apt-get update -qq >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; fail "apt-get update"; }
ok "apt accepts the repository signed by its key (signed-by)"

# --- install -------------------------------------------------------------------------------------
out=$(in_root apt-get install -y --no-install-recommends ioc-edge 2>&1) || { echo "$out" >&2; fail "apt-get install"; }
[[ $(in_root dpkg-query -W -f='${Version}' ioc-edge) == "$version" ]] || fail "installed version"
ok "apt-get install ioc-edge ($version) from the repository"
expect_contains "$out" "installed and enabled, but the service is not (re)started" "install message"
expect_contains "$out" "cannot read file \"/etc/ioc-edge/tls/ca.pem\"" "install message"
[[ $(grep -c "is not ready" <<<"$out") -eq 1 ]] || fail "one message about the configuration, not $(grep -c 'is not ready' <<<"$out")"
ok "the unedited configuration: one message, the service enabled but not started"

[[ $(stat_of /usr/bin/ioc-edge) == "root:root 755" ]] || fail "/usr/bin/ioc-edge is $(stat_of /usr/bin/ioc-edge)"
[[ $(stat_of /etc/ioc-edge/ioc-edge.toml) == "root:ioc-edge 640" ]] || fail "ioc-edge.toml is $(stat_of /etc/ioc-edge/ioc-edge.toml)"
[[ $(stat_of /etc/ioc-edge/tls) == "root:ioc-edge 750" ]] || fail "/etc/ioc-edge/tls is $(stat_of /etc/ioc-edge/tls)"
[[ $(stat_of /lib/systemd/system/ioc-edge.service) == "root:root 644" ]] || fail "the unit file"
for f in /usr/share/man/man8/ioc-edge.8.gz /usr/share/doc/ioc-edge/copyright /usr/share/doc/ioc-edge/changelog.gz \
         /usr/share/doc/ioc-edge/schema/batch.schema.json; do
    [[ -f "$target$f" ]] || fail "$f missing"
done
in_root dpkg-query -W -f='${Conffiles}\n' ioc-edge | grep -q "/etc/ioc-edge/ioc-edge.toml" || fail "ioc-edge.toml is not a conffile"
ok "files, owners and modes: binary root 0755, ioc-edge.toml conffile root:ioc-edge 0640, tls/ 0750, unit, man page, docs"
[[ -L "$target/etc/systemd/system/multi-user.target.wants/ioc-edge.service" ]] || fail "the service is not enabled"
ok "the service is enabled (multi-user.target.wants)"
in_root debconf-show ioc-edge | grep -q "ioc-edge/purge-unsent: false" \
    || fail "the purge question is not registered: $(in_root debconf-show ioc-edge 2>&1)"
ok "debconf knows the purge question ioc-edge/purge-unsent (default false) from the installation on"

IFS=: read -r _ _ uid gid _ home shell < <(in_root getent passwd ioc-edge) || fail "no user ioc-edge"
[[ $uid -lt 1000 && $home == /var/lib/ioc-edge && $shell == /usr/sbin/nologin ]] \
    || fail "user ioc-edge: uid $uid home $home shell $shell"
[[ $(in_root getent group ioc-edge | cut -d: -f3) == "$gid" ]] || fail "group ioc-edge"
in_root id -nG ioc-edge | grep -qw dialout || fail "ioc-edge is not in dialout"
ok "system user ioc-edge (uid $uid, group ioc-edge, dialout, home /var/lib/ioc-edge, nologin)"

man_out=$(in_root zcat /usr/share/man/man8/ioc-edge.8.gz)
expect_contains "$man_out" '.TH "ioc-edge" "8"' "the man page"
expect_contains "$man_out" "EXIT STATUS" "the man page"
ok "man page ioc-edge(8) installed"

# --- check-config on the installed file, then a working configuration --------------------------
set +e
out=$(in_root setpriv --reuid=ioc-edge --regid=ioc-edge --init-groups ioc-edge check-config /etc/ioc-edge/ioc-edge.toml 2>&1); rc=$?
set -e
[[ $rc -eq 78 ]] || fail "check-config on the shipped file: exit $rc"
expect_contains "$out" "/etc/ioc-edge/ioc-edge.toml:" "check-config"
ok "check-config on the installed file: exit 78, each problem as FILE:LINE:COL"
bash scripts/make-certs.sh "$work/certs"
install -m 0644 "$work/certs/ca.pem" "$target/etc/ioc-edge/tls/ca.pem"
install -m 0644 "$work/certs/client.pem" "$target/etc/ioc-edge/tls/client.pem"
install -m 0640 -g "$gid" "$work/certs/client.key" "$target/etc/ioc-edge/tls/client.key"
# A local edit, as district IT makes it: another site name and the IOC broker's address (a port
# on which nothing listens: the readings stay in the buffer).
sed -i 's/^site = "bk-cho-don"/site = "test-office-7"/; s|^url = "mqtts://.*"|url = "mqtts://127.0.0.1:1"|' \
    "$target/etc/ioc-edge/ioc-edge.toml"
grep -q '^site = "test-office-7"' "$target/etc/ioc-edge/ioc-edge.toml" || fail "the edit did not apply"
in_root setpriv --reuid=ioc-edge --regid=ioc-edge --init-groups ioc-edge check-config /etc/ioc-edge/ioc-edge.toml >/dev/null || fail "check-config after the edit"
ok "check-config (as user ioc-edge) accepts the edited file with certificates in /etc/ioc-edge/tls"

# --- the unit ------------------------------------------------------------------------------------
out=$(in_root systemd-analyze verify /lib/systemd/system/ioc-edge.service 2>&1) || { echo "$out" >&2; fail "systemd-analyze verify"; }
ok "systemd-analyze verify ioc-edge.service: no complaint${out:+ ($out)}"
exposure=$(in_root systemd-analyze security --offline=true --no-pager /lib/systemd/system/ioc-edge.service 2>&1 \
    | sed -n 's/.*Overall exposure level for ioc-edge.service: \([0-9.]*\).*/\1/p')
[[ -n "$exposure" ]] || fail "systemd-analyze security gave no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure > 2.0"
ok "systemd-analyze security --offline: exposure $exposure (at most 2.0)"

# --- a buffer: the daemon runs (as ioc-edge, as the unit would) with the IOC unreachable --------
install -d -m 0750 -o "$uid" -g "$gid" "$target/var/lib/ioc-edge"   # the unit's StateDirectory=
cat >>"$target/etc/ioc-edge/ioc-edge.toml" <<'EOF'

[[source]]
name = "test-generator"
type = "generator"
rate = 100
points = 2
EOF
chroot "$target" setpriv --reuid=ioc-edge --regid=ioc-edge --init-groups ioc-edge run -c /etc/ioc-edge/ioc-edge.toml >"$work/run1.log" 2>&1 &
daemon_pid=$!
count_waiting() { in_root ioc-edge outbox stats --count --db /var/lib/ioc-edge/outbox.db 2>/dev/null || echo 0; }
for _ in $(seq 100); do [[ $(count_waiting) -ge 300 ]] && break; sleep 0.1; done
kill -TERM "$daemon_pid"; wait "$daemon_pid" || fail "the daemon's exit: $(tail -n 5 "$work/run1.log")"
daemon_pid=""
before=$(count_waiting)
[[ $before -ge 300 ]] || fail "only $before readings in the buffer: $(tail -n 5 "$work/run1.log")"
ok "the daemon (user ioc-edge) buffered $before readings with the IOC unreachable"

# --- boot the root, then upgrade inside it from the repository to a newer build -----------------
# The root boots with systemd (systemd-nspawn -b, the repository bound in). A probe unit ordered
# after ioc-edge.service runs once ioc-edge has left "activating": for a Type=notify unit,
# "active (running)" means systemd received READY=1. The probe records the service, asks
# `ioc-edge status`, runs `apt-get upgrade` (postinst restarts the service: the configuration is
# valid), records the service again and powers the container off. The console needs a terminal
# (script(1) gives it one).
config_before=$(sha256sum <"$target/etc/ioc-edge/ioc-edge.toml")
new_version="${version}+upgradetest1"
dpkg-deb -R "$deb" "$work/repack"
sed -i "s/^Version: .*/Version: $new_version/" "$work/repack/DEBIAN/control"
# A unit file that differs, as a real upgrade's may: the restarted service must run under it.
sed -i 's/^\[Service\]$/[Service]\nEnvironment=IOC_EDGE_UPGRADE_TEST=1/' "$work/repack/lib/systemd/system/ioc-edge.service"
grep -q IOC_EDGE_UPGRADE_TEST "$work/repack/lib/systemd/system/ioc-edge.service" || fail "the repack's unit edit"
( cd "$work/repack" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | xargs -0 md5sum >DEBIAN/md5sums )
dpkg-deb --root-owner-group -b "$work/repack" "$work/ioc-edge_${new_version}_amd64.deb" >/dev/null
bash scripts/apt-repo.sh --repo "$repo" --test-key "$work/ioc-edge_${new_version}_amd64.deb" >>"$work/repo.log" 2>&1 \
    || { cat "$work/repo.log" >&2; fail "adding the newer version to the repository"; }

cat >"$target/root/probe.sh" <<'PROBE'
#!/bin/sh
show() { systemctl show ioc-edge.service -p ActiveState -p SubState -p NRestarts -p MainPID -p User -p Environment; }
show > /root/probe-before.txt
ioc-edge status > /root/probe-status.txt 2>&1; echo "status_exit=$?" >> /root/probe-before.txt
export DEBIAN_FRONTEND=noninteractive
{ apt-get update -qq && apt-get upgrade -y; echo "upgrade_exit=$?"; } > /root/probe-upgrade.txt 2>&1
show > /root/probe-after.txt
# Remove (the service must stop), then install again: the kept configuration is valid, so the
# installation starts the service.
{ apt-get remove -y ioc-edge; echo "remove_exit=$?"; } > /root/probe-remove.txt 2>&1
show > /root/probe-removed.txt
{ apt-get install -y ioc-edge; echo "install_exit=$?"; } > /root/probe-install.txt 2>&1
show > /root/probe-installed.txt
journalctl -b -u ioc-edge.service --no-pager -o cat > /root/probe-journal.txt
systemctl poweroff --no-block
PROBE
chmod 0755 "$target/root/probe.sh"
cat >"$target/etc/systemd/system/ioc-edge-probe.service" <<'UNIT'
[Unit]
Description=test-package probe of ioc-edge.service
After=ioc-edge.service
[Service]
Type=oneshot
ExecStart=/root/probe.sh
TimeoutStartSec=240
[Install]
WantedBy=multi-user.target
UNIT
ln -s ../ioc-edge-probe.service "$target/etc/systemd/system/multi-user.target.wants/ioc-edge-probe.service"
rm "$target/usr/sbin/policy-rc.d"   # a booted system starts services
command -v systemd-nspawn >/dev/null && command -v script >/dev/null \
    || fail "the boot check needs systemd-nspawn (systemd-container) and script(1) (bsdutils)"
unbind_system
# The probe powers the container off: systemd-nspawn then exits 0. A hang is cut at 5 minutes.
boot_rc=0
timeout 300 script -qfec "systemd-nspawn -D '$target' --register=no --keep-unit --bind='$repo:/srv/ioc-edge-repo' -b --console=read-only" \
    "$work/boot.log" >/dev/null 2>&1 || boot_rc=$?
bind_system
printf '#!/bin/sh\nexit 101\n' >"$target/usr/sbin/policy-rc.d"
chmod 0755 "$target/usr/sbin/policy-rc.d"
rm -f "$target/etc/systemd/system/multi-user.target.wants/ioc-edge-probe.service" \
    "$target/etc/systemd/system/ioc-edge-probe.service" "$target/root/probe.sh"
if [[ $boot_rc -ne 0 || ! -s "$target/root/probe-before.txt" || ! -s "$target/root/probe-after.txt" ]]; then
    tail -n 30 "$work/boot.log" | sed 's/\x1b\[[0-9;]*m//g; s/^/      /' >&2
    fail "the root did not boot to the probe's end and power off (systemd-nspawn -b exit $boot_rc)"
fi
probe_before=$(cat "$target/root/probe-before.txt")
probe_after=$(cat "$target/root/probe-after.txt")
journal=$(cat "$target/root/probe-journal.txt")
upgrade_out=$(cat "$target/root/probe-upgrade.txt")
for want in ActiveState=active SubState=running NRestarts=0 User=ioc-edge status_exit=0; do
    expect_contains "$probe_before" "$want" "ioc-edge.service after boot"
done
expect_contains "$journal" "Started ioc-edge.service" "the journal (READY=1 received)"
# The installed command reaches the running daemon's status API: healthy (the IOC has been
# unreachable for seconds, not [status] link_down_after), this office, its source.
status_text=$(cat "$target/root/probe-status.txt")
expect_contains "$status_text" "site test-office-7" "ioc-edge status in the booted root"
expect_contains "$status_text" "source   test-generator" "ioc-edge status in the booted root"
[[ $(stat_of /var/lib/ioc-edge) == "ioc-edge:ioc-edge 750" ]] || fail "/var/lib/ioc-edge is $(stat_of /var/lib/ioc-edge)"
ok "booted (systemd-nspawn -b): ioc-edge.service active (running) after READY=1, user ioc-edge; ioc-edge status answers (exit 0)"

expect_contains "$upgrade_out" "upgrade_exit=0" "apt-get upgrade in the booted root"
[[ $upgrade_out != *"is not ready"* ]] || fail "the upgrade complained about the valid configuration: $upgrade_out"
[[ $(in_root dpkg-query -W -f='${Version}' ioc-edge) == "$new_version" ]] || fail "not upgraded: $upgrade_out"
pid_before=$(sed -n 's/^MainPID=//p' <<<"$probe_before")
pid_after=$(sed -n 's/^MainPID=//p' <<<"$probe_after")
for want in ActiveState=active SubState=running User=ioc-edge; do
    expect_contains "$probe_after" "$want" "ioc-edge.service after the upgrade"
done
[[ -n "$pid_after" && "$pid_after" != 0 && "$pid_after" != "$pid_before" ]] \
    || fail "the service was not restarted by the upgrade (MainPID $pid_before, then $pid_after)"
expect_contains "$probe_after" "IOC_EDGE_UPGRADE_TEST=1" "ioc-edge.service after the upgrade (systemd reloaded the new unit)"
[[ $(sed -n '/^Started ioc-edge.service/,$p' <<<"$journal" | grep -c "Started ioc-edge.service") -ge 2 ]] \
    || fail "READY=1 was not received again after the upgrade: $journal"
ok "apt-get upgrade to $new_version in the booted root: systemd reloaded the changed unit, the service restarted (pid $pid_before -> $pid_after), active again after READY=1"

removed=$(cat "$target/root/probe-removed.txt")
installed=$(cat "$target/root/probe-installed.txt")
expect_contains "$(cat "$target/root/probe-remove.txt")" "remove_exit=0" "apt-get remove in the booted root"
expect_contains "$removed" "ActiveState=inactive" "ioc-edge.service after apt-get remove"
expect_contains "$(cat "$target/root/probe-install.txt")" "install_exit=0" "apt-get install in the booted root"
for want in ActiveState=active SubState=running User=ioc-edge; do
    expect_contains "$installed" "$want" "ioc-edge.service after installing with a valid configuration"
done
[[ $(grep -c "Started ioc-edge.service" <<<"$journal") -eq 3 ]] || fail "READY=1 was not received three times: $journal"
ok "in the booted root: apt-get remove stopped the service; installing again with the kept, valid configuration started it (READY=1)"

[[ $(sha256sum <"$target/etc/ioc-edge/ioc-edge.toml") == "$config_before" ]] || fail "the edited configuration changed"
[[ $(stat_of /etc/ioc-edge/ioc-edge.toml) == "root:ioc-edge 640" ]] || fail "after the upgrade ioc-edge.toml is $(stat_of /etc/ioc-edge/ioc-edge.toml)"
# The buffer is intact: nothing was sent (the IOC is unreachable) and nothing lost, so every seq
# from 1 to the last one the daemons committed is still waiting.
read -r waiting first last < <(in_root ioc-edge outbox stats --json --db /var/lib/ioc-edge/outbox.db | python3 -c \
    'import json,sys; j=json.load(sys.stdin); print(j["readings"], j["first_seq"], j["last_seq"])')
[[ $first -eq 1 && $waiting -eq $last && $last -gt $before ]] \
    || fail "the buffer after the upgrade: $waiting waiting, seqs $first..$last (before: $before)"
after=$waiting
ok "the edited configuration kept (same bytes, root:ioc-edge 0640); the buffer intact: seqs 1..$last all waiting ($before before the boot)"

# --- remove: configuration and data stay ---------------------------------------------------------
out=$(in_root apt-get remove -y ioc-edge 2>&1) || { echo "$out" >&2; fail "apt-get remove"; }
[[ ! -e "$target/usr/bin/ioc-edge" ]] || fail "the program is still there after remove"
[[ $(sha256sum <"$target/etc/ioc-edge/ioc-edge.toml") == "$config_before" ]] || fail "remove changed the configuration"
[[ -f "$target/var/lib/ioc-edge/outbox.db" ]] || fail "remove deleted the buffer"
expect_contains "$out" "$after readings that never reached the IOC stay in /var/lib/ioc-edge/outbox.db" "remove message"
ok "apt-get remove: program gone, configuration and buffer kept, '$after readings ... stay' said"

# --- purge, not confirmed (non-interactive: debconf's default): unsent readings are kept --------
out=$(in_root apt-get purge -y ioc-edge 2>&1) || { echo "$out" >&2; fail "apt-get purge"; }
[[ -z $(in_root dpkg-query -W -f='${Status}' ioc-edge 2>/dev/null | grep -v not-installed) ]] || fail "still known to dpkg"
[[ ! -e "$target/etc/ioc-edge/ioc-edge.toml" ]] || fail "purge left the configuration"
expect_contains "$out" "/var/lib/ioc-edge holds $after readings that never reached the IOC: they are KEPT" "purge message"
[[ -f "$target/var/lib/ioc-edge/outbox.db" ]] || fail "purge deleted unsent readings without confirmation"
[[ ! -e "$target/var/lib/ioc-edge/rollups.db" && ! -e "$target/var/lib/ioc-edge/unsent-at-removal" ]] \
    || fail "purge left more than the outbox: $(ls "$target/var/lib/ioc-edge")"
ok "apt-get purge: configuration gone; the outbox with $after unsent readings KEPT and the count said"

# --- reinstall (the kept readings are there again), purge confirmed through debconf -------------
in_root apt-get install -y --no-install-recommends ioc-edge >/dev/null 2>&1 || fail "reinstall"
again=$(count_waiting)
[[ $again -eq $after ]] || fail "after reinstalling, $again readings instead of $after"
ok "reinstall: the $again kept readings are in the buffer again"
# A damaged outbox the daemon once set aside (kept for recovery) counts as unsent whatever the
# count says: a non-interactive purge keeps it.
corrupt=/var/lib/ioc-edge/outbox.db.corrupt-20261201T000000Z
printf 'damaged pages' >"$target$corrupt"
in_root apt-get remove -y ioc-edge >/dev/null 2>&1 || fail "remove (damaged outbox)"
out=$(in_root apt-get purge -y ioc-edge 2>&1) || { echo "$out" >&2; fail "apt-get purge (damaged outbox)"; }
expect_contains "$out" "/var/lib/ioc-edge holds unknown readings that never reached the IOC: they are KEPT" "purge message"
[[ -f "$target$corrupt" && -f "$target/var/lib/ioc-edge/outbox.db" ]] || fail "purge deleted a damaged outbox set aside"
ok "apt-get purge with a damaged outbox set aside (outbox.db.corrupt-*): both kept, not silently deleted"
in_root apt-get install -y --no-install-recommends ioc-edge >/dev/null 2>&1 || fail "reinstall (2)"
echo "ioc-edge ioc-edge/purge-unsent boolean true" | in_root debconf-set-selections
out=$(in_root apt-get purge -y ioc-edge 2>&1) || { echo "$out" >&2; fail "apt-get purge (confirmed)"; }
expect_contains "$out" "deleting /var/lib/ioc-edge with unknown readings that never reached the IOC, as answered" "confirmed purge message"
[[ ! -e "$target/var/lib/ioc-edge" ]] || fail "confirmed purge left /var/lib/ioc-edge"
# The certificates and key district IT put in /etc/ioc-edge/tls are theirs: kept, and nothing else.
[[ $(cd "$target/etc/ioc-edge" && find . | sort | tr '\n' ' ') == ". ./tls ./tls/ca.pem ./tls/client.key ./tls/client.pem " ]] \
    || fail "purge left in /etc/ioc-edge: $(cd "$target/etc/ioc-edge" && find .)"
in_root getent passwd ioc-edge >/dev/null || fail "the system user was removed (Debian keeps it)"
ok "purge confirmed (debconf ioc-edge/purge-unsent=true): /var/lib/ioc-edge gone; of /etc/ioc-edge only the administrator's tls/ files; user kept"

echo "test-package: all $passed checks passed ($(basename "$deb"), upgrade to $new_version)"
