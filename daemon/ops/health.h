#pragma once
// Is this gateway healthy? One set of rules over a Snapshot, used by `GET /healthz` (200 "ok" or
// 503 with the problems), the status page, the "health" member of `GET /status` and the exit code
// of `ioc-edge status` (0 healthy, 1 not).
//
// A problem is something district IT must act on or know about now:
//   - storage fault: the buffer cannot store new data (disk full, read-only, I/O errors);
//   - the IOC broker refused readings (held, waiting for `ioc-edge outbox requeue`);
//   - the IOC link has been down longer than [status] link_down_after (short outages are normal:
//     the data waits in the buffer);
//   - a source is down (its device or peer does not answer);
//   - a source is stale (no good reading for 3x its expected_every).
// Not problems: a backlog draining, a damaged buffer file that was salvaged (reported on the page
// and in `ioc-edge status`, not a fault now), bad readings among good ones.
//
// Pure functions: no I/O, no clock (the snapshot carries its time).
#include <string>
#include <vector>

#include "ops/snapshot.h"

namespace ioc_edge {

// Each problem as one short sentence, most urgent first; empty when healthy.
std::vector<std::string> health_problems(const Snapshot& s);

}  // namespace ioc_edge
