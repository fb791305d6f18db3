// The http-poll section's keys and every class of mistake, with line and column.
#include <catch2/catch.hpp>

#include "drivers/builtin.h"
#include "drivers/http_poll/http_poll_config.h"
#include "settings/settings.h"
#include "support/support.h"

using namespace ioc_edge;

namespace {

const std::string kHead = "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n";  // 5 lines

LoadResult load(const std::string& source) { return load_settings_text(kHead + source, "h.toml", builtin_drivers()); }

std::string report(const std::string& source) { return load(source).diagnostics.format(); }

const http_poll::Config& config(const LoadResult& res) {
  return static_cast<const http_poll::Config&>(*res.settings->sources.at(0).config);
}

// name, type, url on lines 6..9 (with kHead), then `more` from line 10.
std::string source(const std::string& url, const std::string& more) {
  return "[[source]]\nname = \"yte\"\ntype = \"http-poll\"\nurl = \"" + url + "\"\n" + more;
}

}  // namespace

TEST_CASE("http-poll config: a minimal source takes the defaults", "[http-poll][config]") {
  const auto res = load(source("http://192.168.1.20:8080/api/v1/summary?district=cho-don", "point = \"so-ca\"\n"));
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& c = config(res);
  CHECK_FALSE(c.tls);
  CHECK(c.host == "192.168.1.20");
  CHECK(c.port == 8080);
  CHECK(c.target == "/api/v1/summary?district=cho-don");
  CHECK(c.every == std::chrono::seconds(60));
  CHECK(c.timeout == std::chrono::seconds(10));
  CHECK(c.retry_max == std::chrono::minutes(5));
  CHECK(c.max_body == 16u << 20);
  CHECK(c.auth.kind == http_poll::AuthKind::None);
  CHECK(c.headers.empty());
  CHECK_FALSE(c.mapping.records);
  CHECK_FALSE(c.mapping.value_pointer);
  CHECK(c.mapping.point == "so-ca");
  CHECK(c.mapping.ts.pointer.empty());
}

TEST_CASE("http-poll config: every key read", "[http-poll][config]") {
  test::TempDir dir;
  test::write_file(dir.file("token"), "abc\n");
  test::write_file(dir.file("ca.pem"), "x");
  const auto res = load(source("https://his.example.gov.vn/bao-cao", R"(every = "5m"
timeout = "30s"
retry_max = "1h"
ca_file = ")" + dir.file("ca.pem") + R"("
verify_hostname = false
max_body = "1MiB"
records = "/data/items"
point_pointer = "/chi_tieu"
value_pointer = "/gia_tri"
ts_pointer = "/ngay"
ts_format = "%d/%m/%Y"
timezone = "+07:00"
unit_pointer = "/don_vi"
[source.headers]
X-Api-Version = "2"
Accept-Language = "vi"
[source.auth]
type = "bearer"
token_file = ")" + dir.file("token") + "\"\n"));
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& c = config(res);
  CHECK(c.tls);
  CHECK(c.port == 443);
  CHECK(c.target == "/bao-cao");
  CHECK(c.every == std::chrono::minutes(5));
  CHECK(c.timeout == std::chrono::seconds(30));
  CHECK(c.retry_max == std::chrono::hours(1));
  CHECK(c.ca_file == dir.file("ca.pem"));
  CHECK_FALSE(c.verify_hostname);
  CHECK(c.max_body == 1u << 20);
  CHECK(c.mapping.records == "/data/items");
  CHECK(c.mapping.point_pointer == "/chi_tieu");
  CHECK(c.mapping.value_pointer == "/gia_tri");
  CHECK(c.mapping.ts.pointer == "/ngay");
  CHECK(c.mapping.ts.format == TsFormat::Pattern);
  CHECK(c.mapping.ts.offset_minutes == 420);
  CHECK(c.mapping.unit_pointer == "/don_vi");
  REQUIRE(c.headers.size() == 2);
  CHECK(c.auth.kind == http_poll::AuthKind::Bearer);
  CHECK(c.auth.token_file == dir.file("token"));
}

