// The spool section's keys and their mistakes, with line and column.
#include <catch2/catch.hpp>

#include "drivers/builtin.h"
#include "drivers/spool/spool_config.h"
#include "settings/settings.h"

using namespace ioc_edge;

namespace {
const std::string kHead = "[gateway]\nsite = \"s\"\nprovince = \"p\"\n[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n";  // 5 lines

LoadResult load(const std::string& source) { return load_settings_text(kHead + source, "s.toml", builtin_drivers()); }

// name, type, dir on lines 6..9, then `more` from line 10.
std::string section(const std::string& more, const std::string& dir = "/var/spool/ioc-edge/chi-tieu") {
  return "[[source]]\nname = \"chi-tieu\"\ntype = \"spool\"\ndir = \"" + dir + "\"\n" + more;
}

const spool::Config& config(const LoadResult& res) { return static_cast<const spool::Config&>(*res.settings->sources.at(0).config); }
}  // namespace

TEST_CASE("spool: the issue's example and the defaults", "[spool][config]") {
  const auto res = load(section("format = \"csv\"\nts_column = \"Ngày\"\nts_format = \"%d/%m/%Y\"\n"
                              "point_column = \"Chỉ tiêu\"\nvalue_column = \"Giá trị\"\nunit_column = \"Đơn vị\"\n"));
  INFO(res.diagnostics.format());
  REQUIRE(res.settings);
  const auto& c = config(res);
  CHECK(c.dir == "/var/spool/ioc-edge/chi-tieu");
  CHECK(c.format == spool::Format::Csv);
  CHECK(c.delimiter == 0);
  CHECK(c.decimal == spool::Decimal::Auto);
  CHECK(c.encoding.empty());
  CHECK(c.ts_format == spool::TsFormat::Pattern);
  CHECK(c.ts_pattern == "%d/%m/%Y");
  CHECK(c.offset_minutes == 420);
  CHECK(c.point_column == "Chỉ tiêu");
  CHECK(c.unit_column == "Đơn vị");
  CHECK(c.batch_max_readings == 5000);
  CHECK(c.settle_time == std::chrono::seconds(2));

  const auto wide = load(section("delimiter = \"tab\"\ndecimal = \".\"\nencoding = \"windows-1258\"\ntimezone = \"+07:00\"\nts_column = \"t\"\n"));
  INFO(wide.diagnostics.format());
  REQUIRE(wide.settings);
  CHECK(config(wide).delimiter == '\t');
  CHECK(config(wide).decimal == spool::Decimal::Dot);
  CHECK(config(wide).encoding == "windows-1258");
  CHECK(config(wide).ts_format == spool::TsFormat::Rfc3339);
  CHECK(config(wide).point_column.empty());
}

TEST_CASE("spool: mistakes name file, line and column", "[spool][config]") {
  CHECK(load(section("", "spool/chi-tieu")).diagnostics.format() ==
        "s.toml:9:7: source \"chi-tieu\": dir: \"spool/chi-tieu\" must be an absolute path such as "
        "\"/var/spool/ioc-edge/chi-tieu\"\n");
  CHECK(load(section("point_column = \"A\"\n")).diagnostics.format() ==
        "s.toml:6:1: source \"chi-tieu\": point_column and value_column go together (the long layout: one reading per "
        "row); without both, every column but ts_column is a point (the wide layout)\n");
  CHECK(load(section("ts_format = \"%d/%m/%Y\"\n")).diagnostics.format() ==
        "s.toml:10:13: source \"chi-tieu\": ts_format: applies only with ts_column (without it, readings take the time "
        "of the file's import)\n");
  CHECK(load(section("ts_column = \"t\"\nts_format = \"%d/%q\"\n")).diagnostics.format() ==
        "s.toml:11:13: source \"chi-tieu\": ts_format: \"%d/%q\": %q is not supported (use %Y %y %m %d %e %H %I %p %M "
        "%S %j %b %z %%)\n");
  CHECK(load(section("ts_column = \"t\"\ntimezone = \"Europe/Paris\"\n")).diagnostics.format() ==
        "s.toml:11:12: source \"chi-tieu\": timezone: \"Europe/Paris\" is not \"Asia/Ho_Chi_Minh\", \"UTC\" or an offset "
        "such as \"+07:00\" (other named zones are not supported)\n");
  CHECK(load(section("encoding = \"klingon\"\n")).diagnostics.format().find("s.toml:10:12: source \"chi-tieu\": encoding: "
                                                                       "\"klingon\" is not an encoding") == 0);
  CHECK(load(section("delimiter = \"|\"\n")).diagnostics.format().find("s.toml:10:13: source \"chi-tieu\": delimiter: \"|\" is not one of") == 0);
  CHECK(load(section("delimiter = \",\"\ndecimal = \",\"\n")).diagnostics.format() ==
        "s.toml:11:11: source \"chi-tieu\": decimal: \",\" cannot be the decimal mark when it is also the delimiter\n");
  CHECK(load(section("ts_column = \"A\"\npoint_column = \"A\"\nvalue_column = \"B\"\n")).diagnostics.format() ==
        "s.toml:11:16: source \"chi-tieu\": point_column: \"A\" is also ts_column; each role needs its own column\n");
  CHECK(load(section("format = \"json\"\ndecimal = \",\"\n")).diagnostics.format() ==
        "s.toml:11:11: source \"chi-tieu\": decimal: applies only to format = \"csv\"\n");
  CHECK(load(section("settle_tme = \"2s\"\n")).diagnostics.format() ==
        "s.toml:10:1: source \"chi-tieu\": unknown key 'settle_tme' (did you mean 'settle_time'?)\n");
  CHECK(load("[[source]]\nname = \"x\"\ntype = \"spool\"\n").diagnostics.format() ==
        "s.toml:6:1: source \"x\": missing required key 'dir'\n");
}

TEST_CASE("spool: time zones", "[spool][config]") {
  CHECK(spool::parse_timezone("Asia/Ho_Chi_Minh") == 420);
  CHECK(spool::parse_timezone("Asia/Saigon") == 420);
  CHECK(spool::parse_timezone("UTC") == 0);
  CHECK(spool::parse_timezone("+07:00") == 420);
  CHECK(spool::parse_timezone("+0700") == 420);
  CHECK(spool::parse_timezone("-03:30") == -210);
  CHECK_FALSE(spool::parse_timezone("+7"));
  CHECK_FALSE(spool::parse_timezone("+15:00"));
  CHECK_FALSE(spool::parse_timezone("Asia/Bangkok"));
}
