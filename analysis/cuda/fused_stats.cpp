// ATen side of the fused attention statistics: argument checks, the kernel launch on the
// caller's current CUDA stream, the chunked ATen path, and the conversion to LayerStats.
#include "analysis/cuda/fused_stats.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "analysis/cuda/fused_stats_kernel.h"
#include "analysis/entropy.h"
#include "core/base/error.h"

namespace attnscope::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_inputs(const at::Tensor& q, const at::Tensor& k, const FusedStatsOptions& o,
                  const char* fn) {
    if (!q.defined() || !k.defined() || q.dim() != 4 || k.dim() != 4)
        throw ShapeError(std::string(fn) + ": q and k must be [batch, head, pos, d_head]");
    if (q.size(0) != k.size(0) || q.size(3) != k.size(3))
        throw ShapeError(std::string(fn) + ": q and k differ in batch or d_head");
    if (k.size(1) < 1 || q.size(1) % k.size(1) != 0)
        throw ShapeError(std::string(fn) + ": query heads " + std::to_string(q.size(1)) +
                         " are not a multiple of key heads " + std::to_string(k.size(1)));
    if (q.size(2) > k.size(2))
        throw ShapeError(std::string(fn) + ": more query rows than keys");
    if (q.device() != k.device()) throw ConfigError(std::string(fn) + ": q and k on different devices");
    if (o.sink_k < 0 || o.window < 0 || o.horizon.lo < 0 || o.horizon.hi < o.horizon.lo ||
        o.rows_begin < 0 || o.rows_end < o.rows_begin)
        throw ConfigError(std::string(fn) + ": negative sink_k / window / horizon or empty ranges");
}

// Keys repeated to the query heads: [b, H, len_k, d].
at::Tensor expand_kv(const at::Tensor& k, std::int64_t heads) {
    const std::int64_t rep = heads / k.size(1);
    if (rep == 1) return k;
    return k.unsqueeze(2)
        .expand({k.size(0), k.size(1), rep, k.size(2), k.size(3)})
        .reshape({k.size(0), heads, k.size(2), k.size(3)});
}

#ifdef ATTNSCOPE_HAVE_CUDA_KERNELS
// c10::Stream::native_handle() (the cudaStream_t) exists in newer LibTorch only; without it,
// the default stream (id 0) is the legacy null stream, which is what the kernel then uses.
template <typename S>
auto native_stream(const S& s, int) -> decltype(s.native_handle()) {
    return s.native_handle();
}
template <typename S>
void* native_stream(const S& s, long) {
    if (s.id() != 0)
        throw ConfigError("fused_attention_stats: this LibTorch cannot name a non-default CUDA stream");
    return nullptr;
}

void* current_stream(const at::Device& device) {
    const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(device.type());
    return native_stream(impl->getStream(device), 0);
}
#endif

std::int64_t query_rows_per_chunk(std::int64_t b, std::int64_t h, std::int64_t nk) {
    return std::max<std::int64_t>(1, (std::int64_t{1} << 23) / std::max<std::int64_t>(1, b * h * nk));
}

}  // namespace

bool fused_stats_kernel_available() {
#ifdef ATTNSCOPE_HAVE_CUDA_KERNELS
    return cuda::fused_stats_compiled();
#else
    return false;
#endif
}

void set_fused_stats_variant(int variant) {
#ifdef ATTNSCOPE_HAVE_CUDA_KERNELS
    cuda::fused_stats_set_variant(variant);
#else
    (void)variant;
#endif
}

at::Tensor attention_row_lse(const at::Tensor& q, const at::Tensor& k, double scale) {
    check_inputs(q, k, {}, "attention_row_lse");
    const std::int64_t b = q.size(0), h = q.size(1), nq = q.size(2), nk = k.size(2);
    const at::Tensor kt = expand_kv(k, h).to(at::kDouble).transpose(-1, -2);
    const std::int64_t rows = query_rows_per_chunk(b, h, nk);
    std::vector<at::Tensor> out;
    for (std::int64_t q0 = 0; q0 < nq; q0 += rows) {
        const std::int64_t c = std::min(rows, nq - q0);
        at::Tensor s = at::matmul(q.narrow(2, q0, c).to(at::kDouble), kt) * scale;
        auto qi = at::arange(nk - nq + q0, nk - nq + q0 + c, q.options().dtype(at::kLong)).view({c, 1});
        auto kj = at::arange(0, nk, q.options().dtype(at::kLong)).view({1, nk});
        s = s.masked_fill(kj > qi, -std::numeric_limits<double>::infinity());
        out.push_back(at::logsumexp(s, -1).to(at::kFloat));
    }
    return out.size() == 1 ? out[0] : at::cat(out, 2);
}

