// One row per (layer, head) of a sequence: the numbers the CLI prints as CSV or JSON. Plain data
// plus a CSV writer so the column order lives in one place; JSON is the CLI's job (field names
// = CSV column names).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/preplan.h"

namespace attnscope::analysis {

/// Per-head summary of one sequence. NaN = not computed or undefined.
struct HeadSummary {
    std::int64_t layer = 0;
    std::int64_t head = 0;
    /// Mean normalised entropy Ĥ over the rows R, NaN rows skipped (methods.md §1.5), in [0, 1].
    double entropy_norm = 0;
    /// Mean entropy over R, nats.
    double entropy_nats = 0;
    /// Slot of the sink position k (SinkParams::k counts real tokens; slot differs with padding).
    std::int64_t sink_slot = 0;
    /// Sink score α_k (methods.md §1.1; α_0 by default), unitless.
    double alpha = 0;
    /// α_k > ε (Gu et al., strict).
    bool sink = false;
    /// Mean backward distance d over R (methods.md §5.2), tokens.
    double distance = 0;
    /// Local / global by d among the sampled layers' heads; kUnranked elsewhere.
    HeadClass head_class = HeadClass::kUnranked;
};

/// Column names, in CSV order: layer, head, entropy_norm, entropy_nats, sink_slot, alpha, sink,
/// distance, class.
std::vector<std::string> head_summary_columns();

/// CSV with a header line; NaN printed as "nan", booleans as 0/1, class as its name
/// (to_string(HeadClass)), 9 significant digits.
std::string to_csv(const std::vector<HeadSummary>& rows);

}  // namespace attnscope::analysis
