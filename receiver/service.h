#pragma once
// `ioc-receiver run`: the offices' messages from the IOC's broker into PostgreSQL.
//
// Design note
// -----------
// Three threads and the main loop:
//
//   broker --publish--> [mqtt-in thread: Subscriber]  --(message, token)--> queue
//   queue --> [2 writer threads] Ingest::add -> RowBatch -> Writer::write (own connection each)
//                              --commit--> Subscriber::ack(token) for every message of the batch
//   [maintenance thread]      partitions ahead, merging old seq ranges, the late list for /metrics
//   [main thread: io_context] the status API (/healthz, /status, /metrics), SIGTERM/SIGINT
//
// Invariants
//  1. A message is acknowledged to the broker only after the transaction holding its rows (or its
//     quarantine row) committed. A message never acknowledged is delivered again by the broker
//     (persistent session) when this receiver connects again: Mosquitto 2.0 keeps a shared
//     subscription's unacknowledged and queued messages with the session they were given to, not
//     with the other receivers of the group (receiver/broker/README.md).
//  2. The queue holds at most what the broker sends before acknowledgements (MQTT 5 Receive
//     Maximum, [broker] receive_maximum): memory is bounded by the broker's flow control.
//  3. The database going away stops nothing but the commits: the writer keeps its batch, says so
//     once (then once a minute), reconnects with a backoff and writes the same batch again; the
//     broker holds everything after it.
//  4. A batch the database refuses for another reason (a value it cannot take) is written again
//     message by message; a message refused alone goes to quarantine with the database's reason.
//  5. Subscriptions: data, event and blob through `$share/{group}/` (each message to one receiver
//     of the group), QoS 1; status without sharing, so every receiver gets the retained
//     heartbeats, at QoS 0, so the broker queues none for a receiver that is away.
//  6. A failure of the database that is not the messages' data (a full disk, a read-only server,
//     a timeout) never quarantines them: the batch is retried with a backoff and /healthz answers
//     503 until a write passes.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "receiver/settings.h"

namespace ioc_receiver {

// Runs until SIGTERM or SIGINT; returns the exit code (0, or 1 when it could not start).
int run_receiver(const Settings& settings);

// The topic filters `run` subscribes to (invariant 5), for the tests and the docs.
struct Filters {
  std::string data, event, blob, status;
};
Filters subscription_filters(const BrokerSettings& broker);

}  // namespace ioc_receiver
