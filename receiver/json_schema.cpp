#include "receiver/json_schema.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <new>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ioc_receiver {

namespace json_schema_detail {

using json = nlohmann::json;

// The schemas' text, defined in the source receiver/CMakeLists.txt generates from
// receiver/json_schema_text.cpp.in and docs/schema/*.schema.json.
extern const char kBatchSchemaText[];
extern const char kStatusSchemaText[];
extern const char kBlobSchemaText[];

// An object's members are a std::map in this key order; the compiled property table is sorted the
// same way, so that one merge walk pairs every member with its schema.
static_assert(std::is_same_v<json::object_t::key_compare, std::less<>> ||
                  std::is_same_v<json::object_t::key_compare, std::less<std::string>>,
              "the property walk assumes nlohmann::json objects ordered by std::string's operator<");

// JSON types as bits; a number with a zero fraction is both kNumber and kInteger.
enum TypeBit : std::uint8_t {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kString = 32,
  kInteger = 64,
};

struct Regex {
  pcre2_code* code = nullptr;
  std::string source;
  Regex() = default;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() { pcre2_code_free(code); }
};

enum class Format : std::uint8_t { kNone, kDateTime, kUuid };
enum class Extra : std::uint8_t { kAllow, kForbid, kSchema };  // members not in `properties`

struct Bound {
  long double value = 0;  // exact for every int64, uint64 and double (80- or 128-bit long double)
  std::string text;       // as the schema writes it, for messages
};

struct Node;

// A member name the schema knows: from `properties` (schema set), `required` (bit set), or both.
struct Slot {
  std::string name;
  const Node* schema = nullptr;
  std::uint64_t required_bit = 0;
};

// One compiled schema. The *_checks flags let check() skip whole groups with one test.
struct Node {
  std::string pointer;  // where it is in the schema, for compile errors
  bool reject_all = false;  // the schema `false`
  const Node* ref = nullptr;

  std::uint8_t types = 0;  // TypeBit mask; 0: any type
  std::string types_text;  // "integer", "string or null"
  std::optional<json> const_value;
  std::string const_text;
  bool has_enum = false;
  std::vector<json> enum_values;
  std::string enum_text;  // "\"good\", \"uncertain\", \"bad\""

  bool string_checks = false;
  std::size_t min_length = 0;
  std::size_t max_length = std::numeric_limits<std::size_t>::max();
  Format format = Format::kNone;
  std::unique_ptr<Regex> pattern;

  bool number_checks = false;
  std::optional<Bound> minimum, maximum, exclusive_minimum, exclusive_maximum;

  bool object_checks = false;
  bool walk_members = false;  // every member must be seen: additionalProperties or propertyNames
  std::vector<Slot> slots;    // sorted as an object's members are
  std::vector<std::size_t> required;  // indexes into slots, in the schema's order
  std::uint64_t required_mask = 0;
  Extra extra = Extra::kAllow;
  const Node* additional = nullptr;
  const Node* property_names = nullptr;

  bool array_checks = false;
  std::size_t min_items = 0;
  std::size_t max_items = std::numeric_limits<std::size_t>::max();
  const Node* items = nullptr;

