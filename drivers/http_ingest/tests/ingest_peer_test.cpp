// The http-ingest source against real clients over loopback: a real HTTP server, a real outbox
// (its source pipeline as in the daemon), and the daemon itself for the end-to-end path to the IOC.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/log.h"
#include "core/outbox.h"
#include "core/pipeline.h"
#include "drivers/builtin.h"
#include "drivers/http_ingest/ingest_config.h"
#include "drivers/http_ingest/ingest_source.h"
#include "settings/settings.h"
#include "support/fakes.h"
#include "support/support.h"
#include "integration/daemon_rig.h"

using namespace ioc_edge;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

constexpr const char* kTokenA = "tok-aaaaaaaaaaaaaaaaaaaaaaaaaaaa";  // phan-mem-mot-cua: mot-cua, mot-cua-*
constexpr const char* kTokenB = "tok-bbbbbbbbbbbbbbbbbbbbbbbbbbbb";  // cong-dvc: mot-cua-dvc only

std::string token_file(test::TempDir& dir, const std::string& name, const std::string& token) {
  const auto path = dir.file(name);
  test::write_file(path, token + "\n");
  ::chmod(path.c_str(), 0600);
  return path;
}

std::string source_toml(test::TempDir& dir, const std::string& listen, const std::string& extra = "") {
  return "[[source]]\nname = \"mot-cua\"\ntype = \"http-ingest\"\nlisten = \"" + listen + "\"\n" + extra +
         "  [[source.client]]\n  name = \"phan-mem-mot-cua\"\n  token_file = \"" + token_file(dir, "a", kTokenA) +
         "\"\n  sources = [\"mot-cua\", \"mot-cua-*\"]\n"
         "  [[source.client]]\n  name = \"cong-dvc\"\n  token_file = \"" + token_file(dir, "b", kTokenB) +
         "\"\n  sources = [\"mot-cua-dvc\"]\n";
}

std::map<std::string, std::string> auth(const char* token = kTokenA) {
  return {{"Authorization", std::string("Bearer ") + token}, {"Content-Type", "application/json"}};
}

std::string body(int n, const std::string& source = "", int from = 0) {
  json readings = json::array();
  for (int i = 0; i < n; ++i) {
    json r{{"point", "p" + std::to_string(from + i)}, {"value", from + i}};
    if (!source.empty()) r["source"] = source;
    readings.push_back(r);
  }
  return json{{"readings", readings}}.dump();
}

// The source in this process: its own io thread, a real outbox and pipeline, or any Sink.
class Rig {
 public:
  explicit Rig(const std::string& extra = "", Sink* sink = nullptr, const std::string& host = "127.0.0.1")
      : port_(test::free_tcp_port()) {
    const std::string listen = host + ":" + std::to_string(port_);
    const std::string head = "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n";
    auto res = load_settings_text(head + source_toml(dir_, listen, extra), "i.toml", builtin_drivers());
    INFO(res.diagnostics.format());
    REQUIRE(res.settings);
    config_ = res.settings->sources.at(0).config;
    open_outbox();
    sink_ = sink;
    start();
  }
  ~Rig() { stop(); }

