#pragma once
// The `mqtt` source: takes what devices publish on the office's MQTT broker (Zigbee2MQTT, Tasmota,
// Shelly sensors; Frigate-style camera events and snapshots) and stores it as readings, events or
// blobs.
//
// Design note
// -----------
// Sources with one connection_key (url, client id, user) share one connection: a Subscriber
// (daemon/mqtt_sub/subscriber.h) with its own thread, a fixed client id and a persistent session,
// holding every source's topic filters. Each message goes to every source whose filters match it;
// each maps it (mqtt_mapping.h) and hands it to its sink.
//
// Invariants
//  1. A message is acknowledged to the broker only when every source it went to reports its sink's
//     outcome as stored, or as invalid (bad input: counted, logged, never stored). Refused (the
//     buffer cannot take it: full disk) is never acknowledged: the connection is closed and
//     resumed after 5 s, and the broker delivers the message again. So a kill -9 at any moment
//     loses nothing the broker handed over: what was not acknowledged is delivered again.
//  2. While many messages wait for their commit (a quarter of the broker's window, MQTT 5 Receive
//     Maximum; 10 under MQTT 3.1.1, where Mosquitto allows 20), the sinks are hurried, so intake is
//     not bounded by [buffer] commit_interval; at a trickle the commit interval still batches writes.
//  3. Bad input (oversized, malformed JSON, invalid UTF-8, a pointer matching nothing, a topic
//     level that makes no valid source name) is counted per kind, logged at most once a minute per
//     source with the topic and the reason, and never stops the source or the messages beside it.
//  4. The connection's state is each source's: source_down (once per outage, with the reason)
//     while the broker cannot be reached, source_up when it can again.
//  5. The subscriber starts once every source of its connection has started (all are created
//     before any starts), so no message arrives for a source that is not listening yet. After
//     stop() returns the source's sink is not called again.
#include <memory>

#include "core/source.h"

namespace ioc_edge::mqtt {

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config);

}  // namespace ioc_edge::mqtt
