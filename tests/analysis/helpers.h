// Test helpers for analysis/: random causal patterns, padding, NaN-aware comparison, and
// straightforward float64 loop implementations of the metrics (the reference the vectorised and
// streamed code must match).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "analysis/mask.h"

namespace attnscope::analysis::testing {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Row-major float64 tensor from nested initializer values.
inline at::Tensor mat(const std::vector<std::vector<double>>& rows) {
    const auto r = static_cast<std::int64_t>(rows.size());
    const auto c = static_cast<std::int64_t>(rows.front().size());
    at::Tensor t = at::zeros({r, c}, at::kDouble);
    for (std::int64_t i = 0; i < r; ++i)
        for (std::int64_t j = 0; j < c && j < static_cast<std::int64_t>(rows[i].size()); ++j)
            t[i][j] = rows[i][j];
    return t;
}

/// Causal matrix from ragged rows (row i has i+1 entries).
inline at::Tensor causal(const std::vector<std::vector<double>>& rows) {
    const auto n = static_cast<std::int64_t>(rows.size());
    at::Tensor t = at::zeros({n, n}, at::kDouble);
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < static_cast<std::int64_t>(rows[i].size()); ++j)
            t[i][j] = rows[i][j];
    return t;
}

/// Test vector T1 of methods.md §1.6 as [1, 4, 4].
inline at::Tensor t1() {
    return causal({{1.0}, {0.6, 0.4}, {0.6, 0.3, 0.1}, {0.5, 0.35, 0.07, 0.08}}).unsqueeze(0);
}

/// Random causal post-softmax pattern [heads, n, n] in float64; some heads get a strong
/// first-token sink so sink flags and classes vary.
inline at::Tensor random_pattern(std::int64_t heads, std::int64_t n, std::uint64_t seed) {
    at::manual_seed(seed);
    at::Tensor scores = at::randn({heads, n, n}, at::kDouble) * 2.0;
    at::Tensor bias = at::rand({heads, 1, 1}, at::kDouble) * 6.0;
    scores.select(2, 0).add_(bias.squeeze(-1));
    at::Tensor allowed = at::ones({n, n}, at::kBool).tril();
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
    return at::softmax(scores, -1);
}

/// Embeds `real` [heads, n, n] after `pad` left-padding slots the way the model does: padded
/// keys get 0, padded query rows attend only to themselves. Returns [heads, pad+n, pad+n] and
/// sets `valid` [pad+n] bool.
inline at::Tensor left_pad(const at::Tensor& real, std::int64_t pad, at::Tensor& valid) {
    const auto h = real.size(0), n = real.size(1);
    at::Tensor p = at::zeros({h, pad + n, pad + n}, real.options());
    for (std::int64_t i = 0; i < pad; ++i) p.select(1, i).select(1, i).fill_(1.0);
    p.narrow(1, pad, n).narrow(2, pad, n).copy_(real);
    valid = at::cat({at::zeros({pad}, at::kBool), at::ones({n}, at::kBool)});
    return p;
}

/// Max |a - b| over entries where both are finite; -1 if NaN positions differ. CPU float64.
inline double max_diff(const at::Tensor& a, const at::Tensor& b) {
    at::Tensor x = a.to(at::kCPU, at::kDouble), y = b.to(at::kCPU, at::kDouble);
    if (x.sizes() != y.sizes()) return -2;
    if (!at::equal(x.isnan(), y.isnan())) return -1;
    at::Tensor keep = x.isnan().logical_not();
    if (keep.sum().item<std::int64_t>() == 0) return 0;
    return (x - y).abs().masked_select(keep).max().item<double>();
}

/// Message of the exception `f` throws ("" if none).
inline std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

// ---- float64 reference loops (methods.md formulas, literally) ------------------------------

struct Reference {
    at::Tensor alpha;     // [h, n]
    at::Tensor nats;      // [h, n]
    at::Tensor norm;      // [h, n]
    at::Tensor distance;  // [h]
    at::Tensor waad;      // [h, n]
    at::Tensor fai;       // [h, n]
    at::Tensor mass;      // [h, n] for S
};

inline Reference reference(const at::Tensor& pattern, const TokenMask& m, std::int64_t window,
                           std::int64_t lo, std::int64_t hi, const std::vector<std::int64_t>& sinks) {
    at::Tensor p = pattern.to(at::kDouble).contiguous();
    const auto h = p.size(0), n = p.size(1);
    auto A = p.accessor<double, 3>();
    std::vector<bool> real(static_cast<size_t>(n), true);
    if (m.valid.defined()) {
        at::Tensor v = m.valid.to(at::kBool);
        for (std::int64_t i = 0; i < n; ++i) real[i] = v[i].item<bool>();
    }
    auto vis = [&](std::int64_t t, std::int64_t s) {
        return s <= t && real[t] && real[s] && (t - s) < m.attention_window;
    };
    auto in_r = [&](std::int64_t t) { return real[t] && t >= m.rows_begin && t < m.rows_end; };
    Reference r;
    r.alpha = at::full({h, n}, kNaN, at::kDouble);
    r.nats = at::full({h, n}, kNaN, at::kDouble);
    r.norm = at::full({h, n}, kNaN, at::kDouble);
    r.distance = at::full({h}, kNaN, at::kDouble);
    r.waad = at::full({h, n}, kNaN, at::kDouble);
    r.fai = at::full({h, n}, kNaN, at::kDouble);
    r.mass = at::full({h, n}, kNaN, at::kDouble);
    auto al = r.alpha.accessor<double, 2>(), na = r.nats.accessor<double, 2>(),
         no = r.norm.accessor<double, 2>(), wa = r.waad.accessor<double, 2>(),
         fa = r.fai.accessor<double, 2>(), ma = r.mass.accessor<double, 2>();
    auto di = r.distance.accessor<double, 1>();
    for (std::int64_t x = 0; x < h; ++x) {
        for (std::int64_t k = 0; k < n; ++k) {
            double sum = 0;
            std::int64_t cnt = 0;
            for (std::int64_t t = 0; t < n; ++t)
                if (vis(t, k)) {
                    sum += A[x][t][k];
                    ++cnt;
                }
            if (cnt > 0) al[x][k] = sum / cnt;
            double fs = 0;
            std::int64_t fc = 0;
            for (std::int64_t t = 0; t < n; ++t)
                if (in_r(t) && vis(t, k) && t - k >= lo && t - k <= hi) {
                    fs += A[x][t][k];
                    ++fc;
                }
            if (fc > 0) fa[x][k] = fs / fc;
        }
        double dsum = 0;
        std::int64_t drows = 0;
        for (std::int64_t t = 0; t < n; ++t) {
            if (!real[t]) continue;
            double ent = 0, dist = 0, w = 0, mass = 0;
            std::int64_t nv = 0;
            for (std::int64_t s = 0; s < n; ++s) {
                if (!vis(t, s)) continue;
                ++nv;
                const double a = A[x][t][s];
                if (a > 0) ent -= a * std::log(a);
                dist += a * static_cast<double>(t - s);
                w += a * static_cast<double>(std::min<std::int64_t>(t - s, window));
                for (auto j : sinks)
                    if (j == s) mass += a;
            }
            na[x][t] = ent;
            if (nv > 1) no[x][t] = ent / std::log(static_cast<double>(nv));
            ma[x][t] = mass;
            if (in_r(t)) {
                wa[x][t] = w;
                dsum += dist;
                ++drows;
            }
        }
        if (drows > 0) di[x] = dsum / drows;
    }
    return r;
}

}  // namespace attnscope::analysis::testing
