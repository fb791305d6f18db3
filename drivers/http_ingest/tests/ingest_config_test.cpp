// The http-ingest section's keys and every class of mistake, with line and column.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "drivers/builtin.h"
#include "drivers/http_ingest/ingest_config.h"
#include "settings/settings.h"
#include "support/support.h"

using namespace ioc_edge;

namespace {

const std::string kHead = "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n";  // 5 lines

struct Files {
  test::TempDir dir;
  std::string token(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const auto path = dir.file(name);
    test::write_file(path, text);
    ::chmod(path.c_str(), mode);
    return path;
  }
};

LoadResult load(const std::string& source) { return load_settings_text(kHead + source, "i.toml", builtin_drivers()); }

// name, type, listen on lines 6..9, then `more` from line 10.
std::string source(const std::string& name, const std::string& listen, const std::string& more) {
  return "[[source]]\nname = \"" + name + "\"\ntype = \"http-ingest\"\nlisten = \"" + listen + "\"\n" + more;
}

std::string client(const std::string& name, const std::string& token_file, const std::string& sources) {
  return "  [[source.client]]\n  name = \"" + name + "\"\n  token_file = \"" + token_file + "\"\n  sources = " +
         sources + "\n";
}

}  // namespace

TEST_CASE("an http-ingest source with two clients: keys, defaults and token digests", "[http-ingest][config]") {
  Files f;
  const auto a = f.token("a", "0123456789abcdef0123456789abcdef\n");
  const auto b = f.token("b", "fedcba9876543210fedcba9876543210");
  const auto res = load(source("mot-cua", "0.0.0.0:8780", "max_body = \"1MiB\"\n" +
                                                            client("phan-mem-mot-cua", a, "[\"mot-cua\", \"mot-cua-*\"]") +
                                                            client("cong-dich-vu-cong", b, "[\"mot-cua-dvc\"]")));
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& c = static_cast<const http_ingest::Config&>(*res.settings->sources.at(0).config);
  CHECK(c.host == "0.0.0.0");
  CHECK(c.port == 8780);
  CHECK(c.max_body == 1u << 20);
  CHECK(c.request_timeout == std::chrono::seconds(30));
  CHECK(c.idempotency_window == std::chrono::hours(24));
  REQUIRE(c.clients.size() == 2);
  CHECK(c.clients[0].name == "phan-mem-mot-cua");
  CHECK(c.clients[0].sources == std::vector<std::string>{"mot-cua", "mot-cua-*"});
  CHECK(c.clients[0].token_digest != c.clients[1].token_digest);
  CHECK(c.clients[0].token_digest != std::array<unsigned char, 32>{});
}

TEST_CASE("http-ingest mistakes are reported with line and column, tokens never quoted", "[http-ingest][config]") {
  Files f;
  const auto good = f.token("good", "0123456789abcdef0123456789abcdef");
  const auto same = f.token("same", "0123456789abcdef0123456789abcdef");
  const auto shrt = f.token("short", "secret-123");
  const auto open = f.token("open", "0123456789abcdef0123456789abcdeX", 0644);
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {source("a", "8780", client("c", good, "[\"a\"]")), "i.toml:9:10: source \"a\": listen: \"8780\" is not ADDRESS:PORT"},
      {source("a", "0.0.0.0:70000", client("c", good, "[\"a\"]")), "i.toml:9:10: source \"a\": listen: port must be 1..65535"},
      {source("a", "0.0.0.0:8780", ""), "i.toml:6:1: source \"a\": no [[source.client]]"},
      {source("a", "0.0.0.0:8780", client("c", shrt, "[\"a\"]")), "must hold one token of 16-4096 printable characters"},
      {source("a", "0.0.0.0:8780", client("c", open, "[\"a\"]")), "is readable by every user of this machine"},
      {source("a", "0.0.0.0:8780", client("c", f.dir.file("none"), "[\"a\"]")), "token_file: cannot read"},
      {source("a", "0.0.0.0:8780", client("c", good, "[\"a\"]") + client("d", same, "[\"a\"]")),
       "has the same token as client \"c\""},
      {source("a", "0.0.0.0:8780", client("c", good, "[\"a\"]") + client("c", same, "[\"a\"]")), "is named twice"},
      {source("a", "0.0.0.0:8780", client("c", good, "[\"bad name\"]")), "is not a source name or a prefix ending in '*'"},
      {source("a", "0.0.0.0:8780", client("c", good, "[]")), "must list at least one source name"},
      {source("a", "0.0.0.0:8780", "  [[source.client]]\n  name = \"c\"\n  token_file = \"" + good + "\"\n"),
       "missing required key 'sources'"},
      {source("a", "0.0.0.0:8780", client("c", good, "[\"a\"]") + "  tokn = 1\n"), "unknown key 'tokn'"},
      {source("a", "0.0.0.0:8780", "cert_file = \"" + good + "\"\n" + client("c", good, "[\"a\"]")),
       "cert_file and key_file go together"},
      {source("a", "0.0.0.0:8780", "max_body = \"512MiB\"\n" + client("c", good, "[\"a\"]")), "must be at most 256MiB"},
      {source("a", "0.0.0.0:8780", client("c", good, "[\"a\"]")) + source("b", "127.0.0.1:8780", client("d", same, "[\"b\"]")),
       "port 8780 is already the listen port of source \"a\""},
  };
  for (const auto& c : cases) {
    const auto report = load(c.text).diagnostics.format();
    INFO(c.text << "\n--\n" << report);
    CHECK_THAT(report, Catch::Contains(c.expected));
    CHECK_THAT(report, !Catch::Contains("0123456789abcdef") && !Catch::Contains("secret-123"));
  }
}
