// When polled sources (modbus, http-poll) poll next: no drift, overruns skipped, backoff.
#include <catch2/catch.hpp>

#include "core/poll_schedule.h"

using namespace ioc_edge;
using namespace std::chrono_literals;

namespace {
using TP = std::chrono::steady_clock::time_point;
const TP t0 = TP(std::chrono::hours(1));
}  // namespace

TEST_CASE("next_poll keeps to the rhythm: the next due time is the last plus every", "[poll_schedule]") {
  TP due = t0;
  // The poll took 300 ms: the next one is still due at t0 + 1 s, not at now + 1 s.
  CHECK(next_poll(due, 1000ms, 60000ms, 0, t0 + 300ms) == 0);
  CHECK(due == t0 + 1000ms);
}

TEST_CASE("next_poll skips whole missed periods and counts them", "[poll_schedule]") {
  TP due = t0;
  // The poll ran until t0 + 3.5 s: due times t0+1, +2, +3 are past; the next is t0 + 4 s.
  CHECK(next_poll(due, 1000ms, 60000ms, 0, t0 + 3500ms) == 3);
  CHECK(due == t0 + 4000ms);
  due = t0;
  CHECK(next_poll(due, 1000ms, 60000ms, 0, t0 + 1000ms) == 1);  // exactly on the next due time: late
  CHECK(due == t0 + 2000ms);
}

TEST_CASE("next_poll backs off after the second failure in a row, between every and retry_max", "[poll_schedule]") {
  TP due = t0;
  CHECK(next_poll(due, 1000ms, 10000ms, 1, t0 + 100ms) == 0);  // one failure: the normal rhythm
  CHECK(due == t0 + 1000ms);
  const TP now = t0 + 5000ms;
  CHECK(next_poll(due, 1000ms, 10000ms, 2, now) == 0);
  CHECK(due == now + 2000ms);
  CHECK(next_poll(due, 1000ms, 10000ms, 3, now) == 0);
  CHECK(due == now + 4000ms);
  CHECK(next_poll(due, 1000ms, 10000ms, 30, now) == 0);  // capped at retry_max, no overflow
  CHECK(due == now + 10000ms);
  // A retry_max below every never polls more often than every.
  CHECK(next_poll(due, 15min, 1min, 5, now) == 0);
  CHECK(due == now + 15min);
}
