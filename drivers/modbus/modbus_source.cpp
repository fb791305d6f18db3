#include "drivers/modbus/modbus_source.h"

#include <modbus.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/poll_schedule.h"
#include "drivers/modbus/modbus_decode.h"

namespace ioc_edge::modbus {

std::string describe_error(int err) {
  if (err >= MODBUS_ENOBASE + 1 && err <= MODBUS_ENOBASE + 11) {
    const int code = err - MODBUS_ENOBASE;
    std::string name = modbus_strerror(err);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    return "exception " + std::to_string(code) + " (" + name + ")";
  }
  switch (err) {
    case ETIMEDOUT: return "timeout";
    case EMBBADCRC: return "CRC error";
    case EMBBADDATA: return "invalid data in the response";
    case EMBBADEXC: return "invalid exception code in the response";
    case EMBMDATA: return "too many registers requested";
    case EMBBADSLAVE: return "response from the wrong unit id";
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET: return "connection reset";
    case EPIPE: return "connection closed";
    default: return modbus_strerror(err);
  }
}

int read_block(modbus_t* ctx, RegisterKind kind, int start, int count, std::vector<std::uint16_t>& regs,
               std::vector<std::uint8_t>& bits) {
  if (kind == RegisterKind::Coil || kind == RegisterKind::Discrete)
    bits.resize(static_cast<std::size_t>(count));
  else
    regs.resize(static_cast<std::size_t>(count));
  switch (kind) {
    case RegisterKind::Holding: return modbus_read_registers(ctx, start, count, regs.data());
    case RegisterKind::Input: return modbus_read_input_registers(ctx, start, count, regs.data());
    case RegisterKind::Coil: return modbus_read_bits(ctx, start, count, bits.data());
    case RegisterKind::Discrete: return modbus_read_input_bits(ctx, start, count, bits.data());
  }
  return -1;
}

namespace {

using Clock = std::chrono::steady_clock;

// An exception the device itself sent about one request (illegal address, busy, ...): it is
// answering. Exceptions 10 and 11 come from a TCP-to-RS-485 gateway saying the device behind it
// did not answer, which is the device not answering.
bool device_exception(int err) {
  return err >= MODBUS_ENOBASE + 1 && err <= MODBUS_ENOBASE + 9;
}

// Errors after which the connection is closed and opened again before the next request.
bool connection_broken(int err) {
  return err == ECONNRESET || err == EPIPE || err == ECONNREFUSED || err == EBADF || err == ENOTCONN || err == EIO ||
         err == EHOSTUNREACH || err == ENETUNREACH;
}

struct Schedule {
  std::chrono::milliseconds every{0};
  std::vector<Request> requests;
  Clock::time_point due{};
  int failures = 0;  // consecutive polls of this schedule in which every request failed
};

class Bus;

// One device: its config, its schedules, its state. Lives on its Bus's thread once added.
struct Device {
  Device(SourceContext c, std::shared_ptr<const Config> k) : ctx(std::move(c)), config(std::move(k)), cfg(*config) {}
  SourceContext ctx;
  std::shared_ptr<const Config> config;  // shared with the settings, not copied
  const Config& cfg;
  std::vector<Schedule> schedules;
  bool down = false;
  int failures = 0;  // consecutive failed polls, any schedule
  std::string last_error;
  RateLimit overrun_log{std::chrono::seconds(60)};
  std::uint64_t overruns = 0;
};

// One connection and its thread, shared by every device with the same url.
class Bus {
 public:
  // The Bus for this url, created on first use. shared_ptr: its lifetime is shared by the devices
  // on it, and it ends (thread stopped, connection closed) when the last one stops.
  static std::shared_ptr<Bus> get(const std::shared_ptr<const Config>& config, spdlog::logger& log) {
    const Config& cfg = *config;
    static std::mutex mu;
    static std::map<std::string, std::weak_ptr<Bus>> buses;
    std::lock_guard lk(mu);
    const auto key = connection_key(cfg);
    if (auto b = buses[key].lock()) {
      // check-config refuses this; it can still happen when a /dev/serial/by-id link only
      // resolves at run time (the adapter was unplugged while the file was checked).
      if (cfg.rtu && !same_line_settings(b->cfg_.serial, cfg.serial))
        log.warn("{} is shared with another device configured with other serial settings; the line runs at the "
                 "first device's {}",
                 cfg.url, describe_line_settings(b->cfg_.serial));
      return b;
    }
    auto b = std::make_shared<Bus>(config);
    buses[key] = b;
    return b;
  }

