// The http-poll source against a real HTTP server on 127.0.0.1 (Boost.Beast, tests/support/
// http_server.h), plain and TLS: ETag and Last-Modified, failures and recovery, a slow server
// beside a fast one on the same io thread, CA files, bearer and basic auth, body limits and
// redirects.
#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <openssl/evp.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "drivers/builtin.h"
#include "integration/daemon_rig.h"
#include "drivers/http_poll/http_poll_source.h"
#include "settings/settings.h"
#include "support/fakes.h"
#include "support/http_server.h"
#include "support/support.h"

using namespace ioc_edge;
using namespace ioc_edge::test;
using namespace std::chrono_literals;

namespace {

// The main thread's io_context of the daemon, run here on a thread of its own.
class IoThread {
 public:
  IoThread() : thread_([this] { io_.run(); }) {}
  ~IoThread() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread thread_;
};

// One http-poll source built from its [[source]] keys, feeding a CapturingSink; its log is kept
// (every level) so tests can check what it says and what it never says.
class Poll {
 public:
  // `sink`: another sink than the Poll's own CapturingSink (readings() and friends then see nothing).
  Poll(IoThread& io, const std::string& name, const std::string& url, const std::string& keys, Sink* sink = nullptr)
      : ring_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10000)) {
    auto res = load_settings_text("[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n"
                                  "[[source]]\nname = \"" + name + "\"\ntype = \"http-poll\"\nurl = \"" + url + "\"\n" + keys,
                                  "t.toml", builtin_drivers());
    INFO(res.diagnostics.format());
    REQUIRE(res.settings);
    settings_ = std::move(*res.settings);
    auto log = std::make_shared<spdlog::logger>("http-poll/" + name, ring_);
    log->set_level(spdlog::level::trace);
    src_ = http_poll::create({name, "s", log, clock_, sink ? *sink : sink_, io.io(), counters_}, settings_.sources[0].config);
    REQUIRE(src_);
  }
  ~Poll() { src_->stop(); }
  void start() { src_->start(); }
  void stop() { src_->stop(); }

  std::vector<Reading> readings() {
    std::lock_guard lk(sink_.mu);
    return sink_.readings;
  }
  std::size_t count() { return sink_.count(); }
  std::size_t bad_count() {
    std::lock_guard lk(sink_.mu);
    return static_cast<std::size_t>(
        std::count_if(sink_.readings.begin(), sink_.readings.end(), [](const Reading& r) { return r.quality == Quality::Bad; }));
  }
  std::size_t events(const std::string& name) {
    std::lock_guard lk(sink_.mu);
    return static_cast<std::size_t>(
        std::count_if(sink_.events.begin(), sink_.events.end(), [&](const Reading& e) { return e.point == name; }));
  }
  std::vector<Reading> event_list() {
    std::lock_guard lk(sink_.mu);
    return sink_.events;
  }
  // The latest reading satisfying pred, waiting up to `timeout` for one.
  Reading wait_for(const std::function<bool(const Reading&)>& pred, std::chrono::milliseconds timeout = 10s) {
    Reading found;
    const bool ok = wait_until([&] {
      std::lock_guard lk(sink_.mu);
      for (auto it = sink_.readings.rbegin(); it != sink_.readings.rend(); ++it)
        if (pred(*it)) {
          found = *it;
          return true;
        }
      return false;
    }, timeout);
    INFO(log_text());
    REQUIRE(ok);
    return found;
  }
  Reading wait_for_error(const std::string& part, std::chrono::milliseconds timeout = 10s) {
    return wait_for([&](const Reading& r) { return r.quality == Quality::Bad && r.error.find(part) != std::string::npos; },
                    timeout);
  }
  void wait_for_events(const std::string& name, std::size_t n, std::chrono::milliseconds timeout = 10s) {
    const bool ok = wait_until([&] { return events(name) >= n; }, timeout);
    INFO(name << ": " << events(name) << "\n" << log_text());
    REQUIRE(ok);
  }
  std::string log_text() {
    std::string out;
    for (const auto& l : ring_->last_formatted()) out += l;
    return out;
  }
  SourceCounters& counters() { return counters_; }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> ring_;
  Settings settings_;
  SystemClock clock_;
  CapturingSink sink_;
  SourceCounters counters_;
  std::unique_ptr<Source> src_;
};

HttpServerReply json_reply(std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  headers.emplace_back("Content-Type", "application/json");
  return {200, std::move(headers), std::move(body), {}, {}};
}

