#pragma once
// When a polled source (modbus, http-poll) polls next. Pure; the caller owns the state.
//
//  - Polls do not drift: the next due time is the previous due time plus `every`.
//  - A poll that finds itself late by whole periods skips them (they are counted as overruns by
//    the caller) instead of queueing polls up.
//  - After the second failed poll in a row the wait doubles per failure (every * 2^(failures-1)),
//    capped at `retry_max` but never shorter than `every`: a dead peer is not hammered, and a
//    15-minute schedule stays at 15 minutes.
#include <algorithm>
#include <chrono>
#include <cstdint>

namespace ioc_edge {

// Moves `due` past `now` after a poll. `failures` counts the failed polls in a row, this one
// included (0 after a good poll). Returns the number of periods skipped because the poll ran
// late by whole periods (0 while backing off).
inline std::uint64_t next_poll(std::chrono::steady_clock::time_point& due, std::chrono::milliseconds every,
                               std::chrono::milliseconds retry_max, int failures,
                               std::chrono::steady_clock::time_point now) {
  using std::chrono::milliseconds;
  if (failures > 1) {
    const auto factor = 1ll << std::min(failures - 1, 16);
    due = now + std::max<milliseconds>(every, std::min<milliseconds>(retry_max, every * factor));
    return 0;
  }
  due += every;
  if (due > now) return 0;
  const auto missed = static_cast<std::uint64_t>((now - due) / every + 1);
  due += every * static_cast<std::int64_t>(missed);
  return missed;
}

}  // namespace ioc_edge
