#include "drivers/http_poll/http_poll_source.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <variant>

#include <arpa/inet.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/envelope.h"
#include "core/log.h"
#include "core/poll_schedule.h"
#include "core/secret_file.h"
#include "drivers/http_poll/http_poll_config.h"
#include "drivers/http_poll/http_poll_mapping.h"

namespace ioc_edge::http_poll {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxBadPoints = 1000;          // invariant 1
constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;  // the answer's status line and header fields
constexpr auto kLogInterval = std::chrono::seconds(60);

std::string show_size(std::uint64_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return std::to_string(n >> 20) + " MiB";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

std::string show_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

bool is_ip_literal(const std::string& host) {
  in_addr a4{};
  in6_addr a6{};
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// One exchange: a fresh connection, a request, an answer. Owned by the handlers that use it.
struct Exchange {
  explicit Exchange(asio::io_context& io) : resolver(io), deadline(io) {}
  tcp::resolver resolver;
  asio::steady_timer deadline;
  std::unique_ptr<asio::ssl::context> ssl_ctx;  // before the streams: it must outlive them
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  http::request<http::empty_body> req;
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  const char* phase = "resolving the host name";
  bool timed_out = false;
  bool finished = false;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void close() {
    boost::system::error_code ignored;
    resolver.cancel();
    deadline.cancel();
    if (plain || tls) lowest().socket().close(ignored);
  }
};

// The mark that keeps the last stored document's validators ("ETag\nLast-Modified").
constexpr const char* kValidatorsMark = "validators";
constexpr std::size_t kMaxValidatorBytes = 4096;

// A good answer's document, on its way to be mapped.
struct Document {
  std::string body;
  std::string etag, last_modified;  // its validators, kept once its readings are handed over
  std::int64_t now_ms = 0;          // when it arrived: the time of readings without ts_pointer
};

// One thread that runs jobs in order (a source's document mapping). Jobs run one at a time; the
// destructor waits for the running one and drops the rest.
class Worker {
 public:
  explicit Worker(std::string name) : name_(std::move(name)) {}
  ~Worker() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
      jobs_.clear();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      jobs_.push_back(std::move(job));
      if (!thread_.joinable()) thread_ = std::thread([this] { run(); });  // started on first use
    }
    cv_.notify_all();
  }

 private:
  void run() {
    pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lk.unlock();
      job();
      lk.lock();
    }
  }

  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

// A failed poll: what to say, and its kind for the bad-input counters.
struct Failure {
  std::string error;
  std::string kind;
};

class Poller : public std::enable_shared_from_this<Poller> {
 public:
  Poller(SourceContext ctx, std::shared_ptr<const Config> cfg, Mapper mapper)
      : ctx_(std::move(ctx)), cfg_(std::move(cfg)), mapper_(std::move(mapper)), timer_(ctx_.io), worker_("hp:" + ctx_.name) {
    host_header_ = cfg_->host.find(':') != std::string::npos ? "[" + cfg_->host + "]" : cfg_->host;
    if (cfg_->port != (cfg_->tls ? 443 : 80)) host_header_ += ":" + std::to_string(cfg_->port);
    if (!cfg_->mapping.point.empty() && cfg_->mapping.point_pointer.empty()) points_.push_back(cfg_->mapping.point);
  }

  void start() {
    const char* auth = cfg_->auth.kind == AuthKind::Bearer ? "bearer token" : cfg_->auth.kind == AuthKind::Basic ? "basic" : "none";
    ctx_.log->info("polling {} every {} (timeout {}, retry_max {}, auth {}, max_body {}{})", cfg_->url,
                   show_duration(cfg_->every), show_duration(cfg_->timeout), show_duration(cfg_->retry_max), auth,
                   show_size(cfg_->max_body),
                   cfg_->tls ? ", ca_file " + (cfg_->ca_file.empty() ? std::string("the system's") : cfg_->ca_file) : "");
    {
      std::lock_guard lk(mu_);
      load_validators();
    }
    asio::post(ctx_.io, [self = shared_from_this()] {
      auto lk = self->running();
      if (!lk) return;
      self->due_ = SteadyClock::now();
      self->poll();
    });
  }