FusedStats attention_stats_aten(const at::Tensor& q, const at::Tensor& k, double scale,
                                const FusedStatsOptions& o) {
    check_inputs(q, k, o, "attention_stats_aten");
    const std::int64_t b = q.size(0), h = q.size(1), nq = q.size(2), nk = k.size(2);
    const auto f64 = q.options().dtype(at::kDouble);
    FusedStats r;
    r.len_q = nq;
    r.len_k = nk;
    r.options = o;
    r.entropy = at::empty({b, h, nq}, f64);
    r.distance = at::empty({b, h, nq}, f64);
    r.waad = at::empty({b, h, nq}, f64);
    if (o.sink_k > 0) r.sink_mass = at::empty({b, h, nq}, f64);
    r.column_sums = at::zeros({b, h, nk}, f64);
    r.fai_sums = at::zeros({b, h, nk}, f64);
    const at::Tensor kt = expand_kv(k, h).to(at::kDouble).transpose(-1, -2);
    const std::int64_t rows = query_rows_per_chunk(b, h, nk);
    const auto lng = q.options().dtype(at::kLong);
    const at::Tensor kj = at::arange(0, nk, lng).view({1, nk});
    for (std::int64_t q0 = 0; q0 < nq; q0 += rows) {
        const std::int64_t c = std::min(rows, nq - q0);
        const at::Tensor ti = at::arange(nk - nq + q0, nk - nq + q0 + c, lng).view({c, 1});
        const at::Tensor visible = kj <= ti;  // [c, nk]
        at::Tensor s = at::matmul(q.narrow(2, q0, c).to(at::kDouble), kt) * scale;
        s = s.masked_fill(visible.logical_not(), -std::numeric_limits<double>::infinity());
        const at::Tensor p = at::softmax(s, -1);  // [b, h, c, nk]
        const at::Tensor d = (ti - kj).clamp_min(0).to(at::kDouble);  // [c, nk]
        r.entropy.narrow(2, q0, c).copy_(-at::where(p > 0, p * p.log(), at::zeros({}, f64)).sum(-1));
        r.distance.narrow(2, q0, c).copy_((p * d).sum(-1));
        r.waad.narrow(2, q0, c).copy_((p * d.clamp_max(double(o.window))).sum(-1));
        if (o.sink_k > 0)
            r.sink_mass.narrow(2, q0, c).copy_(p.narrow(-1, 0, std::min(o.sink_k, nk)).sum(-1));
        r.column_sums.add_(p.sum(2));
        const at::Tensor in_r = (ti >= o.rows_begin).logical_and(ti < o.rows_end);
        at::Tensor band = (ti - kj >= o.horizon.lo).logical_and(visible).logical_and(in_r);
        if (o.horizon.hi != kUnbounded) band = band.logical_and(ti - kj <= o.horizon.hi);
        r.fai_sums.add_((p * band.to(at::kDouble)).sum(2));
    }
    return r;
}

FusedStats fused_attention_stats(const at::Tensor& q, const at::Tensor& k, const at::Tensor& lse,
                                 double scale, const FusedStatsOptions& o) {
    check_inputs(q, k, o, "fused_attention_stats");
#ifndef ATTNSCOPE_HAVE_CUDA_KERNELS
    return attention_stats_aten(q, k, scale, o);
#else
    const auto st = q.scalar_type();
    const bool typed = (st == at::kBFloat16 || st == at::kHalf || st == at::kFloat) &&
                       k.scalar_type() == st;
    const std::int64_t d = q.size(3);
    if (!q.is_cuda() || !typed || !cuda::fused_stats_supports_head_dim(int(d)) || q.size(2) == 0)
        return attention_stats_aten(q, k, scale, o);
    const std::int64_t b = q.size(0), h = q.size(1), nq = q.size(2), nk = k.size(2);
    if (nk > std::numeric_limits<int>::max() / 2)
        throw ConfigError("fused_attention_stats: sequence too long for the kernel");
    // cp.async copies 16-byte pieces: rows must start on 16-byte boundaries.
    auto prep = [&](const at::Tensor& x) {
        const std::int64_t es = x.element_size();
        const bool ok = x.stride(3) == 1 && (x.stride(2) * es) % 16 == 0 &&
                        (x.stride(1) * es) % 16 == 0 && (x.stride(0) * es) % 16 == 0 &&
                        reinterpret_cast<std::uintptr_t>(x.data_ptr()) % 16 == 0;
        return ok ? x : x.contiguous();
    };
    const at::Tensor qc = prep(q), kc = prep(k);
    at::Tensor l = lse.defined() ? lse : attention_row_lse(q, k, scale);
    if (l.dim() != 3 || l.size(0) != b || l.size(1) != h || l.size(2) != nq)
        throw ShapeError("fused_attention_stats: lse must be [batch, head, len_q]");
    l = l.to(q.device(), at::kFloat);
    if (l.stride(2) != 1) l = l.contiguous();

    const auto f32 = q.options().dtype(at::kFloat);
    FusedStats r;
    r.len_q = nq;
    r.len_k = nk;
    r.options = o;
    r.entropy = at::empty({b, h, nq}, f32);
    r.distance = at::empty({b, h, nq}, f32);
    r.waad = at::empty({b, h, nq}, f32);
    if (o.sink_k > 0) r.sink_mass = at::empty({b, h, nq}, f32);
    r.column_sums = at::zeros({b, h, nk}, f32);
    r.fai_sums = at::zeros({b, h, nk}, f32);

    cuda::FusedStatsParams p;
    p.q = qc.data_ptr();
    p.k = kc.data_ptr();
    p.lse = l.data_ptr<float>();
    p.q_sb = qc.stride(0), p.q_sh = qc.stride(1), p.q_ss = qc.stride(2);
    p.k_sb = kc.stride(0), p.k_sh = kc.stride(1), p.k_ss = kc.stride(2);
    p.lse_sb = l.stride(0), p.lse_sh = l.stride(1);
    p.batch = int(b), p.heads = int(h), p.kv_heads = int(k.size(1)), p.head_dim = int(d);
    p.len_q = int(nq), p.len_k = int(nk);
    p.scale = float(scale);
    p.sink_k = int(std::min<std::int64_t>(o.sink_k, nk));
    p.window = int(std::min<std::int64_t>(o.window, std::numeric_limits<int>::max()));
    p.fai_lo = o.horizon.lo;
    p.fai_hi = o.horizon.hi;
    p.rows_begin = o.rows_begin;
    p.rows_end = o.rows_end;
    p.entropy = r.entropy.data_ptr<float>();
    p.distance = r.distance.data_ptr<float>();
    p.waad = r.waad.data_ptr<float>();
    p.sink_mass = o.sink_k > 0 ? r.sink_mass.data_ptr<float>() : nullptr;
    p.col_sum = r.column_sums.data_ptr<float>();
    p.fai_sum = r.fai_sums.data_ptr<float>();
    const auto type = st == at::kBFloat16 ? cuda::ElemType::kBFloat16
                      : st == at::kHalf   ? cuda::ElemType::kFloat16
                                          : cuda::ElemType::kFloat32;
    c10::DeviceGuard guard(q.device());
    const int err = cuda::fused_stats_launch(p, type, current_stream(q.device()));
    if (err != 0)
        throw ConfigError(std::string("fused_attention_stats: CUDA launch failed: ") +
                          cuda::fused_stats_error(err));
    return r;
#endif
}

