#include "drivers/spool/spool_config.h"

#include <iconv.h>

#include <optional>

#include "drivers/shared/json_mapping.h"
#include "settings/table_reader.h"

namespace ioc_edge::spool {

namespace {

constexpr std::size_t kMaxColumnName = 256;


// A column key: a header as it stands in the file's first line (surrounding spaces aside).
void column_key(TableReader& r, std::string_view key, std::string& out) {
  auto v = r.string(key);
  if (!v) return;
  std::string_view s = *v;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.empty() || s.size() > kMaxColumnName) {
    r.error_at_key(key, "must be a column header of 1 to " + std::to_string(kMaxColumnName) + " bytes");
    return;
  }
  out = std::string(s);
}

void parse_csv_keys(TableReader& r, Config& c) {
  const bool csv = c.format == Format::Csv;
  for (const auto key : {"delimiter", "decimal"})
    if (!csv && r.raw().get(key)) r.error_at_key(key, "applies only to format = \"csv\"");
  const auto d = r.enum_or("delimiter", "auto", {"auto", ",", ";", "tab", "\t"});
  c.delimiter = d == "auto" ? 0 : d == "tab" || d == "\t" ? '\t' : d[0];
  const auto dec = r.enum_or("decimal", "auto", {"auto", ".", ","});
  c.decimal = dec == "." ? Decimal::Dot : dec == "," ? Decimal::Comma : Decimal::Auto;
  if (c.delimiter == ',' && c.decimal == Decimal::Comma)
    r.error_at_key("decimal", "\",\" cannot be the decimal mark when it is also the delimiter");

  if (auto e = r.string("encoding")) {
    std::string lower;
    for (const char ch : *e) lower += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    if (lower == "utf-8" || lower == "utf8") return;
    const iconv_t cd = iconv_open("UTF-8", e->c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) {
      r.error_at_key("encoding", in_quotes(*e) + " is not an encoding this system can convert (e.g. \"utf-8\", "
                                              "\"windows-1258\", \"utf-16\"; `iconv -l` lists them)");
      return;
    }
    iconv_close(cd);
    c.encoding = *e;
  }
}

void parse_time(TableReader& r, Config& c) {
  column_key(r, "ts_column", c.ts_column);
  const bool with_column = r.raw().get("ts_column") != nullptr;
  for (const auto key : {"ts_format", "timezone"}) {
    if (r.raw().get(key) && !with_column) {
      r.error_at_key(key, "applies only with ts_column (without it, readings take the time of the file's import)");
      r.known(key);
    }
  }
  if (!with_column) return;
  if (auto f = r.string("ts_format")) {
    if (*f == "rfc3339") {
      c.ts_format = TsFormat::Rfc3339;
    } else if (f->find('%') != std::string::npos) {
      if (const auto problem = pattern_problem(*f); !problem.empty()) {
        r.error_at_key("ts_format", in_quotes(*f) + ": " + problem);
      } else {
        c.ts_format = TsFormat::Pattern;
        c.ts_pattern = *f;
      }
    } else {
      r.error_at_key("ts_format", in_quotes(*f) + " is not \"rfc3339\" or a strptime pattern such as \"%d/%m/%Y\" or "
                                               "\"%d/%m/%Y %H:%M\"");
    }
  }
  if (auto z = r.string("timezone")) {
    if (const auto off = parse_timezone(*z))
      c.offset_minutes = *off;
    else
      r.error_at_key("timezone", in_quotes(*z) + " is not \"Asia/Ho_Chi_Minh\", \"UTC\" or an offset such as \"+07:00\" "
                                              "(other named zones are not supported)");
  }
}

void parse_layout(TableReader& r, Config& c) {
  column_key(r, "point_column", c.point_column);
  column_key(r, "value_column", c.value_column);
  column_key(r, "unit_column", c.unit_column);
  const bool point = r.raw().get("point_column") != nullptr, value = r.raw().get("value_column") != nullptr;
  if (point != value)
    r.error_here("point_column and value_column go together (the long layout: one reading per row); without both, "
                 "every column but ts_column is a point (the wide layout)");
  if (r.raw().get("unit_column") && !point)
    r.error_at_key("unit_column", "applies only to the long layout (with point_column and value_column)");
  std::string_view names[] = {c.ts_column, c.point_column, c.value_column, c.unit_column};
  const char* keys[] = {"ts_column", "point_column", "value_column", "unit_column"};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < i; ++j)
      if (!names[i].empty() && names[i] == names[j])
        r.error_at_key(keys[i], in_quotes(names[i]) + " is also " + keys[j] + "; each role needs its own column");
}

}  // namespace

std::optional<int> parse_timezone(std::string_view z) {
  if (z == "Asia/Ho_Chi_Minh" || z == "Asia/Saigon") return 7 * 60;
  if (z == "UTC" || z == "Z") return 0;
  return parse_utc_offset(z);  // drivers/shared: the rule every driver reads offsets by
}

std::string pattern_problem(std::string_view p) {
  constexpr std::string_view kConversions = "bBdeHIjmMpSyYz%";
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '%') continue;
    if (i + 1 >= p.size()) return "ends with a lone '%'";
    if (kConversions.find(p[i + 1]) == std::string_view::npos)
      return "%" + std::string(1, p[i + 1]) + " is not supported (use %Y %y %m %d %e %H %I %p %M %S %j %b %z %%)";
    ++i;
  }
  return {};
}

std::unique_ptr<DriverConfig> parse_config(TableReader& r) {
  auto c = std::make_unique<Config>();
  if (auto dir = r.string("dir", true)) {
    if (dir->empty() || dir->front() != '/')
      r.error_at_key("dir", in_quotes(*dir) + " must be an absolute path such as \"/var/spool/ioc-edge/chi-tieu\"");
    else
      c->dir = *dir;
    while (c->dir.size() > 1 && c->dir.back() == '/') c->dir.pop_back();
  }
  c->format = r.enum_or("format", "csv", {"csv", "json"}) == "json" ? Format::Json : Format::Csv;
  parse_csv_keys(r, *c);
  parse_time(r, *c);
  parse_layout(r, *c);
  c->batch_max_readings = static_cast<std::size_t>(r.integer_or("batch_max_readings", 5000, 1, 100000));
  c->settle_time = r.duration_or("settle_time", c->settle_time, std::chrono::milliseconds(100));
  if (c->settle_time > std::chrono::hours(1)) r.error_at_key("settle_time", "must be at most 1h");
  c->retry_min = r.duration_or("retry_min", c->retry_min, std::chrono::milliseconds(10));
  c->retry_max = r.duration_or("retry_max", c->retry_max, std::chrono::milliseconds(10));
  if (c->retry_max < c->retry_min) r.error_at_key("retry_max", "must not be less than retry_min");
  return c;
}

}  // namespace ioc_edge::spool
