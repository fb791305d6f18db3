// What a reload changes (ops/reload.h): which sources start, stop or stay, when the link to the IOC
// reconnects, and which changes are refused because only a restart can apply them.
#include <catch2/catch.hpp>

#include "drivers/builtin.h"
#include "ops/reload.h"
#include "settings/settings.h"

using namespace ioc_edge;

namespace {

const char* kBase = R"([gateway]
site = "bk-cho-don"
province = "bac-kan"
data_dir = "/tmp/x"

[uplink]
url = "mqtt://127.0.0.1:1883"
keepalive = "30s"

[[source]]
name = "a"
type = "generator"
rate = 10
points = 2

[[source]]
name = "b"
type = "generator"
rate = 10
points = 2

[[source]]
name = "c"
type = "generator"
rate = 10
points = 2
)";

Settings load(const std::string& text) {
  auto res = load_settings_text(text, "f.toml", builtin_drivers(), false);
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  return std::move(*res.settings);
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  return text.replace(pos, from.size(), to);
}

std::vector<std::string> names(const Settings& s, const std::vector<std::size_t>& idx) {
  std::vector<std::string> out;
  for (auto i : idx) out.push_back(s.sources[i].name);
  return out;
}

}  // namespace

TEST_CASE("reload plan: the same file changes nothing", "[reload]") {
  const auto running = load(kBase), next = load(kBase);
  const auto p = plan_reload(running, next, false);
  CHECK(p.nothing_to_do());
  CHECK(p.unchanged == 3);
}

TEST_CASE("reload plan: comments, blank lines and key order are not changes", "[reload]") {
  auto text = replace(kBase, "rate = 10\npoints = 2\n\n[[source]]\nname = \"b\"",
                      "# a comment\npoints = 2\n\nrate = 10\n\n[[source]]\nname = \"b\"");
  const auto p = plan_reload(load(kBase), load(text), false);
  CHECK(p.nothing_to_do());
}

TEST_CASE("reload plan: sources added, changed and removed; the uplink stays", "[reload]") {
  auto text = replace(kBase, "name = \"b\"\ntype = \"generator\"\nrate = 10", "name = \"b\"\ntype = \"generator\"\nrate = 20");
  text = replace(text, "name = \"c\"", "name = \"d\"");
  const auto running = load(kBase), next = load(text);
  const auto p = plan_reload(running, next, false);
  CHECK_FALSE(p.refused());
  CHECK(names(next, p.added) == std::vector<std::string>{"d"});
  CHECK(names(next, p.changed) == std::vector<std::string>{"b"});
  CHECK(p.removed == std::vector<std::string>{"c"});
  CHECK(p.unchanged == 1);
  CHECK(p.uplink_changes.empty());
  CHECK(p.summary(next) == "1 source added (d), 1 changed (b), 1 removed (c), 1 unchanged; the uplink stays connected");
}

TEST_CASE("reload plan: a priority or type change replaces the source", "[reload]") {
  const auto text = replace(kBase, "name = \"a\"\ntype = \"generator\"", "name = \"a\"\ntype = \"generator\"\npriority = \"high\"");
  const auto next = load(text);
  const auto p = plan_reload(load(kBase), next, false);
  CHECK(names(next, p.changed) == std::vector<std::string>{"a"});
}

TEST_CASE("reload plan: uplink keys, the topic prefix and renewed certificates reconnect", "[reload]") {
  const auto running = load(kBase);
  SECTION("a key") {
    const auto p = plan_reload(running, load(replace(kBase, "keepalive = \"30s\"", "keepalive = \"10s\"")), false);
    CHECK(p.uplink_changes == std::vector<std::string>{"[uplink] keepalive"});
    CHECK_FALSE(p.refused());
  }
  SECTION("the topic prefix") {
    const auto p = plan_reload(
        running, load(replace(kBase, "data_dir = \"/tmp/x\"", "data_dir = \"/tmp/x\"\ntopic_prefix = \"ioc/x/y\"")), false);
    CHECK(p.uplink_changes == std::vector<std::string>{"[gateway] topic_prefix"});
  }
  SECTION("the files' content") {
    const auto p = plan_reload(running, load(kBase), true);
    REQUIRE(p.uplink_changes.size() == 1);
    CHECK(p.uplink_changes[0] == "the content of a TLS or password file");
    CHECK_FALSE(p.nothing_to_do());
  }
}

TEST_CASE("reload plan: what names the buffer or the status API needs a restart", "[reload]") {
  const auto running = load(kBase);
  const auto refused = [&](const std::string& from, const std::string& to) {
    return plan_reload(running, load(replace(kBase, from, to)), false).restart_needed;
  };
  CHECK(refused("site = \"bk-cho-don\"", "site = \"bk-ba-be\"") == std::vector<std::string>{"[gateway] site"});
  CHECK(refused("data_dir = \"/tmp/x\"", "data_dir = \"/tmp/y\"") == std::vector<std::string>{"[gateway] data_dir"});
  CHECK(refused("data_dir = \"/tmp/x\"", "data_dir = \"/tmp/x\"\nunit_code = \"01843\"") ==
        std::vector<std::string>{"[gateway] unit_code"});
  CHECK(refused("keepalive = \"30s\"", "keepalive = \"30s\"\nbatch_max_readings = 100") ==
        std::vector<std::string>{"[uplink] batch_max_readings"});
  CHECK(refused("[uplink]", "[buffer]\nmax_size = \"100MiB\"\n\n[uplink]") == std::vector<std::string>{"[buffer] max_size"});
  CHECK(refused("[uplink]", "[status]\nlisten = \"127.0.0.1:9999\"\n\n[uplink]") ==
        std::vector<std::string>{"[status] listen"});
  CHECK(plan_reload(running, load(replace(kBase, "site = \"bk-cho-don\"", "site = \"bk-ba-be\"")), false).refused());
}

TEST_CASE("reload plan: the log level is applied without touching anything else", "[reload]") {
  const auto p = plan_reload(load(kBase), load(replace(kBase, "data_dir = \"/tmp/x\"", "data_dir = \"/tmp/x\"\nlog_level = \"debug\"")),
                             false);
  CHECK(p.log_level_changed);
  CHECK(p.uplink_changes.empty());
  CHECK(p.unchanged == 3);
  CHECK_FALSE(p.nothing_to_do());
}
