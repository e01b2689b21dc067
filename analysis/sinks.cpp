// Sink scores, sink ratio, sink mass and ACT hidden-sink detection (methods.md §1.1–1.3, §2.2).
#include "analysis/sinks.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <string>

#include "analysis/detail/kernels.h"
#include "core/base/error.h"

namespace attnscope::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

detail::Chunk whole_layer(const at::Tensor& pattern, const TokenMask& mask, const char* fn) {
    detail::check_pattern(pattern, fn);
    detail::check_mask(mask, fn);
    const std::int64_t q = pattern.size(1), k = pattern.size(2);
    at::Tensor valid = detail::valid_keys(mask, k, pattern.device(), fn, /*exact=*/true,
                                          pattern.sizes());
    return detail::make_chunk(pattern, k - q, valid, mask);
}

void check_scores_3d(const at::Tensor& scores, const SinkParams& p, const char* fn) {
    if (!scores.defined() || scores.dim() != 3 || scores.numel() == 0)
        detail::shape_error(fn, "scores", "[layer, head, key_pos] (non-empty)",
                            scores.defined() ? scores.sizes() : at::IntArrayRef{});
    if (!std::isfinite(p.epsilon))
        throw ConfigError(std::string(fn) + ": epsilon = " + std::to_string(p.epsilon) +
                          " must be finite");
    if (p.k < 0 || p.k >= scores.size(2))
        throw ConfigError(std::string(fn) + ": sink position k = " + std::to_string(p.k) +
                          " is outside the scores' key_pos range [0, " +
                          std::to_string(scores.size(2)) + ") (scores " +
                          detail::shape_str(scores.sizes()) + ")");
}

}  // namespace

at::Tensor sink_scores(const at::Tensor& pattern, const TokenMask& mask) {
    const detail::Chunk c = whole_layer(pattern, mask, "sink_scores");
    at::Tensor sums = detail::column_sums(c);      // [head, key_pos]
    at::Tensor counts = detail::column_counts(c);  // [key_pos]
    // Explicit empty-set branch: a key no query sees has no score (NaN), not 0.
    return at::where(counts.gt(0).unsqueeze(0), sums / counts.clamp_min(1).unsqueeze(0),
                     at::full({}, kNaN, sums.options()));
}

at::Tensor head_sink_flags(const at::Tensor& scores, const SinkParams& params) {
    check_scores_3d(scores, params, "head_sink_flags");
    // NaN > ε is false, so undefined scores never count as sinks.
    return scores.select(2, params.k).to(at::kDouble).gt(params.epsilon);
}

SinkRatio sink_ratio(const at::Tensor& scores, const SinkParams& params) {
    SinkRatioAccumulator acc(params);
    acc.add(scores);
    return acc.result();
}

SinkRatioAccumulator::SinkRatioAccumulator(SinkParams params) : params_(params) {
    if (!std::isfinite(params_.epsilon) || params_.k < 0)
        throw ConfigError("SinkRatioAccumulator: epsilon = " + std::to_string(params_.epsilon) +
                          " must be finite and k = " + std::to_string(params_.k) + " >= 0");
}

void SinkRatioAccumulator::add(const at::Tensor& scores) {
    at::Tensor flags = head_sink_flags(scores, params_).to(at::kCPU, at::kDouble);  // [layer, head]
    if (!flag_counts_.defined()) {
        flag_counts_ = flags;
    } else {
        if (flag_counts_.sizes() != flags.sizes())
            throw ShapeError("SinkRatioAccumulator::add: scores " + detail::shape_str(scores.sizes()) +
                             " has [layer, head] = " + detail::shape_str(flags.sizes()) +
                             " but earlier sequences had " + detail::shape_str(flag_counts_.sizes()));
        flag_counts_ = flag_counts_ + flags;
    }
    ++n_;
}