std::string header(const HttpServerRequest& r, const std::string& name) {
  const auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

const char* kSummaryV1 = R"({"data":[{"chi_tieu":"so-ca-sot-xuat-huyet","gia_tri":12,"ngay":"2026-11-30T00:00:00+07:00"},
                                    {"chi_tieu":"so-ca-tay-chan-mieng","gia_tri":3,"ngay":"2026-11-30T00:00:00+07:00"}]})";
const char* kSummaryV2 = R"({"data":[{"chi_tieu":"so-ca-sot-xuat-huyet","gia_tri":14,"ngay":"2026-12-01T00:00:00+07:00"},
                                    {"chi_tieu":"so-ca-tay-chan-mieng","gia_tri":3,"ngay":"2026-12-01T00:00:00+07:00"}]})";
const std::string kRecords = "records = \"/data\"\npoint_pointer = \"/chi_tieu\"\nvalue_pointer = \"/gia_tri\"\nts_pointer = \"/ngay\"\n";
const std::string kFast = "every = \"100ms\"\ntimeout = \"100ms\"\nretry_max = \"200ms\"\n";

}  // namespace

TEST_CASE("http-poll: ETag; a 304 gives no duplicate readings, a new document its own", "[http-poll][peer]") {
  std::mutex mu;
  std::string doc = kSummaryV1, etag = "\"v1\"";
  HttpServer server([&](const HttpServerRequest& r) {
    std::lock_guard lk(mu);
    if (header(r, "if-none-match") == etag) return HttpServerReply{304, {{"ETag", etag}}, "", {}, {}};
    return json_reply(doc, {{"ETag", etag}});
  });
  IoThread io;
  Poll poll(io, "yte", server.url("/api/summary"), kFast + kRecords);
  poll.start();
  REQUIRE(wait_until([&] { return server.request_count() >= 5; }, 10s));
  CHECK(poll.count() == 2);  // the first answer's two records, and nothing from four 304s
  const auto reqs = server.requests();
  CHECK(header(reqs[0], "if-none-match").empty());
  CHECK(header(reqs[1], "if-none-match") == "\"v1\"");
  CHECK(reqs[1].target == "/api/summary");
  CHECK(header(reqs[1], "accept") == "application/json");
  CHECK(poll.bad_count() == 0);
  {
    std::lock_guard lk(mu);
    doc = kSummaryV2;
    etag = "\"v2\"";
  }
  const auto r = poll.wait_for([](const Reading& x) { return x.point == "so-ca-sot-xuat-huyet" && std::get<std::int64_t>(x.value) == 14; });
  CHECK(format_rfc3339_ms(r.ts_ms) == "2026-11-30T17:00:00.000Z");
  const auto seen = server.request_count();
  REQUIRE(wait_until([&] { return server.request_count() >= seen + 3; }, 10s));
  CHECK(poll.count() == 4);
  CHECK(poll.events("source_down") == 0);
}

// Refuses the first `refuse` batches (a full disk), then keeps readings and marks as CapturingSink does.
class FlakySink final : public Sink {
 public:
  explicit FlakySink(int refuse) : refuse_(refuse) {}
  void push(std::vector<Reading> r, std::function<void(const SinkResult&)> done) override { inner.push(std::move(r), std::move(done)); }
  void event(Reading e, std::function<void(const SinkResult&)> done) override { inner.event(std::move(e), std::move(done)); }
  void blob(Blob b, std::function<void(const SinkResult&)> done) override { inner.blob(std::move(b), std::move(done)); }
  void push_as(std::string s, Kind k, std::vector<Reading> r, std::function<void(const SinkResult&)> done) override {
    inner.push_as(std::move(s), k, std::move(r), std::move(done));
  }
  void push_batch(Batch b, std::function<void(const SinkResult&)> done) override {
    if (refuse_-- > 0) {
      done({SinkStatus::Refused, "disk full", 0, 0});
      return;
    }
    inner.push_batch(std::move(b), std::move(done));
  }
  std::optional<std::vector<Mark>> marks(std::string_view prefix) override { return inner.marks(prefix); }
  CapturingSink inner;

 private:
  std::atomic<int> refuse_;
};

