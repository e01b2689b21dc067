// Per-head attention statistics straight from q, k and each row's log-sum-exp, without the
// [query_pos, key_pos] map: on CUDA tensors a fused kernel (fused_stats.cu, blockwise, O(len)
// extra memory); elsewhere a chunked ATen path with the same contract (float64 math). Feeds the
// same result type as the streaming accumulators (LayerStats, analysis/stream.h) so
// preplan_from_stats(), sink ratios and summaries work unchanged.
//
// Definitions (methods.md §1.1, §1.3, §1.5, §5.2, §5.3), for query slot t and key slot s ≤ t,
// P[t][s] = exp(scale·q_t·k_s − lse_t):
//   entropy_t  = −Σ_s P ln P (nats)             distance_t = Σ_s P·(t − s)
//   waad_t     = Σ_s P·min(t − s, W)             sink_mass_t = Σ_{s < k} P
//   column_s   = Σ_t P[t][s]                     fai_s = Σ_{t ∈ R, s+H_lo ≤ t ≤ s+H_hi} P[t][s]
// Causal, no padding, no sliding window: the prefill of an unpadded batch.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "analysis/mask.h"
#include "analysis/preplan.h"
#include "analysis/stream.h"

namespace attnscope::analysis {

struct FusedStatsOptions {
    /// First-k sink mass over slots [0, sink_k) (StreamingLLM keeps 4); 0 = off.
    std::int64_t sink_k = 4;
    std::int64_t window = 10;                     ///< WAAD W
    FaiHorizon horizon = FaiHorizon::analysis();  ///< FAI [H_lo, H_hi]
    std::int64_t rows_begin = 0;                  ///< R = [rows_begin, rows_end) (slots)
    std::int64_t rows_end = kUnbounded;
};

/// Row statistics [batch, head, len_q], column statistics [batch, head, len_k]; float32 from the
/// kernel, float64 from the ATen path; on q's device.
struct FusedStats {
    at::Tensor entropy, distance, waad, sink_mass;  ///< sink_mass undefined when sink_k == 0
    at::Tensor column_sums, fai_sums;
    std::int64_t len_q = 0, len_k = 0;
    FusedStatsOptions options;
};

/// True when this build contains the CUDA kernel.
bool fused_stats_kernel_available();
/// Kernel launch variant for A/B timing (1 default, 0: see fused_stats_kernel.h). No effect
/// without the kernel.
void set_fused_stats_variant(int variant);

/// Row log-sum-exp of the scaled causal scores, float32 [batch, head, len_q], in query chunks
/// (memory O(chunk · len_k)). q [b, H, len_q, d], k [b, G, len_k, d], H a multiple of G.
at::Tensor attention_row_lse(const at::Tensor& q, const at::Tensor& k, double scale);

/// Statistics of one layer. q [b, H, len_q, d] and k [b, G, len_k, d] (any strides; H a
/// multiple of G), query row i at slot len_k − len_q + i; `lse` [b, H, len_q] float32 (e.g. the
/// SDPA kernel's) or undefined (then attention_row_lse). CUDA tensors of bf16/fp16/fp32 with
/// d in {16, 32, 64, 128, 256} run the fused kernel; anything else runs attention_stats_aten.
/// Throws ShapeError / ConfigError for bad shapes or options.
FusedStats fused_attention_stats(const at::Tensor& q, const at::Tensor& k, const at::Tensor& lse,
                                 double scale, const FusedStatsOptions& options = {});

/// The chunked ATen path (float64 probabilities, one query chunk at a time), on q's device.
FusedStats attention_stats_aten(const at::Tensor& q, const at::Tensor& k, double scale,
                                const FusedStatsOptions& options = {});

/// LayerStats of batch element `b` of a prefill (len_q == len_k), equal to what a
/// LayerAccumulator with {sinks, entropy, distance, preplan, sink_set = 0..sink_k−1, window,
/// horizon} and TokenMask::response(rows_begin, rows_end) returns for the same pattern.
LayerStats to_layer_stats(const FusedStats& stats, std::int64_t b);

}  // namespace attnscope::analysis
