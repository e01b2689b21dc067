// Internal: argument checks and the per-chunk kernels shared by the whole-tensor functions and
// the streaming accumulators. A whole layer is simply one chunk whose query offset is K - Q, so
// both paths run the same arithmetic; only the order of the column sums differs. Not a public
// header: nothing outside analysis/ includes it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/mask.h"

namespace attnscope::analysis::detail {

/// "[2, 4, 4]".
std::string shape_str(at::IntArrayRef s);

/// Throws ShapeError "<fn>: <what> must be <expected>, got <shape>".
[[noreturn]] void shape_error(const std::string& fn, const std::string& what,
                              const std::string& expected, at::IntArrayRef got);

/// Checks a pattern [head, query_pos, key_pos]: rank 3, floating point, non-empty, Q <= K.
void check_pattern(const at::Tensor& pattern, const char* fn);

/// Checks rows/window parameters (ConfigError) and valid's rank (ShapeError).
void check_mask(const TokenMask& mask, const char* fn);

/// float64 stays float64; everything else is computed in float32.
at::ScalarType compute_dtype(at::ScalarType t);

/// [K] bool on `device`: real-token flags for slots 0..K-1. `exact`: mask.valid must have
/// length K (ShapeError naming both shapes); otherwise slots beyond its length are real.
at::Tensor valid_keys(const TokenMask& mask, std::int64_t k, at::Device device, const char* fn,
                      bool exact, at::IntArrayRef pattern_shape);

/// One query chunk with its visibility. Every tensor is on the pattern's device.
struct Chunk {
    std::int64_t q_offset = 0;
    at::Tensor a;          // [head, q_chunk, key_pos] compute dtype, 0 where not visible
    at::Tensor visible;    // [q_chunk, key_pos] bool
    at::Tensor row_valid;  // [q_chunk] bool: query slot is a real token
    at::Tensor in_rows;    // [q_chunk] bool: query slot is in R
    at::Tensor offset;     // [q_chunk, key_pos] compute dtype: t - s (may be negative)
};

/// Builds the chunk; `valid_k` [K] bool from valid_keys(); requires K >= q_offset + q_chunk.
Chunk make_chunk(const at::Tensor& pattern, std::int64_t q_offset, const at::Tensor& valid_k,
                 const TokenMask& mask);

/// Σ_t a[h, t, s] over the chunk's rows, as float64 [head, key_pos].
at::Tensor column_sums(const Chunk& c);
/// Number of rows that see key s, float64 [key_pos].
at::Tensor column_counts(const Chunk& c);

/// Row entropy in nats [head, q_chunk] float64; NaN for padded rows (methods.md §1.5).
at::Tensor entropy_nats(const Chunk& c);
/// Number of visible keys per row [q_chunk] int64.
at::Tensor visible_counts(const Chunk& c);
/// Entropy of each row restricted to `subset` [K] bool and renormalised to sum 1: nats
/// [head, q_chunk] (NaN where the sub-row has no mass) and counts |subset ∩ visible| [q_chunk].
std::pair<at::Tensor, at::Tensor> subset_entropy_nats(const Chunk& c, const at::Tensor& subset);

/// Σ_{j ∈ sinks} a[t, j] [head, q_chunk] float64; NaN for padded rows. Sinks are sorted and
/// unique; those >= K are ignored.
at::Tensor sink_mass(const Chunk& c, const std::vector<std::int64_t>& sinks);

/// Σ_s a[t, s]·(t - s) [head, q_chunk] float64 (0 on padded rows).
at::Tensor distance_rows(const Chunk& c);
/// Σ_s a[t, s]·min(t - s, W) [head, q_chunk] float64; NaN on rows outside R (methods.md §5.3).
at::Tensor waad_rows(const Chunk& c, std::int64_t window);
/// FAI pieces for this chunk: Σ_{t ∈ T(s)} a[h, t, s] [head, key_pos] float64 and |T(s) ∩ chunk|
/// [key_pos] float64, with T(s) = {t ∈ R : lo <= t - s <= hi, s visible from t}.
std::pair<at::Tensor, at::Tensor> fai_parts(const Chunk& c, std::int64_t lo, std::int64_t hi);

/// NaN-filled float64 tensor on `device`.
at::Tensor nan_tensor(at::IntArrayRef shape, at::Device device);

/// Sorted, de-duplicated copy; ConfigError on negative positions.
std::vector<std::int64_t> sorted_unique(std::vector<std::int64_t> v, const char* fn,
                                        const char* what);

/// Values of a 1-D float tensor as doubles (host copy).
std::vector<double> to_vector(const at::Tensor& t);

}  // namespace attnscope::analysis::detail
