// WAAD, FAI, head classes and token roles (arXiv 2510.13554; methods.md §5). Tensor work (the
// [pos, pos] reductions) runs on the pattern's device; the per-token selection rules (TopQ,
// peaks, dominated anchors) run on host vectors of length pos.
#include "analysis/preplan.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "analysis/detail/kernels.h"
#include "core/base/error.h"

namespace attnscope::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ceil(x) that forgives the last-bit error of fractions like 0.3·160 = 48.000000000000007.
std::int64_t ceil_count(double x) { return static_cast<std::int64_t>(std::ceil(x - 1e-9)); }

// Accepts [pos, pos] or [head, pos, pos]; returns the rank-3 view and whether it was rank 2.
std::pair<at::Tensor, bool> as_heads(const at::Tensor& p, const char* fn) {
    const std::string expected = "[pos, pos] or [head, pos, pos] (square: one pass over "
                                 "prompt ⊕ response)";
    if (!p.defined()) throw ShapeError(std::string(fn) + ": pattern is undefined");
    if (p.dim() != 2 && p.dim() != 3) detail::shape_error(fn, "pattern", expected, p.sizes());
    at::Tensor p3 = p.dim() == 2 ? p.unsqueeze(0) : p;
    if (p3.size(1) != p3.size(2)) detail::shape_error(fn, "pattern", expected, p.sizes());
    detail::check_pattern(p3, fn);
    return {p3, p.dim() == 2};
}

detail::Chunk whole(const at::Tensor& p3, const TokenMask& mask, const char* fn,
                    at::IntArrayRef shown_shape) {
    detail::check_mask(mask, fn);
    at::Tensor valid = detail::valid_keys(mask, p3.size(2), p3.device(), fn, true, shown_shape);
    return detail::make_chunk(p3, 0, valid, mask);
}

void check_series(const at::Tensor& t, const char* fn, const char* what) {
    if (!t.defined() || t.dim() != 1)
        detail::shape_error(fn, what, "[pos]", t.defined() ? t.sizes() : at::IntArrayRef{});
}

// Host flags: slot t is in R (real and inside [rows_begin, rows_end)).
std::vector<char> rows_r(const TokenMask& mask, std::int64_t n, const char* fn,
                         at::IntArrayRef shape) {
    detail::check_mask(mask, fn);
    std::vector<double> v =
        detail::to_vector(detail::valid_keys(mask, n, at::kCPU, fn, true, shape).to(at::kDouble));
    std::vector<char> r(static_cast<size_t>(n));
    for (std::int64_t t = 0; t < n; ++t)
        r[static_cast<size_t>(t)] = v[static_cast<size_t>(t)] != 0 && t >= mask.rows_begin &&
                                    (mask.rows_end == kUnbounded || t < mask.rows_end);
    return r;
}