TEST_CASE("http-poll config: basic auth and a short every shortens the default timeout", "[http-poll][config]") {
  test::TempDir dir;
  test::write_file(dir.file("pw"), "secret");
  const auto res = load(source("http://[::1]:8080", "every = \"2s\"\npoint = \"v\"\nauth = { type = \"basic\", user = \"ioc\", "
                                                    "password_file = \"" + dir.file("pw") + "\" }\n"));
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& c = config(res);
  CHECK(c.host == "::1");
  CHECK(c.target == "/");
  CHECK(c.timeout == std::chrono::seconds(2));
  CHECK(c.auth.kind == http_poll::AuthKind::Basic);
  CHECK(c.auth.user == "ioc");
}

TEST_CASE("http-poll config: bad urls, with line and column", "[http-poll][config]") {
  CHECK_THAT(report(source("ftp://h/x", "point = \"v\"\n")), Catch::Contains("h.toml:9:7: source \"yte\": url: \"ftp://h/x\" is not an HTTP URL"));
  CHECK_THAT(report(source("http://", "point = \"v\"\n")), Catch::Contains("h.toml:9:7: source \"yte\": url:"));
  CHECK_THAT(report(source("http://h:70000/", "point = \"v\"\n")), Catch::Contains("h.toml:9:7: source \"yte\": url: port must be 1..65535"));
  CHECK_THAT(report(source("http://user:pw@h/", "point = \"v\"\n")), Catch::Contains("give them in [source.auth]"));
  CHECK_THAT(report(source("http://h/a b", "point = \"v\"\n")), Catch::Contains("contains a space"));
  CHECK_THAT(report(source("http://h/a#top", "point = \"v\"\n")), Catch::Contains("has a fragment"));
  CHECK_THAT(report("[[source]]\nname = \"yte\"\ntype = \"http-poll\"\npoint = \"v\"\n"),
             Catch::Contains("missing required key 'url'"));
}

TEST_CASE("http-poll config: schedule mistakes", "[http-poll][config]") {
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nevery = \"10s\"\ntimeout = \"20s\"\n")),
             Catch::Contains("h.toml:12:11: source \"yte\": timeout: must not be longer than every"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nevery = \"10\"\n")), Catch::Contains("h.toml:11:9: source \"yte\": every: cannot read \"10\""));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nevery = \"10ms\"\n")), Catch::Contains("every: must be at least 100 ms"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nmax_body = \"1GiB\"\n")), Catch::Contains("h.toml:11:12: source \"yte\": max_body: must be at most 256MiB"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nmax_body = \"lots\"\n")), Catch::Contains("max_body:"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nretry_max = 60\n")),
             Catch::Contains("h.toml:11:13: source \"yte\": retry_max: expected a duration string"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\ntimeout = \"50ms\"\n")), Catch::Contains("timeout: must be at least 100 ms"));
}

TEST_CASE("http-poll config: headers", "[http-poll][config]") {
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nheaders = { Authorization = \"Bearer x\" }\n")),
             Catch::Contains("h.toml:11:29: source \"yte\": headers: \"Authorization\": give credentials in [source.auth]"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nheaders = { Host = \"x\" }\n")),
             Catch::Contains("headers: \"Host\": is set by the source itself"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nheaders = { If-None-Match = \"x\" }\n")),
             Catch::Contains("headers: \"If-None-Match\": is set by the source itself"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nheaders = { \"Bad Name\" = \"x\" }\n")),
             Catch::Contains("not a header name"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nheaders = { X-A = 1 }\n")), Catch::Contains("headers: \"X-A\": expected a string, got an integer"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nheaders = { X-A = \"a\\nb\" }\n")), Catch::Contains("printable ASCII without line breaks"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nheaders = { X-A = \"1\", x-a = \"2\" }\n")), Catch::Contains("is given twice"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nheaders = \"X-A: 1\"\n")), Catch::Contains("headers: expected a table"));
}

