#!/usr/bin/env bash
# The demo (README): an IOC stand-in (Mosquitto with mutual TLS, certificates made now), ioc-edge
# with a generator source, readings flowing, a 15-second link outage while the backlog grows, the
# link restored and the backlog drained to zero, then a count proving nothing is missing.
# Debian 12, as root. Ends by itself and cleans up. Ports: 18883 (broker), 18884 (the "link"),
# 18787 (status API); override with BROKER_PORT, LINK_PORT, STATUS_PORT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

BROKER_PORT=${BROKER_PORT:-18883}
LINK_PORT=${LINK_PORT:-18884}
STATUS_PORT=${STATUS_PORT:-18787}
OUTAGE_S=${OUTAGE_S:-15}

bash scripts/install-deps.sh
echo "=== building ioc-edge ==="
TARGETS=ioc-edge BUILD_DIR="$root/build" bash scripts/build.sh >/dev/null
bin="$root/build/ioc-edge"

for p in "$BROKER_PORT" "$LINK_PORT" "$STATUS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "demo: port $p is in use; set BROKER_PORT, LINK_PORT or STATUS_PORT" >&2
    exit 1
  fi
done

work=$(mktemp -d /tmp/ioc-edge-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
start_bg() {  # start a command in its own process group; its pgid is remembered for cleanup
  setsid "$@" &
  pids+=("$!")
}

say "1. The IOC stand-in: Mosquitto with mutual TLS on 127.0.0.1:$BROKER_PORT (certificates made with openssl)"
bash scripts/make-certs.sh "$work/certs"
cat >"$work/mosquitto.conf" <<EOF
per_listener_settings false
user root
listener $BROKER_PORT 127.0.0.1
cafile $work/certs/ca.pem
certfile $work/certs/server.pem
keyfile $work/certs/server.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
persistence false
log_dest file $work/mosquitto.log
EOF
start_bg mosquitto -c "$work/mosquitto.conf" 2>/dev/null
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null && break; sleep 0.1; done

# The IOC's consumer: every message the IOC receives, one per line.
start_bg stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$BROKER_PORT" --cafile "$work/certs/ca.pem" \
  --cert "$work/certs/client.pem" --key "$work/certs/client.key" -q 1 -t 'ioc/#' -v >"$work/ioc-received.txt"

# The office's link to the IOC, which we will cut: a TCP relay the daemon connects through.
start_link() {
  start_bg socat "TCP-LISTEN:$LINK_PORT,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$BROKER_PORT"
  link_pid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$LINK_PORT") 2>/dev/null && break; sleep 0.1; done
}
start_link

say "2. ioc-edge: a generator source, 200 readings/s over 4 points, buffered in SQLite, sent over mutual TLS"
cat >"$work/ioc-edge.toml" <<EOF
[gateway]
site = "bk-cho-don"
province = "bac-kan"
data_dir = "$work/data"
unit_code = "01843"
name = "UBND xã Chợ Đồn"

[uplink]
url = "mqtts://127.0.0.1:$LINK_PORT"
ca_file = "$work/certs/ca.pem"
cert_file = "$work/certs/client.pem"
key_file = "$work/certs/client.key"
reconnect_min = "500ms"
reconnect_max = "2s"
keepalive = "5s"
heartbeat = "5s"

[status]
listen = "127.0.0.1:$STATUS_PORT"

[[source]]
name = "tram-bom-1"
type = "generator"
rate = 200
points = 4
unit = "m3/h"
EOF
"$bin" check-config "$work/ioc-edge.toml"
start_bg "$bin" run -c "$work/ioc-edge.toml" 2>"$work/ioc-edge.log"
daemon_pid=$!
for _ in $(seq 50); do "$bin" status -a "127.0.0.1:$STATUS_PORT" >/dev/null 2>&1 && break; sleep 0.1; done

received() { python3 "$root/scripts/demo_count.py" "$work/ioc-received.txt" --brief; }
backlog() { "$bin" status --json -a "127.0.0.1:$STATUS_PORT" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["uplink"]["state"], j["backlog"]["readings"])'; }
show() { read -r state queued < <(backlog); printf '  t=%3ss  uplink %-10s  backlog %6s readings   IOC received %s\n' "$1" "$state" "$queued" "$(received)"; }

say "3. Readings flow to the IOC"
for t in 2 4 6 8; do sleep 2; show "$t"; done
echo "  a batch as the IOC sees it:"
grep -m1 '/data/' "$work/ioc-received.txt" | cut -d' ' -f2- | python3 -c 'import json,sys; b=json.load(sys.stdin); b["readings"]=b["readings"][:2]; print(json.dumps(b, ensure_ascii=False, indent=2))' | sed 's/^/    /'

say "4. The link to the IOC goes down for ${OUTAGE_S} s; ioc-edge keeps every reading in its outbox"
kill -- "-$link_pid" 2>/dev/null || true
for ((t = 3; t <= OUTAGE_S; t += 3)); do sleep 3; show "$t"; done
echo "  ioc-edge status:"
"$bin" status -a "127.0.0.1:$STATUS_PORT" | sed 's/^/    /'

say "5. The link returns: new readings go first, the backlog drains behind them"
start_link
for t in $(seq 1 30); do
  sleep 1
  show "$t"
  read -r state queued < <(backlog)
  [ "$state" = up ] && [ "$queued" -lt 5 ] && break
done
grep -E 'uplink .* (down|restored)' "$work/ioc-edge.log" | sed 's/^/  log: /' || true

say "6. Stop ioc-edge (SIGTERM) and count: every seq it committed must have reached the IOC"
kill -TERM "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
sleep 0.5  # the consumer prints what it has already received
python3 "$root/scripts/demo_count.py" "$work/ioc-received.txt" --db "$work/data/outbox.db"
