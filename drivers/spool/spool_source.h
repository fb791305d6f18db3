#pragma once
// The `spool` source: imports the CSV or JSON export files that staff or a scheduled job drop into a
// directory, each exactly once, then moves the file to done/ (or, when it is bad, to failed/ with
// a report beside it).
//
// Design note
// -----------
// One worker thread per source ("spool") does everything: it watches the directory (inotify
// IN_CLOSE_WRITE / IN_MOVED_TO, and a rescan every settle_time / 2, at least once a second, for
// what inotify cannot see: network shares, a watch that failed), reads files and waits for the
// outbox. Nothing runs on the
// io thread. A file's life:
//
//   seen ──complete──▶ pass 1 (validate + sha256) ──bad──▶ failed/NAME + failed/NAME.error.txt
//                                │ ok
//                 marks("file/<sha256>") ──"done"──▶ done/NAME (a duplicate: nothing imported)
//                                │ none, or "rows n at T"
//                      pass 2 from row n+1, batch by batch ──all stored──▶ done/NAME
//                                │ Refused (disk full, overload)
//                      stays in place; retried after a backoff (retry_min..retry_max)
//
// Invariants
//  1. Complete: a file is taken once inotify reported it closed after writing or moved in and its
//     size and mtime have not changed since, or once they have not changed for settle_time. A
//     file that changes while it is read is put back and taken again when it is still.
//  2. Only regular files with one link, named in `dir` itself, are read: each is opened relative
//     to the directory's descriptor with O_NOFOLLOW. A symbolic link, a hard link, a FIFO or a
//     device is moved to failed/ unread (the link itself, never its target). Subdirectories and
//     names starting with '.' or ending in .tmp, .part, .partial, .crdownload or '~' are left alone.
//  3. A file's identity is the sha256 of its bytes. Pass 1 reads the whole file; a bad file
//     (encoding, quoting, a missing column, an impossible date, ...) is moved to failed/ with
//     NAME.error.txt naming the line, the column and the problem, and nothing of it is stored.
//  4. Exactly once. Pass 2 hands the readings to Sink::push_batch in batches of about
//     batch_max_readings (whole rows), each carrying the mark "file/<sha256>" = "rows <n> at <T>"
//     (n: the rows stored with it and before it; T: the import time that stamps readings without
//     a ts_column); the last batch carries "done <time> <name>" instead. A mark is committed in the
//     same transaction as its readings, so after a kill -9 the mark says exactly which rows are
//     stored: the import resumes after row n with the same T, and a content marked done is never
//     imported again (a duplicate drop, or a crash between the last commit and the move to done/).
//  5. One batch is in the outbox at a time: batch k+1 is parsed while batch k commits and is pushed
//     only once k is stored, so "rows n" never runs ahead of a refused batch and memory holds at
//     most two batches (bounded, whatever the file's size).
//  6. Moving never overwrites: a name taken in done/ or failed/ gets "-2", "-3", ... before its
//     extension (renameat2 RENAME_NOREPLACE).
//  7. The directory missing or unreadable is the source's state: source_down (once, with the
//     reason) and retried with backoff; source_up when it is back.
//  8. stop() wakes the worker (an eventfd) and joins it; a batch in flight is left to the outbox
//     (its mark records it if it commits). After stop() returns the sink is not called again.
#include <memory>

#include "core/source.h"

namespace ioc_edge::spool {

std::unique_ptr<Source> create(SourceContext context, std::shared_ptr<const DriverConfig> config);

// The name a file gets in done/ or failed/ when `name` is taken there: "bao-cao.csv", attempt 2 ->
// "bao-cao-2.csv"; "README" -> "README-2".
std::string numbered_name(const std::string& name, int attempt);

}  // namespace ioc_edge::spool
