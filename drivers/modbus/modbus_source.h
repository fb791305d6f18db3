#pragma once
// The `modbus` source: polls one device (unit id) over Modbus TCP or RTU with libmodbus.
//
// Design note
// -----------
// Devices that share a `url` share one Bus: one connection, one thread ("mb:<url>"), polled in
// turn (a serial line carries one request at a time; a TCP-to-RS-485 gateway likewise). Different
// urls have different Buses and poll in parallel, so a dead device costs only its own bus time.
// The Bus thread owns its modbus_t (libmodbus contexts are not thread-safe: docs/dependencies.md).
//
// Each device's points are grouped by schedule (`every`, device-wide or per point); each schedule
// is one poll: a few block requests (modbus_decode.h plan()) whose readings are stamped when the
// answer arrived and handed to the sink together.
//
// Invariants
//  1. Every poll of every schedule yields a reading per point: good, or bad with the error
//     (timeout, exception by name, CRC, connection refused). Never silence.
//  2. Polls do not drift: the next due time is the previous due time plus `every`; a poll that
//     finds itself late by a whole period counts an overrun and skips ahead instead of queueing.
//  3. A device that fails a whole poll is "down": one source_down event and one warning on the
//     transition, one source_up event and an info line when it answers again; while down it is
//     retried with exponential backoff up to `retry_max` (still producing bad readings).
//  4. After stop() returns, the device's sink is never called again.
#include <memory>
#include <vector>

#include <modbus.h>

#include "core/source.h"
#include "drivers/modbus/modbus_config.h"

namespace ioc_edge::modbus {

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config);

// libmodbus's errno after a failed call, in words: "timeout", "exception 2 (illegal data address)",
// "CRC error", "connection refused".
std::string describe_error(int err);

// One read of `count` registers (regs) or bits (bits) of `kind` from `start`; sizes the vector.
// Returns what libmodbus returns: the count read, or -1 with errno set.
int read_block(modbus_t* ctx, RegisterKind kind, int start, int count, std::vector<std::uint16_t>& regs,
               std::vector<std::uint8_t>& bits);

}  // namespace ioc_edge::modbus