  bool applicators = false;
  std::vector<const Node*> all_of, any_of, one_of;
  const Node* not_schema = nullptr;
  const Node* if_schema = nullptr;
  const Node* then_schema = nullptr;
  const Node* else_schema = nullptr;
};

struct Compiled {
  std::deque<Node> nodes;  // a deque: nodes point at each other, so they never move
  const Node* root = nullptr;
};

namespace {

constexpr std::string_view kDraft202012 = "https://json-schema.org/draft/2020-12/schema";
constexpr std::size_t kMaxValueBytes = 72;  // of the document's own text in a message: a SHA-256 fits

// ---- Small text helpers ------------------------------------------------------------------------

// The length of the longest prefix of s that is at most `max` bytes and ends on a UTF-8 boundary.
std::size_t utf8_cut(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s.size();
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string dump(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

// A string as a JSON string literal, cut to kMaxValueBytes.
std::string quote(std::string_view s) {
  const auto n = utf8_cut(s, kMaxValueBytes);
  std::string out = dump(json(std::string(s.substr(0, n))));
  if (n < s.size()) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

// A value of the document, short: scalars as JSON, objects and arrays named.
std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return quote(v.get_ref<const std::string&>());
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    default:
      return dump(v);
  }
}

// One JSON pointer segment ("/name"), cut to kMaxValueBytes, control characters escaped so that
// a member name cannot break a log line.
std::string pointer_segment(std::string_view key) {
  const auto n = utf8_cut(key, kMaxValueBytes);
  std::string out = "/";
  for (const char c : key.substr(0, n)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else if (u < 0x20 || u == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  if (n < key.size()) out += "...";
  return out;
}

std::string items_text(std::size_t n) { return std::to_string(n) + (n == 1 ? " item" : " items"); }

// "a", "a or b", "a, b or c"
std::string or_list(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

constexpr std::pair<std::string_view, std::uint8_t> kTypeNames[] = {
    {"string", kString}, {"number", kNumber}, {"integer", kInteger}, {"boolean", kBoolean},
    {"object", kObject}, {"array", kArray},   {"null", kNull},
};

std::string type_mask_text(std::uint8_t mask) {
  std::vector<std::string> names;
  for (const auto& [name, bit] : kTypeNames)
    if (mask & bit) names.emplace_back(name);
  return or_list(names);
}

bool integral(double d) { return std::isfinite(d) && std::floor(d) == d; }

std::uint8_t type_bits(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return kNull;
    case json::value_t::boolean:
      return kBoolean;
    case json::value_t::string:
      return kString;
    case json::value_t::array:
      return kArray;
    case json::value_t::object:
      return kObject;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return kNumber | kInteger;
    case json::value_t::number_float:
      return integral(*v.get_ptr<const json::number_float_t*>()) ? kNumber | kInteger : kNumber;
    default:
      return 0;  // binary and discarded values are no JSON type
  }
}

long double number_value(const json& v) {
  switch (v.type()) {
    case json::value_t::number_integer:
      return static_cast<long double>(*v.get_ptr<const json::number_integer_t*>());
    case json::value_t::number_unsigned:
      return static_cast<long double>(*v.get_ptr<const json::number_unsigned_t*>());
    default:
      return static_cast<long double>(*v.get_ptr<const json::number_float_t*>());
  }
}

// ---- Formats -----------------------------------------------------------------------------------

// Reads n ASCII digits at pos.
bool read_digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int x = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    x = x * 10 + (s[i] - '0');
  }
  out = x;
  return true;
}

int days_in_month(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// RFC 3339 section 5.6 `date-time`, with the calendar rules of section 5.7. On failure sets *why
// (when not null).
bool check_date_time(std::string_view s, std::string* why) {
  const auto bad = [why](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  static constexpr const char* kShape = "expected YYYY-MM-DDTHH:MM:SS, an optional fraction, then Z or +HH:MM";
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (s.size() < 20 || !read_digits(s, 0, 4, year) || s[4] != '-' || !read_digits(s, 5, 2, month) || s[7] != '-' ||
      !read_digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') || !read_digits(s, 11, 2, hour) || s[13] != ':' ||
      !read_digits(s, 14, 2, minute) || s[16] != ':' || !read_digits(s, 17, 2, second))
    return bad(kShape);
  std::size_t p = 19;
  if (s[p] == '.') {
    const auto start = ++p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    if (p == start) return bad(kShape);
  }
  int offset = 0;  // minutes east of UTC
  if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) {
    ++p;
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int oh = 0, om = 0;
    if (!read_digits(s, p + 1, 2, oh) || p + 3 >= s.size() || s[p + 3] != ':' || !read_digits(s, p + 4, 2, om))
      return bad(kShape);
    if (oh > 23) return bad("offset hour " + std::to_string(oh) + " does not exist");
    if (om > 59) return bad("offset minute " + std::to_string(om) + " does not exist");
    offset = (s[p] == '+' ? 1 : -1) * (oh * 60 + om);
    p += 6;
  } else {
    return bad(kShape);
  }
  if (p != s.size()) return bad(kShape);
  if (month < 1 || month > 12) return bad("month " + std::string(s.substr(5, 2)) + " does not exist");
  static constexpr const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                            "July",    "August",   "September", "October", "November", "December"};
  const int days = days_in_month(year, month);
  if (day < 1 || day > days)
    return bad(std::string(kMonths[month - 1]) + " " + std::string(s.substr(0, 4)) + " has no day " +
               std::string(s.substr(8, 2)) + " (it has " + std::to_string(days) + ")");
  if (hour > 23) return bad("hour " + std::to_string(hour) + " does not exist");
  if (minute > 59) return bad("minute " + std::to_string(minute) + " does not exist");
  if (second > 60) return bad("second " + std::to_string(second) + " does not exist");
  if (second == 60 && ((hour * 60 + minute - offset) % 1440 + 1440) % 1440 != 23 * 60 + 59)
    return bad("a leap second (:60) exists only at 23:59:60 UTC");
  return true;
}

bool hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// RFC 4122's string form, 8-4-4-4-12 hexadecimal digits; either case (RFC 4122 section 3).
bool check_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !hex_digit(s[i])) return false;
  }
  return true;
}

