// Attention sinks: per-head sink scores α_k, Gu et al.'s head sink flags and model-level sink
// ratio, per-query sink mass, and ACT's hidden-sink detection (detection only; the calibration
// itself is an intervention and lives in probes/). Pure functions on one sequence's pattern;
// conventions (slots, padding, NaN for empty sets) are those of analysis/mask.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "analysis/mask.h"

namespace attnscope::analysis {

/// Sink score α_k of every key (Gu et al. 2410.10781 §3.2, "importance score"; methods.md §1.1):
/// α_k = Σ_{t ≥ k} A[t][k] / #(real queries t ≥ k that see k). Unitless, in [0, 1].
/// `pattern` [head, query_pos, key_pos], any floating dtype. With query_pos < key_pos only the
/// given rows (the last slots) count. Returns float64 [head, key_pos]; NaN where no query sees
/// the key (padding). Throws ShapeError (rank, Q > K, mask length) and ConfigError (mask).
at::Tensor sink_scores(const at::Tensor& pattern, const TokenMask& mask = {});

/// Gu et al. head sink flag / sink ratio parameters (methods.md §1.2).
struct SinkParams {
    /// Threshold ε: head (l, h) has a sink at k iff α_k > ε (strict, as in the authors' code).
    double epsilon = 0.3;
    /// Key slot k (0 = first token, the paper's Sink_1).
    std::int64_t k = 0;
};

/// 1[α_k^{l,h} > ε]. `scores` [layer, head, key_pos] (stacked sink_scores of each layer).
/// Returns bool [layer, head]; NaN scores are not sinks. Throws ShapeError (rank) and
/// ConfigError (k outside [0, key_pos), ε not finite).
at::Tensor head_sink_flags(const at::Tensor& scores, const SinkParams& params = {});

/// Model-level sink ratio Sink_k^ε (methods.md §1.2), in percent.
struct SinkRatio {
    /// 100 · mean over sequences of (1/(L·H)) Σ_{l,h} 1[α_k^{l,h} > ε]. NaN with no sequence.
    double percent = 0;
    /// Same over layers 1 … L-1 only (layer 0 rarely has sinks); NaN when L = 1.
    double percent_outside_layer0 = 0;
    std::int64_t n_sequences = 0;
    /// float64 [layer, head]: fraction of sequences in which the head is flagged.
    at::Tensor head_rate;
};

/// Sink ratio of one sequence. `scores` [layer, head, key_pos]. Throws as head_sink_flags.
SinkRatio sink_ratio(const at::Tensor& scores, const SinkParams& params = {});

/// Sink ratio averaged over sequences ("then over sequences", as the authors' code). Every
/// sequence must have the same [layer, head]. Mergeable (dataset shards, MPI ranks).
class SinkRatioAccumulator {
public:
    explicit SinkRatioAccumulator(SinkParams params = {});
    /// `scores` [layer, head, key_pos] of one sequence. Throws ShapeError when [layer, head]
    /// differs from earlier sequences.
    void add(const at::Tensor& scores);
    /// Adds another accumulator's sequences. Throws ConfigError on different ε or k, ShapeError
    /// on different [layer, head].
    void merge(const SinkRatioAccumulator& other);
    SinkRatio result() const;
    const SinkParams& params() const { return params_; }

private:
    SinkParams params_;
    at::Tensor flag_counts_;  // float64 [layer, head], CPU
    std::int64_t n_ = 0;
};

/// Per-query sink mass m(a, S) = Σ_{j ∈ S} a_j (methods.md §1.3; S = {0}: StreamingLLM's
/// first-token mass, {0,1,2,3}: its four sink tokens, or ACT-detected sinks).
/// `pattern` [head, query_pos, key_pos]; `sinks` key slots (duplicates ignored, slots not
/// visible from a row contribute 0). Returns float64 [head, query_pos], NaN for padded rows.
/// Throws ShapeError (pattern) and ConfigError (negative or >= key_pos slot).
at::Tensor sink_mass(const at::Tensor& pattern, const std::vector<std::int64_t>& sinks,
                     const TokenMask& mask = {});

/// How ACT's sink threshold is set (methods.md §2.5, §7 row 1).
enum class ThresholdMode {
    kAbsolute,  ///< s_j > τ (the authors' code; use for reproduction)
    kRelative,  ///< s_j > α / N, N = number of real tokens (paper's description)
};

/// ACT hidden-sink detection parameters (Yu et al. 2406.15765; methods.md §2.2, §2.5).
struct HiddenSinkParams {
    ThresholdMode mode = ThresholdMode::kAbsolute;
    /// Absolute threshold τ (0.15 in the authors' MT-Bench script).
    double tau = 0.1;
    /// Relative factor α: threshold α / N (ablated over {3, 5, 7}).
    double alpha = 5.0;
    /// Never detect the last real slot, whose score is just its own diagonal entry (§2.2 quirk).
    /// Off by default for fidelity to the code.
    bool exclude_last_position = false;
};

/// Detected sinks of one head.
struct HiddenSinks {
    /// S_all = {j : s_j > threshold}, increasing slot order (§2.2 step 2).
    std::vector<std::int64_t> detected;
    /// S = S_all minus its lowest slot (step 3): the sinks ACT calibrates.
    std::vector<std::int64_t> calibrated;
    /// The exempted (lowest) detected slot, -1 if none. ACT assumes it is the first real token;
    /// callers should log when it is not (methods.md §7 row 2).
    std::int64_t exempt = -1;
    /// The threshold actually applied (τ or α / N).
    double threshold = 0;
};

/// ACT steps 1–3 for every head. `scores` [head, key_pos] sink scores (sink_scores() or a
/// LayerAccumulator); N = number of real slots of `mask` (key_pos without padding).
/// NaN scores are never detected. Throws ShapeError (rank, mask length) and ConfigError
/// (τ or α not finite and > 0).
std::vector<HiddenSinks> detect_hidden_sinks(const at::Tensor& scores,
                                             const HiddenSinkParams& params = {},
                                             const TokenMask& mask = {});

}  // namespace attnscope::analysis
