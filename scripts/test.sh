#!/usr/bin/env bash
# The test command (README): installs what it needs, builds, and runs every test.
#   1. a normal build (the daemon as it ships, -O2): the tests that measure time, CPU or memory
#      (tests/serial/), and ioc-receiver's (tests/receiver/: real PostgreSQL 15 clusters, Mosquitto
#      with the reference ACL, real gateways; and its unit tests); all of them with
#      SKIP_SANITIZERS=1;
#   2. built with AddressSanitizer + UndefinedBehaviorSanitizer (the gateway; not ioc-receiver,
#      for time): the unit, integration (real
#      Mosquitto with mutual TLS, the real daemon, Prometheus, Chromium) and chaos (kill -9) tests
#      (not tests/serial/: they would measure the sanitizer);
#   3. the threaded core's unit tests (outbox, forwarder, pipeline) built with ThreadSanitizer.
# Each test starts its own brokers and processes on free loopback ports, in temp directories.
# Run as root on Debian 12. SKIP_SANITIZERS=1 runs only step 1, with the unit tests (a quick local
# check).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)

bash scripts/install-deps.sh

run_suite() {  # $1 = build dir, $2 = label (for the log), rest = ctest arguments
  local dir=$1 label=$2
  shift 2
  echo "=== tests: $label (at $(( $(date +%s) - start )) s) ==="
  (cd "$dir" && ctest --output-on-failure --timeout 900 "$@")
}

# Line tables only (-g1), not full debug information: backtraces and sanitizer reports keep file
# and line, and the three builds take minutes less on two cores.
# The unit tests run under the sanitizers only, unless those are skipped.
# Under the sanitizers the integration and chaos tests run too; the normal build runs those that
# need the daemon as it ships (time, CPU and memory: tests/serial/) and the receiver's, and builds
# only the two programs and those two test programs.
# LLVM's linker: the test programs are large (ASan, line tables), and GNU ld spends tens of
# seconds on each.
lld="-DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld"
unit=OFF normal_labels="serial|receiver" normal_targets="ioc-edge ioc-receiver serial_tests receiver_tests"
if [ "${SKIP_SANITIZERS:-0}" = "1" ]; then unit=ON normal_labels="unit|integration|chaos|serial|receiver" normal_targets=""; fi
echo "=== build: RelWithDebInfo (at $(( $(date +%s) - start )) s) ==="
# The benchmarks are not built here (about 1.5 minutes of the 30 CI allows): build them with the
# default IOC_EDGE_BENCH=ON (scripts/build.sh) when measuring; bench/README.md says how.
BUILD_DIR="$root/build" TARGETS="$normal_targets" bash scripts/build.sh "$lld" -DBUILD_TESTING=ON -DIOC_EDGE_BENCH=OFF -DIOC_EDGE_SANITIZE= \
  -DIOC_EDGE_UNIT_TESTS=$unit -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
# Most tests spend their time waiting on brokers, daemons and devices (a normal run uses about a
# third of two cores), so more of them run at once than there are cores; those in tests/serial/
# (they measure time, CPU or memory) run alone (tests/CMakeLists.txt).
run_suite "$root/build" "$normal_labels" -j 4 -L "$normal_labels"

if [ "${SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "=== build: ASan + UBSan (at $(( $(date +%s) - start )) s) ==="
  BUILD_DIR="$root/build-asan" BUILD_TYPE=Debug TARGETS="ioc-edge unit_tests integration_tests chaos_tests" \
    bash scripts/build.sh "$lld" -DBUILD_TESTING=ON -DIOC_EDGE_SANITIZE=address -DIOC_EDGE_BENCH=OFF -DIOC_EDGE_UNIT_TESTS=ON \
    -DIOC_EDGE_RECEIVER=OFF \
    -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0" \
    run_suite "$root/build-asan" "ASan + UBSan (unit, integration, chaos)" -j 4 -L "unit|integration|chaos"

  echo "=== build: TSan (at $(( $(date +%s) - start )) s) ==="
  BUILD_DIR="$root/build-tsan" BUILD_TYPE=Debug TARGETS="core_unit_tests" \
    bash scripts/build.sh "$lld" -DBUILD_TESTING=ON -DIOC_EDGE_SANITIZE=thread -DIOC_EDGE_BENCH=OFF -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1"
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_suite "$root/build-tsan" "TSan (threaded core)" -j 2 -L threaded_core
fi
echo "=== all tests passed in $(( $(date +%s) - start )) s ==="