  void open_outbox() {
    std::string err;
    OutboxOptions o{dir_.file("o.db")};
    o.sync_full = false;
    outbox_ = Outbox::open(o, clock_, err);
    REQUIRE(outbox_);
    pipeline_ = std::make_unique<SourcePipeline>(*outbox_, "mot-cua", Priority::Normal, counters_, PipelineLimits{},
                                                 clock_);
  }
  void start() {
    io_ = std::make_unique<boost::asio::io_context>();
    work_ = std::make_unique<Work>(io_->get_executor());
    Sink& sink = sink_ ? *sink_ : *pipeline_;
    source_ = http_ingest::create({"mot-cua", "s", logger("http-ingest/mot-cua"), clock_, sink, *io_, counters_}, config_);
    thread_ = std::thread([this] { io_->run(); });
    on_io([this] { source_->start(); });
    if (test::wait_until([&] { return test::tcp_port_open(port_); }, 5s)) return;
    stop();
    FAIL("the source does not listen on port " << port_);
  }
  void stop() {
    if (!source_) return;
    on_io([this] { source_->stop(); });
    work_.reset();
    io_->stop();
    thread_.join();
    source_.reset();
  }
  // A restart of the whole process, as after a crash: source and outbox closed and opened again.
  void restart() {
    stop();
    pipeline_.reset();
    outbox_->stop();
    outbox_.reset();
    open_outbox();
    start();
  }
  void on_io(std::function<void()> fn) {
    std::promise<void> done;
    boost::asio::post(*io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  test::HttpResponse post(const std::string& b, std::map<std::string, std::string> headers = auth()) {
    return test::http_request(port_, "POST", "/v1/readings", b, headers);
  }
  std::int64_t stored() {
    outbox_->flush();
    return outbox_->stats().pending;
  }
  std::vector<json> stored_readings() {
    outbox_->flush();
    std::vector<json> out;
    for (const auto& rec : outbox_->read(Priority::Normal, 0, INT64_MAX, 1'000'000, 1ull << 40))
      for (std::size_t pos = 0; pos <= rec.body.size();) {
        const auto end = std::min(rec.body.find('\n', pos), rec.body.size());
        out.push_back(json::parse(rec.body.substr(pos, end - pos)));
        pos = end + 1;
      }
    return out;
  }
  int port() const { return port_; }
  SourceCounters& counters() { return counters_; }

 private:
  using Work = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  test::TempDir dir_;
  int port_;
  SystemClock clock_;
  std::shared_ptr<const DriverConfig> config_;
  std::unique_ptr<Outbox> outbox_;
  SourceCounters counters_;
  std::unique_ptr<SourcePipeline> pipeline_;
  Sink* sink_ = nullptr;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<Work> work_;
  std::unique_ptr<Source> source_;
  std::thread thread_;
};

// A sink whose outbox cannot take data (a full disk).
class RefusingSink final : public Sink {
 public:
  void push(std::vector<Reading>, std::function<void(const SinkResult&)> done) override { refuse(done); }
  void event(Reading, std::function<void(const SinkResult&)> done) override { refuse(done); }
  void blob(Blob, std::function<void(const SinkResult&)> done) override { refuse(done); }
  void push_as(std::string, Kind, std::vector<Reading>, std::function<void(const SinkResult&)> done) override {
    refuse(done);
  }
  void push_batch(Batch, std::function<void(const SinkResult&)> done) override { refuse(done); }
  std::optional<std::vector<Mark>> marks(std::string_view) override { return std::vector<Mark>{}; }
  std::atomic<int> refused{0};

 private:
  void refuse(const std::function<void(const SinkResult&)>& done) {
    ++refused;
    done({SinkStatus::Refused, "disk full: cannot store new data in /var/lib/ioc-edge/outbox.db", 0, 0});
  }
};

// A raw TCP connection from `address` that sends `text` one byte every `gap`, until told to stop.
int connect_from(const std::string& address, int port) {
  const bool v6 = address.find(':') != std::string::npos;
  const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET6, address.c_str(), &a.sin6_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  }
  return fd;
}

}  // namespace

