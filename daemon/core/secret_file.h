#pragma once
// Secrets (passwords, tokens) live in files of their own, never in the TOML (docs/design.md
// section 5): read whole, trailing line breaks dropped. Callers never log what they read.
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace ioc_edge {

// The file's text without trailing CR/LF; nullopt when it cannot be read.
inline std::optional<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  auto s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace ioc_edge
