#!/usr/bin/env bash
# The province in miniature (README): the IOC side and three district offices on one machine.
# The IOC: Mosquitto with mutual TLS and the repository's ACL (receiver/broker/acl, used as is),
# PostgreSQL 15 in a temporary directory, ioc-receiver storing every office's stream. Three
# ioc-edge gateways, each with its own certificate (CN = its site id) and its own link that can
# be cut. It shows data flowing, one office's link cut for 15 s and its backlog drained, another
# office stopped (late, offline), an office's certificate refused when it publishes as another
# office, `ioc-receiver coverage`, `late` and `report`, and ends with a verdict from the database:
# every seq offices 1 and 2 committed is stored exactly once (exit 1 if not).
#
# Debian 12, as root. Ends by itself (about a minute after the build) and cleans up.
# Ports (127.0.0.1), each overridable: BROKER_PORT 18901; LINK1_PORT..LINK3_PORT 18911-18913 (the
# offices' links); STATUS1_PORT..STATUS3_PORT 18921-18923 (their status APIs); RECEIVER_PORT 18930
# (ioc-receiver's status API). PostgreSQL listens on no TCP port: its socket is in the work
# directory (named after PG_PORT, 18940).
# BUILD_DIR (default build/) holds the programs; SKIP_BUILD=1 uses what is there without building.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

BROKER_PORT=${BROKER_PORT:-18901}
LINK1_PORT=${LINK1_PORT:-18911}
LINK2_PORT=${LINK2_PORT:-18912}
LINK3_PORT=${LINK3_PORT:-18913}
STATUS1_PORT=${STATUS1_PORT:-18921}
STATUS2_PORT=${STATUS2_PORT:-18922}
STATUS3_PORT=${STATUS3_PORT:-18923}
RECEIVER_PORT=${RECEIVER_PORT:-18930}
PG_PORT=${PG_PORT:-18940}
OUTAGE_S=${OUTAGE_S:-15}
BUILD_DIR=${BUILD_DIR:-$root/build}
REPORT_COPY=/tmp/ioc-province-report.html
pgbin=/usr/lib/postgresql/15/bin

bash scripts/install-deps.sh
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "=== building ioc-edge and ioc-receiver ==="
  TARGETS="ioc-edge ioc-receiver" BUILD_DIR="$BUILD_DIR" bash scripts/build.sh >/dev/null
fi
edge="$BUILD_DIR/ioc-edge"
receiver="$BUILD_DIR/receiver/ioc-receiver"
for b in "$edge" "$receiver"; do
  [ -x "$b" ] || { echo "demo-province: $b not found (build it, or set BUILD_DIR)" >&2; exit 1; }
done

for p in "$BROKER_PORT" "$LINK1_PORT" "$LINK2_PORT" "$LINK3_PORT" "$STATUS1_PORT" "$STATUS2_PORT" "$STATUS3_PORT" \
  "$RECEIVER_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "demo-province: port $p is in use; set BROKER_PORT, LINK{1,2,3}_PORT, STATUS{1,2,3}_PORT or RECEIVER_PORT" >&2
    exit 1
  fi
done

work=$(mktemp -d /tmp/ioc-province-demo.XXXXXX)
chmod 0711 "$work"  # PostgreSQL runs as user postgres and must reach its directory in here
pgdata="$work/pg"
pids=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  if [ -f "$pgdata/postmaster.pid" ]; then
    runuser -u postgres -- env -C "$work" "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
      kill -9 "$(head -n1 "$pgdata/postmaster.pid")" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
start_bg() {  # start a command in its own process group; its pgid is remembered for cleanup
  setsid "$@" &
  pids+=("$!")
}
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
indent() { sed 's/^/    /'; }

# The three offices: site id (= certificate CN), display name, link port, status port.
sites=(bk-cho-don bk-na-ri bk-pac-nam)
names=("UBND huyện Chợ Đồn" "UBND huyện Na Rì" "UBND huyện Pác Nặm")
links=("$LINK1_PORT" "$LINK2_PORT" "$LINK3_PORT")
statuses=("$STATUS1_PORT" "$STATUS2_PORT" "$STATUS3_PORT")
certs="$work/certs"