void SinkRatioAccumulator::merge(const SinkRatioAccumulator& other) {
    if (other.params_.epsilon != params_.epsilon || other.params_.k != params_.k)
        throw ConfigError("SinkRatioAccumulator::merge: parameters differ (epsilon " +
                          std::to_string(params_.epsilon) + " vs " +
                          std::to_string(other.params_.epsilon) + ", k " +
                          std::to_string(params_.k) + " vs " + std::to_string(other.params_.k) + ")");
    if (other.n_ == 0) return;
    if (n_ == 0) {
        flag_counts_ = other.flag_counts_.clone();
        n_ = other.n_;
        return;
    }
    if (flag_counts_.sizes() != other.flag_counts_.sizes())
        throw ShapeError("SinkRatioAccumulator::merge: [layer, head] " +
                         detail::shape_str(flag_counts_.sizes()) + " vs " +
                         detail::shape_str(other.flag_counts_.sizes()));
    flag_counts_ = flag_counts_ + other.flag_counts_;
    n_ += other.n_;
}

SinkRatio SinkRatioAccumulator::result() const {
    SinkRatio r;
    r.n_sequences = n_;
    if (n_ == 0) {
        r.percent = r.percent_outside_layer0 = kNaN;
        return r;
    }
    const double n = static_cast<double>(n_);
    r.head_rate = flag_counts_ / n;
    // Every sequence has the same L·H, so the mean of per-sequence ratios equals the pooled one.
    r.percent = 100.0 * r.head_rate.mean().item<double>();
    r.percent_outside_layer0 = flag_counts_.size(0) > 1
                                   ? 100.0 * r.head_rate.narrow(0, 1, flag_counts_.size(0) - 1)
                                                 .mean().item<double>()
                                   : kNaN;
    return r;
}

at::Tensor sink_mass(const at::Tensor& pattern, const std::vector<std::int64_t>& sinks,
                     const TokenMask& mask) {
    const detail::Chunk c = whole_layer(pattern, mask, "sink_mass");
    std::vector<std::int64_t> s = detail::sorted_unique(sinks, "sink_mass", "sink set S");
    if (!s.empty() && s.back() >= pattern.size(2))
        throw ConfigError("sink_mass: sink slot " + std::to_string(s.back()) +
                          " is outside key_pos of the pattern " +
                          detail::shape_str(pattern.sizes()));
    return detail::sink_mass(c, s);
}

std::vector<HiddenSinks> detect_hidden_sinks(const at::Tensor& scores,
                                             const HiddenSinkParams& params,
                                             const TokenMask& mask) {
    const char* fn = "detect_hidden_sinks";
    if (!scores.defined() || scores.dim() != 2)
        detail::shape_error(fn, "scores", "[head, key_pos]",
                            scores.defined() ? scores.sizes() : at::IntArrayRef{});
    detail::check_mask(mask, fn);
    if (params.mode == ThresholdMode::kAbsolute && !(std::isfinite(params.tau) && params.tau > 0))
        throw ConfigError(std::string(fn) + ": tau = " + std::to_string(params.tau) +
                          " must be finite and > 0");
    if (params.mode == ThresholdMode::kRelative &&
        !(std::isfinite(params.alpha) && params.alpha > 0))
        throw ConfigError(std::string(fn) + ": alpha = " + std::to_string(params.alpha) +
                          " must be finite and > 0");
    const std::int64_t h = scores.size(0), k = scores.size(1);
    at::Tensor valid = detail::valid_keys(mask, k, at::kCPU, fn, /*exact=*/true, scores.sizes());
    std::vector<double> v = detail::to_vector(valid.to(at::kDouble));
    std::int64_t n_real = 0, last_real = -1;
    for (std::int64_t j = 0; j < k; ++j)
        if (v[j] != 0) {
            ++n_real;
            last_real = j;
        }

    const double threshold = params.mode == ThresholdMode::kAbsolute
                                 ? params.tau
                                 : (n_real > 0 ? params.alpha / static_cast<double>(n_real) : kNaN);
    std::vector<double> s = detail::to_vector(scores);  // row-major [head, key_pos]
    std::vector<HiddenSinks> out(static_cast<size_t>(h));
    for (std::int64_t i = 0; i < h; ++i) {
        HiddenSinks& r = out[static_cast<size_t>(i)];
        r.threshold = threshold;
        for (std::int64_t j = 0; j < k; ++j) {
            if (v[j] == 0) continue;
            if (params.exclude_last_position && j == last_real) continue;
            if (s[static_cast<size_t>(i * k + j)] > threshold) r.detected.push_back(j);
        }
        if (!r.detected.empty()) {
            r.exempt = r.detected.front();
            r.calibrated.assign(r.detected.begin() + 1, r.detected.end());
        }
    }
    return out;
}

}  // namespace attnscope::analysis
