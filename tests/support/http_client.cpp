// A bounded HTTP/1.1 client for tests (Boost.Beast), for the status server and HTTP ingest.
#include "support.h"

#include <cctype>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace ioc_edge::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// Status, body and headers (names lower-cased) of a parsed response.
void fill_response(const http::response<http::string_body>& res, HttpResponse& out) {
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers[name] = std::string(field.value());
  }
}

}  // namespace

HttpResponse http_request(int port, const std::string& method, const std::string& target,
                          const std::string& body, const std::map<std::string, std::string>& headers,
                          std::chrono::milliseconds timeout) {
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) throw std::invalid_argument("http_request: method " + method);

  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::user_agent, "ioc-edge-tests");
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : headers) req.set(name, value);
  if (!body.empty() || (verb != http::verb::get && verb != http::verb::head)) {
    req.body() = body;
    req.prepare_payload();
  }

  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  boost::system::error_code result;
  bool done = false;

  // One deadline for the whole exchange: the stream cancels whatever is pending when it passes.
  stream.expires_after(timeout);
  const asio::ip::tcp::endpoint peer(asio::ip::address_v4::loopback(),
                                     static_cast<unsigned short>(port));
  stream.async_connect(peer, [&](const boost::system::error_code& ec) {
    if (ec) {
      result = ec;
      return;
    }
    http::async_write(stream, req, [&](const boost::system::error_code& wec, std::size_t) {
      if (wec) {
        result = wec;
        return;
      }
      http::async_read(stream, buffer, parser,
                       [&](const boost::system::error_code& rec, std::size_t) {
                         result = rec;
                         done = !rec;
                       });
    });
  });
  io.run();

  HttpResponse out;
  if (!done) {
    if (result == beast::error::timeout) {
      out.body = "no response within " + std::to_string(timeout.count()) + " ms";
    } else {
      out.body = result.message();
    }
    return out;
  }
  const auto& res = parser.get();
  fill_response(res, out);
  return out;
}

HttpResponse http_get(int port, const std::string& target, std::chrono::milliseconds timeout) {
  return http_request(port, "GET", target, {}, {}, timeout);
}

}  // namespace ioc_edge::test

namespace ioc_edge::test {

struct HttpConnection::Impl {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  bool open = false;
  int port = 0;
  std::string address;
};

HttpConnection::HttpConnection(int port, std::string address) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->address = std::move(address);
}

HttpConnection::~HttpConnection() = default;

HttpResponse HttpConnection::request(const std::string& method, const std::string& target, const std::string& body,
                                     const std::map<std::string, std::string>& headers,
                                     std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) throw std::invalid_argument("HttpConnection: method " + method);
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, im.address + ":" + std::to_string(im.port));
  req.set(http::field::user_agent, "ioc-edge-tests");
  req.keep_alive(true);
  for (const auto& [name, value] : headers) req.set(name, value);
  if (!body.empty() || (verb != http::verb::get && verb != http::verb::head)) {
    req.body() = body;
    req.prepare_payload();
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  boost::system::error_code result;
  bool done = false;
  im.stream.expires_after(timeout);
  auto exchange = [&] {
    http::async_write(im.stream, req, [&](const boost::system::error_code& wec, std::size_t) {
      if (wec) {
        result = wec;
        return;
      }
      http::async_read(im.stream, im.buffer, parser, [&](const boost::system::error_code& rec, std::size_t) {
        result = rec;
        done = !rec;
      });
    });
  };
  if (!im.open) {
    ++connects_;
    im.buffer.clear();
    const asio::ip::tcp::endpoint peer(asio::ip::make_address(im.address), static_cast<unsigned short>(im.port));
    im.stream.async_connect(peer, [&](const boost::system::error_code& ec) {
      if (ec) {
        result = ec;
        return;
      }
      im.open = true;
      exchange();
    });
  } else {
    exchange();
  }
  im.io.restart();
  im.io.run();
  HttpResponse out;
  if (!done) {
    out.body = result == beast::error::timeout ? "no response within " + std::to_string(timeout.count()) + " ms"
                                               : result.message();
    im.stream.close();
    im.open = false;
    return out;
  }
  const auto& res = parser.get();
  fill_response(res, out);
  if (!res.keep_alive()) {
    im.stream.close();
    im.open = false;
  }
  return out;
}

}  // namespace ioc_edge::test