########################################################################################################
say "1. Certificates: the IOC's CA, the broker's, one per office (CN = its site id) and the receiver's (CN = ioc-receiver-1)"
bash scripts/make-certs.sh "$certs"
# make-certs.sh may or may not write office certificates; the demo makes the ones it needs itself.
issue() {  # issue CN: an EC P-256 key and a clientAuth certificate from the test CA, as $certs/CN.{pem,key}
  local cn=$1
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$certs/$cn.key" 2>/dev/null
  openssl req -new -sha256 -key "$certs/$cn.key" -subj "/O=ioc-edge demo/CN=$cn" -out "$work/$cn.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' \
    >"$work/client.ext"
  openssl x509 -req -sha256 -days 2 -in "$work/$cn.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$work/client.ext" -out "$certs/$cn.pem" 2>/dev/null
  chmod 0644 "$certs/$cn.key" "$certs/$cn.pem"
  printf '  %-19s %s\n' "$cn.pem" "$(openssl x509 -in "$certs/$cn.pem" -noout -subject)"
}
for cn in "${sites[@]}" ioc-receiver-1; do issue "$cn"; done

########################################################################################################
say "2. The IOC's broker: Mosquitto on 127.0.0.1:$BROKER_PORT, mutual TLS, the CN as user name, the ACL receiver/broker/acl"
cat >"$work/mosquitto.conf" <<EOF
per_listener_settings false
user root
allow_anonymous false
acl_file $root/receiver/broker/acl
listener $BROKER_PORT 127.0.0.1
protocol mqtt
cafile $certs/ca.pem
certfile $certs/server.pem
keyfile $certs/server.key
tls_version tlsv1.2
require_certificate true
use_identity_as_username true
persistence false
max_inflight_messages 100
max_queued_messages 100000
message_size_limit 67108864
log_dest file $work/mosquitto.log
log_type all
connection_messages true
EOF
# The reference mosquitto.conf also sets use_username_as_clientid; the demo leaves it out because
# its impostor (step 7) uses office 1's certificate while office 1 is connected, and with that
# setting the impostor's connection would take over office 1's session instead of only being refused.
start_bg mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.stderr"
wait_port "$BROKER_PORT" || { echo "demo-province: the broker did not start" >&2; cat "$work/mosquitto.log" >&2; exit 1; }
echo "  the rules of receiver/broker/acl (its comments left out):"
grep -E '^(pattern|user|topic) ' receiver/broker/acl | indent

########################################################################################################
say "3. The IOC's database: PostgreSQL 15 in $pgdata (user postgres, socket only, no TCP), role and database ioc"
mkdir -m 0700 "$pgdata"
: >"$work/pg.log"
chown postgres: "$pgdata" "$work/pg.log"
runuser -u postgres -- env -C "$work" "$pgbin/initdb" -D "$pgdata" -U ioc -A trust -E UTF8 --no-locale --no-sync \
  >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
runuser -u postgres -- env -C "$work" "$pgbin/pg_ctl" -D "$pgdata" -l "$work/pg.log" -w -t 60 \
  -o "-c listen_addresses='' -c unix_socket_directories='$pgdata' -p $PG_PORT -c fsync=off" start \
  >"$work/pg_ctl.log" 2>&1 || { cat "$work/pg_ctl.log" "$work/pg.log" >&2; exit 1; }
pg_conn="host=$pgdata port=$PG_PORT user=ioc"
"$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -d "$pg_conn dbname=postgres" -c "CREATE DATABASE ioc"
sql() { "$pgbin/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$pg_conn dbname=ioc" -c "$1"; }        # bare values
table() { "$pgbin/psql" -X -q -P pager=off -v ON_ERROR_STOP=1 -d "$pg_conn dbname=ioc" -c "$1" | indent; }  # for people
"$pgbin/psql" -X -A -t -d "$pg_conn dbname=ioc" -c "SELECT version()" | cut -d, -f1 | indent

