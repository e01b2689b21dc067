// Dataset aggregates over many prompts: running mean / variance (Welford, with Chan et al.'s
// pairwise merge so shards and MPI ranks combine exactly), the same elementwise over a fixed-shape
// tensor (e.g. α_0 per [layer, head]), and fixed-bin histograms. Every state is plain data
// (counts and doubles) so a reduction can ship it as is. NaN inputs are skipped and counted.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <vector>

namespace attnscope::analysis {

/// Scalar running statistics.
class RunningStats {
public:
    /// Complete, reducible state (Welford: count, mean, sum of squared deviations m2).
    struct State {
        std::int64_t count = 0;  ///< non-NaN values
        double mean = 0;
        double m2 = 0;
        double min = std::numeric_limits<double>::infinity();
        double max = -std::numeric_limits<double>::infinity();
        std::int64_t n_nan = 0;  ///< skipped NaN values
    };

    RunningStats() = default;
    explicit RunningStats(const State& s) : s_(s) {}

    void add(double x);
    /// Adds every element of `values` (any shape, any real dtype, any device).
    void add(const at::Tensor& values);
    /// Combines with another accumulator as if all its values had been added here.
    void merge(const RunningStats& other);

    std::int64_t count() const { return s_.count; }
    std::int64_t n_nan() const { return s_.n_nan; }
    /// NaN when empty.
    double mean() const;
    /// Population variance m2 / n (NaN when empty).
    double variance() const;
    /// Sample variance m2 / (n − 1) (NaN for n < 2).
    double sample_variance() const;
    double stddev() const;
    double sample_stddev() const;
    /// +inf / −inf when empty.
    double min() const { return s_.min; }
    double max() const { return s_.max; }
    const State& state() const { return s_; }

private:
    State s_;
};

/// Elementwise running statistics over tensors of one fixed shape (stored float64 on CPU).
/// NaN elements are skipped per element, so each element has its own count.
class TensorRunningStats {
public:
    /// First add() fixes the shape. Throws ShapeError when a later tensor differs.
    void add(const at::Tensor& values);
    /// Throws ShapeError on different shapes (an empty accumulator merges with anything).
    void merge(const TensorRunningStats& other);

    bool empty() const { return !count_.defined(); }
    /// float64 [shape]: non-NaN values seen per element. Undefined if empty.
    at::Tensor count() const { return count_; }
    /// float64 [shape]; NaN where an element has no value yet. Undefined if empty.
    at::Tensor mean() const;
    at::Tensor variance() const;         ///< population, NaN where count = 0
    at::Tensor sample_variance() const;  ///< NaN where count < 2
    at::Tensor stddev() const;
    /// Raw state for reductions: count, mean, m2 (each float64 [shape]).
    at::Tensor m2() const { return m2_; }
    static TensorRunningStats from_state(const at::Tensor& count, const at::Tensor& mean,
                                         const at::Tensor& m2);

private:
    at::Tensor count_, mean_, m2_;  // float64 [shape], CPU
};

/// Fixed-bin histogram on [lo, hi]: bins of equal width, the last bin closed on the right.
/// Values below lo / above hi go to underflow / overflow, NaN to n_nan.
class Histogram {
public:
    /// Throws ConfigError unless lo < hi are finite and bins >= 1.
    Histogram(double lo, double hi, std::int64_t bins);

    void add(double x);
    /// Adds every element of `values` (any shape, real dtype, device).
    void add(const at::Tensor& values);
    /// Throws ConfigError when lo, hi or bins differ.
    void merge(const Histogram& other);

    double lo() const { return lo_; }
    double hi() const { return hi_; }
    std::int64_t bins() const { return static_cast<std::int64_t>(counts_.size()); }
    const std::vector<std::int64_t>& counts() const { return counts_; }
    std::int64_t underflow() const { return underflow_; }
    std::int64_t overflow() const { return overflow_; }
    std::int64_t n_nan() const { return n_nan_; }
    /// In-range values plus underflow and overflow (NaN excluded).
    std::int64_t total() const;
    /// bins + 1 edges lo, lo + w, ..., hi.
    std::vector<double> edges() const;

private:
    std::int64_t bin_of(double x) const;
    double lo_, hi_;
    std::vector<std::int64_t> counts_;
    std::int64_t underflow_ = 0, overflow_ = 0, n_nan_ = 0;
};

}  // namespace attnscope::analysis
