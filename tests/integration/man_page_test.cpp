// The manual page (docs/ioc-edge.8.scd, built into ioc-edge.8) and `ioc-edge ... --help` say the
// same: the same commands, and for each the same one-line description, options, positionals,
// defaults and "required" marks. The page is rendered with groff, as man(1) would show it, and
// compared with the help of the binary under test; adding an option without documenting it (or
// documenting one that is gone) fails here, for commands and for their options alike.
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
    if (text.empty() && i + 1 < lines.size() && lines[i + 1].rfind(std::string(30, ' '), 0) == 0)
      text = squeeze(lines[++i]);
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

struct ManItem {
  std::string heading;      // "-c, --config FILE" or "file"
  std::string description;  // squeezed
};

bool indented(const std::string& line, std::size_t n) {
  return line.size() > n && line.find_first_not_of(' ') == n;
}

// The options and positionals of one command's section of the rendered page: a line indented 7
// spaces followed by its description indented 11, keyed by the long option (or the name).
std::map<std::string, ManItem> man_items(const std::vector<std::string>& lines) {
  std::map<std::string, ManItem> items;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    if (!indented(lines[i], 7) || !indented(lines[i + 1], 11)) continue;
    ManItem item{squeeze(lines[i]), ""};
    for (std::size_t j = i + 1; j < lines.size() && indented(lines[j], 11); ++j) item.description += lines[j] + " ";
    item.description = squeeze(item.description);
    std::string key;
    std::istringstream words(item.heading);
    for (std::string w; words >> w;) {
      if (w[0] != '-') continue;
      if (w.back() == ',') w.pop_back();
      key = w;  // the last flag: the long one
    }
    if (key.empty()) key = item.heading.substr(0, item.heading.find(' '));
    items[key] = item;
  }
  return items;
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
  std::map<std::string, std::vector<std::string>> sections;
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
        sections[current].push_back(l);
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
    std::string body;
    for (const auto& l : sections[path]) body += l + " ";
    CHECK_THAT(squeeze(body), Catch::StartsWith(h.description));
    // The same options and positionals, both ways: one added to the program but not to the page,
    // or left on the page after it left the program, fails.
    const auto documented_items = man_items(sections[path]);
    std::map<std::string, Item> helped;
    for (const auto& it : h.items) helped[it.flags.substr(it.flags.rfind(',') + 1)] = it;
    std::set<std::string> man_keys, help_keys;
    for (const auto& [k, v] : documented_items) man_keys.insert(k);
    for (const auto& [k, v] : helped) help_keys.insert(k);
    CHECK(man_keys == help_keys);
    for (const auto& [key, it] : helped) {
      if (!documented_items.count(key)) continue;
      const auto& man = documented_items.at(key);
      INFO("item " << it.flags << " " << it.rest << "; on the page: " << man.heading << " / " << man.description);
      std::string flags = it.flags;  // "-c,--config" is shown as "-c, --config"
      for (auto pos = flags.find(','); pos != std::string::npos; pos = flags.find(',', pos + 2)) flags.replace(pos, 1, ", ");
      CHECK((man.heading == flags || man.heading.rfind(flags + " ", 0) == 0));
      CHECK_THAT(man.description, Catch::StartsWith(it.text));
      const auto eq = it.rest.rfind('=');
      if (eq != std::string::npos) CHECK_THAT(man.description, Catch::Contains("default: " + it.rest.substr(eq + 1)));
      if (it.rest.find("REQUIRED") != std::string::npos) CHECK_THAT(man.description, Catch::Contains("(required)"));
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