TEST_CASE("http-poll: the ETag is committed with the readings: kept across a restart, not kept when refused",
          "[http-poll][peer]") {
  HttpServer server([&](const HttpServerRequest& r) {
    if (header(r, "if-none-match") == "\"v1\"") return HttpServerReply{304, {{"ETag", "\"v1\""}}, "", {}, {}};
    return json_reply(kSummaryV1, {{"ETag", "\"v1\""}});
  });
  IoThread io;
  FlakySink sink(1);  // the first document's batch is refused
  {
    Poll poll(io, "yte", server.url("/api/summary"), kFast + kRecords, &sink);
    poll.start();
    REQUIRE(wait_until([&] { return sink.inner.count() == 2 && server.request_count() >= 4; }, 10s));
    poll.stop();
  }
  auto reqs = server.requests();
  CHECK(header(reqs[0], "if-none-match").empty());
  CHECK(header(reqs[1], "if-none-match").empty());  // refused: fetched again, whole
  CHECK(header(reqs.back(), "if-none-match") == "\"v1\"");
  REQUIRE(sink.inner.kept.count("validators") == 1);
  // A restart (a new source on the same store): its first request already names the stored ETag.
  const auto before = server.request_count();
  Poll again(io, "yte", server.url("/api/summary"), kFast + kRecords, &sink);
  again.start();
  REQUIRE(wait_until([&] { return server.request_count() >= before + 2; }, 10s));
  again.stop();
  reqs = server.requests();
  CHECK(header(reqs[before], "if-none-match") == "\"v1\"");
  CHECK(sink.inner.count() == 2);  // nothing stored twice
}

TEST_CASE("http-poll: Last-Modified; whole records as values; a server that ignores validators but repeats its ETag",
          "[http-poll][peer]") {
  const std::string lm = "Mon, 30 Nov 2026 03:00:00 GMT";
  HttpServer server([&](const HttpServerRequest& r) {
    if (header(r, "if-modified-since") == lm) return HttpServerReply{304, {}, "", {}, {}};
    return json_reply(R"({"ca_benh":[{"ma":"BN-001","xa":"Bằng Lũng"},{"ma":"BN-002","xa":"Ngọc Phái"}]})", {{"Last-Modified", lm}});
  });
  IoThread io;
  Poll poll(io, "ca-benh", server.url("/"), kFast + "records = \"/ca_benh\"\npoint = \"ca-benh-moi\"\n");
  poll.start();
  REQUIRE(wait_until([&] { return server.request_count() >= 5; }, 10s));
  const auto got = poll.readings();
  REQUIRE(got.size() == 2);
  CHECK(got[0].point == "ca-benh-moi");
  REQUIRE(std::holds_alternative<JsonText>(got[1].value));
  CHECK(std::get<JsonText>(got[1].value).text == R"({"ma":"BN-002","xa":"Ngọc Phái"})");
  CHECK(header(server.requests()[2], "if-modified-since") == lm);

  // Same ETag on a 200 (validators ignored): the same document, not read again.
  server.set_handler([](const HttpServerRequest&) { return json_reply(R"({"ca_benh":[{"ma":"BN-003"}]})", {{"ETag", "\"e\""}}); });
  poll.wait_for([](const Reading& r) { return r.value == Value(JsonText{R"({"ma":"BN-003"})"}); });
  const auto seen = server.request_count();
  REQUIRE(wait_until([&] { return server.request_count() >= seen + 3; }, 10s));
  CHECK(poll.count() == 3);
}

