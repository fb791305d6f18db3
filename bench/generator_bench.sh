#!/usr/bin/env bash
# How many generated readings per second the whole daemon stores (generator -> pipeline -> outbox,
# sync = full), with the uplink down so nothing is sent. Prints stored readings/s and CPU use.
#   bench/generator_bench.sh [RATE] [SECONDS]      default 250000 10
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${IOC_EDGE:-$root/build/ioc-edge}
rate=${1:-250000}
secs=${2:-10}
work=$(mktemp -d /tmp/ioc-edge-genbench.XXXXXX)
pid=
cleanup() {  # stop the daemon if it is still running, then remove the work directory
  set +e
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/g.toml" <<EOT
[gateway]
site = "bench"
province = "p"
data_dir = "$work/data"
log_level = "warn"
[buffer]
max_size = "8GiB"
[uplink]
url = "mqtt://127.0.0.1:9"
[status]
listen = "127.0.0.1:$port"
[[source]]
name = "gen"
type = "generator"
rate = $rate
points = 100
EOT
"$bin" run -c "$work/g.toml" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do "$bin" status -a "127.0.0.1:$port" >/dev/null 2>&1 && break; sleep 0.05; done
stored() { "$bin" status --json -a "127.0.0.1:$port" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sources"][0]["stored"])'; }
ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
s0=$(stored); c0=$(ticks); t0=$(date +%s.%N)
sleep "$secs"
s1=$(stored); c1=$(ticks); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
python3 - "$s0" "$s1" "$c0" "$c1" "$t0" "$t1" "$rss" "$rate" <<'EOP'
import os, sys
s0, s1, c0, c1 = map(int, sys.argv[1:5]); t0, t1 = map(float, sys.argv[5:7]); rss = int(sys.argv[7]); rate = int(sys.argv[8])
hz = os.sysconf("SC_CLK_TCK"); dt = t1 - t0
print(f"generator asked for {rate}/s: stored {(s1 - s0) / dt:,.0f} readings/s (sync = full), "
      f"CPU {100 * (c1 - c0) / hz / dt:.0f}% of one core, RSS {rss / 1024:.1f} MiB")
EOP