TEST_CASE("http-poll config: auth", "[http-poll][config]") {
  test::TempDir dir;
  test::write_file(dir.file("t"), "abc");
  const std::string t = dir.file("t");
  CHECK_THAT(report(source("http://h/", "point = \"v\"\n[source.auth]\ntype = \"digest\"\n")),
             Catch::Contains("h.toml:12:8: source \"yte\": auth: type: \"digest\" is not \"bearer\""));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\n[source.auth]\ntype = \"bearer\"\n")),
             Catch::Contains("source \"yte\": auth: missing required key 'token_file'"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\n[source.auth]\ntype = \"bearer\"\ntoken_file = \"" + dir.file("missing") + "\"\n")),
             Catch::Contains("h.toml:13:14: source \"yte\": auth: token_file: cannot read file"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\n[source.auth]\ntype = \"basic\"\npassword_file = \"" + t + "\"\n")),
             Catch::Contains("auth: missing required key 'user'"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\n[source.auth]\ntype = \"basic\"\nuser = \"a:b\"\npassword_file = \"" + t + "\"\n")),
             Catch::Contains("h.toml:13:8: source \"yte\": auth: user: \"a:b\" must be non-empty, without ':'"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\n[source.auth]\ntype = \"bearer\"\ntoken_file = \"" + t + "\"\nuser = \"u\"\n")),
             Catch::Contains("h.toml:14:8: source \"yte\": auth: user: applies only to type = \"basic\""));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\n[source.auth]\ntype = \"bearer\"\ntoken_file = \"" + t + "\"\ntoken = \"abc\"\n")),
             Catch::Contains("auth: unknown key 'token'"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\n[source.auth]\ntype = \"basic\"\nuser = \"u\"\npassword = \"pw\"\n")),
             Catch::Contains("auth: unknown key 'password'"));
}

TEST_CASE("http-poll config: TLS keys need https", "[http-poll][config]") {
  test::TempDir dir;
  test::write_file(dir.file("ca.pem"), "x");
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nca_file = \"" + dir.file("ca.pem") + "\"\n")),
             Catch::Contains("h.toml:11:11: source \"yte\": ca_file: applies only to https:// URLs"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nverify_hostname = false\n")),
             Catch::Contains("verify_hostname: applies only to https:// URLs"));
  CHECK_THAT(report(source("https://h/", "point = \"v\"\nverify_hostname = \"no\"\n")),
             Catch::Contains("h.toml:11:19: source \"yte\": verify_hostname: expected true or false, got a string"));
  CHECK_THAT(report(source("https://h/", "point = \"v\"\nca_file = \"" + dir.file("nope.pem") + "\"\n")),
             Catch::Contains("ca_file: cannot read file"));
}

TEST_CASE("http-poll config: mapping mistakes", "[http-poll][config]") {
  CHECK_THAT(report(source("http://h/", "")), Catch::Contains("h.toml:6:1: source \"yte\": missing point or point_pointer"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\npoint_pointer = \"/n\"\n")),
             Catch::Contains("h.toml:11:17: source \"yte\": point_pointer: give either point"));
  CHECK_THAT(report(source("http://h/", "point = \"/name\"\n")),
             Catch::Contains("h.toml:10:9: source \"yte\": point: \"/name\" is a point name; for a JSON pointer"));
  CHECK_THAT(report(source("http://h/", "point = \"\"\n")), Catch::Contains("point: must be 1 to 256 bytes"));
  CHECK_THAT(report(source("http://h/", "point_pointer = \"name\"\n")),
             Catch::Contains("h.toml:10:17: source \"yte\": point_pointer: \"name\": a JSON pointer is empty or starts with '/'"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nrecords = \"data\"\n")), Catch::Contains("records: \"data\": a JSON pointer"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nvalue_pointer = \"/a~2\"\n")), Catch::Contains("value_pointer: \"/a~2\": '~' must be followed by 0 or 1"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nts_format = \"unix\"\n")),
             Catch::Contains("h.toml:11:13: source \"yte\": ts_format: applies only with ts_pointer"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nts_pointer = \"/t\"\nts_format = \"epoch\"\n")),
             Catch::Contains("ts_format: \"epoch\" is not one of \"auto\", \"rfc3339\", \"unix\", \"unix_ms\""));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nts_pointer = \"/t\"\ntimezone = \"Asia/Ho_Chi_Minh\"\n")),
             Catch::Contains("timezone: \"Asia/Ho_Chi_Minh\" is not \"UTC\""));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nts_pointer = \"\"\n")), Catch::Contains("ts_pointer: must point into the record"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nunit = \"mm\"\nunit_pointer = \"/u\"\n")),
             Catch::Contains("unit_pointer: give either unit"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nunit_pointer = \"u\"\n")),
             Catch::Contains("h.toml:11:16: source \"yte\": unit_pointer: \"u\": a JSON pointer"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nts_pointer = 5\n")),
             Catch::Contains("h.toml:11:14: source \"yte\": ts_pointer: expected a string, got an integer"));
  CHECK_THAT(report(source("http://h/", "point = \"v\"\nrecord = \"/data\"\n")),
             Catch::Contains("h.toml:11:1: source \"yte\": unknown key 'record'"));
}
