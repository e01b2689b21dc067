// CSV form of the per-head summary.
#include "analysis/summary.h"

#include <cmath>
#include <cstdio>

namespace attnscope::analysis {

namespace {
std::string num(double x) {
    if (std::isnan(x)) return "nan";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", x);
    return buf;
}
}  // namespace

std::vector<std::string> head_summary_columns() {
    return {"layer", "head", "entropy_norm", "entropy_nats", "sink_slot",
            "alpha", "sink", "distance",     "class"};
}

std::string to_csv(const std::vector<HeadSummary>& rows) {
    std::string out;
    const auto cols = head_summary_columns();
    for (size_t i = 0; i < cols.size(); ++i) out += (i ? "," : "") + cols[i];
    out += '\n';
    for (const auto& r : rows) {
        out += std::to_string(r.layer) + ',' + std::to_string(r.head) + ',' + num(r.entropy_norm) +
               ',' + num(r.entropy_nats) + ',' + std::to_string(r.sink_slot) + ',' + num(r.alpha) +
               ',' + (r.sink ? "1" : "0") + ',' + num(r.distance) + ',' + to_string(r.head_class) +
               '\n';
    }
    return out;
}

}  // namespace attnscope::analysis