  explicit Bus(std::shared_ptr<const Config> config)
      : config_(std::move(config)), cfg_(*config_), log_(logger("modbus/" + cfg_.url)) {
    thread_ = std::thread([this] {
      const std::string name = "mb:" + cfg_.url.substr(cfg_.url.find("://") + 3);
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      run();
    });
  }
  ~Bus() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
    close();
  }

  void add(Device* d) {
    std::lock_guard lk(mu_);
    const auto now = Clock::now();
    for (auto& s : d->schedules) s.due = now;
    devices_.push_back(d);
    cv_.notify_all();
  }

  // Returns once `d` is not being polled and never will be again.
  void remove(Device* d) {
    std::unique_lock lk(mu_);
    devices_.erase(std::remove(devices_.begin(), devices_.end(), d), devices_.end());
    cv_.wait(lk, [&] { return busy_ != d; });
  }

 private:
  void run() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
      Device* next = nullptr;
      Schedule* sched = nullptr;
      for (auto* d : devices_)
        for (auto& s : d->schedules)
          if (!sched || s.due < sched->due) {
            next = d;
            sched = &s;
          }
      if (!sched) {
        cv_.wait(lk);
        continue;
      }
      if (Clock::now() < sched->due) {
        cv_.wait_until(lk, sched->due);
        continue;  // devices may have changed meanwhile
      }
      busy_ = next;
      lk.unlock();
      poll(*next, *sched);
      lk.lock();
      busy_ = nullptr;
      cv_.notify_all();
    }
  }

  bool ensure_connected(std::string& error) {
    if (ctx_ && connected_) return true;
    if (!ctx_) {
      ctx_ = cfg_.rtu ? modbus_new_rtu(cfg_.serial.device.c_str(), cfg_.serial.baud, cfg_.serial.parity,
                                       cfg_.serial.data_bits, cfg_.serial.stop_bits)
                      : modbus_new_tcp_pi(cfg_.host.c_str(), std::to_string(cfg_.port).c_str());
      if (!ctx_) {
        error = describe_error(errno);
        return false;
      }
      modbus_set_error_recovery(ctx_, MODBUS_ERROR_RECOVERY_NONE);  // our own timeouts and reconnects
    }
    const auto t = cfg_.timeout;
    modbus_set_response_timeout(ctx_, static_cast<std::uint32_t>(t.count() / 1000),
                                static_cast<std::uint32_t>((t.count() % 1000) * 1000));
    if (modbus_connect(ctx_) != 0) {
      error = describe_error(errno);
      return false;
    }
    connected_ = true;
    return true;
  }

  void close() {
    if (!ctx_) return;
    modbus_close(ctx_);
    modbus_free(ctx_);
    ctx_ = nullptr;
    connected_ = false;
  }

  // Reads one request; false and `error` on failure.
  bool read(const Request& r, std::vector<std::uint16_t>& regs, std::vector<std::uint8_t>& bits, std::string& error,
            int& err_out) {
    if (!ctx_ || !connected_) {
      error = "not connected";
      err_out = ENOTCONN;
      return false;
    }
    const int n = read_block(ctx_, r.kind, r.start, r.count, regs, bits);
    if (n == r.count) {
      timeouts_in_a_row_ = 0;
      return true;
    }
    const int err = n < 0 ? errno : EMBBADDATA;  // a short answer is as bad as none (CVE-2024-36843 class)
    err_out = err;
    error = describe_error(err);
    if (err == ETIMEDOUT) ++timeouts_in_a_row_;
    // A TCP connection that only times out may be half-open (a gateway rebooted without a
    // reset): after three timeouts in a row with no answer between, open a fresh one.
    if (connection_broken(err) || (!cfg_.rtu && timeouts_in_a_row_ >= 3)) {
      timeouts_in_a_row_ = 0;
      close();
    } else if (err == ETIMEDOUT || err == EMBBADCRC) {
      modbus_flush(ctx_);  // drop a late answer so it is not taken for the next one
    }
    return false;
  }

  void poll(Device& d, Schedule& s) {
    const auto& points = d.cfg.points;
    std::vector<Reading> out;
    out.reserve(points.size());
    int failed = 0;
    std::string first_error;
    // Set when the link itself failed (not connected, timeout, connection error): the remaining
    // requests of this poll would fail the same way and only cost more timeouts. An exception is
    // the device answering about one request, so the others are still sent.
    std::string link_error;
    if (!ensure_connected(link_error)) {
      // reported per request below
    } else if (modbus_set_slave(ctx_, d.cfg.unit_id) != 0) {
      // Never read with the previous device's unit id (check-config refuses such ids already).
      link_error = "unit id " + std::to_string(d.cfg.unit_id) + " is not valid on this connection";
    } else {
      const auto t = d.cfg.timeout;
      modbus_set_response_timeout(ctx_, static_cast<std::uint32_t>(t.count() / 1000),
                                  static_cast<std::uint32_t>((t.count() % 1000) * 1000));
    }
    std::vector<std::uint16_t> regs;
    std::vector<std::uint8_t> bits;
    for (const auto& r : s.requests) {
      std::string req_error = link_error;
      int err = 0;
      const bool ok = link_error.empty() && read(r, regs, bits, req_error, err);
      const auto ts = d.ctx.clock.now_ms();  // when the value was read
      if (!ok) {
        ++failed;
        if (first_error.empty()) first_error = req_error;
        if (link_error.empty() && !device_exception(err)) link_error = req_error;
      }
      for (const auto i : r.points) {
        const auto& p = points[i];
        Reading rd;
        rd.point = p.name;
        rd.ts_ms = ts;
        rd.unit = p.unit;
        if (!ok) {
          rd.quality = Quality::Bad;
          rd.error = req_error;
        } else {
          const int off = p.address - r.start;
          auto dec = (r.kind == RegisterKind::Coil || r.kind == RegisterKind::Discrete)
                         ? decode_bit(p, bits[static_cast<std::size_t>(off)])
                         : decode(p, regs.data() + off);
          rd.value = std::move(dec.value);
          rd.quality = dec.quality;
          rd.error = std::move(dec.error);
        }
        out.push_back(std::move(rd));
      }
    }
    if (failed > 0) {
      d.ctx.counters.errors += static_cast<std::uint64_t>(failed);
      d.ctx.counters.set_error(first_error, d.ctx.clock.now_ms());
    }
    d.ctx.sink.push(std::move(out), nullptr);
    const std::string& error = first_error;

    const bool all_failed = failed == static_cast<int>(s.requests.size());
    s.failures = all_failed ? s.failures + 1 : 0;
    // Down when the device does not answer at all (timeout, connection, CRC), or when it answers
    // nothing but exceptions on every schedule. An exception on the 15-minute totals alone, while
    // the 1-second readings come in, is bad readings for those points, not a device going down
    // and up every 15 minutes.
    const bool no_answer = all_failed && !link_error.empty();
    const bool every_schedule_failing =
        std::all_of(d.schedules.begin(), d.schedules.end(), [](const Schedule& x) { return x.failures > 0; });
    transition(d, all_failed && (no_answer || every_schedule_failing), all_failed, error);
    schedule_next(d, s);
  }

  void transition(Device& d, bool going_down, bool all_failed, const std::string& error) {
    if (going_down && !d.down) {
      d.down = true;
      d.ctx.counters.down = true;
      d.last_error = error;
      d.ctx.log->warn("device {} unit {} is not answering: {}; retrying with backoff up to {} s", d.cfg.url,
                      d.cfg.unit_id, error, d.cfg.retry_max.count() / 1000);
      d.ctx.sink.event(event(d, "source_down", error), nullptr);
    } else if (!all_failed && d.down) {
      d.down = false;
      d.ctx.counters.down = false;
      d.ctx.log->info("device {} unit {} answers again (after {} failed polls)", d.cfg.url, d.cfg.unit_id, d.failures);
      d.ctx.sink.event(event(d, "source_up", {}), nullptr);
    }
    d.failures = all_failed ? d.failures + 1 : 0;
  }

  Reading event(const Device& d, const char* name, const std::string& error) {
    nlohmann::json v = {{"event", name}, {"url", d.cfg.url}, {"unit_id", d.cfg.unit_id}};
    if (!error.empty()) v["error"] = error;
    Reading r;
    r.point = name;
    r.ts_ms = d.ctx.clock.now_ms();
    r.value = JsonText{v.dump()};
    return r;
  }

  void schedule_next(Device& d, Schedule& s) {
    // A dead device (or schedule) backs off and does not spend the bus; a poll late by whole
    // periods skips them instead of queueing (core/poll_schedule.h).
    const auto missed = next_poll(s.due, s.every, d.cfg.retry_max, s.failures, Clock::now());
    if (missed == 0) return;
    d.overruns += missed;
    d.ctx.counters.overruns += missed;
    std::uint64_t suppressed = 0;
    if (d.overrun_log.allow(suppressed))
      d.ctx.log->warn("poll every {} ms overran: {} polls skipped so far (a request takes longer than the period; "
                      "raise `every` or lower `timeout`)", s.every.count(), d.overruns);
  }

  std::shared_ptr<const Config> config_;  // the first device on this url: its connection settings
  const Config& cfg_;
  std::shared_ptr<spdlog::logger> log_;
  modbus_t* ctx_ = nullptr;
  bool connected_ = false;
  int timeouts_in_a_row_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Device*> devices_;
  Device* busy_ = nullptr;
  bool stopping_ = false;
  std::thread thread_;
};

