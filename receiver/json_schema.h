#pragma once
// A small JSON Schema (draft 2020-12) validator: the receiver checks every message it takes in
// against the schemas of docs/schema/ with it.
//
// Design note
// -----------
// Why it exists: Debian bookworm packages no C++ JSON Schema library, and the receiver must check
// 100,000 readings a second with well under half a core, about 1-2 µs a reading. So this is an
// interpreter of exactly the keywords our schemas use, compiled once into a tree of nodes that
// point at each other ($ref resolved, regexes compiled, property names sorted), walked with
// nlohmann::json documents.
//
// What it implements (anything else is refused by compile(), never silently ignored):
//   type (a name or an array of names; "integer" also takes a number with a zero fraction, 1.0),
//   const, enum (JSON equality: 1 equals 1.0),
//   properties, required, additionalProperties (false or a schema), propertyNames,
//   minLength, maxLength (in Unicode code points, not bytes),
//   pattern (unanchored search; PCRE2 with JIT, see below),
//   format: "date-time" (RFC 3339 with a calendar check: no February 30, a leap second only at
//     23:59:60 UTC) and "uuid" (8-4-4-4-12 hexadecimal digits, either case); other formats are
//     annotations, as draft 2020-12 has it,
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum,
//   minItems, maxItems, items (one schema for every element, the 2020-12 meaning),
//   allOf, anyOf, oneOf, not, if/then/else,
//   $ref to a JSON pointer into the same document ("#/$defs/reading", or any "#/..."), $defs;
//   true and false as schemas.
// Annotations accepted and ignored: title, description, $comment, $schema (only the draft 2020-12
// URI), $id (at the root only: a nested one would move the base of $ref), examples, default.
//
// What it does not: remote or anchor references, $dynamicRef, patternProperties, prefixItems,
// contains, uniqueItems, unevaluated*, dependent*, multipleOf, min/maxProperties, more than 64
// required names in one schema, annotation output, a list of all errors. then/else without if are
// refused (draft 2020-12 ignores them; here they are a mistake). A $ref cycle that never descends
// into the document is refused at compile time.
//
// Patterns are ECMA-262 as the standard says, run by PCRE2 with the options that make PCRE2 agree
// with ECMA-262 on what schemas use: UTF mode, `$` matches only at the very end (PCRE2's default
// also matches before a final newline), \uXXXX escapes. \d and \w are ASCII, as in ECMA-262
// (Python's re, used by python3-jsonschema, also takes other scripts' digits for \d). PCRE2-only
// syntax (possessive quantifiers, \A, \z) is not refused.
//
// Errors: first_error() stops at the first problem and says where and what, e.g.
//   /readings/3/quality: "fine" is not one of "good", "uncertain", "bad"
// The order is fixed: $ref, type, const, enum, then the keywords of the value's type (an object's
// members in key order, then its missing required ones in the schema's order; a string's lengths,
// format, pattern), then allOf, anyOf, oneOf, not, if/then/else. Strings and member names from
// the document are cut after 72 bytes (a SHA-256 fits), objects and arrays are named, not printed,
// and control characters in the path are escaped, so a hostile document cannot flood a log line.
//
// Threads: compile() on any thread; a compiled JsonSchema is immutable and first_error() may be
// called concurrently on it from any number of threads (each thread has its own PCRE2 match data).
// Recursion follows the schema: only a schema that recurses through $ref recurses with the
// document's depth (ours do not).
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace ioc_receiver {

namespace json_schema_detail {
struct Compiled;
}

class JsonSchema {
 public:
  // Compiles `schema` (draft 2020-12). Throws std::invalid_argument naming the JSON pointer into
  // the schema and the keyword when the schema uses a keyword this interpreter does not implement,
  // gives a keyword a value of the wrong kind, has a pattern PCRE2 cannot compile, or a $ref it
  // cannot resolve, e.g.
  //   /$defs/reading: keyword "patternProperties" is not implemented by this validator
  static JsonSchema compile(const nlohmann::json& schema);

  // nullopt when `doc` is valid; otherwise its first problem as "PATH: MESSAGE", PATH a JSON
  // pointer into the document ("(root)" for the document itself). Never throws except
  // std::bad_alloc. For a valid document it allocates nothing, except a copy of each member name
  // that propertyNames checks.
  std::optional<std::string> first_error(const nlohmann::json& doc) const;

  JsonSchema(JsonSchema&&) noexcept;
  JsonSchema& operator=(JsonSchema&&) noexcept;
  ~JsonSchema();

 private:
  explicit JsonSchema(std::unique_ptr<const json_schema_detail::Compiled> compiled);
  std::unique_ptr<const json_schema_detail::Compiled> compiled_;  // never null, except moved from
};

// The schemas of docs/schema/, built into the program when it is compiled (receiver/CMakeLists.txt
// makes their text a generated source). Compiled on first use, once; thread-safe.
const JsonSchema& batch_schema();   // docs/schema/batch.schema.json: data and event messages
const JsonSchema& status_schema();  // docs/schema/status.schema.json: {prefix}/status, heartbeat and last will
const JsonSchema& blob_schema();    // docs/schema/blob.schema.json: a blob message's MQTT 5 user properties

}  // namespace ioc_receiver
