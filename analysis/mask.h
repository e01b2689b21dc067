// Which tokens of one sequence take part in an attention metric: padding (invisible keys, skipped
// query rows), the query rows of interest R (e.g. the response rows of prompt ⊕ response) and an
// optional sliding attention window. Shared by every function of attnscope::analysis. This file
// holds no computation; the conventions it documents hold for the whole module.
//
// Module conventions (methods.md §0):
// - A pattern is one layer of one sequence, per query head: [head, query_pos, key_pos],
//   post-softmax, causal. The caller slices the batch (`pattern.select(0, b)`).
// - Positions are tensor slots (0-based). With Q query rows and K keys, query row i sits at slot
//   K - Q + i (prefill: Q = K; KV-cached decode: Q = 1, the new query is the last slot).
// - Key s is visible from query t iff s <= t, both are real tokens (not padding) and, with a
//   sliding window, t - s < attention_window. Entries outside the visible set are ignored
//   (treated as 0), never renormalised away.
// - Statistics run in float32 (float64 if the input is float64) and are returned as float64
//   tensors on the input's device. Undefined values (empty sets) are NaN, never 0.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>

namespace attnscope::analysis {

/// "No limit" for ranges, windows and horizons.
inline constexpr std::int64_t kUnbounded = std::numeric_limits<std::int64_t>::max();

/// Token selection for one sequence. The default selects every slot, every row, full causal
/// attention.
struct TokenMask {
    /// [pos] bool or 0/1 integer (the model's attention_mask row): true = real token, false =
    /// padding. Undefined = every slot is real. Whole-tensor functions require its length to equal
    /// key_pos; streaming accumulators treat slots beyond its length as real (decode appends real
    /// tokens).
    at::Tensor valid;
    /// Rows of interest R = real slots t with rows_begin <= t < rows_end (slot coordinates).
    /// Used by per-head means (entropy, backward distance) and by WAAD / FAI; sink scores and
    /// per-row values cover every real row.
    std::int64_t rows_begin = 0;
    std::int64_t rows_end = kUnbounded;
    /// Sliding-window attention (Mistral-style): key s is visible from t only if
    /// t - s < attention_window (transformers' convention). kUnbounded = plain causal.
    std::int64_t attention_window = kUnbounded;

    /// R = [begin, end): e.g. TokenMask::response(n_prompt) for prompt ⊕ response.
    static TokenMask response(std::int64_t begin, std::int64_t end = kUnbounded) {
        TokenMask m;
        m.rows_begin = begin;
        m.rows_end = end;
        return m;
    }
};

}  // namespace attnscope::analysis