TEST_CASE("http-poll: status 500, an unparsable body, connection refused: bad readings naming each, down then up",
          "[http-poll][peer][faults]") {
  std::atomic<int> mode{0};
  HttpServer server([&](const HttpServerRequest&) {
    switch (mode.load()) {
      case 1: return HttpServerReply{500, {}, "database is locked", {}, {}};
      case 2: return json_reply("<html>Bảo trì hệ thống</html>");
      default: return json_reply(R"({"muc_nuoc":87})");
    }
  });
  IoThread io;
  Poll poll(io, "thuy-van", server.url("/"), kFast + "point = \"muc-nuoc\"\nvalue_pointer = \"/muc_nuoc\"\nunit = \"cm\"\n");
  poll.start();
  poll.wait_for([](const Reading& r) { return r.quality == Quality::Good; });

  mode = 1;
  auto bad = poll.wait_for_error("HTTP 500");
  CHECK(bad.error == "HTTP 500 Internal Server Error");
  CHECK(bad.point == "muc-nuoc");  // the point of the last good document
  CHECK(bad.unit == "cm");
  CHECK(std::holds_alternative<std::monostate>(bad.value));
  poll.wait_for_events("source_down", 1);
  CHECK(poll.counters().down.load());
  CHECK(poll.counters().last_error().first == "HTTP 500 Internal Server Error");
  CHECK(poll.counters().bad_input().at("http_status") >= 1);
  const auto ev = poll.event_list();
  CHECK_THAT(std::get<JsonText>(ev.at(0).value).text, Catch::Contains("\"error\":\"HTTP 500 Internal Server Error\""));

  mode = 2;
  bad = poll.wait_for_error("invalid JSON");
  CHECK_THAT(bad.error, Catch::StartsWith("invalid JSON: parse error at line 1, column 1"));
  CHECK(poll.events("source_down") == 1);  // still the same outage
  CHECK(poll.events("source_up") == 0);

  mode = 0;
  poll.wait_for_events("source_up", 1);
  poll.wait_for([](const Reading& r) { return r.quality == Quality::Good; });
  CHECK_FALSE(poll.counters().down.load());

  server.stop();
  bad = poll.wait_for_error("connection refused");
  CHECK(bad.error == "connection refused");
  poll.wait_for_events("source_down", 2);
  // While down it backs off (retry_max 200ms here) and does not claim to be up.
  const auto errors = poll.counters().errors.load();
  REQUIRE(wait_until([&] { return poll.counters().errors.load() >= errors + 2; }, 10s));
  CHECK(poll.events("source_up") == 1);
  server.start();
  poll.wait_for_events("source_up", 2);
  CHECK(poll.events("source_down") == 2);
  // One warning per outage, one info line per recovery.
  const auto log = poll.log_text();
  CHECK_THAT(log, Catch::Contains("is not answering as configured: HTTP 500 Internal Server Error"));
  CHECK_THAT(log, Catch::Contains("answers again"));
}

TEST_CASE("http-poll: a slow server times out without holding up a fast source on the same io thread",
          "[http-poll][peer][faults]") {
  HttpServer slow([](const HttpServerRequest&) {
    auto r = json_reply(R"({"v":1})");
    r.delay = 3s;  // longer than the timeout below
    return r;
  });
  HttpServer fast([](const HttpServerRequest&) { return json_reply(R"({"v":2})"); });
  IoThread io;
  Poll a(io, "cham", slow.url("/"), "every = \"500ms\"\ntimeout = \"300ms\"\nretry_max = \"500ms\"\npoint = \"v\"\nvalue_pointer = \"/v\"\n");
  Poll b(io, "nhanh", fast.url("/"), "every = \"100ms\"\ntimeout = \"100ms\"\npoint = \"v\"\nvalue_pointer = \"/v\"\n");
  a.start();
  b.start();
  const auto bad = a.wait_for_error("timeout");
  CHECK(bad.error == "timeout: no complete answer within 300 ms (waiting for the answer)");
  a.wait_for_events("source_down", 1);
  // While `a` waits out its timeouts, `b` keeps its 100 ms schedule: at least 10 polls in 3 s.
  const auto before = b.count();
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(wait_until([&] { return b.count() >= before + 10; }, 3s));
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  CHECK(b.bad_count() == 0);
  CHECK(a.counters().bad_input().at("timeout") >= 1);
}

TEST_CASE("http-poll: https with a CA file; a wrong CA and a wrong host are refused with a clear error",
          "[http-poll][peer][tls]") {
  TempDir tmp;
  const auto certs = make_certs(tmp.file("certs"));
  HttpServer server([](const HttpServerRequest&) { return json_reply(R"({"v":42})"); }, certs.server_cert, certs.server_key);
  REQUIRE(server.url("/").rfind("https://", 0) == 0);
  IoThread io;
  const std::string keys = kFast + "point = \"v\"\nvalue_pointer = \"/v\"\n";
  SECTION("the right CA") {
    Poll poll(io, "tls", server.url("/"), keys + "ca_file = \"" + certs.ca + "\"\n");
    poll.start();
    const auto r = poll.wait_for([](const Reading& x) { return x.quality == Quality::Good; });
    CHECK(std::get<std::int64_t>(r.value) == 42);
  }
  SECTION("an unrelated CA") {
    Poll poll(io, "tls", server.url("/"), keys + "ca_file = \"" + certs.other_ca + "\"\n");
    poll.start();
    const auto r = poll.wait_for_error("TLS");
    CHECK(r.error == "TLS: the server's certificate was rejected: unable to get local issuer certificate (is it signed by "
                     "the CA in ca_file " + certs.other_ca + "?)");
    poll.wait_for_events("source_down", 1);
    CHECK(server.request_count() == 0);  // nothing was sent to a server we could not verify
  }
  SECTION("a certificate for another host") {
    HttpServer wrong([](const HttpServerRequest&) { return json_reply(R"({"v":1})"); }, certs.wronghost_server_cert,
                     certs.wronghost_server_key);
    Poll poll(io, "tls", wrong.url("/"), keys + "ca_file = \"" + certs.ca + "\"\n");
    poll.start();
    const auto r = poll.wait_for_error("TLS");
    CHECK(r.error == "TLS: the server's certificate is not issued for \"127.0.0.1\" (host name mismatch); check the host in url");
    CHECK(wrong.request_count() == 0);
  }
}