########################################################################################################
say "4. ioc-receiver: migrate, then run (subscribed as ioc-receiver-1, share group ioc-receivers)"
cat >"$work/ioc-receiver.toml" <<EOF
[receiver]
log_level = "info"

[broker]
url = "mqtts://127.0.0.1:$BROKER_PORT"
ca_file = "$certs/ca.pem"
cert_file = "$certs/ioc-receiver-1.pem"
key_file = "$certs/ioc-receiver-1.key"
client_id = "ioc-receiver-1"
share_group = "ioc-receivers"

[database]
url = "$pg_conn dbname=ioc"

[status]
listen = "127.0.0.1:$RECEIVER_PORT"

# Short for the demo (the defaults are 10m, 1m and 10m), so that it shows things within seconds.
[late]
office_after = "20s"
source_min_silence = "5s"

[coverage]
hole_grace = "5s"
EOF
echo "  for the demo: [late] office_after = \"20s\", source_min_silence = \"5s\", [coverage] hole_grace = \"5s\""
echo "  (the defaults are 10 minutes, 1 minute and 10 minutes)"
"$receiver" check-config "$work/ioc-receiver.toml" | indent
"$receiver" migrate -c "$work/ioc-receiver.toml" | indent
start_bg "$receiver" run -c "$work/ioc-receiver.toml" 2>"$work/ioc-receiver.log"
receiver_pid=$!
up=0
for _ in $(seq 100); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RECEIVER_PORT/healthz")" = 200 ]; then up=1; break; fi
  kill -0 "$receiver_pid" 2>/dev/null || break
  sleep 0.2
done
[ "$up" = 1 ] || { echo "demo-province: ioc-receiver did not become healthy" >&2; cat "$work/ioc-receiver.log" >&2; exit 1; }
grep -m1 'receiving from' "$work/ioc-receiver.log" | sed 's/^/  log: /' || true

########################################################################################################
say "5. Three offices: ioc-edge gateways, each with its own certificate and its own link (a TCP relay) to the broker"
declare -A link_pid gw_pid
start_link() {  # start_link N: office N's link to the IOC, which we can cut
  local n=$1
  start_bg socat "TCP-LISTEN:${links[$n]},bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$BROKER_PORT"
  link_pid[$n]=$!
  wait_port "${links[$n]}"
}
cut_link() { kill -- "-${link_pid[$1]}" 2>/dev/null || true; }

# gateway_config N SOURCES: office N's ioc-edge.toml with these [[source]] tables.
gateway_config() {
  local n=$1 site=${sites[$1]}
  cat >"$work/gw-$site.toml" <<EOF
[gateway]
site = "$site"
province = "bac-kan"
data_dir = "$work/gw-$site"
name = "${names[$n]}"

[uplink]
url = "mqtts://127.0.0.1:${links[$n]}"
ca_file = "$certs/ca.pem"
cert_file = "$certs/$site.pem"
key_file = "$certs/$site.key"
reconnect_min = "500ms"
reconnect_max = "2s"
keepalive = "5s"
heartbeat = "5s"

[status]
listen = "127.0.0.1:${statuses[$n]}"

$2
EOF
}
sources=(
  '[[source]]
name = "tram-bom-1"
type = "generator"
rate = 200
points = 4
unit = "m3/h"'
  '[[source]]
name = "muc-nuoc-1"
type = "generator"
rate = 100
points = 2
unit = "cm"

# A camera: a 256 KiB snapshot every 2 s (published on blob/camera-cong), as a blob.
[[source]]
name = "camera-cong"
type = "generator"
rate = 1
points = 1
blob_size = "256KiB"
blob_every = "2s"'
  '[[source]]
name = "quan-trac-1"
type = "generator"
rate = 50
points = 5
unit = "mg/l"'
)
start_gateway() {  # start_gateway N
  local n=$1 site=${sites[$1]}
  start_bg "$edge" run -c "$work/gw-$site.toml" 2>>"$work/gw-$site.log"
  gw_pid[$n]=$!
  for _ in $(seq 100); do "$edge" status -a "127.0.0.1:${statuses[$n]}" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo-province: office $site did not start" >&2; cat "$work/gw-$site.log" >&2; exit 1
}
stop_gateway() {  # stop_gateway N: SIGTERM, and wait until it has exited
  local n=$1
  kill -TERM "${gw_pid[$n]}" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "${gw_pid[$n]}" 2>/dev/null || return 0; sleep 0.1; done
  echo "demo-province: office ${sites[$n]} did not stop within 30 s" >&2; exit 1
}
for n in 0 1 2; do
  start_link "$n"
  gateway_config "$n" "${sources[$n]}"
  "$edge" check-config "$work/gw-${sites[$n]}.toml" >/dev/null
  start_gateway "$n"
