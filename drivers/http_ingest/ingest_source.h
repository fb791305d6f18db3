#pragma once
// The `http-ingest` source: local systems POST readings to the gateway (drivers/http_ingest/README.md).
//
// Design note
// -----------
// One HttpServer (daemon/http/http_server.h) per source, on the main io thread. A request's life:
//
//   headers --early()--> 404 / 405 / 401 / 415 / 413 (the body is never read)
//      |
//   body --parse_request()--> 400 / 403 naming the first bad field (nothing taken)
//      |
//   Idempotency-Key (or batch_id) known? --same body--> the first answer again (202, replayed)
//      |                                 --other body--> 422
//      |                  in flight? --> waits for the first request's answer
//   push_batch(readings, mark) --commit--> 202 {"accepted", "first_seq", "last_seq"}
//                              --refused--> 503 + Retry-After (nothing stored)
//
// Invariants
//  1. A 202 is sent only after the outbox committed every reading of the request (push_batch: one
//     transaction); any other answer means nothing of the request was stored.
//  2. A request with an Idempotency-Key (or batch_id) stores its readings and the key's mark in
//     the same transaction (outbox invariant 12). Within `idempotency_window`, the same key from
//     the same client with the same body gets the first answer (its seqs) and stores nothing, also
//     after a restart or a crash: the mark is loaded at start. A retry that arrives while the first
//     is being stored waits for its answer.
//  3. Tokens: only their SHA-256 digests are kept; a presented token is hashed and compared with
//     every client's digest in constant time (CRYPTO_memcmp), without stopping at a match.
//     Neither tokens nor Authorization headers are ever logged.
//  4. Bad requests are answered, counted by kind (SourceCounters::count_bad) and logged at most
//     once a minute per source with the client's address, the status and the reason.
//
// Threads: everything runs on the io thread, except the push_batch callback (the outbox thread),
// which posts its work back to it. The state is shared with those callbacks, so that an answer
// arriving after stop() finds it still alive (and is dropped by the stopped server).
#include <memory>

#include "core/source.h"
#include "drivers/http_ingest/ingest_config.h"

namespace ioc_edge::http_ingest {

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config);

}  // namespace ioc_edge::http_ingest