TEST_CASE("http-poll: bearer token from a file, read at every poll and never logged", "[http-poll][peer][auth]") {
  TempDir tmp;
  const std::string token = "tok-9f8e7d6c5b4a";
  write_file(tmp.file("token"), token + "\n");
  std::mutex mu;
  std::string expected = "Bearer " + token;
  HttpServer server([&](const HttpServerRequest& r) {
    std::lock_guard lk(mu);
    if (header(r, "authorization") != expected) return HttpServerReply{401, {}, "unauthorized", {}, {}};
    return json_reply(R"({"v":1})");
  });
  IoThread io;
  Poll poll(io, "auth", server.url("/"),
            kFast + "point = \"v\"\nvalue_pointer = \"/v\"\n[source.headers]\nX-Api-Version = \"2\"\n[source.auth]\ntype = \"bearer\"\n"
                    "token_file = \"" + tmp.file("token") + "\"\n");
  poll.start();
  poll.wait_for([](const Reading& r) { return r.quality == Quality::Good; });
  CHECK(header(server.requests().at(0), "x-api-version") == "2");

  // The server now wants another token: refused with a clear error until the file holds it.
  {
    std::lock_guard lk(mu);
    expected = "Bearer tok-new";
  }
  const auto bad = poll.wait_for_error("401");
  CHECK(bad.error == "HTTP 401 Unauthorized: the server refused the credentials of [source.auth]");
  write_file(tmp.file("token"), "tok-new\n");
  poll.wait_for_events("source_up", 1);

  // Not in any log line, at any level, nor in any reading or event.
  poll.stop();
  CHECK(poll.log_text().find(token) == std::string::npos);
  CHECK(poll.log_text().find("tok-new") == std::string::npos);
  for (const auto& r : poll.readings()) CHECK(r.error.find("tok-") == std::string::npos);
  for (const auto& e : poll.event_list()) CHECK(std::get<JsonText>(e.value).text.find("tok-") == std::string::npos);
}

TEST_CASE("http-poll: basic auth with the password from a file", "[http-poll][peer][auth]") {
  TempDir tmp;
  write_file(tmp.file("pw"), "mật-khẩu\n");
  HttpServer server([](const HttpServerRequest& r) {
    if (header(r, "authorization") != "Basic " + base64("ioc-edge:mật-khẩu")) return HttpServerReply{401, {}, "", {}, {}};
    return json_reply(R"({"v":7})");
  });
  IoThread io;
  Poll poll(io, "basic", server.url("/"),
            kFast + "point = \"v\"\nvalue_pointer = \"/v\"\nauth = { type = \"basic\", user = \"ioc-edge\", password_file = \"" +
                tmp.file("pw") + "\" }\n");
  poll.start();
  const auto r = poll.wait_for([](const Reading& x) { return x.quality == Quality::Good; });
  CHECK(std::get<std::int64_t>(r.value) == 7);
  poll.stop();
  CHECK(poll.log_text().find("mật-khẩu") == std::string::npos);
}

TEST_CASE("http-poll: a body over max_body is a bad reading, not a read", "[http-poll][peer][faults]") {
  // 2,003 bytes against a 1 KiB limit, announced by Content-Length (the header and the body arrive
  // in one read: docs/dependencies.md item 34), or chunked.
  const std::string body = "[" + std::string(2000, ' ') + "1]";
  HttpServer server([&](const HttpServerRequest&) { return json_reply(body); });
  SECTION("announced by Content-Length") {}
  SECTION("chunked") {
    server.set_handler([&](const HttpServerRequest&) {
      HttpServerReply r;
      r.raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
              "7d3\r\n" + body + "\r\n0\r\n\r\n";
      return r;
    });
  }
  IoThread io;
  Poll poll(io, "lon", server.url("/"), kFast + "records = \"\"\npoint_pointer = \"/name\"\nmax_body = \"1KiB\"\n");
  poll.start();
  const auto r = poll.wait_for_error("body");
  CHECK(r.error == "body larger than max_body (1 KiB)");
  CHECK(r.point == "poll");  // no good document yet, and no fixed point: one reading named "poll"
  poll.wait_for_events("source_down", 1);
  CHECK(poll.counters().bad_input().at("oversized") >= 1);
  CHECK(poll.log_text().find("record(s) with problems") == std::string::npos);  // the body was never mapped
}

