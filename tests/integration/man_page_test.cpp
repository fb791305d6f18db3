// The manual page (docs/ioc-edge.8.scd, built into ioc-edge.8) and `ioc-edge ... --help` say the
// same: the same commands, and for each the same one-line description, options, positionals,
// defaults and "required" marks. The page is rendered with groff, as man(1) would show it, and
// compared with the help of the binary under test; adding an option without documenting it (or
// documenting one that is gone) fails here.
#include <cctype>
#include <regex>
#include <set>
#include <sstream>

#include "integration/daemon_rig.h"

using namespace ioc_edge::test;
using namespace std::chrono_literals;

namespace {

std::string squeeze(const std::string& s) {  // runs of white space as one space, trimmed
  std::string out;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

struct Item {           // one option or positional in a --help text
  std::string flags;    // "-c,--config" or "file"
  std::string rest;     // "TEXT=/etc/ioc-edge/ioc-edge.toml", "TEXT REQUIRED", ...
  std::string text;     // its description
};

struct Help {
  std::string description;             // the first line
  std::vector<std::string> subcommands;
  std::vector<Item> items;
};

// Parses CLI11's help: a description line, "Usage:", then "Positionals:", "Options:" and
// "Subcommands:" blocks of items, each "  NAME ... <2+ spaces> description" with the
// description on the next line when NAME is too long.
Help parse_help(const std::string& out) {
  Help h;
  std::istringstream in(out);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(!lines.empty());
  h.description = squeeze(lines[0]);
  std::string block;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto& l = lines[i];
    if (l == "Positionals:" || l == "Options:" || l == "Subcommands:") {
      block = l;
      continue;
    }
    if (block.empty() || l.size() < 3 || l.rfind("  ", 0) != 0 || l[2] == ' ') continue;
    const auto gap = l.find("  ", 2);
    const std::string left = l.substr(2, gap == std::string::npos ? std::string::npos : gap - 2);
    std::string text = gap == std::string::npos ? "" : squeeze(l.substr(gap));
    if (text.empty() && i + 1 < lines.size()) text = squeeze(lines[++i]);
    if (block == "Subcommands:") {
      h.subcommands.push_back(left);
      continue;
    }
    const auto sp = left.find(' ');
    Item it{left.substr(0, sp), sp == std::string::npos ? "" : left.substr(sp + 1), text};
    if (it.flags != "-h,--help") h.items.push_back(it);
  }
  return h;
}

}  // namespace

TEST_CASE("the manual page and --help list the same commands, options, defaults and descriptions",
          "[integration][cli][man]") {
  TempDir dir;
  const std::string page = dir.file("ioc-edge.txt");
  // As man(1) shows it, without line breaks or hyphenation inside paragraphs, in plain ASCII.
  const int rendered = run_to_exit({"/bin/sh", "-c",
                                    "groff -man -Tascii -P-cbou -rLL=2000n -rHY=0 '" + ioc_edge_man_page() +
                                        "' > '" + page + "'"},
                                   dir.file("groff.log"), 60s);
  INFO(read_file(dir.file("groff.log")));
  REQUIRE(rendered == 0);
  const std::string text = read_file(page);
  REQUIRE(text.find("NAME") != std::string::npos);

  // The page's sections per command: "   ioc-edge outbox peek" up to the next such heading.
  std::map<std::string, std::string> sections;
  {
    const std::regex heading(R"(^   ioc-edge ([a-z -]+)$)");
    std::istringstream in(text);
    std::string current;
    for (std::string l; std::getline(in, l);) {
      std::smatch m;
      if (std::regex_match(l, m, heading)) {
        current = m[1];
        sections[current];
      } else if (!current.empty() && !l.empty() && l[0] != ' ') {
        current.clear();  // a top-level section (EXIT STATUS, ...) ends the commands
      } else if (!current.empty()) {
        sections[current] += l + "\n";
      }
    }
  }

  // Every leaf command, found by walking --help.
  const auto top = parse_help(run_cli({"--help"}, dir).output);
  CHECK_THAT(squeeze(text), Catch::Contains("ioc-edge - " + top.description.substr(top.description.find(": ") + 2)));
  std::set<std::string> leaves;
  std::vector<std::string> todo(top.subcommands.begin(), top.subcommands.end());
  for (int guard = 0; !todo.empty() && guard < 100; ++guard) {
    const std::string path = todo.back();
    todo.pop_back();
    std::vector<std::string> args;
    std::istringstream words(path);
    for (std::string w; words >> w;) args.push_back(w);
    args.push_back("--help");
    const auto run = run_cli(args, dir);
    REQUIRE(run.code == 0);
    const auto h = parse_help(run.output);
    if (!h.subcommands.empty()) {
      for (const auto& s : h.subcommands) todo.push_back(path + " " + s);
      continue;
    }
    leaves.insert(path);
    INFO("ioc-edge " << path << " --help:\n" << run.output);
    REQUIRE(sections.count(path) == 1);
    const std::string section = squeeze(sections[path]);
    CHECK_THAT(section, Catch::StartsWith(h.description));
    for (const auto& it : h.items) {
      INFO("item " << it.flags << " " << it.rest);
      std::istringstream names(it.flags);
      for (std::string name; std::getline(names, name, ',');) {
        if (name[0] == '-') {
          CHECK_THAT(section, Catch::Contains(name + ",") || Catch::Contains(name + " "));
        } else {
          CHECK_THAT(section, Catch::Contains(name + " " + it.text));
        }
      }
      CHECK_THAT(section, Catch::Contains(it.text));
      const auto eq = it.rest.rfind('=');
      if (eq != std::string::npos) CHECK_THAT(section, Catch::Contains("default: " + it.rest.substr(eq + 1)));
      if (it.rest.find("REQUIRED") != std::string::npos) CHECK_THAT(section, Catch::Contains(it.text + " (required)"));
    }
  }
  std::set<std::string> documented;
  for (const auto& [name, body] : sections) documented.insert(name);
  CHECK(documented == leaves);
  CHECK(leaves.size() >= 10);

  // The parts --help cannot show: every exit status the program uses, its signals and files.
  for (const char* part : {"EXIT STATUS", "SIGNALS", "FILES", "SIGTERM", "SIGHUP", "/etc/ioc-edge/ioc-edge.toml",
                           "/var/lib/ioc-edge/outbox.db"})
    CHECK_THAT(text, Catch::Contains(part));
  for (const char* code : {"\n       0\n", "\n       1\n", "\n       2\n", "\n       78\n"}) CHECK_THAT(text, Catch::Contains(code));
}
