// Per-query attention entropy (methods.md §1.5): nats, bits, normalised by ln n_i, per-head means
// over chosen rows, and the key-subset variant (renormalised sub-row, used for image tokens in
// CARVE §4.7). Pure functions; conventions of analysis/mask.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "analysis/mask.h"

namespace attnscope::analysis {

/// Entropy of every query row. All tensors on the pattern's device.
struct RowEntropy {
    /// Slot of row 0 (key_pos - query_pos of the pattern; 0 for a prefill).
    std::int64_t query_offset = 0;
    /// H_i = -Σ_j A[i][j] ln A[i][j] over visible keys, nats. float64 [head, query_pos];
    /// NaN for padded rows (and, for subsets, rows with no mass on the subset).
    at::Tensor nats;
    /// H_i / ln 2, bits. float64 [head, query_pos].
    at::Tensor bits;
    /// H_i / ln n_i in [0, 1]; NaN where n_i <= 1 (undefined) or nats is NaN. float64
    /// [head, query_pos].
    at::Tensor normalized;
    /// n_i: visible keys of each row (i+1 without padding; |subset ∩ visible| for subsets).
    /// int64 [query_pos].
    at::Tensor n_visible;
};

/// Row entropies of `pattern` [head, query_pos, key_pos] (any floating dtype; 0·ln 0 = 0).
/// Throws ShapeError (rank, Q > K, mask length) and ConfigError (mask).
RowEntropy row_entropy(const at::Tensor& pattern, const TokenMask& mask = {});

/// Entropy of each row restricted to the keys in `key_subset` [key_pos] bool, after
/// renormalising that sub-row to sum 1 (n_i = |subset ∩ visible keys|). Rows with no mass on the
/// subset are NaN. Throws ShapeError (subset length, pattern, mask) and ConfigError (mask).
RowEntropy subset_entropy(const at::Tensor& pattern, const at::Tensor& key_subset,
                          const TokenMask& mask = {});

/// Per-head mean of `values` [head, query_pos] (e.g. RowEntropy::normalized) over the rows R of
/// `mask` (slot = query_offset + row), skipping NaN. float64 [head]; NaN for a head with no
/// defined value. Only mask's rows range is used (padded rows are already NaN).
/// Throws ShapeError (rank) and ConfigError (mask).
at::Tensor mean_over_rows(const at::Tensor& values, const TokenMask& mask = {},
                          std::int64_t query_offset = 0);

/// Per-head summary of methods.md §1.5: mean normalised entropy over R, skipping NaN.
inline at::Tensor mean_normalized_entropy(const RowEntropy& e, const TokenMask& mask = {}) {
    return mean_over_rows(e.normalized, mask, e.query_offset);
}

/// Normalised entropy from nats and visible counts: nats / ln n, NaN where n <= 1.
/// `nats` [head, query_pos] float64, `n_visible` [query_pos] integer.
at::Tensor normalize_entropy(const at::Tensor& nats, const at::Tensor& n_visible);

}  // namespace attnscope::analysis