done
printf '  office 1  %-11s link 127.0.0.1:%s  status http://127.0.0.1:%s/  tram-bom-1: 200 readings/s\n' "${sites[0]}" "$LINK1_PORT" "$STATUS1_PORT"
printf '  office 2  %-11s link 127.0.0.1:%s  status http://127.0.0.1:%s/  muc-nuoc-1: 100 readings/s; camera-cong: a 256 KiB snapshot every 2 s\n' "${sites[1]}" "$LINK2_PORT" "$STATUS2_PORT"
printf '  office 3  %-11s link 127.0.0.1:%s  status http://127.0.0.1:%s/  quan-trac-1: 50 readings/s\n' "${sites[2]}" "$LINK3_PORT" "$STATUS3_PORT"

# gw N FIELD...: fields of office N's GET /status (uplink.state, backlog.readings, ...), "-" if it does not answer.
gw() {
  local n=$1; shift
  curl -s --max-time 2 "http://127.0.0.1:${statuses[$n]}/status" | python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except ValueError:
    j = None
out = []
for f in sys.argv[1:]:
    v = j
    for k in f.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    out.append("-" if v is None else str(v))
print(" ".join(out))' "$@"
}
counts() {
  table "SELECT o.site, CASE WHEN o.online THEN 'online' WHEN o.online IS FALSE THEN 'OFFLINE' ELSE '?' END AS status,
           (SELECT count(*) FROM readings r WHERE r.site = o.site) AS readings,
           (SELECT count(*) FROM events e WHERE e.site = o.site) AS events,
           (SELECT count(*) FROM blobs b WHERE b.site = o.site) AS blobs,
           (SELECT max(seq) FROM readings r WHERE r.site = o.site) AS highest_seq
         FROM offices o ORDER BY o.site"
}

########################################################################################################
say "6. Data flows into the IOC's database"
sleep 8
echo "  per office, from psql: readings, events and blobs stored, the highest seq, and its last status message:"
counts
echo "  a stored camera snapshot:"
table "SELECT site, source, seq, size, content_type, encode(sha256, 'hex') AS sha256 FROM blobs ORDER BY seq DESC LIMIT 1"

########################################################################################################
say "7. Outage: office 2's link is cut for ${OUTAGE_S} s; office 3's gateway is stopped"
cut_link 1
stop_gateway 2
echo "  office 3 (${sites[2]}) stopped with SIGTERM: it says \"offline\" on its status topic as it leaves"
echo "  (a gateway that dies without a word gets the same from the broker: its last will)"
for ((t = 3; t <= OUTAGE_S; t += 3)); do
  sleep 3
  read -r state queued < <(gw 1 uplink.state backlog.readings)
  printf '  t=%2ss  office 2: uplink %-10s backlog %6s readings\n' "$t" "$state" "$queued"
