#include "ops/status_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace ioc_edge {

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;

std::string text(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A number as the daemon sent it (printed as JSON: 4.2, 1764367800), or 0 if absent.
nlohmann::json num(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? *it : nlohmann::json(0);
}

// A daemon older than the health rules: judged here from what its status has always shown.
std::vector<std::string> problems_of_older_daemon(const nlohmann::json& j) {
  std::vector<std::string> out;
  const auto& b = j.at("backlog");
  if (b.contains("fault") && b["fault"].is_string()) out.push_back("storage fault: " + b["fault"].get<std::string>());
  if (b.contains("held") && b["held"].value("readings", std::int64_t{0}) > 0)
    out.push_back("the IOC broker refused " + std::to_string(b["held"]["readings"].get<std::int64_t>()) + " readings");
  for (const auto& s : j.at("sources"))
    if (s.value("state", "") == "down") out.push_back("source \"" + text(s, "name") + "\" is down");
  return out;
}

void print_people(const nlohmann::json& j, const std::vector<std::string>& problems, std::ostream& out) {
  const auto& u = j.at("uplink");
  const auto& b = j.at("backlog");
  out << "site " << text(j, "site") << "  store " << text(j, "store") << "  up " << num(j, "uptime_s") << " s\n";
  out << "uplink   " << text(u, "state") << " (" << text(u, "url") << ")";
  if (!text(u, "last_error").empty()) out << "  last error: " << text(u, "last_error");
  out << "\n         sent " << num(u, "readings_sent") << " readings in " << num(u, "messages_sent")
      << " messages, " << num(u, "inflight") << " in flight\n";
  out << "backlog  " << num(b, "readings") << " readings, oldest " << num(b, "oldest_age_s") << " s, "
      << num(b, "file_bytes") << " bytes on disk, " << num(b, "evicted") << " evicted\n";
  if (b.contains("fault") && b["fault"].is_string()) out << "FAULT    " << b["fault"].get<std::string>() << "\n";
  if (b.contains("corruption") && b["corruption"].is_string())
    out << "DAMAGED  " << b["corruption"].get<std::string>() << "\n";
  if (b.contains("held") && b["held"].value("readings", std::int64_t{0}) > 0) {
    out << "REFUSED  the IOC broker refused " << b["held"]["readings"] << " readings; they are kept, not resent:\n";
    for (const auto& h : b["held"]["messages"])
      out << "         seq " << h["first_seq"] << ".." << h["last_seq"] << " on " << text(h, "topic") << ": "
          << text(h, "reason") << "\n";
    out << "         fix the broker's ACL or limits (or this office's topics), then: ioc-edge outbox requeue\n";
  }
  for (const auto& s : j.at("sources")) {
    out << "source   " << text(s, "name");
    if (!text(s, "title").empty()) out << " \"" << text(s, "title") << "\"";
    out << " (" << text(s, "type") << "): " << (s.value("state", "") == "down" ? "DOWN, " : "")
        << (s.value("stale", false) ? "STALE, " : "") << num(s, "stored") << " stored, " << num(s, "refused")
        << " refused, " << num(s, "errors") << " errors";
    if (!text(s, "last_good").empty()) out << "; last good " << text(s, "last_good");
    if (!text(s, "last_error").empty()) {
      out << "; last error " << text(s, "last_error");
      if (!text(s, "last_error_at").empty()) out << " at " << text(s, "last_error_at");
    }
    out << "\n";
  }
  if (problems.empty()) {
    out << "health   ok\n";
  } else {
    for (const auto& p : problems) out << "PROBLEM  " << p << "\n";
  }
}

}  // namespace

DaemonAnswer ask_status_api(const std::string& address, std::string_view method, const std::string& target,
                            std::chrono::milliseconds timeout) {
  DaemonAnswer a;
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    a.error = "the address must be HOST:PORT";
    return a;
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port = address.substr(colon + 1);
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(host, port));
    http::request<http::empty_body> req{http::string_to_verb(beast::string_view(method.data(), method.size())), target, 11};
    req.set(http::field::host, host);
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    a.reached = true;
    a.status = res.result_int();
    a.body = std::move(res.body());
  } catch (const boost::system::system_error& e) {
    a.error = e.code() == beast::error::timeout ? "no answer within " + std::to_string(timeout.count() / 1000) + " s"
                                                 : e.code().message();
  } catch (const std::exception& e) {
    a.error = e.what();
  }
  return a;
}

int run_status_command(const std::string& address, bool json, std::ostream& out, std::ostream& err,
                       std::chrono::milliseconds timeout) {
  const auto a = ask_status_api(address, "GET", "/status", timeout);
  if (!a.reached) {
    err << "ioc-edge status: cannot reach the daemon at " << address << ": " << a.error
        << " (is it running? is [status] listen set?)\n";
    return kStatusUnreachable;
  }
  if (a.status != 200) {
    err << "ioc-edge status: the daemon at " << address << " answered " << a.status << ": " << a.body;
    return kStatusUnreachable;
  }
  nlohmann::json j;
  std::vector<std::string> problems;
  try {
    j = nlohmann::json::parse(a.body);
    if (j.contains("health"))
      problems = j["health"].at("problems").get<std::vector<std::string>>();
    else
      problems = problems_of_older_daemon(j);
  } catch (const std::exception& e) {
    err << "ioc-edge status: the answer from " << address << " is not the daemon's status: " << e.what() << "\n";
    return kStatusUnreachable;
  }
  if (json) {
    out << a.body;
  } else {
    try {
      print_people(j, problems, out);
    } catch (const std::exception& e) {
      err << "ioc-edge status: the status from " << address << " lacks a field: " << e.what() << "\n";
      return kStatusUnreachable;
    }
  }
  return problems.empty() ? kStatusHealthy : kStatusUnhealthy;
}

}  // namespace ioc_edge