// ---- PCRE2 -------------------------------------------------------------------------------------

struct MatchDataFree {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

// One match data per thread serves every pattern: only "does it match" is asked, and a match
// data too small for the captures still reports a match (pcre2_match returns 0).
pcre2_match_data* thread_match_data() {
  thread_local const std::unique_ptr<pcre2_match_data, MatchDataFree> data(pcre2_match_data_create(1, nullptr));
  if (!data) throw std::bad_alloc();
  return data.get();
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(code, buffer, sizeof buffer);
  if (n < 0) return "PCRE2 error " + std::to_string(code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<std::size_t>(n));
}

// 1: found, 0: not found, <0: a PCRE2 error (a subject that is not UTF-8, a match limit).
int regex_search(const Regex& r, std::string_view s) {
  const int rc = pcre2_match(r.code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, thread_match_data(),
                             nullptr);
  if (rc >= 0) return 1;
  return rc == PCRE2_ERROR_NOMATCH ? 0 : rc;
}

// ---- Compiling ---------------------------------------------------------------------------------

std::string shown_pointer(const std::string& pointer) { return pointer.empty() ? "(root)" : pointer; }

std::string escape_key(const std::string& key) {
  std::string out;
  for (const char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

// "#/$defs/a%20b" -> "/$defs/a b": the URI fragment, percent-decoded.
std::optional<std::string> fragment_pointer(std::string_view fragment) {
  std::string out;
  for (std::size_t i = 0; i < fragment.size(); ++i) {
    if (fragment[i] != '%') {
      out += fragment[i];
      continue;
    }
    if (i + 2 >= fragment.size() || !hex_digit(fragment[i + 1]) || !hex_digit(fragment[i + 2])) return std::nullopt;
    out += static_cast<char>(std::stoi(std::string(fragment.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}

class Compiler {
 public:
  Compiler(const json& root, Compiled& out) : root_(root), out_(out) {}

  // The node of the schema at `pointer` (its location in the root document): compiled once, so
  // that every $ref to it and its own parent share it.
  const Node* at(const std::string& pointer, const json& schema) {
    if (const auto it = by_pointer_.find(pointer); it != by_pointer_.end()) return it->second;
    Node& n = out_.nodes.emplace_back();
    n.pointer = pointer;
    by_pointer_.emplace(pointer, &n);
    if (schema.is_boolean()) {
      n.reject_all = !schema.get<bool>();
    } else if (schema.is_object()) {
      keywords(n, schema);
    } else {
      fail(pointer, "a schema must be an object or a boolean, not " + describe(schema));
    }
    return &n;
  }

  // Refuses a chain of $ref (and other same-value applicators) that comes back to where it
  // started: validating it would never end.
  void check_cycles() const {
    std::unordered_map<const Node*, int> state;  // 1: on the path, 2: done
    std::function<void(const Node*)> visit = [&](const Node* n) {
      if (!n) return;
      auto& s = state[n];
      if (s == 2) return;
      if (s == 1)
        fail(n->pointer, "$ref: the schema refers back to itself without descending into the document (a cycle)");
      s = 1;
      visit(n->ref);
      for (const auto* list : {&n->all_of, &n->any_of, &n->one_of})
        for (const auto* sub : *list) visit(sub);
      visit(n->not_schema);
      visit(n->if_schema);
      visit(n->then_schema);
      visit(n->else_schema);
      state[n] = 2;
    };
    for (const auto& n : out_.nodes) visit(&n);
  }

 private:
  [[noreturn]] static void fail(const std::string& pointer, const std::string& what) {
    throw std::invalid_argument(shown_pointer(pointer) + ": " + what);
  }
  [[noreturn]] static void fail(const std::string& pointer, const std::string& keyword, const std::string& what) {
    fail(pointer, keyword + ": " + what);
  }

  static std::size_t count_value(const std::string& pointer, const std::string& key, const json& v) {
    if (!v.is_number() || !integral(v.get<double>()) || v.get<double>() < 0)
      fail(pointer, key, "must be a non-negative integer, not " + describe(v));
    return v.is_number_unsigned() ? v.get<std::size_t>() : static_cast<std::size_t>(v.get<double>());
  }

  static Bound bound_value(const std::string& pointer, const std::string& key, const json& v) {
    if (!v.is_number()) fail(pointer, key, "must be a number, not " + describe(v));
    return {number_value(v), dump(v)};
  }

  const Node* sub(const std::string& pointer, const std::string& key, const json& v) {
    return at(pointer + "/" + escape_key(key), v);
  }

  std::vector<const Node*> sub_list(const std::string& pointer, const std::string& key, const json& v) {
    if (!v.is_array() || v.empty()) fail(pointer, key, "must be a non-empty array of schemas");
    std::vector<const Node*> out;
    for (std::size_t i = 0; i < v.size(); ++i) out.push_back(at(pointer + "/" + key + "/" + std::to_string(i), v[i]));
    return out;
  }

  void compile_pattern(Node& n, const std::string& source) {
    // UTF mode; `$` only at the very end and \uXXXX, \u{...} escapes, as in ECMA-262.
    pcre2_compile_context* context = pcre2_compile_context_create(nullptr);
    if (!context) throw std::bad_alloc();
    pcre2_set_compile_extra_options(context, PCRE2_EXTRA_ALT_BSUX);
    int code = 0;
    PCRE2_SIZE offset = 0;
    auto regex = std::make_unique<Regex>();
    regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX, &code, &offset, context);
    pcre2_compile_context_free(context);
    if (!regex->code)
      fail(n.pointer, "pattern",
           quote(source) + " is not a regular expression PCRE2 can compile: " + pcre2_message(code) + " at offset " +
               std::to_string(offset));
    pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE);  // without JIT (no support), pcre2_match interprets
    regex->source = source;
    n.pattern = std::move(regex);
  }

  const Node* resolve(const std::string& pointer, const json& ref) {
    if (!ref.is_string()) fail(pointer, "$ref", "must be a string, not " + describe(ref));
    const auto& text = ref.get_ref<const std::string&>();
    if (text.empty() || text[0] != '#')
      fail(pointer, "$ref",
           quote(text) + ": only references into the same schema (\"#/$defs/...\") are implemented");
    const auto target = fragment_pointer(std::string_view(text).substr(1));
    if (!target || (!target->empty() && (*target)[0] != '/'))
      fail(pointer, "$ref", quote(text) + ": not a JSON pointer (anchors are not implemented)");
    try {
      const json::json_pointer p(*target);
      if (!root_.contains(p)) fail(pointer, "$ref", quote(text) + ": the schema has nothing there");
      return at(p.to_string(), root_.at(p));
    } catch (const json::exception& e) {
      fail(pointer, "$ref", quote(text) + ": " + e.what());
    }
  }

  void keywords(Node& n, const json& schema) {
    const std::string& ptr = n.pointer;
    // Member names from properties and required, sorted as an object's members are.
    std::map<std::string, Slot, json::object_t::key_compare> slots;
    std::vector<std::string> required;
    bool has_then_or_else = false;
    for (const auto& [key, v] : schema.items()) {
      if (key == "title" || key == "description" || key == "$comment") {
        if (!v.is_string()) fail(ptr, key, "must be a string");
      } else if (key == "examples" || key == "default") {
        // annotations
      } else if (key == "$schema") {
        const auto* uri = v.get_ptr<const std::string*>();
        if (!uri || (*uri != kDraft202012 && *uri != std::string(kDraft202012) + "#"))
          fail(ptr, key, describe(v) + " is not draft 2020-12 (\"" + std::string(kDraft202012) +
                             "\"), the only draft implemented");
      } else if (key == "$id") {
        if (!ptr.empty()) fail(ptr, key, "only the root may have one (a nested $id moves the base of $ref)");
        if (!v.is_string()) fail(ptr, key, "must be a string");
      } else if (key == "$defs") {
        if (!v.is_object()) fail(ptr, key, "must be an object of schemas");
        for (const auto& [name, def] : v.items()) at(ptr + "/$defs/" + escape_key(name), def);
      } else if (key == "$ref") {
        n.ref = resolve(ptr, v);
      } else if (key == "type") {
        std::vector<std::string> names;
        if (v.is_string()) {
          names.push_back(v.get<std::string>());
        } else if (v.is_array() && !v.empty()) {
          for (const auto& t : v) {
            if (!t.is_string()) fail(ptr, key, "must be a type name or an array of them");
            names.push_back(t.get<std::string>());
          }
        } else {
          fail(ptr, key, "must be a type name or a non-empty array of them");
        }
        for (const auto& name : names) {
          std::uint8_t bit = 0;
          for (const auto& [type_name, type_bit] : kTypeNames)
            if (name == type_name) bit = type_bit;
          if (!bit) fail(ptr, key, quote(name) + " is not a JSON Schema type");
          if (n.types & bit) fail(ptr, key, quote(name) + " is listed twice");
          n.types |= bit;
        }
        n.types_text = or_list(names);
      } else if (key == "const") {
        n.const_value = v;
        n.const_text = describe(v);
      } else if (key == "enum") {
        if (!v.is_array()) fail(ptr, key, "must be an array");
        n.has_enum = true;
        n.enum_values = v.get<std::vector<json>>();
        for (const auto& e : n.enum_values) n.enum_text += (n.enum_text.empty() ? "" : ", ") + describe(e);
      } else if (key == "minLength") {
        n.min_length = count_value(ptr, key, v);
        n.string_checks = true;
      } else if (key == "maxLength") {
        n.max_length = count_value(ptr, key, v);
        n.string_checks = true;
      } else if (key == "pattern") {
        if (!v.is_string()) fail(ptr, key, "must be a string");
        compile_pattern(n, v.get<std::string>());
        n.string_checks = true;
      } else if (key == "format") {
        if (!v.is_string()) fail(ptr, key, "must be a string");
        // Other formats are annotations (draft 2020-12, format-annotation vocabulary).
        if (v == "date-time") n.format = Format::kDateTime;
        if (v == "uuid") n.format = Format::kUuid;
        n.string_checks = n.string_checks || n.format != Format::kNone;
      } else if (key == "minimum") {
        n.minimum = bound_value(ptr, key, v);
        n.number_checks = true;
      } else if (key == "maximum") {
        n.maximum = bound_value(ptr, key, v);
        n.number_checks = true;
      } else if (key == "exclusiveMinimum") {
        n.exclusive_minimum = bound_value(ptr, key, v);
        n.number_checks = true;
      } else if (key == "exclusiveMaximum") {
        n.exclusive_maximum = bound_value(ptr, key, v);
        n.number_checks = true;
      } else if (key == "properties") {
        if (!v.is_object()) fail(ptr, key, "must be an object of schemas");
        for (const auto& [name, prop] : v.items()) {
          auto& slot = slots[name];
          slot.name = name;
          slot.schema = at(ptr + "/properties/" + escape_key(name), prop);
        }
      } else if (key == "required") {
        if (!v.is_array()) fail(ptr, key, "must be an array of property names");
        for (const auto& r : v) {
          if (!r.is_string()) fail(ptr, key, "must be an array of property names, not holding " + describe(r));
          const auto& name = r.get_ref<const std::string&>();
          for (const auto& earlier : required)
            if (earlier == name) fail(ptr, key, quote(name) + " is listed twice");
          required.push_back(name);
        }
        if (required.size() > 64) fail(ptr, key, "more than 64 names in one schema is not implemented");
      } else if (key == "additionalProperties") {
        if (v.is_boolean()) {
          n.extra = v.get<bool>() ? Extra::kAllow : Extra::kForbid;
        } else {
          n.extra = Extra::kSchema;
          n.additional = sub(ptr, key, v);
        }
      } else if (key == "propertyNames") {
        n.property_names = sub(ptr, key, v);
      } else if (key == "minItems") {
        n.min_items = count_value(ptr, key, v);
        n.array_checks = true;
      } else if (key == "maxItems") {
        n.max_items = count_value(ptr, key, v);
        n.array_checks = true;
      } else if (key == "items") {
        if (v.is_array())
          fail(ptr, key,
               "an array of schemas (a tuple, before draft 2020-12) is not draft 2020-12, and prefixItems is not "
               "implemented");
        n.items = sub(ptr, key, v);
        n.array_checks = true;
      } else if (key == "allOf") {
        n.all_of = sub_list(ptr, key, v);
      } else if (key == "anyOf") {
        n.any_of = sub_list(ptr, key, v);
      } else if (key == "oneOf") {
        n.one_of = sub_list(ptr, key, v);
      } else if (key == "not") {
        n.not_schema = sub(ptr, key, v);
      } else if (key == "if") {
        n.if_schema = sub(ptr, key, v);
      } else if (key == "then") {
        n.then_schema = sub(ptr, key, v);
        has_then_or_else = true;
      } else if (key == "else") {
        n.else_schema = sub(ptr, key, v);
        has_then_or_else = true;
      } else {
        fail(ptr, "keyword \"" + key +
                      "\" is not implemented by this validator (receiver/json_schema.h lists those that are)");
      }
    }
    if (has_then_or_else && !n.if_schema) fail(ptr, "then/else without if: it would have no effect");

    for (std::size_t i = 0; i < required.size(); ++i) {
      auto& slot = slots[required[i]];
      slot.name = required[i];
      slot.required_bit = std::uint64_t{1} << i;
      n.required_mask |= slot.required_bit;
    }
    for (auto& [name, slot] : slots) n.slots.push_back(std::move(slot));
    for (const auto& name : required)
      for (std::size_t i = 0; i < n.slots.size(); ++i)
        if (n.slots[i].name == name) n.required.push_back(i);
    n.walk_members = n.extra != Extra::kAllow || n.property_names;
    n.object_checks = !n.slots.empty() || n.walk_members;
    n.applicators = !n.all_of.empty() || !n.any_of.empty() || !n.one_of.empty() || n.not_schema || n.if_schema;
  }

  const json& root_;
  Compiled& out_;
  std::map<std::string, const Node*> by_pointer_;
};

// ---- Validating --------------------------------------------------------------------------------

// One first_error() call. Every check returns false at the first problem; when reporting, the
// failing check writes the message and each level on the way out adds its path segment
// (innermost first), so a valid document costs no path bookkeeping at all. Inside if, not, anyOf
// and oneOf the alternatives are tried silently: their failures are not the document's errors.
class Run {
 public:
  bool check(const Node& n, const json& v) {
    if (n.reject_all) return fail([&] { return describe(v) + " is not allowed here (the schema is false)"; });
    if (n.ref && !check(*n.ref, v)) return false;
    if (n.types && !(n.types & type_bits(v)))
      return fail([&] { return describe(v) + " is not of type " + n.types_text; });
    if (n.const_value && v != *n.const_value) return fail([&] { return describe(v) + " is not " + n.const_text; });
    if (n.has_enum && !in_enum(n, v)) return fail([&] { return describe(v) + " is not one of " + n.enum_text; });
    switch (v.type()) {
      case json::value_t::string:
        if (n.string_checks && !check_string(n, v)) return false;
        break;
      case json::value_t::number_integer:
      case json::value_t::number_unsigned:
      case json::value_t::number_float:
        if (n.number_checks && !check_number(n, v)) return false;
        break;
      case json::value_t::object:
        if (n.object_checks && !check_object(n, v)) return false;
        break;
      case json::value_t::array:
        if (n.array_checks && !check_array(n, v)) return false;
        break;
      default:
        break;
    }
    return !n.applicators || check_applicators(n, v);
  }

  std::string path() const {
    if (rpath_.empty()) return "(root)";
    std::string out;
    for (auto it = rpath_.rbegin(); it != rpath_.rend(); ++it) out += *it;
    return out;
  }
  const std::string& message() const { return message_; }

 private:
  template <class MakeMessage>
  bool fail(MakeMessage&& make) {
    if (report_) message_ = make();
    return false;
  }

  bool silently(const Node& n, const json& v) {
    const bool saved = report_;
    report_ = false;
    const bool ok = check(n, v);
    report_ = saved;
    return ok;
  }

  static bool in_enum(const Node& n, const json& v) {
    for (const auto& e : n.enum_values)
      if (v == e) return true;
    return false;
  }

  bool check_string(const Node& n, const json& v) {
    const auto& s = v.get_ref<const std::string&>();
    // Code points lie between bytes / 4 and bytes: count them only when that range straddles a limit.
    if ((s.size() + 3) / 4 < n.min_length || s.size() > n.max_length) {
      const auto cp = code_points(s);
      if (cp < n.min_length)
        return fail([&] {
          return describe(v) + " is too short (" + std::to_string(cp) + " characters, at least " +
                 std::to_string(n.min_length) + ")";
        });
      if (cp > n.max_length)
        return fail([&] {
          return describe(v) + " is too long (" + std::to_string(cp) + " characters, at most " +
                 std::to_string(n.max_length) + ")";
        });
    }
    if (n.format == Format::kDateTime) {
      std::string why;
      if (!check_date_time(s, report_ ? &why : nullptr))
        return fail([&] { return describe(v) + " is not an RFC 3339 date-time: " + why; });
    } else if (n.format == Format::kUuid && !check_uuid(s)) {
      return fail([&] { return describe(v) + " is not a UUID (8-4-4-4-12 hexadecimal digits)"; });
    }
    if (n.pattern) {
      const int found = regex_search(*n.pattern, s);
      if (found == 0)
        return fail([&] { return describe(v) + " does not match the pattern " + n.pattern->source; });
      if (found < 0)
        return fail([&] {
          return describe(v) + " cannot be matched against the pattern " + n.pattern->source + ": " +
                 pcre2_message(found);
        });
    }
    return true;
  }

  bool check_number(const Node& n, const json& v) {
    const long double x = number_value(v);
    if (n.minimum && !(x >= n.minimum->value))
      return fail([&] { return describe(v) + " is less than the minimum " + n.minimum->text; });
    if (n.maximum && !(x <= n.maximum->value))
      return fail([&] { return describe(v) + " is greater than the maximum " + n.maximum->text; });
    if (n.exclusive_minimum && !(x > n.exclusive_minimum->value))
      return fail(
          [&] { return describe(v) + " is not greater than the exclusive minimum " + n.exclusive_minimum->text; });
    if (n.exclusive_maximum && !(x < n.exclusive_maximum->value))
      return fail(
          [&] { return describe(v) + " is not less than the exclusive maximum " + n.exclusive_maximum->text; });
    return true;
  }

  bool member_failed(const std::string& key) {
    if (report_) rpath_.push_back(pointer_segment(key));
    return false;
  }

  // A member without a schema in `properties`: additionalProperties decides.
  bool check_additional(const Node& n, const std::string& key, const json& value) {
    if (n.extra == Extra::kForbid) return fail([&] { return "property " + quote(key) + " is not allowed"; });
    if (n.extra == Extra::kSchema && !check(*n.additional, value)) return member_failed(key);
    return true;
  }

  bool check_name(const Node& n, const std::string& key) {
    if (check(*n.property_names, json(key))) return true;
    if (report_) message_ = "property name " + message_;
    return false;
  }

  bool check_object(const Node& n, const json& v) {
    const auto& members = v.get_ref<const json::object_t&>();
    std::uint64_t seen = 0;
    if (n.walk_members) {
      // Both sorted the same way: one merge walk finds each member's slot.
      auto slot = n.slots.begin();
      const auto slots_end = n.slots.end();
      for (const auto& [key, value] : members) {
        int order = 1;
        while (slot != slots_end && (order = slot->name.compare(key)) < 0) ++slot;
        const Node* schema = nullptr;
        if (slot != slots_end && order == 0) {
          seen |= slot->required_bit;
          schema = slot->schema;
        }
        if (n.property_names && !check_name(n, key)) return false;
        if (schema) {
          if (!check(*schema, value)) return member_failed(key);
        } else if (!check_additional(n, key, value)) {
          return false;
        }
      }
    } else {
      // Nothing to say about other members: look up only the names the schema knows.
      for (const auto& slot : n.slots) {
        const auto it = members.find(slot.name);
        if (it == members.end()) continue;
        seen |= slot.required_bit;
        if (slot.schema && !check(*slot.schema, it->second)) return member_failed(slot.name);
      }
    }
    if ((seen & n.required_mask) != n.required_mask) {
      return fail([&] {
        for (const auto i : n.required)
          if (!(seen & n.slots[i].required_bit)) return "required property " + quote(n.slots[i].name) + " is missing";
        return std::string("a required property is missing");
      });
    }
    return true;
  }

  bool check_array(const Node& n, const json& v) {
    const auto& elements = v.get_ref<const json::array_t&>();
    if (elements.size() < n.min_items)
      return fail([&] {
        return "an array of " + items_text(elements.size()) + " is too short (at least " + std::to_string(n.min_items) +
               ")";
      });
    if (elements.size() > n.max_items)
      return fail([&] {
        return "an array of " + items_text(elements.size()) + " is too long (at most " + std::to_string(n.max_items) +
               ")";
      });
    if (n.items) {
      for (std::size_t i = 0; i < elements.size(); ++i) {
        if (!check(*n.items, elements[i])) {
          if (report_) rpath_.push_back("/" + std::to_string(i));
          return false;
        }
      }
    }
    return true;
  }

  // Whether the value's type gets past `n` and every $ref it follows.
  static bool type_fits(const Node* n, std::uint8_t bits) {
    for (; n; n = n->ref)
      if (n->reject_all || (n->types && !(n->types & bits))) return false;
    return true;
  }

  static std::uint8_t first_types(const Node* n) {
    for (; n; n = n->ref)
      if (n->types) return n->types;
    return 0;
  }

  // No alternative of anyOf/oneOf matched. When only one of them takes the value's type, its own
  // error is the useful one (a bad timestamp where a timestamp or null is allowed).
  bool none_matched(const std::vector<const Node*>& alternatives, const json& v, const char* keyword) {
    if (!report_) return false;
    const auto bits = type_bits(v);
    const Node* fitting = nullptr;
    std::size_t fits = 0;
    std::uint8_t all_types = 0;
    bool all_typed = true;
    for (const auto* a : alternatives) {
      if (type_fits(a, bits)) {
        fitting = a;
        ++fits;
      }
      const auto t = first_types(a);
      all_typed = all_typed && t;
      all_types |= t;
    }
    if (fits == 1) return check(*fitting, v);
    if (fits == 0 && all_typed)
      return fail([&] { return describe(v) + " is not of type " + type_mask_text(all_types); });
    return fail([&] {
      return describe(v) + " matches none of the " + std::to_string(alternatives.size()) + " alternatives of " +
             keyword;
    });
  }

  bool check_applicators(const Node& n, const json& v) {
    for (const auto* s : n.all_of)
      if (!check(*s, v)) return false;
    if (!n.any_of.empty()) {
      bool any = false;
      for (const auto* s : n.any_of)
        if ((any = silently(*s, v))) break;
      if (!any) return none_matched(n.any_of, v, "anyOf");
    }
    if (!n.one_of.empty()) {
      std::size_t matches = 0, first = 0, second = 0;
      for (std::size_t i = 0; i < n.one_of.size() && matches < 2; ++i) {
        if (silently(*n.one_of[i], v)) (matches++ == 0 ? first : second) = i + 1;
      }
      if (matches == 0) return none_matched(n.one_of, v, "oneOf");
      if (matches > 1)
        return fail([&] {
          return describe(v) + " matches alternatives " + std::to_string(first) + " and " + std::to_string(second) +
                 " of oneOf; exactly one may match";
        });
    }
    if (n.not_schema && silently(*n.not_schema, v))
      return fail([&] { return describe(v) + " matches the schema under \"not\", which it must not"; });
    if (n.if_schema) {
      const Node* branch = silently(*n.if_schema, v) ? n.then_schema : n.else_schema;
      if (branch && !check(*branch, v)) return false;
    }
    return true;
  }

  bool report_ = true;
  std::string message_;
  std::vector<std::string> rpath_;  // the path of the failure, innermost segment first
};

JsonSchema compile_builtin(const char* text) { return JsonSchema::compile(nlohmann::json::parse(text)); }

}  // namespace
}  // namespace json_schema_detail

using json_schema_detail::Compiled;

JsonSchema JsonSchema::compile(const nlohmann::json& schema) {
  auto compiled = std::make_unique<Compiled>();
  json_schema_detail::Compiler compiler(schema, *compiled);
  compiled->root = compiler.at("", schema);
  compiler.check_cycles();
  return JsonSchema(std::move(compiled));
}

std::optional<std::string> JsonSchema::first_error(const nlohmann::json& doc) const {
  json_schema_detail::Run run;
  if (run.check(*compiled_->root, doc)) return std::nullopt;
  return run.path() + ": " + run.message();
}

JsonSchema::JsonSchema(std::unique_ptr<const Compiled> compiled) : compiled_(std::move(compiled)) {}
JsonSchema::JsonSchema(JsonSchema&&) noexcept = default;
JsonSchema& JsonSchema::operator=(JsonSchema&&) noexcept = default;
JsonSchema::~JsonSchema() = default;

const JsonSchema& batch_schema() {
  static const JsonSchema schema = json_schema_detail::compile_builtin(json_schema_detail::kBatchSchemaText);
  return schema;
}

const JsonSchema& status_schema() {
  static const JsonSchema schema = json_schema_detail::compile_builtin(json_schema_detail::kStatusSchemaText);
  return schema;
}

const JsonSchema& blob_schema() {
  static const JsonSchema schema = json_schema_detail::compile_builtin(json_schema_detail::kBlobSchemaText);
  return schema;
}

}  // namespace ioc_receiver