done
echo "  ioc-edge status at office 2:"
"$edge" status -a "127.0.0.1:$STATUS2_PORT" | indent || true
echo "  the last status messages the IOC stored from office 3 (heartbeats every 5 s, then its goodbye):"
table "SELECT site, state, received_at FROM heartbeats WHERE site = '${sites[2]}' ORDER BY received_at DESC LIMIT 3"
echo "  \$ ioc-receiver late   (during the outage: office 2's last will, sent by the broker when its link broke, said offline)"
"$receiver" late -c "$work/ioc-receiver.toml" | indent

say "8. Office 2's link returns: its backlog drains"
start_link 1
drained=0
for t in $(seq 1 60); do
  sleep 1
  read -r state queued < <(gw 1 uplink.state backlog.readings)
  printf '  t=%2ss  office 2: uplink %-10s backlog %6s readings\n' "$t" "$state" "$queued"
  if [ "$state" = up ] && [ "$queued" != - ] && [ "$queued" -lt 50 ]; then drained=1; break; fi
done
[ "$drained" = 1 ] || { echo "demo-province: office 2's backlog did not drain within 60 s" >&2; exit 1; }
grep -E 'uplink .* (down|restored)' "$work/gw-${sites[1]}.log" | sed 's/^/  office 2 log: /' || true
sleep 2
counts

########################################################################################################
say "9. An impostor: office 1's certificate (CN ${sites[0]}) publishes a batch as office 2 (${sites[1]})"
store2=$(gw 1 store)
forged_topic="ioc/bac-kan/${sites[1]}/data/muc-nuoc-1"
forged=$(python3 - "${sites[1]}" "$store2" <<'EOF'
import datetime, json, sys
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
print(json.dumps({"schema": "ioc-edge/batch/1", "site": sys.argv[1], "store": sys.argv[2], "sent_at": now,
                  "readings": [{"seq": 900000000 + i, "ts": now, "source": "muc-nuoc-1", "point": "p0",
                                "value": 999.0, "unit": "cm", "quality": "good"} for i in range(5)]}))
EOF
)
echo "  topic $forged_topic, 5 readings with seqs 900000000..900000004 in office 2's store $store2"
quarantine_before=$(sql "SELECT count(*) FROM quarantine")
mosquitto_pub -h 127.0.0.1 -p "$BROKER_PORT" --cafile "$certs/ca.pem" --cert "$certs/${sites[0]}.pem" \
  --key "$certs/${sites[0]}.key" -V mqttv5 -q 1 -d -i demo-impostor -t "$forged_topic" -m "$forged" 2>&1 |
  grep -Ev 'sending (CONNECT|DISCONNECT)|received CONNACK|sending PUBLISH' | indent || true
sleep 2
echo "  the broker's log:"
grep -F "Denied PUBLISH from demo-impostor" "$work/mosquitto.log" | sed -E 's/^[0-9]+: /    /' || echo "    (no \"Denied PUBLISH\" line)"
forged_stored=$(sql "SELECT count(*) FROM readings WHERE site = '${sites[1]}' AND seq >= 900000000")
quarantine_after=$(sql "SELECT count(*) FROM quarantine")
echo "  SELECT count(*) FROM quarantine: $quarantine_after (before the impostor: $quarantine_before): the receiver never saw it"
echo "  forged readings among office 2's (seq >= 900000000): $forged_stored"
[ "$forged_stored" = 0 ] || { echo "demo-province: the forged readings were stored" >&2; exit 1; }