TEST_CASE("every error answer of the ingest API names its problem, stores nothing and is counted",
          "[integration][http-ingest]") {
  Rig rig("max_body = \"64KiB\"\n");
  const auto good = body(2);
  struct Case {
    std::string name;
    test::HttpResponse res;
    int status;
    std::string text;
  };
  auto h = auth();
  std::vector<Case> cases;
  cases.push_back({"wrong path", test::http_request(rig.port(), "POST", "/v1/reading", good, h), 404, "POST /v1/readings"});
  cases.push_back({"wrong method", test::http_request(rig.port(), "GET", "/v1/readings", "", h), 405, "use POST"});
  cases.push_back({"no token", rig.post(good, {{"Content-Type", "application/json"}}), 401, "missing Authorization"});
  cases.push_back({"wrong token", rig.post(good, auth("tok-cccccccccccccccccccccccccccc")), 401, "not one of"});
  cases.push_back({"basic auth", rig.post(good, {{"Authorization", "Basic YTpi"}, {"Content-Type", "application/json"}}),
                   401, "must be \\\"Bearer"});
  cases.push_back({"not JSON type", rig.post(good, {{"Authorization", std::string("Bearer ") + kTokenA},
                                                    {"Content-Type", "text/csv"}}),
                   415, "application/json"});
  cases.push_back({"too large", rig.post(body(3000)), 413, "max_body"});
  cases.push_back({"malformed", rig.post("{\"readings\":[{\"point\":\"a\",", h), 400, "not JSON"});
  cases.push_back({"invalid UTF-8", rig.post("{\"readings\":[{\"point\":\"\xFF\",\"value\":1}]}", h), 400, "UTF-8"});
  cases.push_back({"bad field", rig.post(R"({"readings":[{"point":"a","value":1},{"point":"b","value":[1,2],"ts":"yesterday"}]})", h),
                   400, "/readings/1/ts"});
  cases.push_back({"scope", rig.post(body(2, "thue"), h), 403, "may not write source \\\"thue\\\""});
  cases.push_back({"other client's scope", rig.post(body(1, "mot-cua-hoso"), auth(kTokenB)), 403, "mot-cua-hoso"});
  cases.push_back({"bad key", rig.post(good, [&] { auto x = h; x["Idempotency-Key"] = std::string(200, 'k'); return x; }()),
                   400, "Idempotency-Key"});
  for (const auto& c : cases) {
    INFO(c.name << ": " << c.res.status << " " << c.res.body);
    CHECK(c.res.status == c.status);
    CHECK_THAT(c.res.body, Catch::Contains(c.text));
  }
  CHECK(cases[2].res.headers["www-authenticate"] == "Bearer realm=\"ioc-edge\"");
  CHECK(cases[1].res.headers["allow"] == "POST");
  CHECK(json::parse(cases[9].res.body)["pointer"] == "/readings/1/ts");
  CHECK(rig.stored() == 0);  // nothing of any of them
  const auto bad = rig.counters().bad_input();
  CHECK(bad.at("not_found") == 1);
  CHECK(bad.at("unauthorized") == 3);
  CHECK(bad.at("unsupported_media_type") == 1);
  CHECK(bad.at("oversized") == 1);
  CHECK(bad.at("malformed_json") == 1);
  CHECK(bad.at("invalid_utf8") == 1);
  CHECK(bad.at("forbidden") == 2);
  // And the server still serves: a good request after all of them.
  const auto ok = rig.post(good);
  CHECK(ok.status == 202);
  CHECK(rig.stored() == 2);
}

TEST_CASE("202 comes after the commit, with the count and the seq range; readings keep their sources",
          "[integration][http-ingest]") {
  Rig rig;
  auto r = rig.post(body(3));
  REQUIRE(r.status == 202);
  auto a = json::parse(r.body);
  CHECK(a["accepted"] == 3);
  CHECK(a["first_seq"] == 1);
  CHECK(a["last_seq"] == 3);
  CHECK(rig.stored() == 3);  // the answer came after the commit: the readings are there
  // Another client writes its own source; readings of several sources in one request.
  r = rig.post(body(2, "mot-cua-dvc"), auth(kTokenB));
  REQUIRE(r.status == 202);
  r = rig.post(R"({"readings":[{"point":"a","value":1},{"source":"mot-cua-hoso","point":"b","value":"x","unit":"hồ sơ",
                   "ts":"2026-11-30T08:00:00+07:00"}]})");
  REQUIRE(r.status == 202);
  a = json::parse(r.body);
  CHECK(a["first_seq"] == 6);
  CHECK(a["last_seq"] == 7);
  const auto got = rig.stored_readings();
  REQUIRE(got.size() == 7);
  CHECK(got[3]["source"] == "mot-cua-dvc");
  CHECK(got[5]["source"] == "mot-cua");
  CHECK(got[6]["source"] == "mot-cua-hoso");
  CHECK(got[6]["unit"] == "hồ sơ");
  CHECK(got[6]["ts"] == "2026-11-30T01:00:00.000Z");
  CHECK(rig.counters().stored == 7);
  CHECK(rig.counters().messages == 3);
}

