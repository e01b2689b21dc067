// Massive activations (Sun et al., "Massive Activations in Large Language Models",
// arXiv 2402.17762 §2; methods.md §1.4) in one residual-stream tensor, and the "sink dimensions"
// they occupy, counted over layers and positions (VAR §3 relies on these). Detection only; no
// attention here.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <vector>

#include "analysis/mask.h"

namespace attnscope::analysis {

/// Thresholds of the paper's loose definition.
struct MassiveParams {
    /// |x| must exceed this absolute magnitude (strict >).
    double abs_threshold = 100.0;
    /// |x| must be at least factor × median_d |x_pos[d]| of its own token (>=).
    double factor = 1000.0;
};

/// One massive activation x_pos[dim].
struct MassiveActivation {
    std::int64_t pos = 0;
    std::int64_t dim = 0;
    double value = 0;       ///< signed activation
    double median_abs = 0;  ///< median_d |x_pos[d]| of that token (average of the two middle values)
};

/// All (pos, dim, value) with |x| > abs_threshold and |x| >= factor · median_d |x_pos|, ordered
/// by pos then dim. `resid` [pos, d_model] (e.g. blocks.l.hook_resid_pre of one sequence), any
/// floating dtype; padded positions (mask.valid false) are skipped. Throws ShapeError (rank,
/// mask length) and ConfigError (thresholds not finite and >= 0).
std::vector<MassiveActivation> massive_activations(const at::Tensor& resid,
                                                   const MassiveParams& params = {},
                                                   const TokenMask& mask = {});

/// A dimension that carries massive activations.
struct SinkDimension {
    std::int64_t dim = 0;
    std::int64_t count = 0;     ///< (layer, pos) occurrences
    std::int64_t n_layers = 0;  ///< distinct layers in which it occurred
    double max_abs = 0;         ///< largest |value| seen
};

/// Counts massive activations per dimension over layers, positions and sequences. Mergeable.
class SinkDimensionCounter {
public:
    /// Adds the massive activations of one (layer, sequence) residual tensor.
    void add(std::int64_t layer, const std::vector<MassiveActivation>& found);
    void merge(const SinkDimensionCounter& other);
    /// Dimensions sorted by count (descending), ties by dim (ascending).
    std::vector<SinkDimension> sorted() const;

private:
    struct Entry {
        std::int64_t count = 0;
        double max_abs = 0;
        std::map<std::int64_t, std::int64_t> layers;  // layer -> occurrences
    };
    std::map<std::int64_t, Entry> dims_;
};

}  // namespace attnscope::analysis
