#include "drivers/spool/spool_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "core/backoff.h"
#include "core/log.h"
#include "drivers/spool/spool_config.h"
#include "drivers/spool/spool_parse.h"

namespace ioc_edge::spool {

namespace {

constexpr std::string_view kSkippedSuffixes[] = {".tmp", ".part", ".partial", ".crdownload", "~", ".error.txt"};
constexpr int kMaxNumbered = 10000;

std::string sha256_hex(EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    char a = s[s.size() - suffix.size() + i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (a != suffix[i]) return false;
  }
  return true;
}

// Which names the source takes (invariant 2): by extension, for the configured format.
bool wanted(std::string_view name, Format format) {
  if (name.empty() || name.front() == '.') return false;
  for (const auto s : kSkippedSuffixes)
    if (ends_with(name, s)) return false;
  if (format == Format::Json) return ends_with(name, ".json");
  return ends_with(name, ".csv") || ends_with(name, ".txt") || ends_with(name, ".tsv");
}

std::string errno_text(int e) { return std::strerror(e); }

// A batch's outcome, filled on the outbox thread, awaited on the worker.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<SinkResult> result;
};

struct Candidate {
  off_t size = -1;
  struct timespec mtime {};
  std::chrono::steady_clock::time_point since{};    // last seen changing
  bool closed = false;                              // inotify: closed after writing or moved in
  std::chrono::steady_clock::time_point retry_at{};  // not before (after a refusal)
  std::unique_ptr<Backoff> backoff;
};

bool same_stat(const Candidate& c, const struct stat& st) {
  return c.size == st.st_size && c.mtime.tv_sec == st.st_mtim.tv_sec && c.mtime.tv_nsec == st.st_mtim.tv_nsec;
}

class SpoolSource final : public Source {
 public:
  SpoolSource(SourceContext ctx, std::shared_ptr<const Config> cfg)
      : ctx_(std::move(ctx)), cfg_(std::move(cfg)), dir_backoff_(cfg_->retry_min, cfg_->retry_max) {}
  ~SpoolSource() override { stop(); }

  void start() override {
    if (worker_.joinable()) return;
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    stopping_ = false;
    ctx_.log->info("taking {} files from {} ({} layout{}; settle_time {} ms)",
                   cfg_->format == Format::Json ? "JSON" : "CSV", cfg_->dir,
                   cfg_->point_column.empty() ? "wide" : "long",
                   cfg_->ts_column.empty() ? ", time of import" : ", time from \"" + cfg_->ts_column + "\"",
                   cfg_->settle_time.count());
    worker_ = std::thread([this] { run(); });
  }

  void stop() override {
    if (!worker_.joinable()) return;
    stopping_ = true;
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof one);
    {
      std::lock_guard lk(wait_mu_);
      if (waiting_) {
        std::lock_guard wl(waiting_->mu);
        waiting_->cv.notify_all();
      }
    }
    worker_.join();
    close_dir();
    ::close(stop_fd_);
    stop_fd_ = -1;
  }

 private:
  using clock = std::chrono::steady_clock;

  // --- The worker ---

  void run() {
    pthread_setname_np(pthread_self(), "spool");
    while (!stopping_) {
      if (dir_fd_ < 0 && !open_dir()) {
        sleep_for(dir_backoff_.next());
        continue;
      }
      if (clock::now() >= next_scan_) {
        next_scan_ = clock::now() + rescan_interval();
        if (!scan()) continue;
      }
      if (auto name = next_ready()) {
        process(*name);
        continue;
      }
      wait_events(until_next());
    }
  }

  std::chrono::milliseconds rescan_interval() const {
    return std::clamp(cfg_->settle_time / 2, std::chrono::milliseconds(50), std::chrono::milliseconds(1000));
  }

  // How long the worker may sleep: until the next rescan or the first candidate's settle time.
  std::chrono::milliseconds until_next() const {
    auto at = next_scan_;
    for (const auto& [name, c] : candidates_) {
      at = std::min(at, std::max(c.retry_at, c.closed ? c.since : c.since + cfg_->settle_time));
    }
    const auto d = std::chrono::duration_cast<std::chrono::milliseconds>(at - clock::now());
    return std::clamp(d, std::chrono::milliseconds(0), std::chrono::milliseconds(1000));
  }

