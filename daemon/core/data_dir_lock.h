#pragma once
// One daemon per buffer: an exclusive lock on `<data_dir>/ioc-edge.lock`, held for the life of the
// process. A second `ioc-edge run` on the same data directory (an officer debugging by hand while
// the service runs, perhaps as root) gets a clear refusal naming the running pid and touches
// nothing else: two writers on one outbox would clash on seqs (and SQLite's WAL-reset bug needs
// exactly two connections: docs/dependencies.md). flock(2) locks vanish with the process, so a
// kill -9 never leaves a stale lock behind. Lives on the main thread.
#include <memory>
#include <string>

namespace ioc_edge {

class DataDirLock {
 public:
  // Takes the lock, or returns nullptr with `error` saying who holds it (or why it failed).
  static std::unique_ptr<DataDirLock> acquire(const std::string& data_dir, std::string& error);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace ioc_edge