########################################################################################################
say "10. What the IOC sees: ioc-receiver coverage, late and report"
echo "  \$ ioc-receiver coverage"
"$receiver" coverage -c "$work/ioc-receiver.toml" | indent
echo "  \$ ioc-receiver late   (office 3 is offline: it said so when it stopped)"
"$receiver" late -c "$work/ioc-receiver.toml" | indent
from_day=$(date -u +%F)
to_day=$(date -u -d "$from_day + 1 day" +%F)
echo "  \$ ioc-receiver report --from $from_day --to $to_day --format text"
"$receiver" report -c "$work/ioc-receiver.toml" --from "$from_day" --to "$to_day" --format text | indent
"$receiver" report -c "$work/ioc-receiver.toml" --from "$from_day" --to "$to_day" --format html >"$work/report.html"
cp "$work/report.html" "$REPORT_COPY"
echo "  (availability: the report counts the part of the day before an office's first heartbeat as late, so"
echo "  offices that first connected a minute ago show a low figure; their late periods are listed)"
echo "  the same report as HTML: $REPORT_COPY (copied out of the work directory, which is deleted at the end)"

########################################################################################################
say "11. Verdict: every seq offices 1 and 2 committed is stored exactly once"
echo "  each office's sources are removed (reload), its backlog sent, then it is stopped and its outbox read"
fail=0
for n in 0 1; do
  site=${sites[$n]}
  gateway_config "$n" ""  # no sources: nothing new is committed, what waits is sent
  kill -HUP "${gw_pid[$n]}"
  sent=0
  for _ in $(seq 120); do
    sleep 0.5
    read -r nsrc queued < <(curl -s --max-time 2 "http://127.0.0.1:${statuses[$n]}/status" |
      python3 -c 'import json,sys; j=json.load(sys.stdin); print(len(j.get("sources", [])), j["backlog"]["readings"])' 2>/dev/null ||
      echo "- -")
    if [ "$nsrc" = 0 ] && [ "$queued" = 0 ]; then sent=1; break; fi
  done
  [ "$sent" = 1 ] || echo "  $site: the backlog did not drain within 60 s ($queued readings, $nsrc sources)"
  stop_gateway "$n"
  read -r last waiting < <("$edge" outbox stats --json -c "$work/gw-$site.toml" |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["last_seq"], j.get("readings", 0))')
  store=$("$edge" outbox stats --json -c "$work/gw-$site.toml" | python3 -c 'import json,sys; print(json.load(sys.stdin)["store"])')
  stored_q="SELECT count(*), count(DISTINCT seq), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM
    (SELECT seq FROM readings WHERE site = '$site' AND store = '$store'
     UNION ALL SELECT seq FROM events WHERE site = '$site' AND store = '$store') s"
  # The broker has acknowledged everything; the receiver may still be committing the last batches.
  for _ in $(seq 60); do
    IFS='|' read -r rows distinct lo hi < <(sql "$stored_q")
    [ "$distinct" -ge $((last - waiting)) ] && break
    sleep 0.5
  done
  gaps=$(sql "SELECT coalesce(sum(last_seq - first_seq + 1), 0) FROM gaps WHERE site = '$site' AND store = '$store'")
  blobs=$(sql "SELECT count(*) FROM blobs WHERE site = '$site' AND store = '$store'")
  printf '  office %d %-11s committed seqs 1..%s; stored %s rows (readings and events, %s of them with a blob), %s distinct seqs %s..%s; still in the outbox %s; declared dropped %s\n' \
    $((n + 1)) "$site" "$last" "$rows" "$blobs" "$distinct" "$lo" "$hi" "$waiting" "$gaps"
  if [ "$rows" = "$distinct" ] && [ "$distinct" = $((last - waiting - gaps)) ] && [ "$hi" -le "$last" ] && [ "$lo" -ge 1 ]; then
    echo "    ok: each of them stored exactly once, none missing"
  else
    echo "    FAILED: $((rows - distinct)) stored more than once, $((last - waiting - gaps - distinct)) missing"
    fail=1
  fi
done
if [ "$fail" = 0 ]; then
  say "Verdict: PASS. Every seq the two offices committed is in the IOC's database exactly once; the impostor's batch was refused by the broker."
else
  say "Verdict: FAIL (see above). The work directory's logs: ioc-receiver.log, mosquitto.log, gw-*.log"
  echo "  ioc-receiver log (last lines):"
  tail -n 20 "$work/ioc-receiver.log" | indent
fi
exit "$fail"
