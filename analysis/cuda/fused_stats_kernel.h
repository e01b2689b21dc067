// Torch-free launcher of the fused attention-statistics kernel (fused_stats.cu). Raw pointers
// and element strides only, so the .cu compiles with nvcc alone in a few seconds; the ATen
// wrapper is analysis/cuda/fused_stats.h.
//
// One launch covers one layer: for every (batch, query head, query row) it recomputes the scaled
// scores S = q·kᵀ·scale blockwise (bf16/fp16 on the tensor cores, fp32 with exact FMAs), turns
// them into probabilities with the row's log-sum-exp handed in (P = exp(S − lse), so the L×L map
// never exists), and reduces them on the fly to
//   per row:    entropy −Σ P ln P (nats), backward distance Σ P·(t − s), WAAD Σ P·min(t − s, W),
//               first-k sink mass Σ_{s<k} P;
//   per column: Σ_t P[t][s] (sink scores) and the FAI sum over t ∈ R with s+H_lo ≤ t ≤ s+H_hi.
// Extra memory: the outputs, O(batch·head·len).
#pragma once

#include <cstdint>

namespace attnscope::analysis::cuda {

enum class ElemType { kFloat32, kFloat16, kBFloat16 };

struct FusedStatsParams {
    const void* q = nullptr;  ///< [batch, head, len_q, head_dim], last dim contiguous
    const void* k = nullptr;  ///< [batch, kv_head, len_k, head_dim], last dim contiguous
    const float* lse = nullptr;  ///< [batch, head, len_q] natural-log log-sum-exp of scaled scores
    std::int64_t q_sb = 0, q_sh = 0, q_ss = 0;  ///< q strides (elements): batch, head, seq
    std::int64_t k_sb = 0, k_sh = 0, k_ss = 0;
    std::int64_t lse_sb = 0, lse_sh = 0;        ///< lse strides; seq stride 1
    int batch = 0, heads = 0, kv_heads = 0, head_dim = 0;
    int len_q = 0, len_k = 0;  ///< query row i sits at key slot len_k − len_q + i (causal)
    float scale = 1.f;
    int sink_k = 0;            ///< first-k sink mass over slots [0, sink_k); 0 = off
    int window = 10;           ///< WAAD clip W
    std::int64_t fai_lo = 1, fai_hi = INT64_MAX;  ///< FAI horizon [H_lo, H_hi]
    std::int64_t rows_begin = 0, rows_end = INT64_MAX;  ///< R in slot coordinates (FAI only)
    // Outputs, float32, contiguous. Row outputs [batch, head, len_q] are written; column
    // outputs [batch, head, len_k] are accumulated and must be zeroed by the caller.
    float* entropy = nullptr;
    float* distance = nullptr;
    float* waad = nullptr;
    float* sink_mass = nullptr;  ///< may be null when sink_k == 0
    float* col_sum = nullptr;
    float* fai_sum = nullptr;
};

/// True if this build holds the kernel (compiled by nvcc).
bool fused_stats_compiled();
/// Launch variant (A/B timing): 1 (default) = register cap for 3 CTAs per SM (12 warps; spills
/// a few hundred bytes at head_dim 128 and is still 5-20% faster on the H100); 0 = cap for 2
/// CTAs per SM, no spills. ATTNSCOPE_FS_VARIANT=0 selects 0 at the first launch.
void fused_stats_set_variant(int v);
/// Head dims the kernel is instantiated for (16, 32, 64, 128, 256).
bool fused_stats_supports_head_dim(int head_dim);
/// Launches on `stream` (a cudaStream_t; nullptr = the legacy default stream). Returns 0 or a
/// CUDA error code; fused_stats_error() describes it. Does not synchronise.
int fused_stats_launch(const FusedStatsParams& p, ElemType type, void* stream);
const char* fused_stats_error(int code);

}  // namespace attnscope::analysis::cuda