  // Sleeps until `d` passed or stop(); inotify events are handled when they come.
  void sleep_for(std::chrono::milliseconds d) {
    const auto until = clock::now() + d;
    while (!stopping_ && clock::now() < until)
      wait_events(std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()));
  }

  void wait_events(std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {in_fd_, POLLIN, 0}};
    const int n = ::poll(fds, in_fd_ >= 0 ? 2 : 1, static_cast<int>(std::max<long long>(timeout.count(), 0)));
    if (n <= 0 || in_fd_ < 0 || !(fds[1].revents & POLLIN)) return;
    alignas(inotify_event) char buf[16384];
    for (;;) {
      const auto len = ::read(in_fd_, buf, sizeof buf);
      if (len <= 0) break;
      for (char* p = buf; p < buf + len;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
          lost_dir("the directory was removed or moved away");
          return;
        }
        if (ev->len == 0 || !(ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))) continue;
        const std::string name(ev->name);
        if (!wanted(name, cfg_->format)) continue;
        struct stat st {};
        if (::fstatat(dir_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        auto& c = candidates_[name];
        c.size = st.st_size;
        c.mtime = st.st_mtim;
        c.since = clock::now();
        c.closed = true;
      }
    }
  }

  bool open_dir() {
    const int fd = ::open(cfg_->dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      down("cannot open " + cfg_->dir + ": " + errno_text(errno));
      return false;
    }
    dir_fd_ = fd;
    // The watch before done/ and failed/ exist: whoever sees them knows a closed file is noticed.
    in_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (in_fd_ >= 0 &&
        ::inotify_add_watch(in_fd_, cfg_->dir.c_str(),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0) {
      ctx_.log->warn("cannot watch {} with inotify ({}); finding files by rescanning every {} ms", cfg_->dir,
                     errno_text(errno), rescan_interval().count());
      ::close(in_fd_);
      in_fd_ = -1;
    }
    for (auto [sub, out] : {std::pair{"done", &done_fd_}, std::pair{"failed", &failed_fd_}}) {
      if (::mkdirat(dir_fd_, sub, 0750) != 0 && errno != EEXIST) {
        const int e = errno;
        close_dir();
        down("cannot create " + cfg_->dir + "/" + sub + ": " + errno_text(e));
        return false;
      }
      *out = ::openat(dir_fd_, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (*out < 0) {
        const int e = errno;
        close_dir();
        down("cannot open " + cfg_->dir + "/" + sub + " (it must be a directory, not a link): " + errno_text(e));
        return false;
      }
    }
    dir_backoff_.reset();
    up();
    next_scan_ = clock::now();
    return true;
  }

  void close_dir() {
    for (int* fd : {&dir_fd_, &done_fd_, &failed_fd_, &in_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
    candidates_.clear();
  }

  void lost_dir(const std::string& why) {
    close_dir();
    down(cfg_->dir + ": " + why);
  }

  // Lists the directory: new files become candidates, changed ones start settling again.
  bool scan() {
    const int fd = ::openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (!d) {
      if (fd >= 0) ::close(fd);
      lost_dir(std::string("cannot list it: ") + errno_text(errno));
      return false;
    }
    const auto now = clock::now();
    std::map<std::string, bool> seen;
    while (const dirent* e = ::readdir(d)) {
      const std::string name(e->d_name);
      if (!wanted(name, cfg_->format)) continue;
      struct stat st {};
      if (::fstatat(dir_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode)) continue;
      seen[name] = true;
      auto [it, fresh] = candidates_.try_emplace(name);
      auto& c = it->second;
      if (fresh || !same_stat(c, st)) {
        c.size = st.st_size;
        c.mtime = st.st_mtim;
        c.since = now;
        c.closed = false;
      }
    }
    ::closedir(d);
    for (auto it = candidates_.begin(); it != candidates_.end();)
      it = seen.count(it->first) ? std::next(it) : candidates_.erase(it);
    return true;
  }

  // The complete file to take next (invariant 1): oldest mtime first.
  std::optional<std::string> next_ready() {
    const auto now = clock::now();
    const std::string* best = nullptr;
    const Candidate* bc = nullptr;
    for (const auto& [name, c] : candidates_) {
      if (now < c.retry_at) continue;
      if (!c.closed && now - c.since < cfg_->settle_time) continue;
      if (!bc || c.mtime.tv_sec < bc->mtime.tv_sec ||
          (c.mtime.tv_sec == bc->mtime.tv_sec && c.mtime.tv_nsec < bc->mtime.tv_nsec)) {
        best = &name;
        bc = &c;
      }
    }
    if (!best) return std::nullopt;
    return *best;
  }

  // --- One file ---

  void process(const std::string& name) {
    auto& cand = candidates_[name];
    const int fd = ::openat(dir_fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      if (e == ENOENT) {
        candidates_.erase(name);
      } else if (e == ELOOP) {
        refuse(name, "symlink", "a symbolic link: only files placed in " + cfg_->dir +
                                    " itself are imported (copy or move the file there, do not link it)");
      } else {
        put_back(name, cand, "cannot open it: " + errno_text(e));
      }
      return;
    }
    struct FdCloser {
      int fd;
      ~FdCloser() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    ::fstat(fd, &st);
    if (!S_ISREG(st.st_mode)) {
      refuse(name, "not_a_file", "not a regular file (a pipe, a socket or a device); nothing was read");
      return;
    }
    if (st.st_nlink != 1) {
      refuse(name, "hard_link", "a file with " + std::to_string(st.st_nlink) +
                                    " hard links: only files placed in " + cfg_->dir +
                                    " itself are imported (copy the file there, do not link it)");
      return;
    }
    if (!same_stat(cand, st)) {  // changed since it was found complete
      cand.size = st.st_size;
      cand.mtime = st.st_mtim;
      cand.since = clock::now();
      cand.closed = false;
      return;
    }
    const auto started = clock::now();
    const auto import_ms = ctx_.clock.now_ms();

    // Pass 1: validate every row and hash every byte (invariant 3).
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
    FileReader check(*cfg_, fd, import_ms, md.get());
    FileReader::Step step;
    std::int64_t n = 0;
    while ((step = check.next(nullptr)) == FileReader::Step::Row)
      if (++n % 8192 == 0 && stopping_) return;
    struct stat after {};
    ::fstat(fd, &after);
    if (after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
      ctx_.log->info("\"{}\" changed while it was read; taken again once it is still", name);
      cand.size = -1;
      cand.since = clock::now();
      cand.closed = false;
      return;
    }
    const std::string key = "file/" + sha256_hex(md.get());
    ++ctx_.counters.messages;

    std::int64_t resume_rows = 0;
    std::int64_t ts_ms = import_ms;
    const auto marks = ctx_.sink.marks(key);
    if (!marks) {  // the buffer cannot say whether this content was imported: decide nothing now
      ctx_.log->warn("\"{}\": the buffer cannot be read to check whether this file was imported; trying again "
                     "later",
                     name);
      cand.size = -1;
      cand.since = clock::now();
      cand.closed = false;
      return;
    }
    for (const auto& m : *marks) {
      if (m.key != key) continue;
      if (m.value.rfind("done ", 0) == 0) {
        duplicate(name, m.value.substr(5));
        return;
      }
      long long rows = 0, at = 0;
      if (std::sscanf(m.value.c_str(), "rows %lld at %lld", &rows, &at) == 2) {
        resume_rows = rows;
        ts_ms = at;
      }
    }
    if (stopping_) return;
    if (step == FileReader::Step::Error) {
      std::string text = check.error().text();
      if (resume_rows > 0)
        text += "\n\nThe first " + std::to_string(resume_rows) +
                " rows of this file were imported before (with an earlier configuration?); they stay imported.";
      fail(name, check.error().kind, text);
      return;
    }
    if (check.rows() == 0) {
      ctx_.log->info("\"{}\" holds no data rows; moved to done/ without importing", name);
      moved(name, done_fd_, "done");
      return;
    }
    if (resume_rows > 0)
      ctx_.log->info("\"{}\": resuming after row {} of {} (the rows before were stored before a restart)", name,
                     resume_rows, check.rows());

    // Pass 2: import from row resume_rows + 1 (invariants 4 and 5).
    if (::lseek(fd, 0, SEEK_SET) != 0) {
      put_back(name, cand, "cannot read it again: " + errno_text(errno));
      return;
    }
    FileReader reader(*cfg_, fd, ts_ms, nullptr);
    while (reader.rows() < resume_rows) {
      if (reader.next(nullptr) != FileReader::Step::Row) {
        put_back(name, cand, "it reads differently from its first pass");
        return;
      }
    }
    const auto outcome = import(name, key, reader, ts_ms);
    if (outcome.status == Import::Stopped) return;
    if (outcome.status == Import::Refused) {
      if (!cand.backoff) cand.backoff = std::make_unique<Backoff>(cfg_->retry_min, cfg_->retry_max);
      const auto wait = cand.backoff->next();
      cand.retry_at = clock::now() + wait;
      ctx_.counters.set_error("\"" + name + "\": the buffer refused it: " + outcome.error, ctx_.clock.now_ms());
      std::uint64_t suppressed = 0;
      if (refused_log_.allow(suppressed))
        ctx_.log->warn("\"{}\": the buffer refused a batch ({}); {} of {} rows are stored, the rest follows in {} ms "
                       "({} similar suppressed)",
                       name, outcome.error, outcome.rows, check.rows(), wait.count(), suppressed);
      return;
    }
    if (outcome.status == Import::Invalid) {
      fail(name, "invalid", "the buffer refused row(s) after row " + std::to_string(outcome.rows) + " as invalid: " +
                                outcome.error + "\n\nRows 1 to " + std::to_string(outcome.rows) + " were imported.");
      return;
    }
    const auto secs = std::chrono::duration<double>(clock::now() - started).count();
    const auto where = moved(name, done_fd_, "done");
    if (where.empty()) return;
    ctx_.log->info("imported \"{}\": {} rows; {} readings stored in {:.1f} s (seqs {}..{}); moved to done/{}", name,
                   check.rows(), outcome.readings, secs, outcome.first_seq, outcome.last_seq, where);
  }

  struct Import {
    enum Status { Done, Refused, Invalid, Stopped } status = Done;
    std::int64_t rows = 0;  // rows stored (this run and before)
    std::uint64_t readings = 0;
    std::int64_t first_seq = 0, last_seq = 0;
    std::string error;
  };

  // Pushes the rest of the file batch by batch, one in the outbox at a time.
  Import import(const std::string& name, const std::string& key, FileReader& reader, std::int64_t ts_ms) {
    Import out;
    out.rows = reader.rows();
    std::vector<Reading> cur, spill;
    cur.reserve(cfg_->batch_max_readings);
    std::shared_ptr<Waiter> inflight;
    std::int64_t inflight_rows = 0;
    std::size_t inflight_readings = 0;
    // Waits for the batch in flight; false when it was not stored (out says why).
    const auto settle = [&]() -> bool {
      if (!inflight) return true;
      const auto r = await(inflight);
      inflight.reset();
      if (!r) {
        out.status = Import::Stopped;
        return false;
      }
      if (r->status != SinkStatus::Stored) {
        out.status = r->status == SinkStatus::Refused ? Import::Refused : Import::Invalid;
        out.error = r->error;
        return false;
      }
      if (out.first_seq == 0) out.first_seq = r->first_seq;
      out.last_seq = r->last_seq;
      out.rows = inflight_rows;
      out.readings += inflight_readings;
      return true;
    };
    bool end = false;
    while (!end) {
      // Fill a batch with whole rows; one row more tells whether it is the last.
      std::int64_t rows_in_cur = reader.rows();
      while (cur.size() < cfg_->batch_max_readings) {
        const auto step = reader.next(&cur);
        if (step == FileReader::Step::Row) {
          rows_in_cur = reader.rows();
          continue;
        }
        if (step == FileReader::Step::Error) {
          settle();
          out.status = Import::Stopped;
          put_back_error(name, reader.error().text());
          return out;
        }
        end = true;
        break;
      }
      if (!end) {
        const auto before = cur.size();
        const auto step = reader.next(&cur);
        if (step == FileReader::Step::End) end = true;
        if (step == FileReader::Step::Row) {
          spill.assign(std::make_move_iterator(cur.begin() + static_cast<std::ptrdiff_t>(before)),
                       std::make_move_iterator(cur.end()));
          cur.resize(before);
        }
        if (step == FileReader::Step::Error) {
          settle();
          out.status = Import::Stopped;
          put_back_error(name, reader.error().text());
          return out;
        }
      }
      if (end) rows_in_cur = reader.rows();
      if (!settle()) return out;
      if (stopping_) {
        out.status = Import::Stopped;
        return out;
      }
      Batch batch;
      Mark mark;
      mark.key = key;
      mark.value = end ? "done " + format_rfc3339_ms(ctx_.clock.now_ms()) + " " + name
                       : "rows " + std::to_string(rows_in_cur) + " at " + std::to_string(ts_ms);
      batch.marks.push_back(std::move(mark));
      inflight_readings = cur.size();
      if (!cur.empty()) {
        Batch::Group g;
        g.readings = std::move(cur);
        batch.groups.push_back(std::move(g));
      }
      cur = std::move(spill);
      spill.clear();
      cur.reserve(cfg_->batch_max_readings);
      inflight_rows = rows_in_cur;
      inflight = push(std::move(batch));
    }
    settle();
    return out;
  }

  std::shared_ptr<Waiter> push(Batch batch) {
    auto w = std::make_shared<Waiter>();
    ctx_.sink.push_batch(std::move(batch), [w](const SinkResult& r) {
      std::lock_guard lk(w->mu);
      w->result = r;
      w->cv.notify_all();
    });
    ctx_.sink.hurry();  // a batch waits for nothing but its commit (invariant 5)
    return w;
  }

  // The batch's result, or nullopt when stop() came first.
  std::optional<SinkResult> await(const std::shared_ptr<Waiter>& w) {
    {
      std::lock_guard lk(wait_mu_);
      waiting_ = w;
    }
    std::optional<SinkResult> r;
    {
      std::unique_lock lk(w->mu);
      w->cv.wait(lk, [&] { return w->result.has_value() || stopping_.load(); });
      r = w->result;
    }
    std::lock_guard lk(wait_mu_);
    waiting_.reset();
    return r;
  }

  // --- Outcomes ---

  void duplicate(const std::string& name, const std::string& before) {
    ++ctx_.counters.redelivered;
    const auto where = moved(name, done_fd_, "done");
    if (where.empty()) return;
    const auto space = before.find(' ');
    ctx_.log->info("\"{}\" has the same content as a file imported before (\"{}\" at {}); moved to done/{} without "
                   "importing it again",
                   name, space == std::string::npos ? std::string() : before.substr(space + 1), before.substr(0, space),
                   where);
  }

  // A bad file: to failed/ with NAME.error.txt (invariant 3).
  void fail(const std::string& name, const std::string& kind, const std::string& text) {
    bad(kind, "\"" + name + "\": " + first_line(text));
    const auto where = moved(name, failed_fd_, "failed");
    if (where.empty()) return;
    const std::string report = "ioc-edge could not import \"" + name + "\" (source \"" + ctx_.name + "\", " +
                               format_rfc3339_ms(ctx_.clock.now_ms()) + "):\n\n" + text +
                               "\n\nNothing of this file was imported" +
                               (text.find("were imported") != std::string::npos ? " in this attempt" : "") +
                               ". Correct the file and put it into " + cfg_->dir + " again.\n";
    const std::string report_name = where + ".error.txt";
    const int fd = ::openat(failed_fd_, report_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0 || ::write(fd, report.data(), report.size()) != static_cast<ssize_t>(report.size())) {
      ctx_.log->error("cannot write failed/{}: {}", report_name, errno_text(errno));
    }
    if (fd >= 0) ::close(fd);
  }

  void refuse(const std::string& name, const std::string& kind, const std::string& why) { fail(name, kind, why); }

  void bad(const std::string& kind, const std::string& text) {
    ctx_.counters.count_bad(kind);
    ++ctx_.counters.errors;
    ctx_.counters.set_error(text, ctx_.clock.now_ms());
    std::uint64_t suppressed = 0;
    if (bad_log_.allow(suppressed))
      ctx_.log->warn("file refused ({}): {}; moved to failed/ ({} similar suppressed)", kind, text, suppressed);
  }

  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  // The file stays where it is and is tried again later (an error reading it).
  void put_back(const std::string& name, Candidate& c, const std::string& why) {
    if (!c.backoff) c.backoff = std::make_unique<Backoff>(cfg_->retry_min, cfg_->retry_max);
    const auto wait = c.backoff->next();
    c.retry_at = clock::now() + wait;
    ctx_.counters.set_error("\"" + name + "\": " + why, ctx_.clock.now_ms());
    std::uint64_t suppressed = 0;
    if (retry_log_.allow(suppressed))
      ctx_.log->warn("\"{}\": {}; trying again in {} ms ({} similar suppressed)", name, why, wait.count(), suppressed);
  }

  void put_back_error(const std::string& name, const std::string& why) {
    auto it = candidates_.find(name);
    if (it != candidates_.end()) put_back(name, it->second, why);
  }

  // Moves `name` into the subdirectory without overwriting (invariant 6); its new name, or empty
  // when it could not be moved (logged; tried again later).
  std::string moved(const std::string& name, int sub_fd, const char* sub) {
    for (int attempt = 1; attempt <= kMaxNumbered; ++attempt) {
      const auto target = numbered_name(name, attempt);
      if (::renameat2(dir_fd_, name.c_str(), sub_fd, target.c_str(), RENAME_NOREPLACE) == 0) {
        candidates_.erase(name);
        return target;
      }
      if (errno == EEXIST) continue;
      const int e = errno;
      auto it = candidates_.find(name);
      if (e == ENOENT) {
        if (it != candidates_.end()) candidates_.erase(it);
        return {};
      }
      ctx_.log->error("cannot move \"{}\" to {}/: {}", name, sub, errno_text(e));
      if (it != candidates_.end()) put_back(name, it->second, std::string("cannot move it to ") + sub + "/: " + errno_text(e));
      return {};
    }
    ctx_.log->error("cannot move \"{}\" to {}/: {} names like it are taken there", name, sub, kMaxNumbered);
    put_back_error(name, std::string("too many files of that name in ") + sub + "/");
    return {};
  }

  // --- State ---

  void down(const std::string& error) {
    ctx_.counters.set_error(error, ctx_.clock.now_ms());
    if (ctx_.counters.down.exchange(true)) {
      ctx_.log->debug("still cannot use the directory: {}", error);
      return;
    }
    ctx_.log->warn("{}; retrying with backoff up to {:.1f} s", error, static_cast<double>(cfg_->retry_max.count()) / 1000);
    ctx_.sink.event(event("source_down", error), nullptr);
  }

  void up() {
    if (!ctx_.counters.down.exchange(false)) return;
    ctx_.log->info("{} is usable again", cfg_->dir);
    ctx_.sink.event(event("source_up", {}), nullptr);
  }

  Reading event(const char* name, const std::string& error) {
    nlohmann::json v = {{"event", name}, {"dir", cfg_->dir}};
    if (!error.empty()) v["error"] = error;
    Reading r;
    r.point = name;
    r.ts_ms = ctx_.clock.now_ms();
    r.value = JsonText{v.dump()};
    return r;
  }

  SourceContext ctx_;
  std::shared_ptr<const Config> cfg_;
  std::thread worker_;
  std::atomic<bool> stopping_{false};
  int stop_fd_ = -1;
  // The worker's own (no lock): the directory and what is in it.
  int dir_fd_ = -1, done_fd_ = -1, failed_fd_ = -1, in_fd_ = -1;
  std::map<std::string, Candidate> candidates_;
  clock::time_point next_scan_{};
  Backoff dir_backoff_;
  // The batch the worker waits for, so stop() can wake it.
  std::mutex wait_mu_;
  std::shared_ptr<Waiter> waiting_;
  RateLimit bad_log_{std::chrono::seconds(60)};
  RateLimit refused_log_{std::chrono::seconds(60)};
  RateLimit retry_log_{std::chrono::seconds(60)};
};

}  // namespace

std::string numbered_name(const std::string& name, int attempt) {
  if (attempt <= 1) return name;
  auto dot = name.rfind('.');
  if (dot == 0 || dot == std::string::npos) dot = name.size();
  return name.substr(0, dot) + "-" + std::to_string(attempt) + name.substr(dot);
}

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config) {
  auto cfg = std::dynamic_pointer_cast<const Config>(config);
  if (!cfg) return nullptr;
  return std::make_unique<SpoolSource>(std::move(context), std::move(cfg));
}

}  // namespace ioc_edge::spool
