#include "drivers/http_ingest/ingest_source.h"

#include <strings.h>

#include <map>
#include <set>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include "core/log.h"
#include "drivers/http_ingest/ingest_request.h"
#include "http/http_server.h"

namespace ioc_edge::http_ingest {

namespace {

using json = nlohmann::json;

constexpr std::string_view kPath = "/v1/readings";
constexpr std::size_t kMaxRemembered = 200000;  // idempotency answers kept in memory (about 200 bytes each)
constexpr const char* kRetryAfterRefused = "10";

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

std::string hex(const std::array<unsigned char, 32>& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const auto b : d) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

HttpReply json_reply(int status, json body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  return {status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", std::move(headers)};
}

HttpReply error_reply(int status, const std::string& message, const std::string& pointer = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
  json body{{"error", message}};
  if (!pointer.empty()) body["pointer"] = pointer;
  return json_reply(status, std::move(body), std::move(headers));
}

// "application/json", in any case, with spaces around it allowed ("application/json; charset=utf-8").
bool is_json_media(std::string_view media) {
  while (!media.empty() && media.front() == ' ') media.remove_prefix(1);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  constexpr std::string_view kJson = "application/json";
  return media.size() == kJson.size() && strncasecmp(media.data(), kJson.data(), kJson.size()) == 0;
}

// What a stored request is answered, the same the first time and on every replay.
struct Answer {
  std::string body_hash;  // hex SHA-256 of the request body
  std::size_t readings = 0;
  std::int64_t first_seq = 0, last_seq = 0;
  std::int64_t expires_ms = 0;
};

HttpReply accepted(const Answer& a, const std::string& key, bool replayed) {
  json body{{"accepted", a.readings}, {"first_seq", a.first_seq}, {"last_seq", a.last_seq}};
  if (!key.empty()) body["idempotency_key"] = key;
  std::vector<std::pair<std::string, std::string>> headers;
  if (replayed) headers.emplace_back("Idempotent-Replayed", "true");
  return json_reply(202, std::move(body), std::move(headers));
}

// The mark's value: "<body hash> <readings>" (its seqs are kept by the outbox).
std::string mark_value(const Answer& a) { return a.body_hash + " " + std::to_string(a.readings); }

bool answer_from_mark(const Mark& m, Answer& a) {
  const auto space = m.value.find(' ');
  if (space != 64) return false;
  a.body_hash = m.value.substr(0, 64);
  try {
    a.readings = std::stoul(m.value.substr(65));
  } catch (const std::exception&) {
    return false;
  }
  a.first_seq = m.first_seq;
  a.last_seq = m.last_seq;
  a.expires_ms = m.expires_ms;
  return true;
}

struct State : std::enable_shared_from_this<State> {
  State(SourceContext c, std::shared_ptr<const Config> cfg) : ctx(std::move(c)), config(std::move(cfg)) {}

  SourceContext ctx;
  std::shared_ptr<const Config> config;
  std::unique_ptr<HttpServer> server;
  bool stopped = false;

  // Invariant 2: answers by "client/key", the order they expire in, and requests being stored.
  std::map<std::string, Answer> answers;
  std::multimap<std::int64_t, std::string> expiry;
  bool forgot_some = false;  // kMaxRemembered was reached: a miss must ask the outbox
  struct InFlight {
    std::string body_hash;
    std::vector<HttpServer::Respond> waiting;
  };
  std::map<std::string, InFlight> in_flight;

  RateLimit bad_log{std::chrono::seconds(60)};

  void start();
  std::optional<HttpReply> early(const HttpRequest& req);
  void handle(HttpRequest req, HttpServer::Respond respond);
  const Client* authenticate(const HttpRequest& req) const;
  HttpReply reject(const HttpRequest& req, int status, const std::string& kind, const std::string& message,
                   const std::string& pointer = {}, std::vector<std::pair<std::string, std::string>> headers = {});
  void remember(const std::string& key, const Answer& a);
  std::optional<Answer> recall(const std::string& key);
  void stored(const std::string& key, const std::string& reply_key, Answer answer, const SinkResult& res,
              HttpServer::Respond respond);
};

void State::start() {
  // Invariant 2: what was answered before a restart is still known.
  if (const auto marks = ctx.sink.marks("idem/")) {
    for (const auto& m : *marks) {
      Answer a;
      if (answer_from_mark(m, a)) remember(m.key.substr(5), a);
    }
  } else {
    forgot_some = true;  // every unknown key asks the outbox again
    ctx.log->error("source \"{}\": cannot read the idempotency keys from the buffer; each retried key is looked up "
                   "there when it comes",
                   ctx.name);
  }
  HttpLimits limits;
  limits.name = "http-ingest \"" + ctx.name + "\"";
  limits.url_path = std::string(kPath);
  limits.keep_alive = true;
  limits.max_connections = config->max_connections;
  limits.max_per_client = config->max_per_client;
  limits.request_timeout = config->request_timeout;
  limits.write_timeout = config->request_timeout;
  limits.header_limit = 16 * 1024;
  limits.body_limit = config->max_body;
  limits.cert_file = config->cert_file;
  limits.key_file = config->key_file;
  auto self = shared_from_this();
  std::weak_ptr<State> weak = self;
  server = std::make_unique<HttpServer>(
      ctx.io,
      [weak](HttpRequest req, HttpServer::Respond respond) {
        if (auto s = weak.lock()) s->handle(std::move(req), std::move(respond));
      },
      limits,
      [weak](const HttpRequest& req) -> std::optional<HttpReply> {
        if (auto s = weak.lock()) return s->early(req);
        return std::nullopt;
      },
      [weak, max_body = config->max_body](const std::string& client, int status, const std::string& message) {
        HttpRequest req;
        req.client = client;
        const auto s = weak.lock();
        if (!s) return error_reply(status, message);
        if (status == 413)
          return s->reject(req, 413, "oversized",
                           "the body is larger than this source takes (max_body " + std::to_string(max_body) +
                               " bytes): split the readings into several requests");
        return s->reject(req, status, status == 431 ? "oversized" : "malformed_http", message);
      });
  std::string error;
  if (!server->listen(config->host, config->port, error)) {
    ctx.log->error("source \"{}\": {}", ctx.name, error);
    ctx.counters.set_error(error, ctx.clock.now_ms());
    ++ctx.counters.errors;
  }
}

const Client* State::authenticate(const HttpRequest& req) const {
  const auto auth = req.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() || strncasecmp(auth.data(), kBearer.data(), kBearer.size()) != 0) return nullptr;
  const auto digest = sha256(auth.substr(kBearer.size()));
  const Client* found = nullptr;
  for (const auto& c : config->clients)  // every digest compared, in constant time (invariant 3)
    if (CRYPTO_memcmp(digest.data(), c.token_digest.data(), digest.size()) == 0 && c.token_digest != decltype(digest){})
      found = &c;
  return found;
}

HttpReply State::reject(const HttpRequest& req, int status, const std::string& kind, const std::string& message,
                        const std::string& pointer, std::vector<std::pair<std::string, std::string>> headers) {
  ctx.counters.count_bad(kind);
  ++ctx.counters.errors;
  const std::string where = pointer.empty() ? std::string() : pointer + ": ";
  ctx.counters.set_error(std::to_string(status) + " to " + req.client + ": " + where + message, ctx.clock.now_ms());
  std::uint64_t suppressed = 0;
  if (bad_log.allow(suppressed))
    ctx.log->warn("source \"{}\": answered {} to {}: {}{} ({} more bad requests in the last minute)", ctx.name, status,
                  req.client, where, message, suppressed);
  return error_reply(status, message, pointer, std::move(headers));
}

std::optional<HttpReply> State::early(const HttpRequest& req) {
  if (req.path() != kPath)
    return reject(req, 404, "not_found", "no such path: " + req.path().substr(0, 64) + "; readings go to POST /v1/readings");
  if (req.method != "POST")
    return reject(req, 405, "bad_method", "use POST " + std::string(kPath), {}, {{"Allow", "POST"}});
  if (!authenticate(req)) {
    const auto given = req.header("Authorization");
    const bool bearer = given.size() > 7 && strncasecmp(given.data(), "Bearer ", 7) == 0;
    return reject(req, 401, "unauthorized",
                  given.empty() ? "missing Authorization: Bearer <token>"
                  : bearer      ? "the bearer token is not one of this source's clients"
                                : "Authorization must be \"Bearer <token>\" (the token of a [[source.client]])",
                  {}, {{"WWW-Authenticate", "Bearer realm=\"ioc-edge\""}});
  }
  const auto type = req.header("Content-Type");
  const auto media = type.substr(0, type.find(';'));
  if (!is_json_media(media))
    return reject(req, 415, "unsupported_media_type",
                  "Content-Type must be application/json (got " + (type.empty() ? std::string("none") : std::string(type.substr(0, 64))) + ")");
  if (const auto length = req.header("Content-Length"); !length.empty()) {
    std::uint64_t n = 0;
    bool digits = length.size() <= 19;
    for (const char ch : length) digits = digits && ch >= '0' && ch <= '9';
    if (digits) {
      for (const char ch : length) n = n * 10 + static_cast<std::uint64_t>(ch - '0');
      if (n > config->max_body)
        return reject(req, 413, "oversized",
                      "the body is " + std::to_string(n) + " bytes, more than this source takes (max_body " +
                          std::to_string(config->max_body) + " bytes): split the readings into several requests");
    }
  }
  return std::nullopt;
}

void State::remember(const std::string& key, const Answer& a) {
  const auto now = ctx.clock.now_ms();
  while (!expiry.empty() && (expiry.begin()->first <= now || answers.size() >= kMaxRemembered)) {
    if (expiry.begin()->first > now) forgot_some = true;  // still valid in the outbox: ask it on a miss
    answers.erase(expiry.begin()->second);
    expiry.erase(expiry.begin());
  }
  if (auto it = answers.find(key); it != answers.end()) {
    for (auto e = expiry.lower_bound(it->second.expires_ms); e != expiry.end() && e->first == it->second.expires_ms; ++e)
      if (e->second == key) {
        expiry.erase(e);
        break;
      }
  }
  answers[key] = a;
  expiry.emplace(a.expires_ms, key);
}

std::optional<Answer> State::recall(const std::string& key) {
  const auto now = ctx.clock.now_ms();
  if (auto it = answers.find(key); it != answers.end()) {
    if (it->second.expires_ms > now) return it->second;
    return std::nullopt;
  }
  if (!forgot_some) return std::nullopt;
  const auto marks = ctx.sink.marks("idem/" + key);  // rare: only once kMaxRemembered was reached
  for (const auto& m : marks.value_or(std::vector<Mark>{})) {
    Answer a;
    if (m.key == "idem/" + key && answer_from_mark(m, a)) return a;
  }
  return std::nullopt;
}

void State::handle(HttpRequest req, HttpServer::Respond respond) {
  if (stopped) return;
  ++ctx.counters.messages;
  const Client* client = authenticate(req);
  if (!client) {  // early() let it through: cannot happen, but never store what is not authenticated
    respond(reject(req, 401, "unauthorized", "the bearer token is not one of this source's clients", {},
                   {{"WWW-Authenticate", "Bearer realm=\"ioc-edge\""}}));
    return;
  }
  ParseOptions options;
  options.own_source = ctx.name;
  options.now_ms = ctx.clock.now_ms();
  options.max_readings = config->max_readings;
  options.allowed = [client](const std::string& source) {
    for (const auto& p : client->sources)
      if (source_allowed(p, source)) return true;
    return false;
  };
  Parsed parsed;
  Problem problem;
  if (!parse_request(req.body, options, parsed, problem)) {
    respond(reject(req, problem.status, problem.kind, problem.message, problem.pointer));
    return;
  }
  std::string reply_key(req.header("Idempotency-Key"));
  if (!reply_key.empty() && !valid_batch_id(reply_key)) {
    respond(reject(req, 400, "bad_field", "the Idempotency-Key header must be 1-128 printable ASCII characters without spaces"));
    return;
  }
  if (!parsed.batch_id.empty()) {
    if (!reply_key.empty() && reply_key != parsed.batch_id) {
      respond(reject(req, 400, "bad_field", "differs from the Idempotency-Key header; send one of them, or the same",
                     "/batch_id"));
      return;
    }
    reply_key = parsed.batch_id;
  }
  Answer answer;
  answer.readings = parsed.readings;
  answer.body_hash = hex(sha256(req.body));
  answer.expires_ms = options.now_ms + config->idempotency_window.count();
  const std::string key = reply_key.empty() ? std::string() : client->name + "/" + reply_key;
  if (!key.empty()) {
    if (const auto known = recall(key)) {
      if (known->body_hash != answer.body_hash) {
        respond(reject(req, 422, "idempotency_conflict",
                       "Idempotency-Key \"" + reply_key + "\" was used for a different body in the last " +
                           std::to_string(config->idempotency_window.count() / 3600000) + " h; use a new key for new data"));
        return;
      }
      respond(accepted(*known, reply_key, true));
      return;
    }
    if (auto it = in_flight.find(key); it != in_flight.end()) {
      if (it->second.body_hash != answer.body_hash) {
        respond(reject(req, 422, "idempotency_conflict",
                       "Idempotency-Key \"" + reply_key + "\" is being stored for a different body; use a new key for new data"));
        return;
      }
      it->second.waiting.push_back(std::move(respond));  // answered with the first request's answer
      return;
    }
    in_flight[key].body_hash = answer.body_hash;
  }

  Batch batch;
  batch.groups = std::move(parsed.groups);
  if (!key.empty()) batch.marks.push_back({"idem/" + key, mark_value(answer), answer.expires_ms});
  std::weak_ptr<State> weak = weak_from_this();
  auto& io = ctx.io;
  ctx.sink.push_batch(std::move(batch), [weak, &io, key, reply_key, answer, respond](const SinkResult& res) {
    boost::asio::post(io, [weak, key, reply_key, answer, respond, res] {
      if (auto s = weak.lock()) s->stored(key, reply_key, answer, res, respond);
    });
  });
  ctx.sink.hurry();  // a client waits for this commit
}

void State::stored(const std::string& key, const std::string& reply_key, Answer answer, const SinkResult& res,
                   HttpServer::Respond respond) {
  HttpReply reply;
  if (res.status == SinkStatus::Stored) {
    answer.first_seq = res.first_seq;
    answer.last_seq = res.last_seq;
    if (!key.empty()) remember(key, answer);
    reply = accepted(answer, reply_key, false);
  } else if (res.status == SinkStatus::Refused) {
    ctx.counters.set_error("503: the buffer refused " + std::to_string(answer.readings) + " readings: " + res.error,
                           ctx.clock.now_ms());
    reply = error_reply(503, "the gateway cannot store data now (" + res.error + "); nothing was stored: retry later", {},
                        {{"Retry-After", kRetryAfterRefused}});
  } else {
    reply = error_reply(400, res.error + "; nothing was stored");
  }
  std::vector<HttpServer::Respond> waiting;
  if (!key.empty()) {
    if (auto it = in_flight.find(key); it != in_flight.end()) {
      waiting = std::move(it->second.waiting);
      in_flight.erase(it);
    }
  }
  respond(reply);
  for (auto& w : waiting) {  // retries of the same request: the same answer (replayed when stored)
    if (res.status == SinkStatus::Stored)
      w(accepted(answer, reply_key, true));
    else
      w(reply);
  }
}

class IngestSource final : public Source {
 public:
  IngestSource(SourceContext ctx, std::shared_ptr<const Config> cfg)
      : state_(std::make_shared<State>(std::move(ctx), std::move(cfg))) {}
  ~IngestSource() override { stop(); }
  void start() override { state_->start(); }
  void stop() override {
    state_->stopped = true;
    if (state_->server) state_->server->stop();
  }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config) {
  return std::make_unique<IngestSource>(std::move(context), std::static_pointer_cast<const Config>(config));
}

}  // namespace ioc_edge::http_ingest