LayerStats to_layer_stats(const FusedStats& s, std::int64_t b) {
    if (s.len_q != s.len_k)
        throw ShapeError("to_layer_stats: needs a prefill (len_q == len_k)");
    if (b < 0 || b >= s.entropy.size(0)) throw ShapeError("to_layer_stats: batch index out of range");
    const std::int64_t n = s.len_k, heads = s.entropy.size(1);
    const FusedStatsOptions& o = s.options;
    const auto dev = s.entropy.device();
    const auto f64 = at::TensorOptions().dtype(at::kDouble).device(dev);
    auto pick = [&](const at::Tensor& x) { return x.select(0, b).to(at::kDouble).clone(); };

    LayerStats r;
    r.n_pos = n;
    r.rows_seen = n;
    r.window = o.window;
    r.horizon = o.horizon;
    const at::Tensor slots = at::arange(0, n, f64);
    r.column_sums = pick(s.column_sums);
    r.column_counts = double(n) - slots;  // T − s queries see key s
    r.sink_scores = r.column_sums / r.column_counts.unsqueeze(0);

    RowEntropy& e = r.entropy;
    e.query_offset = 0;
    e.nats = pick(s.entropy);
    e.bits = e.nats / std::log(2.0);
    e.n_visible = at::arange(1, n + 1, f64.dtype(at::kLong));
    e.normalized = normalize_entropy(e.nats, e.n_visible);
    const TokenMask mask = TokenMask::response(o.rows_begin, o.rows_end);
    r.mean_entropy = mean_over_rows(e.normalized, mask, 0);
    r.mean_entropy_nats = mean_over_rows(e.nats, mask, 0);
    if (s.sink_mass.defined()) r.sink_mass = pick(s.sink_mass);

    const std::int64_t rb = std::min(o.rows_begin, n), re = std::min(o.rows_end, n);
    const at::Tensor dist = pick(s.distance);
    if (re > rb)
        r.distance = dist.narrow(1, rb, re - rb).sum(1) / double(re - rb);
    else
        r.distance = at::full({heads}, kNaN, f64);
    const at::Tensor in_r = (slots >= double(rb)).logical_and(slots < double(re));
    r.waad = at::where(in_r.unsqueeze(0), pick(s.waad), at::full({}, kNaN, f64));
    r.fai_sums = pick(s.fai_sums);
    // |T(s)| = #{t ∈ R : s + H_lo <= t <= min(n − 1, s + H_hi)}
    at::Tensor lo = (slots + double(o.horizon.lo)).clamp_min(double(rb));
    at::Tensor hi = o.horizon.hi == kUnbounded
                        ? at::full({n}, double(re - 1), f64)
                        : (slots + double(o.horizon.hi)).clamp_max(double(re - 1));
    r.fai_counts = (hi - lo + 1.0).clamp_min(0.0);
    return r;
}

}  // namespace attnscope::analysis
