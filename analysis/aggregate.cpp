// Mergeable dataset aggregates. Welford's update for single values, Chan–Golub–LeVeque's pairwise
// combination for batches and merges (numerically stable; exact up to rounding whatever the
// split of the data).
#include "analysis/aggregate.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "analysis/detail/kernels.h"
#include "core/base/error.h"

namespace attnscope::analysis {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Chan et al.: combine (na, ma, m2a) with (nb, mb, m2b).
void combine(RunningStats::State& a, const RunningStats::State& b) {
    if (b.count == 0) {
        a.n_nan += b.n_nan;
        return;
    }
    if (a.count == 0) {
        const auto nan = a.n_nan;
        a = b;
        a.n_nan += nan;
        return;
    }
    const double na = static_cast<double>(a.count), nb = static_cast<double>(b.count);
    const double n = na + nb, delta = b.mean - a.mean;
    a.mean += delta * nb / n;
    a.m2 += b.m2 + delta * delta * na * nb / n;
    a.count += b.count;
    a.min = std::min(a.min, b.min);
    a.max = std::max(a.max, b.max);
    a.n_nan += b.n_nan;
}

at::Tensor flat_cpu_double(const at::Tensor& t) {
    return t.detach().to(at::kCPU, at::kDouble).contiguous().view({-1});
}
}  // namespace

// ---- RunningStats -------------------------------------------------------------------------

void RunningStats::add(double x) {
    if (std::isnan(x)) {
        ++s_.n_nan;
        return;
    }
    ++s_.count;
    const double delta = x - s_.mean;
    s_.mean += delta / static_cast<double>(s_.count);
    s_.m2 += delta * (x - s_.mean);
    s_.min = std::min(s_.min, x);
    s_.max = std::max(s_.max, x);
}

void RunningStats::add(const at::Tensor& values) {
    if (!values.defined() || values.numel() == 0) return;
    at::Tensor x = flat_cpu_double(values);
    at::Tensor keep = x.isnan().logical_not();
    at::Tensor v = x.masked_select(keep);
    State b;
    b.n_nan = x.numel() - v.numel();
    b.count = v.numel();
    if (b.count > 0) {
        b.mean = v.mean().item<double>();
        b.m2 = (v - b.mean).square().sum().item<double>();
        b.min = v.min().item<double>();
        b.max = v.max().item<double>();
    }
    combine(s_, b);
}

void RunningStats::merge(const RunningStats& other) { combine(s_, other.s_); }

double RunningStats::mean() const { return s_.count > 0 ? s_.mean : kNaN; }
double RunningStats::variance() const {
    return s_.count > 0 ? s_.m2 / static_cast<double>(s_.count) : kNaN;
}
double RunningStats::sample_variance() const {
    return s_.count > 1 ? s_.m2 / static_cast<double>(s_.count - 1) : kNaN;
}
double RunningStats::stddev() const { return std::sqrt(variance()); }
double RunningStats::sample_stddev() const { return std::sqrt(sample_variance()); }

// ---- TensorRunningStats -------------------------------------------------------------------

void TensorRunningStats::add(const at::Tensor& values) {
    if (!values.defined())
        throw ShapeError("TensorRunningStats::add: values is undefined");
    at::Tensor x = values.detach().to(at::kCPU, at::kDouble);
    if (empty()) {
        count_ = at::zeros_like(x);
        mean_ = at::zeros_like(x);
        m2_ = at::zeros_like(x);
    } else if (x.sizes() != count_.sizes()) {
        throw ShapeError("TensorRunningStats::add: values " + detail::shape_str(x.sizes()) +
                         " differ from the accumulated shape " + detail::shape_str(count_.sizes()));
    }
    at::Tensor keep = x.isnan().logical_not();
    at::Tensor xv = x.masked_fill(keep.logical_not(), 0.0);
    at::Tensor cnt = count_ + keep.to(at::kDouble);
    at::Tensor delta = xv - mean_;
    at::Tensor mean = at::where(keep, mean_ + delta / cnt.clamp_min(1), mean_);
    m2_ = at::where(keep, m2_ + delta * (xv - mean), m2_);
    mean_ = mean;
    count_ = cnt;
}

void TensorRunningStats::merge(const TensorRunningStats& other) {
    if (other.empty()) return;
    if (empty()) {
        count_ = other.count_.clone();
        mean_ = other.mean_.clone();
        m2_ = other.m2_.clone();
        return;
    }
    if (other.count_.sizes() != count_.sizes())
        throw ShapeError("TensorRunningStats::merge: shapes " + detail::shape_str(count_.sizes()) +
                         " and " + detail::shape_str(other.count_.sizes()) + " differ");
    at::Tensor n = count_ + other.count_;
    at::Tensor safe = n.clamp_min(1);
    at::Tensor delta = other.mean_ - mean_;
    mean_ = mean_ + delta * other.count_ / safe;
    m2_ = m2_ + other.m2_ + delta.square() * count_ * other.count_ / safe;
    count_ = n;
}

