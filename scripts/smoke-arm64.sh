#!/usr/bin/env bash
# smoke-arm64.sh [DEB] -- runs the arm64 package's program under qemu-user on this (amd64)
# machine: `version`, `check-config`, then a short run with a generator source against a real
# Mosquitto with mutual TLS, and checks that what the outbox committed reached the broker.
#
# DEB defaults to the newest dist/ioc-edge_*_arm64.deb (scripts/build-deb.sh --arch arm64).
# Installs qemu-user-static and the arm64 run-time libraries (multiarch) with apt-get when they
# are missing; run as root on Debian 12. Exit 0 when every check passed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

deb=${1:-}
if [[ -z "$deb" ]]; then
    shopt -s nullglob
    debs=(dist/ioc-edge_*_arm64.deb)
    shopt -u nullglob
    [[ ${#debs[@]} -eq 0 ]] || deb=$(ls -t "${debs[@]}" | head -n1)
fi
if [[ -z "$deb" || ! -f "$deb" ]]; then
    echo "smoke-arm64: no arm64 package (build one with scripts/build-deb.sh --arch arm64)" >&2
    exit 2
fi

# --- what it needs: qemu, the arm64 C library and the package's own arm64 dependencies ----------
need=(qemu-user-static mosquitto mosquitto-clients openssl python3)
# The package's shared libraries, as arm64 packages (libc6:arm64, libsqlite3-0:arm64, ...),
# installed next to this machine's (multiarch). Only libraries: the other dependencies (adduser,
# debconf, procps) are programs, which the maintainer scripts and the unit use and this test does
# not, and an arm64 program package would replace this machine's own.
while IFS= read -r dep; do
    dep=${dep%% *}
    case "$dep" in lib*) need+=("$dep:arm64") ;; esac
done < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/^ *//')
missing=()
# Some dependencies are virtual (libspdlog1.10-fmt9 is provided by libspdlog1.10).
provided=$(dpkg-query -W -f='${Provides}\n' '*:arm64' 2>/dev/null | tr ',' '\n' | sed 's/^ *//; s/ .*//')
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    [[ $p == *:arm64 ]] && grep -qx "${p%:arm64}" <<<"$provided" && continue
    missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "smoke-arm64: installing ${missing[*]}"
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/ioc-edge-arm64.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() { echo "smoke-arm64: FAILED: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

dpkg-deb -x "$deb" "$work/pkg"
bin="$work/pkg/usr/bin/ioc-edge"
file_type=$(od -An -tx1 -j18 -N2 "$bin" | tr -d ' ')   # ELF e_machine, little-endian
[[ $file_type == "b700" ]] || fail "$bin is not an arm64 (AArch64) program (e_machine $file_type)"
# The kernel may have no binfmt handler for arm64 here: name the emulator explicitly. The program's
# interpreter (/lib/ld-linux-aarch64.so.1) and libraries come from the :arm64 packages.
run() { qemu-aarch64-static "$bin" "$@"; }

echo "smoke-arm64: $(basename "$deb")"
version=$(run version)
expected=$(dpkg-deb -f "$deb" Version)
[[ $version == "ioc-edge ${expected%%-*}" || $version == "ioc-edge $expected" ]] \
    || fail "version says '$version', the package is $expected"
echo "  version:      $version (under qemu-aarch64)"

# The packaged configuration names certificates this machine does not have: check-config must
# refuse it with exit 78, naming the files.
set +e
out=$(run check-config "$work/pkg/etc/ioc-edge/ioc-edge.toml" 2>&1); rc=$?
set -e
[[ $rc -eq 78 && $out == *"cannot read file"* ]] || fail "check-config on the packaged file: exit $rc: $out"
echo "  check-config: the packaged file is refused until the certificates exist (exit 78), as on amd64"

bash scripts/make-certs.sh "$work/certs"
broker_port=$(free_port)
status_port=$(free_port)
cat >"$work/mosquitto.conf" <<EOF
per_listener_settings false
user root
listener $broker_port 127.0.0.1
cafile $work/certs/ca.pem
certfile $work/certs/server.pem
keyfile $work/certs/server.key
require_certificate true
use_identity_as_username true
persistence false
log_dest file $work/mosquitto.log
EOF
mosquitto -c "$work/mosquitto.conf" 2>/dev/null &
pids+=("$!")
wait_port "$broker_port" || fail "Mosquitto did not start"
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$broker_port" --cafile "$work/certs/ca.pem" \
    --cert "$work/certs/client.pem" --key "$work/certs/client.key" -q 1 -t 'ioc/+/+/data/#' -v \
    >"$work/received.txt" &
pids+=("$!")

cat >"$work/ioc-edge.toml" <<EOF
[gateway]
site = "bk-cho-don"
province = "bac-kan"
data_dir = "$work/data"

[uplink]
url = "mqtts://127.0.0.1:$broker_port"
ca_file = "$work/certs/ca.pem"
cert_file = "$work/certs/client.pem"
key_file = "$work/certs/client.key"
reconnect_min = "500ms"

[status]
listen = "127.0.0.1:$status_port"

[[source]]
name = "tram-bom-1"
type = "generator"
rate = 50
points = 2
EOF
run check-config "$work/ioc-edge.toml" >/dev/null || fail "check-config refused the test configuration"
echo "  check-config: a complete configuration is accepted (exit 0)"

qemu-aarch64-static "$bin" run -c "$work/ioc-edge.toml" 2>"$work/ioc-edge.log" &   # not through run(): $! must be qemu
daemon=$!
pids+=("$daemon")
up=0
for _ in $(seq 300); do   # 30 s: the emulated start-up is slower than a native one
    if run status -a "127.0.0.1:$status_port" >"$work/status.txt" 2>&1; then up=1; break; fi
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.1
done
[[ $up -eq 1 ]] || fail "the daemon did not become healthy: $(cat "$work/status.txt"; tail -n 20 "$work/ioc-edge.log")"
echo "  run:          ioc-edge status answers, healthy (exit 0)"
for _ in $(seq 300); do
    [[ $(grep -c '/data/' "$work/received.txt" || true) -ge 5 ]] && break
    sleep 0.1
done
[[ $(grep -c '/data/' "$work/received.txt" || true) -ge 5 ]] \
    || fail "fewer than 5 batches reached the broker in 30 s: $(tail -n 20 "$work/ioc-edge.log")"
kill -TERM "$daemon"
wait "$daemon" || fail "the daemon exited with $? on SIGTERM: $(tail -n 20 "$work/ioc-edge.log")"

# Every seq the outbox committed reached the broker or still waits in the outbox (the last batch
# may be in flight at SIGTERM): the outbox's last seq and its waiting count, read by the arm64
# program itself, against the seqs in the batches the broker delivered.
read -r last first_waiting < <(run outbox stats --json --db "$work/data/outbox.db" | python3 -c \
    'import json,sys; j=json.load(sys.stdin); print(j["last_seq"], j["first_seq"] if j["readings"] else j["last_seq"] + 1)')
waiting=$(run outbox stats --count --db "$work/data/outbox.db")
sleep 0.5   # mosquitto_sub writes out what it has already received
python3 - "$work/received.txt" "$last" "$waiting" "$first_waiting" <<'PY' || fail "delivery check"
import json, sys
path, last, waiting, first_waiting = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
seqs = set()
for line in open(path, encoding="utf-8"):
    topic, _, payload = line.partition(" ")
    batch = json.loads(payload)
    assert batch["site"] == "bk-cho-don", batch["site"]
    seqs.update(r["seq"] for r in batch["readings"])
missing = sorted(set(range(1, last + 1)) - seqs)
print(f"  delivery:     seqs 1..{last} committed, {len(seqs)} received by the broker, "
      f"{waiting} still waiting in the outbox, {len(missing)} not received")
# At least 100 readings reached the broker, and what did not is the tail still in the outbox.
if len(seqs) < 100 or len(missing) > waiting or any(m < first_waiting for m in missing):
    sys.exit(1)
PY
echo "smoke-arm64: passed"
