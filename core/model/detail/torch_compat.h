// The one place that knows which LibTorch version we build against. Debian 12 ships LibTorch
// 1.13 (CPU, CI); the GPU machine uses the pip wheel's LibTorch 2.x. Everything version-specific
// goes through the functions here; nothing else in the tree tests TORCH_VERSION_*.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/api/include/torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#if TORCH_VERSION_MAJOR >= 2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 5)
#define ATTNSCOPE_HAS_SDPA_GQA 1
#else
#define ATTNSCOPE_HAS_SDPA_GQA 0
#endif

namespace attnscope::model::detail {

/// Repeats each KV head n_rep times along dim 1: [b, kv, s, d] -> [b, kv*n_rep, s, d]
/// (transformers' repeat_kv: query head h uses KV head h / n_rep).
inline at::Tensor repeat_kv(const at::Tensor& x, std::int64_t n_rep) {
    if (n_rep == 1) return x;
    const auto b = x.size(0), kv = x.size(1), s = x.size(2), d = x.size(3);
    return x.unsqueeze(2).expand({b, kv, n_rep, s, d}).reshape({b, kv * n_rep, s, d});
}

/// Fused attention output [b, H, q, d] for q [b, H, q, d], k/v [b, KV, k, d].
/// `allowed` is a bool mask broadcastable to [b, H, q, k] (true = may attend) or undefined;
/// `is_causal` (only with allowed undefined and q == k) applies the causal mask.
/// LibTorch >= 2.0 uses at::scaled_dot_product_attention (flash / memory-efficient / cuDNN
/// kernels on CUDA); 1.13 has no public SDPA, so it falls back to the math path.
inline at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const at::Tensor& allowed, bool is_causal, double scale) {
    const std::int64_t n_rep = q.size(1) / k.size(1);
#if TORCH_VERSION_MAJOR >= 2
    c10::optional<at::Tensor> mask;
    if (allowed.defined()) mask = allowed;
#if ATTNSCOPE_HAS_SDPA_GQA
    return at::scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal, scale,
                                            /*enable_gqa=*/n_rep > 1);
#else
    return at::scaled_dot_product_attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask,
                                            0.0, is_causal, scale);
#endif
#else
    // Math path in query chunks, so memory stays O(chunk x K) like a fused kernel's.
    const at::Tensor kt = repeat_kv(k, n_rep).transpose(-1, -2);  // [b, H, d, k]
    const at::Tensor vr = repeat_kv(v, n_rep);
    const std::int64_t b = q.size(0), h = q.size(1), nq = q.size(2), nk = k.size(2);
    const std::int64_t rows = std::max<std::int64_t>(1, (std::int64_t{1} << 24) / (b * h * nk));
    std::vector<at::Tensor> out;
    for (std::int64_t q0 = 0; q0 < nq; q0 += rows) {
        const std::int64_t c = std::min(rows, nq - q0);
        at::Tensor scores = at::matmul(q.narrow(2, q0, c), kt) * scale;
        if (allowed.defined()) {
            const at::Tensor a = allowed.size(2) == 1 ? allowed : allowed.narrow(2, q0, c);
            scores = scores.masked_fill(a.logical_not(), -std::numeric_limits<float>::infinity());
        } else if (is_causal) {
            // Query q0 + i sees keys 0 .. q0 + i (here nq == nk).
            auto qi = at::arange(q0, q0 + c, q.options().dtype(at::kLong)).view({c, 1});
            auto kj = at::arange(0, nk, q.options().dtype(at::kLong)).view({1, nk});
            scores = scores.masked_fill(kj > qi, -std::numeric_limits<float>::infinity());
        }
        at::Tensor p = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
        out.push_back(at::matmul(p, vr));
    }
    return out.size() == 1 ? out[0] : at::cat(out, 2);
#endif
}