at::Tensor TensorRunningStats::mean() const {
    if (empty()) return {};
    return at::where(count_.gt(0), mean_, at::full({}, kNaN, mean_.options()));
}

at::Tensor TensorRunningStats::variance() const {
    if (empty()) return {};
    return at::where(count_.gt(0), m2_ / count_.clamp_min(1), at::full({}, kNaN, m2_.options()));
}

at::Tensor TensorRunningStats::sample_variance() const {
    if (empty()) return {};
    return at::where(count_.gt(1), m2_ / (count_ - 1).clamp_min(1),
                     at::full({}, kNaN, m2_.options()));
}

at::Tensor TensorRunningStats::stddev() const {
    if (empty()) return {};
    return variance().sqrt();
}

TensorRunningStats TensorRunningStats::from_state(const at::Tensor& count, const at::Tensor& mean,
                                                  const at::Tensor& m2) {
    if (!count.defined() || !mean.defined() || !m2.defined() || count.sizes() != mean.sizes() ||
        count.sizes() != m2.sizes())
        throw ShapeError("TensorRunningStats::from_state: count, mean and m2 must share one shape");
    TensorRunningStats s;
    s.count_ = count.to(at::kCPU, at::kDouble).clone();
    s.mean_ = mean.to(at::kCPU, at::kDouble).clone();
    s.m2_ = m2.to(at::kCPU, at::kDouble).clone();
    return s;
}

// ---- Histogram ----------------------------------------------------------------------------

Histogram::Histogram(double lo, double hi, std::int64_t bins) : lo_(lo), hi_(hi) {
    if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi) || bins < 1)
        throw ConfigError("Histogram: need finite lo < hi and bins >= 1, got lo = " +
                          std::to_string(lo) + ", hi = " + std::to_string(hi) + ", bins = " +
                          std::to_string(bins));
    counts_.assign(static_cast<size_t>(bins), 0);
}

std::int64_t Histogram::bin_of(double x) const {
    // Same arithmetic as the tensor path, so both put a value in the same bin.
    const double f = std::floor((x - lo_) / (hi_ - lo_) * static_cast<double>(counts_.size()));
    return std::min(static_cast<std::int64_t>(f), bins() - 1);
}

void Histogram::add(double x) {
    if (std::isnan(x)) {
        ++n_nan_;
    } else if (x < lo_) {
        ++underflow_;
    } else if (x > hi_) {
        ++overflow_;
    } else {
        ++counts_[static_cast<size_t>(bin_of(x))];
    }
}

void Histogram::add(const at::Tensor& values) {
    if (!values.defined() || values.numel() == 0) return;
    at::Tensor x = flat_cpu_double(values);
    at::Tensor nan = x.isnan();
    n_nan_ += nan.sum().item<std::int64_t>();
    underflow_ += x.lt(lo_).sum().item<std::int64_t>();
    overflow_ += x.gt(hi_).sum().item<std::int64_t>();
    at::Tensor in = x.masked_select(x.ge(lo_).logical_and(x.le(hi_)));
    if (in.numel() == 0) return;
    at::Tensor idx = ((in - lo_) / (hi_ - lo_) * static_cast<double>(counts_.size()))
                         .floor()
                         .clamp_max(static_cast<double>(bins() - 1))
                         .to(at::kLong);
    at::Tensor c = at::bincount(idx, {}, bins());
    const std::int64_t* p = c.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < bins(); ++i) counts_[static_cast<size_t>(i)] += p[i];
}

void Histogram::merge(const Histogram& other) {
    if (other.lo_ != lo_ || other.hi_ != hi_ || other.bins() != bins())
        throw ConfigError("Histogram::merge: binning differs ([" + std::to_string(lo_) + ", " +
                          std::to_string(hi_) + "] x " + std::to_string(bins()) + " vs [" +
                          std::to_string(other.lo_) + ", " + std::to_string(other.hi_) + "] x " +
                          std::to_string(other.bins()) + ")");
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    underflow_ += other.underflow_;
    overflow_ += other.overflow_;
    n_nan_ += other.n_nan_;
}

std::int64_t Histogram::total() const {
    std::int64_t t = underflow_ + overflow_;
    for (auto c : counts_) t += c;
    return t;
}

std::vector<double> Histogram::edges() const {
    std::vector<double> e;
    const double w = (hi_ - lo_) / static_cast<double>(bins());
    for (std::int64_t i = 0; i <= bins(); ++i) e.push_back(i == bins() ? hi_ : lo_ + w * i);
    return e;
}

}  // namespace attnscope::analysis