// Median with the two middle values averaged (NumPy); NaN for an empty list.
double median(std::vector<double> v) {
    if (v.empty()) return kNaN;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Percentile with linear interpolation between closest ranks (NumPy's default).
double percentile(std::vector<double> v, double p) {
    if (v.empty()) return kNaN;
    std::sort(v.begin(), v.end());
    const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(rank));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (rank - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace

const char* to_string(HeadClass c) {
    switch (c) {
        case HeadClass::kLocal: return "local";
        case HeadClass::kGlobal: return "global";
        case HeadClass::kMiddle: return "middle";
        case HeadClass::kUnranked: break;
    }
    return "unranked";
}

void validate(const PreplanParams& p) {
    auto bad = [](const std::string& what) { throw ConfigError("PreplanParams: " + what); };
    if (p.window < 1) bad("window W = " + std::to_string(p.window) + " must be >= 1");
    if (p.horizon.lo < 0 || p.horizon.hi < p.horizon.lo)
        bad("FAI horizon [" + std::to_string(p.horizon.lo) + ", " +
            (p.horizon.hi == kUnbounded ? std::string("inf") : std::to_string(p.horizon.hi)) +
            "] needs 0 <= H_lo <= H_hi");
    if (!(p.local_fraction >= 0 && p.local_fraction <= 1) ||
        !(p.global_fraction >= 0 && p.global_fraction <= 1))
        bad("head fractions local = " + std::to_string(p.local_fraction) + ", global = " +
            std::to_string(p.global_fraction) + " must lie in [0, 1]");
    if (!(p.q > 0 && p.q <= 1)) bad("q = " + std::to_string(p.q) + " must lie in (0, 1]");
    if (p.k < 1) bad("k = " + std::to_string(p.k) + " must be >= 1");
    if (!std::isfinite(p.gamma_amp)) bad("gamma_amp must be finite");
    if (!(p.alpha >= 0 && p.alpha <= 1)) bad("alpha = " + std::to_string(p.alpha) + " must lie in [0, 1]");
    if (!(p.peak_percentile >= 0 && p.peak_percentile <= 100))
        bad("peak_percentile = " + std::to_string(p.peak_percentile) + " must lie in [0, 100]");
}

std::vector<std::int64_t> middle_third_layers(std::int64_t n_layers, std::int64_t count) {
    if (n_layers < 1 || count < 1)
        throw ConfigError("middle_third_layers: need n_layers >= 1 and count >= 1, got n_layers = " +
                          std::to_string(n_layers) + ", count = " + std::to_string(count));
    const std::int64_t lo = n_layers / 3, hi = 2 * n_layers / 3;
    std::vector<std::int64_t> out;
    if (count == 1) {
        out.push_back((lo + hi + 1) / 2);
        return out;
    }
    // Exact rational positions lo + i·(hi − lo)/(count − 1), rounded half up in integers.
    const std::int64_t den = count - 1;
    for (std::int64_t i = 0; i < count; ++i) {
        const std::int64_t num = lo * den + i * (hi - lo);
        const std::int64_t v = (2 * num + den) / (2 * den);
        if (out.empty() || out.back() != v) out.push_back(v);
    }
    return out;
}

at::Tensor backward_distance(const at::Tensor& pattern, const TokenMask& mask) {
    const char* fn = "backward_distance";
    auto [p3, was2] = as_heads(pattern, fn);
    const detail::Chunk c = whole(p3, mask, fn, pattern.sizes());
    at::Tensor rows = detail::distance_rows(c);  // [head, pos]
    at::Tensor in_r = c.in_rows.unsqueeze(0);
    at::Tensor sum = rows.masked_fill(in_r.logical_not(), 0.0).sum(1);
    const double n = static_cast<double>(c.in_rows.sum().item<std::int64_t>());
    at::Tensor d = n > 0 ? sum / n : at::full_like(sum, kNaN);
    return was2 ? d.squeeze(0) : d;
}

HeadGroups classify_heads(const at::Tensor& distance, const PreplanParams& params) {
    validate(params);
    if (!distance.defined() || distance.numel() == 0)
        throw ShapeError("classify_heads: distance is empty; expected e.g. [layer, head]");
    std::vector<double> d = detail::to_vector(distance);
    std::vector<std::int64_t> order;
    for (size_t i = 0; i < d.size(); ++i)
        if (std::isfinite(d[i])) order.push_back(static_cast<std::int64_t>(i));
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return d[a] < d[b]; });
    const std::int64_t n = static_cast<std::int64_t>(order.size());
    const std::int64_t n_loc = std::min(n, ceil_count(params.local_fraction * n));
    const std::int64_t n_glob = std::min(n - n_loc, ceil_count(params.global_fraction * n));

    HeadGroups g;
    g.classes = at::full(distance.sizes(), static_cast<std::int64_t>(HeadClass::kUnranked),
                         at::TensorOptions().dtype(at::kChar));
    std::int8_t* cls = g.classes.data_ptr<std::int8_t>();
    for (auto i : order) cls[i] = static_cast<std::int8_t>(HeadClass::kMiddle);
    for (std::int64_t i = 0; i < n_loc; ++i) {
        g.local.push_back(order[i]);
        cls[order[i]] = static_cast<std::int8_t>(HeadClass::kLocal);
    }
    for (std::int64_t i = 0; i < n_glob; ++i) {
        g.global.push_back(order[n - 1 - i]);
        cls[order[n - 1 - i]] = static_cast<std::int8_t>(HeadClass::kGlobal);
    }
    return g;
}

at::Tensor group_mean(const at::Tensor& patterns, const std::vector<std::int64_t>& members) {
    const char* fn = "group_mean";
    detail::check_pattern(patterns, fn);
    if (members.empty()) throw ConfigError("group_mean: the head group is empty");
    for (auto m : members)
        if (m < 0 || m >= patterns.size(0))
            throw ConfigError("group_mean: head " + std::to_string(m) + " is outside [0, " +
                              std::to_string(patterns.size(0)) + ") of patterns " +
                              detail::shape_str(patterns.sizes()));
    at::Tensor idx = at::tensor(members, at::TensorOptions().dtype(at::kLong)).to(patterns.device());
    return patterns.index_select(0, idx)
        .to(detail::compute_dtype(patterns.scalar_type()))
        .mean(0)
        .to(at::kDouble);
}

at::Tensor waad(const at::Tensor& pattern, const TokenMask& mask, std::int64_t window) {
    const char* fn = "waad";
    if (window < 1) throw ConfigError("waad: window W = " + std::to_string(window) + " must be >= 1");
    auto [p3, was2] = as_heads(pattern, fn);
    at::Tensor w = detail::waad_rows(whole(p3, mask, fn, pattern.sizes()), window);
    return was2 ? w.squeeze(0) : w;
}

at::Tensor fai(const at::Tensor& pattern, const TokenMask& mask, FaiHorizon horizon) {
    const char* fn = "fai";
    PreplanParams check;
    check.horizon = horizon;
    validate(check);
    auto [p3, was2] = as_heads(pattern, fn);
    auto [sum, cnt] = detail::fai_parts(whole(p3, mask, fn, pattern.sizes()), horizon.lo, horizon.hi);
    // Empty T(s) (end of the response, prompt slots beyond the horizon, padding): undefined.
    at::Tensor f = at::where(cnt.gt(0).unsqueeze(0), sum / cnt.clamp_min(1).unsqueeze(0),
                             at::full({}, kNaN, sum.options()));
    return was2 ? f.squeeze(0) : f;
}

at::Tensor waad_delta(const at::Tensor& waad_t, const TokenMask& mask) {
    const char* fn = "waad_delta";
    check_series(waad_t, fn, "waad_t");
    const std::int64_t n = waad_t.size(0);
    std::vector<char> r = rows_r(mask, n, fn, waad_t.sizes());
    std::vector<double> w = detail::to_vector(waad_t);
    at::Tensor out = at::full({n}, kNaN, at::TensorOptions().dtype(at::kDouble));
    double* o = out.data_ptr<double>();
    for (std::int64_t t = 0; t + 1 < n; ++t)
        if (r[t] && r[t + 1] && std::isfinite(w[t]) && std::isfinite(w[t + 1]))
            o[t] = std::abs(w[t] - w[t + 1]);
    return out;
}

std::vector<std::int64_t> top_q(const at::Tensor& values, double q, const TokenMask& mask) {
    const char* fn = "top_q";
    check_series(values, fn, "values");
    if (!(q > 0 && q <= 1)) throw ConfigError("top_q: q = " + std::to_string(q) + " must lie in (0, 1]");
    const std::int64_t n = values.size(0);
    std::vector<char> r = rows_r(mask, n, fn, values.sizes());
    std::vector<double> v = detail::to_vector(values);
    std::vector<std::int64_t> cand;
    for (std::int64_t t = 0; t < n; ++t)
        if (r[t] && std::isfinite(v[t])) cand.push_back(t);
    // Larger value first; equal values -> lower slot first (stable on increasing slots).
    std::stable_sort(cand.begin(), cand.end(),
                     [&](std::int64_t a, std::int64_t b) { return v[a] > v[b]; });
    const std::int64_t m = std::min<std::int64_t>(static_cast<std::int64_t>(cand.size()),
                                                  ceil_count(q * static_cast<double>(cand.size())));
    cand.resize(static_cast<size_t>(m));
    return cand;
}

std::vector<std::int64_t> find_peaks(const at::Tensor& y, const TokenMask& mask, double pct) {
    const char* fn = "find_peaks";
    check_series(y, fn, "y");
    if (!(pct >= 0 && pct <= 100))
        throw ConfigError("find_peaks: percentile = " + std::to_string(pct) + " must lie in [0, 100]");
    const std::int64_t n = y.size(0);
    std::vector<char> r = rows_r(mask, n, fn, y.sizes());
    std::vector<double> v = detail::to_vector(y);
    std::vector<double> pool;
    for (std::int64_t t = 0; t < n; ++t)
        if (r[t] && std::isfinite(v[t])) pool.push_back(v[t]);
    const double cut = percentile(pool, pct);
    auto ok = [&](std::int64_t t) { return t >= 0 && t < n && r[t] && std::isfinite(v[t]); };
    std::vector<std::int64_t> peaks;
    for (std::int64_t t = 1; t + 1 < n; ++t)
        if (ok(t) && ok(t - 1) && ok(t + 1) && v[t] > v[t - 1] && v[t] >= v[t + 1] && v[t] >= cut)
            peaks.push_back(t);
    return peaks;
}

double peak_follow_rate(const std::vector<std::int64_t>& fai_peaks,
                        const std::vector<std::int64_t>& waad_peaks) {
    if (fai_peaks.empty()) return kNaN;
    std::vector<std::int64_t> w = waad_peaks;
    std::sort(w.begin(), w.end());
    auto has = [&](std::int64_t t) { return std::binary_search(w.begin(), w.end(), t); };
    std::int64_t hits = 0;
    for (auto t : fai_peaks) hits += (has(t) || has(t - 1)) ? 1 : 0;
    return static_cast<double>(hits) / static_cast<double>(fai_peaks.size());
}

DominatedAnchors dominated_anchors(const at::Tensor& waad_t, const at::Tensor& delta,
                                   const std::vector<std::int64_t>& t_glob,
                                   const std::vector<std::int64_t>& t_loc, const TokenMask& mask,
                                   const PreplanParams& params) {
    const char* fn = "dominated_anchors";
    validate(params);
    check_series(waad_t, fn, "waad_t");
    check_series(delta, fn, "delta");
    const std::int64_t n = waad_t.size(0);
    if (delta.size(0) != n)
        throw ShapeError(std::string(fn) + ": delta " + detail::shape_str(delta.sizes()) +
                         " and waad_t " + detail::shape_str(waad_t.sizes()) + " differ in length");
    std::vector<char> r = rows_r(mask, n, fn, waad_t.sizes());
    std::vector<double> w = detail::to_vector(waad_t), dl = detail::to_vector(delta);
    auto in_range = [&](std::int64_t t) {
        if (t < 0 || t >= n)
            throw ConfigError(std::string(fn) + ": token " + std::to_string(t) +
                              " is outside [0, " + std::to_string(n) + ")");
    };

    DominatedAnchors out;
    out.tau_waad = params.tau_waad;
    if (std::isnan(out.tau_waad)) {
        std::vector<double> pool;
        for (std::int64_t t = 0; t < n; ++t)
            if (r[t] && std::isfinite(w[t])) pool.push_back(w[t]);
        out.tau_waad = median(pool);
    }
    out.tau_delta = params.tau_delta;
    if (std::isnan(out.tau_delta)) {
        out.tau_delta = kNaN;  // T_loc empty: no threshold, no dominated anchor
        for (auto t : t_loc) {
            in_range(t);
            if (std::isfinite(dl[t]) && !(dl[t] >= out.tau_delta)) out.tau_delta = dl[t];
        }
    }
    std::vector<std::int64_t> anchors = t_glob;
    std::sort(anchors.begin(), anchors.end());
    for (auto t : anchors) {
        in_range(t);
        if (!(w[t] <= out.tau_waad)) continue;
        double best = -std::numeric_limits<double>::infinity();
        std::int64_t arg = -1;
        // From t−1 backwards with a strict '>' so that ties go to the u closest to t.
        for (std::int64_t u = t - 1; u >= std::max<std::int64_t>(0, t - params.k); --u)
            if (r[u] && std::isfinite(dl[u]) && dl[u] > best) {
                best = dl[u];
                arg = u;
            }
        if (arg >= 0 && best >= out.tau_delta) {
            out.anchors.push_back(t);
            out.intro.push_back(arg);
        }
    }
    return out;
}

at::Tensor advantage_weights(std::int64_t n_pos, const std::vector<std::int64_t>& t_loc,
                             const std::vector<std::int64_t>& t_glob, const DominatedAnchors& d,
                             const PreplanParams& params) {
    validate(params);
    if (n_pos < 0) throw ConfigError("advantage_weights: n_pos = " + std::to_string(n_pos) + " < 0");
    auto flags = [&](const std::vector<std::int64_t>& set, const char* name) {
        std::vector<char> f(static_cast<size_t>(n_pos), 0);
        for (auto t : set) {
            if (t < 0 || t >= n_pos)
                throw ConfigError(std::string("advantage_weights: ") + name + " contains token " +
                                  std::to_string(t) + " outside [0, " + std::to_string(n_pos) + ")");
            f[static_cast<size_t>(t)] = 1;
        }
        return f;
    };
    // Validate every set, whichever scheme uses it.
    const auto f_loc = flags(t_loc, "T_loc"), f_glob = flags(t_glob, "T_glob"),
               f_dom = flags(d.anchors, "D"), f_intro = flags(d.intro, "I(D)");
    const double g = params.gamma_amp - 1.0;
    at::Tensor out = at::ones({n_pos}, at::TensorOptions().dtype(at::kDouble));
    double* o = out.data_ptr<double>();
    for (std::int64_t t = 0; t < n_pos; ++t) {
        switch (params.scheme) {
            case CreditScheme::kLocalChunk: o[t] += g * f_loc[t]; break;
            case CreditScheme::kGlobalAnchor: o[t] += g * f_glob[t]; break;
            case CreditScheme::kCoupled:
                // Indicator terms add when a token is in several sets (methods.md §5.5).
                o[t] += g * (f_glob[t] && !f_dom[t]) + (1.0 - params.alpha) * g * f_dom[t] +
                        params.alpha * g * f_intro[t];
                break;
        }
    }
    return out;
}

TokenRoles token_roles(const at::Tensor& waad_t, const at::Tensor& fai_s, const TokenMask& mask,
                       const PreplanParams& params) {
    const char* fn = "token_roles";
    validate(params);
    check_series(waad_t, fn, "waad_t");
    check_series(fai_s, fn, "fai_s");
    if (waad_t.size(0) != fai_s.size(0))
        throw ShapeError(std::string(fn) + ": waad_t " + detail::shape_str(waad_t.sizes()) +
                         " and fai_s " + detail::shape_str(fai_s.sizes()) + " differ in length");
    TokenRoles r;
    r.waad = waad_t.to(at::kCPU, at::kDouble);
    r.fai = fai_s.to(at::kCPU, at::kDouble);
    r.delta = waad_delta(r.waad, mask);
    r.t_loc = top_q(r.delta, params.q, mask);
    r.t_glob = top_q(r.fai, params.q, mask);
    r.dominated = dominated_anchors(r.waad, r.delta, r.t_glob, r.t_loc, mask, params);
    r.gamma = advantage_weights(r.waad.size(0), r.t_loc, r.t_glob, r.dominated, params);
    r.waad_peaks = find_peaks(r.waad, mask, params.peak_percentile);
    r.fai_peaks = find_peaks(r.fai, mask, params.peak_percentile);
    return r;
}

PreplanResult preplan(const std::vector<at::Tensor>& layer_patterns, const TokenMask& mask,
                      const PreplanParams& params, const std::optional<HeadGroups>& fixed_groups) {
    const char* fn = "preplan";
    validate(params);
    if (layer_patterns.empty()) throw ConfigError("preplan: no layer patterns given");
    for (const auto& p : layer_patterns) {
        as_heads(p, fn);
        if (p.dim() != 3 || p.sizes() != layer_patterns.front().sizes())
            throw ShapeError(std::string(fn) + ": every layer pattern must be [head, pos, pos] of "
                             "one shape; got " + detail::shape_str(p.sizes()) + " and " +
                             detail::shape_str(layer_patterns.front().sizes()));
    }
    const std::int64_t n_heads = layer_patterns.front().size(0);

    PreplanResult out;
    std::vector<at::Tensor> d;
    for (const auto& p : layer_patterns) d.push_back(backward_distance(p, mask));
    out.distance = at::stack(d);  // [layer, head]
    if (params.grouping == Grouping::kFixed) {
        if (!fixed_groups)
            throw ConfigError("preplan: grouping = fixed needs the caller's head groups");
        if (!fixed_groups->classes.defined() || fixed_groups->classes.sizes() != out.distance.sizes())
            throw ShapeError("preplan: fixed head groups cover " +
                             (fixed_groups->classes.defined()
                                  ? detail::shape_str(fixed_groups->classes.sizes())
                                  : std::string("[]")) +
                             " heads but the patterns give [layer, head] = " +
                             detail::shape_str(out.distance.sizes()));
        out.groups = *fixed_groups;
    } else {
        if (fixed_groups)
            throw ConfigError("preplan: head groups were given but grouping = per_sequence; set "
                              "grouping = fixed to use them");
        out.groups = classify_heads(out.distance, params);
    }

    // Ā of a group without stacking every layer: per-layer sums of the member heads.
    auto mean_of = [&](const std::vector<std::int64_t>& members, const char* name) {
        if (members.empty())
            throw ConfigError(std::string("preplan: the ") + name + " head group is empty (" +
                              std::to_string(out.distance.numel()) + " heads, fractions " +
                              std::to_string(params.local_fraction) + " / " +
                              std::to_string(params.global_fraction) + ")");
        for (auto m : members)
            if (m < 0 || m >= out.distance.numel())
                throw ConfigError(std::string("preplan: ") + name + " group member " +
                                  std::to_string(m) + " is outside the " +
                                  std::to_string(out.distance.numel()) + " sampled heads");
        at::Tensor sum;
        for (size_t l = 0; l < layer_patterns.size(); ++l) {
            std::vector<std::int64_t> heads;
            for (auto m : members)
                if (m / n_heads == static_cast<std::int64_t>(l)) heads.push_back(m % n_heads);
            if (heads.empty()) continue;
            const at::Tensor& p = layer_patterns[l];
            at::Tensor idx = at::tensor(heads, at::TensorOptions().dtype(at::kLong)).to(p.device());
            at::Tensor s = p.index_select(0, idx).to(at::kDouble).sum(0);
            sum = sum.defined() ? sum + s : s;
        }
        return sum / static_cast<double>(members.size());  // [pos, pos]
    };
    at::Tensor a_loc = mean_of(out.groups.local, "local");
    at::Tensor a_glob = mean_of(out.groups.global, "global");
    out.roles = token_roles(waad(a_loc, mask, params.window), fai(a_glob, mask, params.horizon),
                            mask, params);
    return out;
}

}  // namespace attnscope::analysis