  // Invariant 7. Any thread.
  void stop() {
    {
      std::lock_guard lk(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    asio::post(ctx_.io, [self = shared_from_this()] {
      self->timer_.cancel();
      if (auto ex = self->current_.lock()) ex->close();
    });
  }

 private:
  // Every handler on the io thread runs under mu_, and only while not stopped (invariant 7): the
  // lock it returns owns mu_, or is empty once stop() was called.
  std::unique_lock<std::mutex> running() {
    std::unique_lock lk(mu_);
    if (stopped_) lk.unlock();
    return lk;
  }

  // --- One exchange (io thread, under mu_) ------------------------------------------------------

  void poll() {
    auto ex = std::make_shared<Exchange>(ctx_.io);
    current_ = ex;
    std::string error;
    if (!build_request(*ex, error)) return finish(ex, Failure{error, "secret_file"});
    ex->parser.body_limit(cfg_->max_body);
    ex->parser.header_limit(kMaxHeaderBytes);
    if (cfg_->tls && !make_tls(*ex, error)) return finish(ex, Failure{error, "tls"});
    if (!cfg_->tls) ex->plain.emplace(ctx_.io);
    const auto deadline = SteadyClock::now() + cfg_->timeout;
    ex->lowest().expires_at(deadline);  // beast: connect, handshake, write and read share it
    ex->deadline.expires_at(deadline);  // ours: covers the name lookup too
    ex->deadline.async_wait([ex](const boost::system::error_code& ec) {
      if (ec || ex->finished) return;
      ex->timed_out = true;
      ex->close();
    });
    ex->resolver.async_resolve(
        cfg_->host, std::to_string(cfg_->port), tcp::resolver::numeric_service,
        [self = shared_from_this(), ex](const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
          auto lk = self->running();
          if (!lk) return;
          if (ec) return self->finish(ex, self->transport_failure(*ex, ec));
          ex->phase = "connecting";
          ex->lowest().async_connect(results, [self, ex](const boost::system::error_code& ec2, const tcp::endpoint&) {
            auto lk2 = self->running();
            if (!lk2) return;
            if (ec2) return self->finish(ex, self->transport_failure(*ex, ec2));
            if (!ex->tls) return self->send(ex);
            ex->phase = "in the TLS handshake";
            ex->tls->async_handshake(asio::ssl::stream_base::client, [self, ex](const boost::system::error_code& ec3) {
              auto lk3 = self->running();
              if (!lk3) return;
              if (ec3) return self->finish(ex, self->tls_failure(*ex, ec3));
              self->send(ex);
            });
          });
        });
  }

  void send(const std::shared_ptr<Exchange>& ex) {
    ex->phase = "sending the request";
    auto on_write = [self = shared_from_this(), ex](const boost::system::error_code& ec, std::size_t) {
      auto lk = self->running();
      if (!lk) return;
      if (ec) return self->finish(ex, self->transport_failure(*ex, ec));
      ex->phase = "waiting for the answer";
      // The header first: Beast 1.74 does not apply body_limit to a Content-Length body that
      // arrives in the same read as the header (docs/dependencies.md), so the length is checked
      // here before any of the body is read; chunked and read-to-close bodies keep the limit.
      auto on_header = [self, ex](const boost::system::error_code& ec2, std::size_t) {
        auto lk2 = self->running();
        if (!lk2) return;
        if (ec2) return self->finish(ex, self->transport_failure(*ex, ec2));
        if (const auto length = ex->parser.content_length(); length && *length > self->cfg_->max_body)
          return self->finish(ex, self->transport_failure(*ex, http::error::body_limit));
        ex->phase = "reading the body";
        auto on_read = [self, ex](const boost::system::error_code& ec3, std::size_t) {
          auto lk3 = self->running();
          if (!lk3) return;
          if (ec3) return self->finish(ex, self->transport_failure(*ex, ec3));
          self->finish(ex, std::nullopt);
        };
        if (ex->tls)
          http::async_read(*ex->tls, ex->buf, ex->parser, std::move(on_read));
        else
          http::async_read(*ex->plain, ex->buf, ex->parser, std::move(on_read));
      };
      if (ex->tls)
        http::async_read_header(*ex->tls, ex->buf, ex->parser, std::move(on_header));
      else
        http::async_read_header(*ex->plain, ex->buf, ex->parser, std::move(on_header));
    };
    if (ex->tls)
      http::async_write(*ex->tls, ex->req, std::move(on_write));
    else
      http::async_write(*ex->plain, ex->req, std::move(on_write));
  }

  bool build_request(Exchange& ex, std::string& error) {
    auto& req = ex.req;
    req.method(http::verb::get);
    req.target(cfg_->target);
    req.version(11);
    req.set(http::field::host, host_header_);
    req.set(http::field::user_agent, "ioc-edge/" IOC_EDGE_VERSION);
    req.set(http::field::accept, "application/json");
    req.set(http::field::connection, "close");
    for (const auto& [name, value] : cfg_->headers) req.set(name, value);
    if (!etag_.empty()) req.set(http::field::if_none_match, etag_);
    if (!last_modified_.empty()) req.set(http::field::if_modified_since, last_modified_);
    // Read at every poll: a renewed token takes effect at the next poll (invariant 6: never logged).
    const auto& a = cfg_->auth;
    if (a.kind == AuthKind::None) return true;
    const auto& file = a.kind == AuthKind::Bearer ? a.token_file : a.password_file;
    const auto secret = read_secret_file(file);
    if (!secret) {
      error = std::string("cannot read ") + (a.kind == AuthKind::Bearer ? "token_file " : "password_file ") + file;
      return false;
    }
    for (const char ch : *secret)
      if (ch == '\r' || ch == '\n' || ch == '\0') {
        error = std::string(a.kind == AuthKind::Bearer ? "token_file " : "password_file ") + file +
                " holds more than one line (it must hold the secret alone)";
        return false;
      }
    if (a.kind == AuthKind::Bearer) {
      if (secret->empty()) {
        error = "token_file " + file + " is empty";
        return false;
      }
      req.set(http::field::authorization, "Bearer " + *secret);
    } else {
      req.set(http::field::authorization, "Basic " + base64(a.user + ":" + *secret));
    }
    return true;
  }

  bool make_tls(Exchange& ex, std::string& error) {
    // Built at every poll, so a renewed ca_file takes effect at the next poll (docs/design.md section 7).
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    ctx->set_verify_mode(asio::ssl::verify_peer, ec);
    if (cfg_->ca_file.empty())
      ctx->set_default_verify_paths(ec);
    else
      ctx->load_verify_file(cfg_->ca_file, ec);
    if (ec) {
      error = "cannot load " + (cfg_->ca_file.empty() ? std::string("the system's CA certificates") : "ca_file " + cfg_->ca_file) +
              ": " + ec.message();
      return false;
    }
    ex.ssl_ctx = std::move(ctx);
    ex.tls.emplace(ctx_.io, *ex.ssl_ctx);
    SSL* ssl = ex.tls->native_handle();
    const bool ip = is_ip_literal(cfg_->host);
    if (!ip)  // SSL_set_tlsext_host_name without its C cast
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(cfg_->host.c_str()));
    if (cfg_->verify_hostname) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      if (ip)
        X509_VERIFY_PARAM_set1_ip_asc(param, cfg_->host.c_str());
      else
        X509_VERIFY_PARAM_set1_host(param, cfg_->host.c_str(), 0);
    }
    return true;
  }