TEST_CASE("an idempotent retry gets the first answer and stores nothing twice, also after a restart",
          "[integration][http-ingest]") {
  Rig rig;
  auto h = auth();
  h["Idempotency-Key"] = "hs-2026-11-30-0042";
  const auto b = body(5);
  const auto first = rig.post(b, h);
  REQUIRE(first.status == 202);
  auto again = rig.post(b, h);
  CHECK(again.status == 202);
  CHECK(again.body == first.body);  // the same seqs
  CHECK(again.headers["idempotent-replayed"] == "true");
  CHECK(rig.stored() == 5);
  // The same key in the body (batch_id) is the same request.
  const auto in_body = rig.post(R"({"batch_id":"hs-2026-11-30-0042",)" + b.substr(1));
  CHECK(in_body.status == 422);  // ... but that body differs from the first one
  CHECK_THAT(in_body.body, Catch::Contains("different body"));
  // Another client's key space is its own.
  auto hb = auth(kTokenB);
  hb["Idempotency-Key"] = "hs-2026-11-30-0042";
  CHECK(rig.post(body(1, "mot-cua-dvc"), hb).status == 202);
  CHECK(rig.stored() == 6);

  rig.restart();  // the answers were committed with the readings: they survive
  auto after = rig.post(b, h);
  CHECK(after.status == 202);
  CHECK(after.body == first.body);
  CHECK(rig.stored() == 6);
  // Concurrent retries of one new request: one is stored, all get its answer.
  h["Idempotency-Key"] = "hs-2026-11-30-0043";
  std::vector<std::future<test::HttpResponse>> tries;
  for (int i = 0; i < 4; ++i) tries.push_back(std::async(std::launch::async, [&] { return rig.post(body(3, "", 100), h); }));
  std::set<std::string> answers;
  for (auto& t : tries) {
    const auto res = t.get();
    CHECK(res.status == 202);
    answers.insert(res.body);
  }
  CHECK(answers.size() == 1);
  CHECK(rig.stored() == 9);
}

TEST_CASE("a buffer that cannot take data answers 503 with Retry-After", "[integration][http-ingest]") {
  RefusingSink sink;
  Rig rig("", &sink);
  auto h = auth();
  h["Idempotency-Key"] = "k-1";
  auto r = rig.post(body(2), h);
  CHECK(r.status == 503);
  CHECK(r.headers["retry-after"] == "10");
  CHECK_THAT(r.body, Catch::Contains("disk full") && Catch::Contains("nothing was stored"));
  // The key was not used up: the retry is tried again, not replayed.
  CHECK(rig.post(body(2), h).status == 503);
  CHECK(sink.refused == 2);
}

TEST_CASE("keep-alive: many requests on one connection", "[integration][http-ingest]") {
  Rig rig;
  test::HttpConnection c(rig.port());
  for (int i = 0; i < 50; ++i) {
    const auto r = c.request("POST", "/v1/readings", body(10, "", i * 10), auth());
    REQUIRE(r.status == 202);
  }
  CHECK(c.connects() == 1);
  CHECK(rig.stored() == 500);
}

TEST_CASE("slow and greedy clients time out and cannot starve a fast one", "[integration][http-ingest][serial]") {
  // Dual-stack: the slow client comes from 127.0.0.1, the fast one from ::1, two addresses.
  Rig rig("request_timeout = \"2s\"\nmax_connections_per_address = 4\n", nullptr, "[::]");
  std::vector<int> slow;
  for (int i = 0; i < 10; ++i) {
    const int fd = connect_from("127.0.0.1", rig.port());
    REQUIRE(fd >= 0);
    slow.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {  // a byte a quarter second on each: a request that never completes
    const std::string req = "POST /v1/readings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(kTokenA) +
                            "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    for (std::size_t i = 0; i < req.size() && !stop; ++i) {
      for (const int fd : slow) (void)::send(fd, &req[i], 1, MSG_NOSIGNAL);
      for (int k = 0; k < 25 && !stop; ++k) std::this_thread::sleep_for(10ms);  // pacing the attack, not syncing
    }
  });
  test::HttpConnection fast(rig.port(), "::1");
  const auto t0 = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < 50; ++i) ok += fast.request("POST", "/v1/readings", body(10, "", i * 10), auth(), 2s).status == 202;
  const auto fast_took = std::chrono::steady_clock::now() - t0;
  CHECK(ok == 50);
  CHECK(fast_took < 2s);  // served while the slow ones hang (generous: each request is a commit)
  // The slow ones: at most 4 got a session, the others a 503 at once; all are closed by 3 s.
  int closed = 0, busy = 0;
  for (const int fd : slow) {
    std::string got;
    char buf[512];
    pollfd p{fd, POLLIN, 0};
    for (int k = 0; k < 40; ++k) {  // up to 4 s
      if (::poll(&p, 1, 100) <= 0) continue;
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        ++closed;
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    busy += got.find("503") != std::string::npos;
  }
  stop = true;
  trickle.join();
  for (const int fd : slow) ::close(fd);
  CHECK(closed == 10);
  CHECK(busy == 6);
  CHECK(rig.stored() == 500);
}

