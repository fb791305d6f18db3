// The spool source's file reading: the committed sample files (drivers/spool/tests/samples/), each
// with an Excel quirk, read into readings; bad files name the line, the column and the problem.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "drivers/spool/spool_parse.h"
#include "support/support.h"

namespace ioc_edge::spool {
namespace {

using test::repo_root;

std::string sample(const std::string& name) { return repo_root() + "/drivers/spool/tests/samples/" + name; }

constexpr std::int64_t kImport = 1'796'000'000'000;

struct Read {
  std::vector<Reading> readings;
  std::int64_t rows = 0;
  bool ok = false;
  FileError error;
  char delimiter = 0;
};

Read read_fd(const Config& cfg, int fd) {
  Read out;
  FileReader reader(cfg, fd, kImport);
  for (int guard = 0; guard < 1'000'000; ++guard) {
    const auto step = reader.next(&out.readings);
    if (step == FileReader::Step::Row) continue;
    out.ok = step == FileReader::Step::End;
    break;
  }
  out.rows = reader.rows();
  out.error = reader.error();
  out.delimiter = reader.delimiter();
  return out;
}

Read read_path(const Config& cfg, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  auto r = read_fd(cfg, fd);
  ::close(fd);
  return r;
}

Read read_text(const Config& cfg, const std::string& text) {
  test::TempDir tmp;
  test::write_file(tmp.file("f"), text);
  return read_path(cfg, tmp.file("f"));
}

Config long_layout() {
  Config c;
  c.dir = "/tmp";
  c.ts_column = "Ngày";
  c.ts_format = TsFormat::Pattern;
  c.ts_pattern = "%d/%m/%Y";
  c.point_column = "Chỉ tiêu";
  c.value_column = "Giá trị";
  return c;
}

std::int64_t vn_midnight(int y, int m, int d) { return *wall_time_ms(y, m, d, 0, 0, 0, 0, 7 * 60, false); }

}  // namespace

TEST_CASE("numbers as exports write them", "[spool]") {
  CHECK(parse_number("1234", ',') == Value{std::int64_t{1234}});
  CHECK(parse_number(" -12,75 ", ',') == Value{-12.75});
  CHECK(parse_number("1.234,5", ',') == Value{1234.5});
  CHECK(parse_number("1.234.567", ',') == Value{std::int64_t{1234567}});
  CHECK(parse_number("1,234.5", '.') == Value{1234.5});
  CHECK(parse_number("1.5e3", '.') == Value{1500.0});
  CHECK(parse_number("+3", '.') == Value{std::int64_t{3}});
  CHECK_FALSE(parse_number("1.23,5", ','));    // a group of two digits is no grouping
  CHECK_FALSE(parse_number("12,5%", ','));
  CHECK_FALSE(parse_number("", ','));
  CHECK_FALSE(parse_number("1,", ','));
  CHECK_FALSE(parse_number(",5", ','));
  CHECK_FALSE(parse_number("abc", '.'));
  CHECK_FALSE(parse_number("1e999", '.'));     // not finite
  CHECK(parse_number("99999999999999999999", '.') == Value{1e20});  // beyond int64: a double
}

TEST_CASE("an Excel export: BOM, ';', decimal commas, dd/mm/yyyy, quotes with newlines, trailing columns, CRLF",
          "[spool]") {
  const auto r = read_path(long_layout(), sample("excel-bom-semicolon.csv"));
  INFO(r.error.text());
  REQUIRE(r.ok);
  CHECK(r.delimiter == ';');
  CHECK(r.rows == 5);  // the empty last row (";;;;;") is no row
  REQUIRE(r.readings.size() == 5);
  CHECK(r.readings[0].point == "Tổng sản phẩm (GRDP)");
  CHECK(r.readings[0].value == Value{1234.5});
  CHECK(r.readings[0].unit.empty());  // no unit_column configured
  CHECK(r.readings[0].ts_ms == vn_midnight(2026, 11, 1));
  CHECK(r.readings[1].value == Value{-12.75});
  CHECK(r.readings[2].point == "Ghi chú \"quý IV\"\nđã rà soát");
  CHECK(r.readings[2].value == Value{std::string("chưa có số liệu")});
  CHECK(r.readings[3].value == Value{std::int64_t{312000}});
  CHECK(r.readings[3].ts_ms == vn_midnight(2026, 11, 2));
  // Long layout: an empty value is a bad reading, not a missing one.
  CHECK(r.readings[4].point == "Tỷ lệ hộ nghèo");
  CHECK(r.readings[4].quality == Quality::Bad);
  CHECK(std::holds_alternative<std::monostate>(r.readings[4].value));

  auto with_unit = long_layout();
  with_unit.unit_column = "Đơn vị";
  const auto u = read_path(with_unit, sample("excel-bom-semicolon.csv"));
  REQUIRE(u.ok);
  CHECK(u.readings[0].unit == "tỷ đồng");
  CHECK(u.readings[4].unit == "%");
}

TEST_CASE("wide layout: every column a point, empty cells skipped, RFC 3339 times", "[spool]") {
  Config c;
  c.ts_column = "Ngày";
  const auto r = read_path(c, sample("wide-comma.csv"));
  INFO(r.error.text());
  REQUIRE(r.ok);
  CHECK(r.delimiter == ',');
  CHECK(r.rows == 2);
  REQUIRE(r.readings.size() == 4);
  CHECK(r.readings[0].point == "Nhiệt độ (°C)");
  CHECK(r.readings[0].value == Value{23.5});
  CHECK(r.readings[0].ts_ms == *parse_rfc3339_ms("2026-11-30T01:00:00Z"));
  CHECK(r.readings[1].point == "Độ ẩm");
  CHECK(r.readings[1].value == Value{std::int64_t{61}});
  CHECK(r.readings[2].value == Value{std::int64_t{24}});
  CHECK(r.readings[3].point == "Ghi chú");
  CHECK(r.readings[3].value == Value{std::string("mưa, nhẹ")});

  SECTION("without ts_column every reading takes the time of import") {
    Config w;
    const auto all = read_path(w, sample("wide-comma.csv"));
    REQUIRE(all.ok);
    REQUIRE(all.readings.size() == 6);  // the time column is a point too
    for (const auto& rd : all.readings) CHECK(rd.ts_ms == kImport);
    CHECK(all.readings[0].point == "Ngày");
  }
}

TEST_CASE("UTF-16 by its BOM, tab-delimited (Excel's \"Unicode text\")", "[spool]") {
  const auto r = read_path(long_layout(), sample("utf16le-tab.csv"));
  INFO(r.error.text());
  REQUIRE(r.ok);
  CHECK(r.delimiter == '\t');
  REQUIRE(r.readings.size() == 2);
  CHECK(r.readings[0].point == "Số hộ dân");
  CHECK(r.readings[1].value == Value{845.5});  // tab: decimal comma by default
}

TEST_CASE("Windows-1258 with encoding set; without it the file is refused at its line", "[spool]") {
  auto c = long_layout();
  c.encoding = "windows-1258";
  const auto r = read_path(c, sample("windows-1258.csv"));
  INFO(r.error.text());
  REQUIRE(r.ok);
  REQUIRE(r.readings.size() == 1);
  CHECK(r.readings[0].point == "Số trường học");  // precomposed, as typed in UTF-8
  CHECK(r.readings[0].value == Value{std::int64_t{12}});

  const auto bad = read_path(long_layout(), sample("windows-1258.csv"));
  CHECK_FALSE(bad.ok);
  CHECK(bad.error.kind == "encoding");
  CHECK(bad.error.line == 1);
}

TEST_CASE("an Excel sep= line sets the delimiter", "[spool]") {
  Config c = long_layout();
  const auto r = read_path(c, sample("sep-hint.csv"));
  INFO(r.error.text());
  REQUIRE(r.ok);
  REQUIRE(r.readings.size() == 1);
  CHECK(r.readings[0].point == "A");
  CHECK(r.readings[0].value == Value{1.5});
}

TEST_CASE("bad files name the line, the column and the problem", "[spool]") {
  SECTION("an impossible date") {
    const auto r = read_path(long_layout(), sample("bad-date.csv"));
    REQUIRE_FALSE(r.ok);
    CHECK(r.error.kind == "bad_time");
    CHECK(r.error.text() == "line 4, column 1 (\"Ngày\"): \"31/02/2026\" is not a time that exists (read with ts_format \"%d/%m/%Y\")");
  }
  SECTION("invalid UTF-8") {
    const auto r = read_path(long_layout(), sample("bad-utf8.csv"));
    REQUIRE_FALSE(r.ok);
    CHECK(r.error.kind == "encoding");
    CHECK(r.error.line == 3);
    CHECK(r.error.column == 2);
    CHECK(r.error.header == "Chỉ tiêu");
  }
  SECTION("a quote never closed") {
    const auto r = read_path(long_layout(), sample("unclosed-quote.csv"));
    REQUIRE_FALSE(r.ok);
    CHECK(r.error.kind == "malformed");
    CHECK(r.error.line == 3);
    CHECK(r.error.column == 2);
  }
  SECTION("a missing column lists the header's columns") {
    auto c = long_layout();
    c.value_column = "Giá tri";
    const auto r = read_path(c, sample("bad-date.csv"));
    REQUIRE_FALSE(r.ok);
    CHECK(r.error.kind == "missing_column");
    CHECK(r.error.text() == "line 1: no column \"Giá tri\" in the header (its columns: \"Ngày\", \"Chỉ tiêu\", "
                            "\"Giá trị\"; delimiter ';')");
  }
  SECTION("a value beyond the header") {
    const auto r = read_text(long_layout(), "Ngày;Chỉ tiêu;Giá trị\n01/11/2026;A;1;x\n");
    REQUIRE_FALSE(r.ok);
    CHECK(r.error.text() == "line 2, column 4: \"x\" stands in a column without a header");
  }
  SECTION("a two-digit year under %Y") {
    const auto r = read_text(long_layout(), "Ngày;Chỉ tiêu;Giá trị\n01/11/26;A;1\n");
    REQUIRE_FALSE(r.ok);
    CHECK(r.error.kind == "bad_time");
    CHECK(r.error.problem.find("year 26") != std::string::npos);
  }
  SECTION("text after a closing quote") {
    const auto r = read_text(long_layout(), "Ngày;Chỉ tiêu;Giá trị\n01/11/2026;\"A\"x;1\n");
    REQUIRE_FALSE(r.ok);
    CHECK(r.error.line == 2);
    CHECK(r.error.column == 2);
  }
  SECTION("duplicate headers") {
    const auto r = read_text(Config{}, "a,b,a\n1,2,3\n");
    REQUIRE_FALSE(r.ok);
    CHECK(r.error.text() == "line 1, column 3 (\"a\"): the same header as column 1; headers must be unique");
  }
  SECTION("no point in a long-layout row") {
    const auto r = read_text(long_layout(), "Ngày;Chỉ tiêu;Giá trị\n01/11/2026;;1\n");
    REQUIRE_FALSE(r.ok);
    CHECK(r.error.kind == "bad_point");
  }
}

TEST_CASE("records and quoting edge cases", "[spool]") {
  Config c;
  SECTION("a last line without a line end, lone CRs and blank lines") {
    const auto r = read_text(c, "a,b\r\n1,2\r\n\r\n3,4\r5,6");
    INFO(r.error.text());
    REQUIRE(r.ok);
    CHECK(r.rows == 3);
    REQUIRE(r.readings.size() == 6);
    CHECK(r.readings[5].value == Value{std::int64_t{6}});
  }
  SECTION("an empty file and a header alone are no rows") {
    CHECK(read_text(c, "").ok);
    CHECK(read_text(c, "").rows == 0);
    const auto h = read_text(c, "a,b\n");
    CHECK(h.ok);
    CHECK(h.rows == 0);
  }
  SECTION("records across read chunks") {
    std::string text = "p,q\n";
    for (int i = 0; i < 60000; ++i) text += std::to_string(i) + ",\"x\"\"" + std::to_string(i) + "\n\"\n";
    const auto r = read_text(c, text);
    INFO(r.error.text());
    REQUIRE(r.ok);
    REQUIRE(r.rows == 60000);
    CHECK(r.readings[2 * 59999].value == Value{std::int64_t{59999}});
    CHECK(r.readings[2 * 59999 + 1].value == Value{std::string("x\"59999\n")});
  }
}

TEST_CASE("JSON: {\"readings\": [...]} and arrays of records", "[spool]") {
  Config c;
  c.format = Format::Json;
  c.ts_column = "ts";
  c.point_column = "point";
  c.value_column = "value";
  c.unit_column = "unit";
  const auto r = read_path(c, sample("readings.json"));
  INFO(r.error.text());
  REQUIRE(r.ok);
  REQUIRE(r.readings.size() == 3);
  CHECK(r.readings[0].point == "muc_nuoc");
  CHECK(r.readings[0].value == Value{12.5});
  CHECK(r.readings[0].unit == "m");
  CHECK(r.readings[0].ts_ms == *parse_rfc3339_ms("2026-11-30T01:00:00Z"));
  CHECK(r.readings[1].value == Value{std::string("binh thuong")});
  CHECK(r.readings[2].value == Value{true});

  Config w;
  w.format = Format::Json;
  w.ts_column = "Ngày";
  w.ts_format = TsFormat::Pattern;
  w.ts_pattern = "%d/%m/%Y";
  const auto rec = read_path(w, sample("records.json"));
  INFO(rec.error.text());
  REQUIRE(rec.ok);
  CHECK(rec.rows == 2);
  REQUIRE(rec.readings.size() == 3);  // the null is skipped (wide layout)

  SECTION("bad JSON names its line and column") {
    const auto bad = read_text(c, "{\"readings\": [\n  {\"point\": \"a\", \"value\": 1,}\n]}\n");
    REQUIRE_FALSE(bad.ok);
    CHECK(bad.error.line == 2);
    CHECK(bad.error.kind == "malformed");
  }
  SECTION("a bad record names its index and key") {
    const auto bad = read_text(c, "[{\"point\":\"a\",\"value\":1,\"ts\":\"2026-11-30T08:00:00Z\"},{\"point\":\"b\",\"value\":1,\"ts\":\"hôm qua\"}]");
    REQUIRE_FALSE(bad.ok);
    CHECK(bad.error.text().rfind("record 2 (\"ts\"): \"hôm qua\" is not an RFC 3339 time", 0) == 0);
  }
}

TEST_CASE("the hash covers every byte read", "[spool]") {
  test::TempDir tmp;
  test::write_file(tmp.file("f"), "a,b\n1,2\n");
  const int fd = ::open(tmp.file("f").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  Config c;
  FileReader reader(c, fd, kImport, ctx);
  while (reader.next(nullptr) == FileReader::Step::Row) {
  }
  unsigned char md[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  ::close(fd);
  unsigned char want[32];
  const std::string text = "a,b\n1,2\n";
  EVP_Digest(text.data(), text.size(), want, &len, EVP_sha256(), nullptr);
  CHECK(std::memcmp(md, want, 32) == 0);
}

}  // namespace ioc_edge::spool