/// Causal prefill attention (q, k, v as sdpa(), len_q == len_k) that also returns the row
/// log-sum-exp of the scaled scores, `lse` float32 [b, H, q] (natural log), for the attention
/// statistics tap (core/model/model.h). CUDA bf16/fp16: cuDNN's kernel (what SDPA picks on
/// Hopper; FA2 is ~1.8x slower there at 32k), checked once per process on row 0 (whose lse is
/// scale·q0·k0), else the flash kernel; CUDA fp32: the memory-efficient kernel; elsewhere (CPU,
/// LibTorch 1.13) the chunked math path.
inline at::Tensor sdpa_causal_lse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  double scale, at::Tensor& lse) {
    const std::int64_t n_rep = q.size(1) / k.size(1);
#if TORCH_VERSION_MAJOR >= 2
    if (q.is_cuda()) {
        at::Tensor z_out;
        const bool half = q.scalar_type() == at::kHalf || q.scalar_type() == at::kBFloat16;
        // 0 untested; 1 cuDNN with native GQA; 2 cuDNN with expanded KV heads; -1 unusable.
        static int cudnn_state = 0;
        auto try_cudnn = [&](bool expand) -> bool {
            try {
                auto r = at::_scaled_dot_product_cudnn_attention(
                    q, expand ? repeat_kv(k, n_rep) : k, expand ? repeat_kv(v, n_rep) : v,
                    c10::optional<at::Tensor>(), /*compute_log_sumexp=*/true, 0.0,
                    /*is_causal=*/true, false, scale);
                at::Tensor l = std::get<1>(r).reshape({q.size(0), q.size(1), q.size(2)}).to(at::kFloat);
                if (cudnn_state <= 0) {  // row 0 sees only key 0: lse = scale·q0·k0
                    const at::Tensor q0 = q.select(2, 0).select(1, 0).select(0, 0).to(at::kFloat);
                    const at::Tensor k0 = k.select(2, 0).select(1, 0).select(0, 0).to(at::kFloat);
                    const double want = (q0 * k0).sum().item<double>() * scale;
                    const double got = l[0][0][0].item<double>();
                    if (std::abs(got - want) > 1e-3 * (1.0 + std::abs(want))) return false;
                }
                lse = l;
                z_out = std::get<0>(r);
                return true;
            } catch (const c10::Error&) {
                return false;
            }
        };
        if (half && cudnn_state >= 0) {
            if (cudnn_state == 0) {
                if (n_rep > 1 && try_cudnn(false)) cudnn_state = 1;
                else if (try_cudnn(true)) cudnn_state = 2;
                else cudnn_state = -1;
                if (cudnn_state > 0) return z_out;
            } else if (try_cudnn(cudnn_state == 2)) {
                return z_out;
            }
        }
        if (half && q.size(-1) <= 256) {
            try {
                auto r = at::_scaled_dot_product_flash_attention(q, k, v, 0.0, /*is_causal=*/true,
                                                                 false, scale);
                lse = std::get<1>(r);
                return std::get<0>(r);
            } catch (const c10::Error&) {
                // fall through (e.g. a flash build without GQA): expanded heads below
            }
        }
        auto r = at::_scaled_dot_product_efficient_attention(
            q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), c10::optional<at::Tensor>(),
            /*compute_log_sumexp=*/true, 0.0, /*is_causal=*/true, scale);
        lse = std::get<1>(r).narrow(2, 0, q.size(2)).contiguous();
        return std::get<0>(r);
    }
#endif
    const at::Tensor kt = repeat_kv(k, n_rep).transpose(-1, -2);
    const at::Tensor vr = repeat_kv(v, n_rep);
    const std::int64_t b = q.size(0), h = q.size(1), nq = q.size(2), nk = k.size(2);
    const std::int64_t rows = std::max<std::int64_t>(1, (std::int64_t{1} << 24) / (b * h * nk));
    std::vector<at::Tensor> out, lses;
    for (std::int64_t q0 = 0; q0 < nq; q0 += rows) {
        const std::int64_t c = std::min(rows, nq - q0);
        at::Tensor scores = at::matmul(q.narrow(2, q0, c), kt).to(at::kFloat) * scale;
        auto qi = at::arange(nk - nq + q0, nk - nq + q0 + c, q.options().dtype(at::kLong)).view({c, 1});
        auto kj = at::arange(0, nk, q.options().dtype(at::kLong)).view({1, nk});
        scores = scores.masked_fill(kj > qi, -std::numeric_limits<float>::infinity());
        lses.push_back(at::logsumexp(scores, -1));
        out.push_back(at::matmul(at::softmax(scores, -1).to(q.scalar_type()), vr));
    }
    lse = lses.size() == 1 ? lses[0] : at::cat(lses, 2);
    return out.size() == 1 ? out[0] : at::cat(out, 2);
}

}  // namespace attnscope::model::detail