TEST_CASE("HTTPS with cert_file and key_file: a client that trusts the CA posts; plain HTTP is refused",
          "[integration][http-ingest][tls]") {
  test::TempDir tmp;
  const auto certs = test::make_certs(tmp.file("certs"));
  Rig rig("cert_file = \"" + certs.server_cert + "\"\nkey_file = \"" + certs.server_key + "\"\n");
  const auto url = "https://127.0.0.1:" + std::to_string(rig.port()) + "/v1/readings";
  const auto out = tmp.file("curl.out");
  auto curl = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {"curl", "-sS", "-o", out, "-w", "%{http_code}", "--max-time", "5", "-X", "POST",
                                     "-H", std::string("Authorization: Bearer ") + kTokenA, "-H",
                                     "Content-Type: application/json", "--data", body(3)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return test::run_to_exit(argv, tmp.file("curl.log"), 10s);
  };
  CHECK(curl({"--cacert", certs.ca, url}) == 0);
  CHECK_THAT(test::read_file(tmp.file("curl.log")), Catch::EndsWith("202"));
  CHECK_THAT(test::read_file(out), Catch::Contains("\"accepted\":3"));
  CHECK(rig.stored() == 3);
  // A CA that did not sign the server's certificate: the client refuses the connection.
  CHECK(curl({"--cacert", certs.other_ca, url}) != 0);
  // Plain HTTP to the TLS port gets no answer; nothing is stored.
  const auto plain = rig.post(body(2));
  CHECK(plain.status == 0);
  CHECK(rig.stored() == 3);
}

TEST_CASE("the daemon takes posted readings to the IOC; a retry after kill -9 stores nothing twice",
          "[integration][http-ingest][kill9]") {
  test::RigOptions o;
  o.sources = "";
  test::DaemonRig rig(o);
  const int port = test::free_tcp_port();
  rig.options().sources = source_toml(rig.tmp(), "127.0.0.1:" + std::to_string(port));
  rig.rewrite_config();
  rig.start();
  REQUIRE(test::wait_until([&] { return test::tcp_port_open(port); }, 10s));
  auto h = auth();
  h["Idempotency-Key"] = "batch-1";
  const auto b = body(100, "mot-cua-hoso");
  const auto first = test::http_request(port, "POST", "/v1/readings", b, h);
  REQUIRE(first.status == 202);
  rig.kill9();  // as if the answer had been lost on the way: the client retries
  rig.start();
  REQUIRE(test::wait_until([&] { return test::tcp_port_open(port); }, 10s));
  auto retry = test::http_request(port, "POST", "/v1/readings", b, h);
  CHECK(retry.status == 202);
  CHECK(retry.body == first.body);
  CHECK(retry.headers["idempotent-replayed"] == "true");
  const auto answer = json::parse(first.body);
  std::set<std::int64_t> seqs;
  auto collect = [&] {
    seqs.clear();
    for (const auto& m : rig.collector().messages()) {
      if (m.topic.find("/data/mot-cua") == std::string::npos) continue;
      const auto batch = json::parse(m.payload);
      for (const auto& r : batch["readings"]) {
        CHECK(r["source"] == "mot-cua-hoso");
        seqs.insert(r["seq"].get<std::int64_t>());
      }
    }
    return seqs.size() >= 100;
  };
  const bool arrived = test::wait_until(collect, 20s, 100ms);
  INFO(rig.daemon_log());
  REQUIRE(arrived);
  // Exactly the seqs of the first answer (a resend after the kill repeats the same seqs, which the
  // IOC de-duplicates); the retry added none.
  CHECK(seqs.size() == 100);
  CHECK(*seqs.begin() == answer["first_seq"].get<std::int64_t>());
  CHECK(*seqs.rbegin() == answer["last_seq"].get<std::int64_t>());
  CHECK(rig.stop() == 0);
}
