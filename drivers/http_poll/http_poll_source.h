#pragma once
// The `http-poll` source: GETs a JSON document from a local system (a health department's
// reporting API, a water utility's SCADA export) on a schedule and stores what its JSON pointers
// name as readings.
//
// Design note
// -----------
// One Poller per source, living on the main thread's io_context (SourceContext::io): a timer
// starts each poll, and the exchange (resolve, connect, TLS handshake, request, answer) is
// asynchronous Boost.Beast with one deadline (`timeout`) over all of it. Nothing blocks the io
// thread, so a slow or silent server costs its own source a timeout and nothing else (the status
// API, other sources, the watchdog run on the same thread). A document is mapped to readings on
// the source's own thread ("hp:<name>", started at the first document), since a 10 MB document
// costs a few hundred ms of CPU; the result is applied back on the io thread. Each poll opens a
// fresh connection (`Connection: close`): polls are seconds to hours apart, and a fresh connection
// never inherits a half-open socket. Secrets (token_file, password_file) and the CA file are read
// at every poll (small local files, read on the io thread), so renewed ones count at the next poll.
//
// States: up (the server answered the last poll with a document or 304) and down (the last poll
// failed). Each poll is idle -> exchanging -> (mapping ->) idle; at most one poll at a time.
//
// Invariants
//  1. Every poll ends in exactly one outcome: readings from a new document; nothing (304 Not
//     Modified, or a 200 with the ETag of the last document stored: the same data is never read
//     twice); or a failure (timeout, connection, TLS, HTTP status, body over max_body, a body
//     that is not the configured JSON), which gives bad readings naming the error: one for the
//     fixed `point`, or one for each point of the last good document, or (before any good
//     document, or after one with more than 1,000 points) one named "poll". Never silence.
//  2. The validators (ETag, Last-Modified) are those of the last document whose readings were
//     handed over: they are stored with its readings in one outbox transaction (a mark), so a
//     restart does not read the same document again; if the buffer refuses the batch, the last
//     committed ones are put back and the document is fetched again. A failed poll never
//     changes them, so a broken document is fetched again until it is fixed rather than hidden
//     behind a 304.
//  3. Polls do not drift and do not queue (core/poll_schedule.h): next due = previous due +
//     `every`; late by whole periods counts overruns and skips ahead; after two failed polls in a
//     row the wait doubles up to `retry_max`, never below `every`.
//  4. The first failed poll after an up state sends one source_down event (with the error) and a
//     warning; the first good poll after that sends source_up and an info line. Warnings are
//     rate-limited (one a minute per source, with the number suppressed), so a server flapping
//     every second cannot flood the journal; the events still go to the IOC.
//  5. Redirects (3xx) are not followed: they are failures naming the new address, so a token is
//     never sent to a host nobody configured.
//  6. Secrets never reach the log, the events or the status API; only the url, the status code
//     and the error are reported.
//  7. After stop() returns the sink is never called again (sink calls happen under the lock
//     stop() takes); pending I/O is cancelled on the io thread and ends without effect.
#include <memory>

#include "core/source.h"

namespace ioc_edge::http_poll {

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config);

}  // namespace ioc_edge::http_poll