  Failure transport_failure(const Exchange& ex, const boost::system::error_code& ec) const {
    if (ex.timed_out || ec == beast::error::timeout)
      return {"timeout: no complete answer within " + show_duration(cfg_->timeout) + " (" + ex.phase + ")", "timeout"};
    if (ec == http::error::body_limit)
      return {"body larger than max_body (" + show_size(cfg_->max_body) + ")", "oversized"};
    if (ec == http::error::header_limit)
      return {"the answer's header is larger than " + show_size(kMaxHeaderBytes), "bad_answer"};
    if (ec == asio::error::connection_refused) return {"connection refused", "connection"};
    if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again)
      return {"cannot resolve host name \"" + cfg_->host + "\"", "connection"};
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == http::error::partial_message ||
        ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated)
      return {std::string("the server closed the connection before the answer was complete (") + ex.phase + ")",
              "connection"};
    if (ec.category() == boost::system::error_code(http::error::bad_version).category())
      return {"not an HTTP answer: " + ec.message(), "bad_answer"};
    return {ec.message() + " (" + ex.phase + ")", "connection"};
  }

  Failure tls_failure(Exchange& ex, const boost::system::error_code& ec) const {
    if (ex.timed_out || ec == beast::error::timeout) return transport_failure(ex, ec);
    const long vr = SSL_get_verify_result(ex.tls->native_handle());
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
      return {"TLS: the server's certificate is not issued for \"" + cfg_->host +
                  "\" (host name mismatch); check the host in url",
              "tls"};
    if (vr != X509_V_OK)
      return {std::string("TLS: the server's certificate was rejected: ") + X509_verify_cert_error_string(vr) +
                  (cfg_->ca_file.empty() ? std::string(" (set ca_file to the CA that signed it)")
                                         : " (is it signed by the CA in ca_file " + cfg_->ca_file + "?)"),
              "tls"};
    return {"TLS handshake failed: " + ec.message(), "tls"};
  }

  // --- Outcomes (io thread, under mu_) ---------------------------------------------------------

  void finish(const std::shared_ptr<Exchange>& ex, std::optional<Failure> failure) {
    ex->finished = true;
    ex->close();
    if (!failure) {
      auto outcome = answer(*ex);
      if (auto* doc = std::get_if<Document>(&outcome)) return map_elsewhere(std::move(*doc));
      failure = std::get<std::optional<Failure>>(std::move(outcome));
    }
    if (failure) failed(*failure);
    schedule();
  }

  // A document is mapped on the source's own thread, not on the io thread: a 10 MB document
  // costs a few hundred ms of CPU, which the status API and the other sources must not wait for.
  // The job holds no strong reference to the Poller (its destructor joins the thread), and the
  // result comes back to the io thread, where it is applied under mu_.
  void map_elsewhere(Document doc) {
    worker_.submit([this, w = weak_from_this(), doc = std::move(doc)]() mutable {
      Mapped m = mapper_.map(doc.body, doc.now_ms);
      doc.body.clear();
      doc.body.shrink_to_fit();
      asio::post(ctx_.io, [w, doc = std::move(doc), m = std::move(m)]() mutable {
        auto self = w.lock();
        if (!self) return;
        auto lk = self->running();
        if (!lk) return;
        if (auto f = self->apply(std::move(doc), std::move(m))) self->failed(*f);
        self->schedule();
      });
    });
  }

  // The answer to a completed exchange: a document to map, a failure, or nullopt when it was good
  // and holds nothing new.
  std::variant<std::optional<Failure>, Document> answer(Exchange& ex) {
    ++ctx_.counters.messages;
    auto& res = ex.parser.get();
    const unsigned code = res.result_int();
    const auto r = http::obsolete_reason(res.result());
    const std::string reason(r.data(), r.size());
    if (code == 304) {
      ctx_.log->debug("{}: 304 not modified", cfg_->url);
      return up();
    }
    if (code >= 300 && code < 400) {
      const auto loc = res[http::field::location];
      const std::string location(loc.data(), loc.size());
      return Failure{"redirected (HTTP " + std::to_string(code) + " " + reason + ") to " +
                         (location.empty() ? std::string("nowhere") : quote_text(location)) +
                         "; redirects are not followed: set url to the new address",
                     "http_status"};
    }
    if (code == 401 || code == 403)
      return Failure{"HTTP " + std::to_string(code) + " " + reason + ": the server refused " +
                         (cfg_->auth.kind == AuthKind::None ? std::string("a request without credentials (set [source.auth])")
                                                            : "the credentials of [source.auth]"),
                     "http_status"};
    if (code < 200 || code >= 300) return Failure{"HTTP " + std::to_string(code) + " " + reason, "http_status"};
    if (code == 204) return up();
    const auto etag_field = res[http::field::etag];
    const std::string etag(etag_field.data(), etag_field.size());
    if (!etag.empty() && etag == etag_) {
      // A server that ignores If-None-Match but sends the same ETag: the same document (invariant 1).
      ctx_.log->debug("{}: same ETag {}, not read again", cfg_->url, etag);
      return up();
    }
    const auto lm = res[http::field::last_modified];
    ctx_.log->debug("{}: HTTP {} ({} bytes)", cfg_->url, code, res.body().size());
    return Document{std::move(res.body()), etag, std::string(lm.data(), lm.size()), ctx_.clock.now_ms()};
  }

  // A mapped document (io thread, under mu_): its readings to the sink, its problems counted.
  std::optional<Failure> apply(Document doc, Mapped m) {
    if (!m.error.empty()) return Failure{m.error, m.kind};
    if (!m.problems.empty()) {
      std::uint64_t n = 0;
      for (const auto& [kind, count] : m.problems) {
        for (std::uint64_t i = 0; i < count; ++i) ctx_.counters.count_bad(kind);
        n += count;
      }
      ctx_.counters.errors += n;
      ctx_.counters.set_error(m.first_problem, doc.now_ms);
      std::uint64_t suppressed = 0;
      if (problem_log_.allow(suppressed))
        ctx_.log->warn("{}: {} record(s) with problems, e.g. {} ({} similar warnings suppressed)", cfg_->url, n,
                       m.first_problem, suppressed);
    }
    // Invariant 2: the readings and the document's validators go in one transaction (a mark), so
    // after a restart the first poll still sends them (nothing stored twice). They are used at
    // once (polls may come faster than commits); a refused batch puts back the last committed
    // ones, so the document is fetched again.
    Batch batch;
    if (!m.readings.empty()) {
      remember_points(m.readings);
      batch.groups.push_back({"", Kind::Data, std::move(m.readings)});
    }
    const std::string validators = doc.etag + "\n" + doc.last_modified;
    if (validators.size() <= kMaxValidatorBytes) batch.marks.push_back({kValidatorsMark, validators, 0});
    etag_ = doc.etag;
    last_modified_ = doc.last_modified;
    if (!batch.groups.empty() || !batch.marks.empty()) {
      ctx_.sink.push_batch(std::move(batch), [weak = weak_from_this(), io = &ctx_.io, etag = doc.etag,
                                              lm = doc.last_modified](const SinkResult& res) {
        asio::post(*io, [weak, etag, lm, stored = res.status == SinkStatus::Stored] {
          const auto self = weak.lock();
          if (!self) return;
          auto lk = self->running();
          if (!lk) return;
          if (stored) {
            self->committed_etag_ = etag;
            self->committed_last_modified_ = lm;
          } else if (self->etag_ == etag && self->last_modified_ == lm) {
            self->etag_ = self->committed_etag_;  // not stored: fetch it again
            self->last_modified_ = self->committed_last_modified_;
          }
        });
      });
    }
    return up();
  }

  // The validators committed with the last document stored, if any (start()).
  void load_validators() {
    const auto marks = ctx_.sink.marks(kValidatorsMark);  // unreadable: poll without validators
    for (const auto& mk : marks.value_or(std::vector<Mark>{})) {
      if (mk.key != kValidatorsMark) continue;
      const auto nl = mk.value.find('\n');
      if (nl == std::string::npos) continue;
      etag_ = committed_etag_ = mk.value.substr(0, nl);
      last_modified_ = committed_last_modified_ = mk.value.substr(nl + 1);
    }
  }

  void remember_points(const std::vector<Reading>& readings) {
    if (!cfg_->mapping.point_pointer.empty() || cfg_->mapping.point.empty()) {
      std::set<std::string> names;
      for (const auto& r : readings) {
        names.insert(r.point);
        if (names.size() > kMaxBadPoints) break;
      }
      points_.assign(names.begin(), names.end());
    }
  }

  std::optional<Failure> up() {
    failures_ = 0;
    if (down_) {
      down_ = false;
      ctx_.counters.down = false;
      ctx_.log->info("{} answers again (after {} failed polls)", cfg_->url, failed_polls_);
      ctx_.sink.event(event("source_up", {}), nullptr);
    }
    failed_polls_ = 0;
    return std::nullopt;
  }

  void failed(const Failure& f) {
    ++failures_;
    ++failed_polls_;
    const auto now = ctx_.clock.now_ms();
    ctx_.counters.count_bad(f.kind);
    ctx_.counters.errors += 1;
    ctx_.counters.set_error(f.error, now);
    std::vector<Reading> bad;
    const bool one = points_.empty() || points_.size() > kMaxBadPoints;
    for (std::size_t i = 0; i < (one ? 1 : points_.size()); ++i) {
      Reading r;
      r.point = one ? "poll" : points_[i];
      r.ts_ms = now;
      r.unit = cfg_->mapping.unit;
      r.quality = Quality::Bad;
      r.error = f.error;
      bad.push_back(std::move(r));
    }
    const bool going_down = !down_;
    ctx_.sink.push(std::move(bad), nullptr);
    if (going_down) ctx_.sink.event(event("source_down", f.error), nullptr);
    if (going_down) {
      down_ = true;
      ctx_.counters.down = true;
      std::uint64_t suppressed = 0;
      if (down_log_.allow(suppressed))
        ctx_.log->warn("{} is not answering as configured: {}; retrying with backoff up to {} ({} similar warnings "
                       "suppressed)",
                       cfg_->url, f.error, show_duration(cfg_->retry_max), suppressed);
    } else {
      ctx_.log->debug("{} still failing: {}", cfg_->url, f.error);
    }
  }

  Reading event(const char* name, const std::string& error) const {
    nlohmann::json v = {{"event", name}, {"url", cfg_->url}};
    if (!error.empty()) v["error"] = error;
    Reading r;
    r.point = name;
    r.ts_ms = ctx_.clock.now_ms();
    r.value = JsonText{v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
    return r;
  }

  void schedule() {
    const auto missed = next_poll(due_, cfg_->every, cfg_->retry_max, failures_, SteadyClock::now());
    if (missed > 0) {
      overruns_ += missed;
      ctx_.counters.overruns += missed;
      std::uint64_t suppressed = 0;
      if (overrun_log_.allow(suppressed))
        ctx_.log->warn("poll every {} overran: {} polls skipped so far (the server takes longer than the period to "
                       "answer; raise `every` or lower `timeout`)",
                       show_duration(cfg_->every), overruns_);
    }
    timer_.expires_at(due_);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      auto lk = self->running();
      if (lk) self->poll();
    });
  }

  SourceContext ctx_;
  std::shared_ptr<const Config> cfg_;
  Mapper mapper_;
  asio::steady_timer timer_;
  std::string host_header_;
  std::weak_ptr<Exchange> current_;

  std::mutex mu_;  // stopped_; held by every handler on the io thread (invariant 7)
  bool stopped_ = false;

  // io thread only, under mu_
  SteadyClock::time_point due_{};
  int failures_ = 0;                // failed polls in a row, for the backoff
  std::uint64_t failed_polls_ = 0;  // in this outage, for the log
  bool down_ = false;
  std::string etag_, last_modified_;  // sent with the next poll
  std::string committed_etag_, committed_last_modified_;  // of the last document stored
  std::vector<std::string> points_;  // of the last good document, for bad readings
  std::uint64_t overruns_ = 0;
  RateLimit down_log_{kLogInterval}, problem_log_{kLogInterval}, overrun_log_{kLogInterval};

  Worker worker_;  // last: joined first, while everything its jobs use is still there
};

class HttpPollSource final : public Source {
 public:
  explicit HttpPollSource(std::shared_ptr<Poller> p) : poller_(std::move(p)) {}
  ~HttpPollSource() override { stop(); }
  void start() override {
    if (started_) return;
    started_ = true;
    poller_->start();
  }
  void stop() override {
    if (started_) poller_->stop();
  }

 private:
  std::shared_ptr<Poller> poller_;  // shared with its pending handlers, which may outlive the source
  bool started_ = false;
};

}  // namespace

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config) {
  auto cfg = std::dynamic_pointer_cast<const Config>(config);
  if (!cfg) return nullptr;
  std::string error;
  auto mapper = Mapper::build(cfg->mapping, error);
  if (!mapper) {
    context.log->error("{}", error);
    return nullptr;
  }
  return std::make_unique<HttpPollSource>(std::make_shared<Poller>(std::move(context), std::move(cfg), std::move(*mapper)));
}

}  // namespace ioc_edge::http_poll
