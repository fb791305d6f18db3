// Modbus peers for the tests: two libmodbus servers (TCP and RTU over a socat PTY pair) that a test
// can script, and pymodbus as an independent implementation to check our client against.
//
// What lives here, and on which thread:
//   - ModbusTcpServer: libmodbus 3.1.6 on 127.0.0.1, one poll() loop on its own thread
//     ("modbus-tcp") serving every client; faults (silence, exceptions, a missing unit, a refused
//     port) switched on from the test thread.
//   - ModbusRtuServer: socat joins two PTYs; libmodbus answers on one end on its own thread
//     ("modbus-rtu"); the code under test opens the other end.
//   - PymodbusServer: tests/support/pymodbus_server.py as a child Process (Debian's /usr/bin/python3).
//
// Every method may be called from any thread (the test's, usually); setters take effect for the
// next request the server reads. Every wait is bounded; a peer that cannot start throws
// std::runtime_error with its log. None of these classes is copyable.
//
// Register tables (both libmodbus servers): coils, discrete inputs, holding and input registers,
// kModbusTableSize entries each, protocol addresses 0 .. kModbusTableSize-1, all zero at start.
// A request beyond them gets the exception ILLEGAL_DATA_ADDRESS (errno EMBXILADD on the client).
// Writes from clients (function codes 5, 6, 15, 16, 23) change the tables, as on a real device.
//
// Build: link libmodbus (pkg-config libmodbus) into the test-support library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ioc_edge::test {

// Entries per table in ModbusTcpServer and ModbusRtuServer.
inline constexpr int kModbusTableSize = 10000;

// A libmodbus TCP server on 127.0.0.1:port(), any unit id answered unless only_unit() says
// otherwise. Many clients at once, one request at a time each, in turn (poll() over all sockets, as
// libmodbus's tests/bandwidth-server-many-up.c does with select()).
//
// Survives clients that vanish and frames that are malformed: a connection whose request libmodbus
// cannot parse is closed (as a real device would), the others go on. A partial frame holds the loop
// for at most the byte timeout (100 ms); then that connection is closed.
//
// Capacity: ~80k requests/s of 100 registers over 100 connections on the 2-core machine (figures
// in the note of tests/support/modbus_server.cpp).
class ModbusTcpServer {
 public:
  // Binds 127.0.0.1:0 (the kernel picks a free port, so there is no race) and starts the thread.
  // Throws std::runtime_error if it cannot.
  ModbusTcpServer();
  // stop(), then frees everything.
  ~ModbusTcpServer();
  ModbusTcpServer(const ModbusTcpServer&) = delete;
  ModbusTcpServer& operator=(const ModbusTcpServer&) = delete;

  int port() const;

  // Set values starting at `address`. Throw std::out_of_range if they do not fit in the table.
  void set_holding(int address, std::vector<std::uint16_t> values);
  void set_input(int address, std::vector<std::uint16_t> values);
  void set_coils(int address, std::vector<bool> values);
  void set_discrete(int address, std::vector<bool> values);

  // Answer only requests for this unit id (the byte after the MBAP header); others get no answer
  // at all, like a gateway with nothing behind that id, so the client times out. -1: answer all.
  void only_unit(int unit_id);
  // Answer every request with this Modbus exception code (e.g. MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS
  // = 2, MODBUS_EXCEPTION_SLAVE_OR_SERVER_BUSY = 6); 0 answers normally again. Throws
  // std::invalid_argument unless 0 <= code < MODBUS_EXCEPTION_MAX (12).
  void fail_with_exception(int code);
  // true: accept connections and read requests but never answer (a device that stopped answering;
  // the connections stay open). false: answer again.
  void set_silent(bool silent);

  // Closes the listening socket and every connection; returns once they are closed, so from now on
  // a connect gets ECONNREFUSED. No-op if stopped.
  void stop();
  // Listens again on the same port, retrying bind for up to 5 s (throws std::runtime_error after
  // that). No-op if running.
  void start();

  // Requests read so far over all connections, including those dropped by only_unit()/set_silent().
  std::uint64_t requests() const;
  // The same by function code: element [fc] counts requests with function code fc (size 256).
  std::vector<std::uint64_t> requests_by_function() const;
  // Connections accepted so far.
  std::uint64_t connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// An RTU link over a PTY pair made by
//   socat -d -d pty,raw,echo=0,link=DIR/ttySERVER pty,raw,echo=0,link=DIR/ttyCLIENT
// with a libmodbus RTU server (8N1 at `baud`) on DIR/ttySERVER answering unit `unit_id` (and
// broadcasts, unanswered, as RTU requires); requests for other units get no answer. The code under
// test opens client_path(). socat's log is DIR/socat.log.
//
// A PTY moves bytes at memory speed whatever the baud rate; the baud only sets libmodbus's timing.
// socat keeps running when the client side is closed, so the client may close and reopen it.
// Bytes the server writes while no client has the PTY open wait in the PTY for the next one.
class ModbusRtuServer {
 public:
  // Starts socat, waits (10 s) for both links, opens the server side and starts the thread.
  // Throws std::runtime_error with socat's log if any step fails.
  explicit ModbusRtuServer(const std::string& dir, int unit_id = 1, int baud = 9600);
  ~ModbusRtuServer();
  ModbusRtuServer(const ModbusRtuServer&) = delete;
  ModbusRtuServer& operator=(const ModbusRtuServer&) = delete;

  // dir + "/ttyCLIENT".
  std::string client_path() const;

  void set_holding(int address, std::vector<std::uint16_t> values);
  void set_input(int address, std::vector<std::uint16_t> values);
  void set_coils(int address, std::vector<bool> values);
  void set_discrete(int address, std::vector<bool> values);

  // Requests read so far for unit_id or broadcast (0); frames for other units or with a bad CRC
  // are not counted.
  std::uint64_t requests() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// pymodbus 3.0's asyncio TCP server (tests/support/pymodbus_server.py, run by /usr/bin/python3) on
// 127.0.0.1:port(), zero_mode=True (protocol address 0 is the first value), serving
//   unit 1: the tables from registers_json, each kModbusTableSize entries, zero elsewhere;
//   unit 2: the same, with every holding and input register value + 1000 (mod 65536); its coils
//           and discrete inputs are the same as unit 1's.
// Other unit ids get no answer (pymodbus's framer drops them), so the client times out.
//
// registers_json is an object with any of the keys "holding", "input", "coils", "discrete", each an
// object from a decimal start address to an array of values (0..65535 for registers, 0/1 or
// false/true for bits):
//   {"holding": {"0": [1, 2, 3]}, "input": {"100": [17096, 0]}, "coils": {"0": [1, 0, 1]}}
// It is written to dir/pymodbus_registers.json; the server's log is dir/pymodbus.log.
//
// About 13k requests/s at most (one core): use ModbusTcpServer for load.
class PymodbusServer {
 public:
  // Starts the server and waits (20 s) until a libmodbus read of unit 1 gets an answer; throws
  // std::runtime_error with the server's log if it exits or does not answer (a bad registers_json
  // makes it exit with a message).
  PymodbusServer(const std::string& dir, const std::string& registers_json);
  // SIGTERM, then SIGKILL after 5 s.
  ~PymodbusServer();
  PymodbusServer(const PymodbusServer&) = delete;
  PymodbusServer& operator=(const PymodbusServer&) = delete;

  int port() const;
  std::string log() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ioc_edge::test
