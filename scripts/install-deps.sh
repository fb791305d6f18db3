#!/usr/bin/env bash
# Installs every Debian package ioc-edge needs to build, test, benchmark and run its demo.
# Debian 12 (bookworm), as root. Safe to run again.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config scdoc
  # the test command links with lld: the sanitizer builds' large test programs link in seconds
  lld
  libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev libsqlite3-dev libmodbus-dev
  libboost-dev libspdlog-dev libfmt-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libsystemd-dev
  # tests and benchmarks
  catch2 libbenchmark-dev mosquitto mosquitto-clients openssl socat sqlite3 procps iproute2 curl
  python3 python3-jsonschema python3-pymodbus python3-serial python3-serial-asyncio
  # the operations surface's tests: promtool and a real Prometheus scrape GET /metrics, headless
  # Chromium loads the status page (tests/integration/ops_surface_test.cpp)
  prometheus chromium
  # the manual page's test renders it as man(1) would (tests/integration/man_page_test.cpp)
  groff-base
  # ioc-receiver (receiver/): libpq and PCRE2 (JSON Schema patterns) to build; its tests start their own
  # PostgreSQL 15 cluster
  libpcre2-dev libpq-dev libzstd-dev postgresql-15
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get installs packages)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged broker must not hold port 1883 or run as a service during tests and the demo, nor
# the packaged Prometheus port 9090 (the tests start their own, on free ports).
for service in mosquitto prometheus postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
  fi
done
echo "install-deps: done"