TEST_CASE("http-poll: an answer cut short, and one that is not HTTP", "[http-poll][peer][faults]") {
  HttpServer server([](const HttpServerRequest&) {
    HttpServerReply r;
    r.raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"v\":";
    return r;
  });
  IoThread io;
  Poll poll(io, "cut", server.url("/"), kFast + "point = \"v\"\n");
  poll.start();
  auto r = poll.wait_for_error("closed");
  CHECK(r.error == "the server closed the connection before the answer was complete (reading the body)");
  server.set_handler([](const HttpServerRequest&) {
    HttpServerReply x;
    x.raw = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    return x;
  });
  r = poll.wait_for_error("not an HTTP answer");
  CHECK_THAT(r.error, Catch::StartsWith("not an HTTP answer: "));
  CHECK(poll.events("source_down") == 1);
}

TEST_CASE("http-poll: redirects are not followed; the error names the new address", "[http-poll][peer][faults]") {
  HttpServer server([](const HttpServerRequest& r) {
    if (r.target == "/old") return HttpServerReply{301, {{"Location", "/new"}}, "", {}, {}};
    return json_reply(R"({"v":1})");
  });
  IoThread io;
  Poll poll(io, "chuyen", server.url("/old"), kFast + "point = \"v\"\nvalue_pointer = \"/v\"\n");
  poll.start();
  const auto r = poll.wait_for_error("redirected");
  CHECK(r.error == "redirected (HTTP 301 Moved Permanently) to \"/new\"; redirects are not followed: set url to the new address");
  poll.stop();
  for (const auto& q : server.requests()) CHECK(q.target == "/old");
}

TEST_CASE("http-poll in the daemon: what the IOC sees, readings then source_down with the error", "[http-poll][peer][daemon]") {
  std::atomic<bool> broken{false};
  HttpServer server([&](const HttpServerRequest& r) {
    if (broken) return HttpServerReply{503, {}, "", {}, {}};
    if (header(r, "if-none-match") == "\"v1\"") return HttpServerReply{304, {}, "", {}, {}};
    return json_reply(kSummaryV1, {{"ETag", "\"v1\""}});
  });
  RigOptions o;
  // The document does not change (304): nothing new is stored after the first poll, so the
  // default expected_every (the poll interval) would call the source stale within seconds.
  o.sources = "[[source]]\nname = \"yte\"\ntype = \"http-poll\"\nurl = \"" + server.url("/api") + "\"\n" + kFast + kRecords +
              "unit = \"ca\"\nexpected_every = \"1h\"\n";
  DaemonRig rig(o);
  rig.start();
  auto& c = rig.collector();
  REQUIRE(wait_until([&] { return server.request_count() >= 5 && c.data_readings() >= 2; }, 20s));
  std::vector<nlohmann::json> readings;
  for (const auto& batch : c.json_on("/data/yte"))
    for (const auto& r : batch["readings"]) readings.push_back(r);
  REQUIRE(readings.size() == 2);  // one document, polled five times or more
  CHECK(readings[0]["point"] == "so-ca-sot-xuat-huyet");
  CHECK(readings[0]["value"] == 12);
  CHECK(readings[0]["unit"] == "ca");
  CHECK(readings[0]["ts"] == "2026-11-29T17:00:00.000Z");
  CHECK(readings[0]["quality"] == "good");

  broken = true;
  REQUIRE(wait_until([&] { return !c.json_on("/event/yte").empty(); }, 20s));
  const auto ev = c.json_on("/event/yte")[0]["readings"][0];
  CHECK(ev["point"] == "source_down");
  CHECK(ev["value"]["error"] == "HTTP 503 Service Unavailable");
  REQUIRE(wait_until([&] {
    for (const auto& batch : c.json_on("/data/yte"))
      for (const auto& r : batch["readings"])
        if (r["quality"] == "bad") return true;
    return false;
  }, 20s));
  const auto st = rig.status();
  INFO(st.dump());
  CHECK(st["sources"][0]["last_error"] == "HTTP 503 Service Unavailable");
  CHECK(rig.validate_against_schema() == 0);
  CHECK(rig.stop() == 0);
}