class ModbusSource final : public Source {
 public:
  ModbusSource(SourceContext ctx, std::shared_ptr<const Config> cfg) : dev_{std::move(ctx), std::move(cfg)} {
    // One schedule per distinct `every`; each planned into block requests once.
    std::map<std::chrono::milliseconds, std::vector<std::size_t>> by_every;
    for (std::size_t i = 0; i < dev_.cfg.points.size(); ++i) {
      const auto e = dev_.cfg.points[i].every.count() ? dev_.cfg.points[i].every : dev_.cfg.every;
      by_every[e].push_back(i);
    }
    for (auto& [every, idx] : by_every)
      dev_.schedules.push_back(
          {every, plan(dev_.cfg.points, idx, dev_.cfg.max_gap, dev_.cfg.max_registers, dev_.cfg.max_bits), {}});
  }
  ~ModbusSource() override { stop(); }

  void start() override {
    bus_ = Bus::get(dev_.config, *dev_.ctx.log);
    std::size_t requests = 0;
    for (const auto& s : dev_.schedules) requests += s.requests.size();
    dev_.ctx.log->info("polling {} unit {}: {} points in {} requests per cycle, every {} ms", dev_.cfg.url,
                       dev_.cfg.unit_id, dev_.cfg.points.size(), requests, dev_.cfg.every.count());
    bus_->add(&dev_);
  }
  void stop() override {
    if (!bus_) return;
    bus_->remove(&dev_);
    bus_.reset();
  }

 private:
  Device dev_;
  std::shared_ptr<Bus> bus_;
};

}  // namespace

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config) {
  return std::make_unique<ModbusSource>(std::move(context), std::static_pointer_cast<const Config>(std::move(config)));
}

}  // namespace ioc_edge::modbus
