#include "probes/attention_edit.h"

#include <ATen/ATen.h>

#include <string>

#include "core/base/error.h"
#include "core/model/hooks.h"

namespace attnscope::probes::edit {

at::Tensor real_queries(const model::ForwardContext& ctx) {
    const std::int64_t b = ctx.key_mask.size(0), q = ctx.new_positions;
    return ctx.key_mask.narrow(1, ctx.past, q).to(at::kBool).view({b, 1, q, 1});
}

at::Tensor visible_keys(const model::ForwardContext& ctx, bool windowed) {
    const std::int64_t b = ctx.key_mask.size(0), K = ctx.key_mask.size(1), q = ctx.new_positions;
    const auto opts = ctx.key_mask.options().dtype(at::kLong);
    at::Tensor q_slot = at::arange(ctx.past, ctx.past + q, opts).view({1, 1, q, 1});
    at::Tensor k_slot = at::arange(0, K, opts).view({1, 1, 1, K});
    at::Tensor v = (k_slot <= q_slot).logical_and(ctx.key_mask.to(at::kBool).view({b, 1, 1, K}));
    if (windowed && ctx.sliding_window > 0) v = v.logical_and((q_slot - k_slot) < ctx.sliding_window);
    return v.logical_and(real_queries(ctx));
}

at::Tensor sink_scores(const at::Tensor& pattern, const at::Tensor& visible) {
    at::Tensor vis = visible.to(pattern.scalar_type());
    at::Tensor sums = (pattern * vis).sum(2);              // [b, H, K]
    at::Tensor count = vis.sum(2);                          // [b, 1, K]
    return at::where(count > 0, sums / count.clamp_min(1), at::zeros_like(sums));
}

at::Tensor act_sinks(const at::Tensor& scores, const at::Tensor& threshold, const at::Tensor& key_real,
                     const at::Tensor& last_real, bool exclude_last) {
    const std::int64_t b = scores.size(0), K = scores.size(2);
    at::Tensor thr = threshold.dim() == 0 ? threshold : threshold.view({b, 1, 1});
    at::Tensor det = (scores > thr).logical_and(key_real.to(at::kBool).view({b, 1, K}));
    if (exclude_last) {
        at::Tensor pos = at::arange(K, last_real.options()).view({1, 1, K});
        det = det.logical_and(pos != last_real.view({b, 1, 1}));
    }
    // Exempt the lowest-position detected key (normally token 0).
    return det.logical_and(det.to(at::kLong).cumsum(-1) > 1);
}

at::Tensor act_calibrate(const at::Tensor& pattern, const at::Tensor& sinks, double beta,
                         const at::Tensor& rows) {
    at::Tensor S = sinks.unsqueeze(2);                               // [b, H, 1, K]
    at::Tensor m = pattern.masked_fill(S.logical_not(), 0).sum(-1, true);  // [b, H, q, 1]
    at::Tensor c = pattern.masked_fill(S, 0);
    at::Tensor denom = c.sum(-1, true);
    at::Tensor ok = rows.logical_and(denom > 0).logical_and(m > 0);
    at::Tensor moved = c * ((1.0 - beta) * m / denom.clamp_min(1e-30));
    at::Tensor out = at::where(S, pattern * beta, pattern + moved);
    return at::where(ok, out, pattern);
}

at::Tensor var_phi(const at::Tensor& x, const std::vector<std::int64_t>& dims) {
    const std::int64_t D = x.size(-1);
    if (dims.empty()) throw ConfigError("VAR: no sink dimensions given");
    for (std::int64_t d : dims)
        if (d < 0 || d >= D)
            throw ConfigError("VAR: sink dimension " + std::to_string(d) + " is outside the model's [0, " +
                              std::to_string(D) + ") (d_model)");
    at::Tensor xf = x.to(at::kFloat);
    at::Tensor rms = (xf.pow(2).mean(-1, true) + 1e-6).sqrt();
    at::Tensor idx = at::tensor(dims, at::TensorOptions().dtype(at::kLong)).to(x.device());
    return (xf.index_select(-1, idx) / rms).abs().amax(-1);
}

at::Tensor var_redistribute(const at::Tensor& pattern, const at::Tensor& sinks, const at::Tensor& target,
                            const at::Tensor& rows, const VarParams& p, at::Tensor* selected) {
    const std::int64_t b = pattern.size(0), K = pattern.size(3);
    at::Tensor Sk = sinks.to(at::kBool).view({b, 1, 1, K});
    at::Tensor T = target.to(at::kBool).view({b, 1, 1, K});
    at::Tensor has_vis_sink = Sk.logical_and(T).any(-1, true);        // [b, 1, 1, 1]
    at::Tensor Vplus = T.logical_and(Sk.logical_not());
    at::Tensor vis = pattern.masked_fill(T.logical_not(), 0).sum(-1, true);        // [b, H, q, 1]
    at::Tensor nonsink = pattern.masked_fill(Vplus.logical_not(), 0).sum(-1, true);
    at::Tensor r = nonsink / vis.clamp_min(1e-30);
    at::Tensor sel = rows.logical_and(has_vis_sink)
                         .logical_and(vis >= p.vis_min)
                         .logical_and(vis > 0)
                         .logical_and(r >= p.rho)
                         .logical_and(nonsink > 0);
    at::Tensor omega = pattern.masked_fill(Sk.logical_not(), 0).sum(-1, true) * p.moved;
    at::Tensor out = at::where(Sk, pattern * (1.0 - p.moved),
                               at::where(Vplus, pattern + pattern * (omega / nonsink.clamp_min(1e-30)), pattern));
    if (selected) *selected = sel.squeeze(-1);
    return at::where(sel, out, pattern);
}

at::Tensor softpag(const at::Tensor& pattern, std::int64_t past, double u, const at::Tensor& rows) {
    const std::int64_t q = pattern.size(2), K = pattern.size(3);
    const auto opts = at::TensorOptions().dtype(at::kLong).device(pattern.device());
    at::Tensor diag = (at::arange(K, opts).view({1, 1, 1, K}) == at::arange(past, past + q, opts).view({1, 1, q, 1}))
                          .to(pattern.scalar_type());
    return at::where(rows, pattern * (1.0 - u) + diag * u, pattern);
}

at::Tensor uniform_rows(const at::Tensor& visible) {
    at::Tensor v = visible.to(at::kFloat);
    return v / v.sum(-1, true).clamp_min(1);
}

}  // namespace attnscope::probes::edit
