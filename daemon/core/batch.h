#pragma once
// Builds the exchange-structure batch (DESIGN.md section 4; docs/schema/batch.schema.json) from
// stored records. Pure functions.
#include <cstdint>
#include <string>
#include <vector>

#include "core/outbox.h"

namespace ioc_edge {

struct BatchHeader {
  std::string site;
  std::string store;
  std::string org_json;  // a compact JSON object, or empty for none
};

// {"schema":"ioc-edge/batch/1","site":..,"store":..,"sent_at":..,["org":..,]"readings":[...]}
// Each line of a record's body is one reading; it gets its seq (first_seq, first_seq + 1, ...)
// spliced in front.
std::string build_batch(const BatchHeader& header, std::int64_t sent_at_ms, const std::vector<const Record*>& records);

// Consecutive runs of the records' seqs (records of one priority), for Outbox::remove().
std::vector<SeqRange> seq_ranges(const std::vector<const Record*>& records);

}  // namespace ioc_edge
