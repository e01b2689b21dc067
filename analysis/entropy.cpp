// Attention entropy (methods.md §1.5).
#include "analysis/entropy.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "analysis/detail/kernels.h"
#include "core/base/error.h"

namespace attnscope::analysis {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

RowEntropy finish(at::Tensor nats, at::Tensor n, std::int64_t offset) {
    RowEntropy e;
    e.query_offset = offset;
    e.bits = nats / std::log(2.0);
    e.normalized = normalize_entropy(nats, n);
    e.nats = std::move(nats);
    e.n_visible = std::move(n);
    return e;
}
}  // namespace

at::Tensor normalize_entropy(const at::Tensor& nats, const at::Tensor& n_visible) {
    at::Tensor n = n_visible.to(nats.device(), at::kDouble).unsqueeze(0);  // [1, query_pos]
    // n = 1: ln n = 0, the normalised value is undefined -> NaN (never 0).
    return at::where(n.gt(1), nats / n.clamp_min(2).log(), at::full({}, kNaN, nats.options()));
}

RowEntropy row_entropy(const at::Tensor& pattern, const TokenMask& mask) {
    const char* fn = "row_entropy";
    detail::check_pattern(pattern, fn);
    detail::check_mask(mask, fn);
    const std::int64_t q = pattern.size(1), k = pattern.size(2);
    at::Tensor valid = detail::valid_keys(mask, k, pattern.device(), fn, true, pattern.sizes());
    const detail::Chunk c = detail::make_chunk(pattern, k - q, valid, mask);
    return finish(detail::entropy_nats(c), detail::visible_counts(c), k - q);
}

RowEntropy subset_entropy(const at::Tensor& pattern, const at::Tensor& key_subset,
                          const TokenMask& mask) {
    const char* fn = "subset_entropy";
    detail::check_pattern(pattern, fn);
    detail::check_mask(mask, fn);
    const std::int64_t q = pattern.size(1), k = pattern.size(2);
    if (!key_subset.defined() || key_subset.dim() != 1 || key_subset.size(0) != k)
        throw ShapeError(std::string(fn) + ": key_subset must be [key_pos] = [" +
                         std::to_string(k) + "] for the pattern " +
                         detail::shape_str(pattern.sizes()) + ", got " +
                         (key_subset.defined() ? detail::shape_str(key_subset.sizes())
                                               : std::string("undefined")));
    at::Tensor valid = detail::valid_keys(mask, k, pattern.device(), fn, true, pattern.sizes());
    const detail::Chunk c = detail::make_chunk(pattern, k - q, valid, mask);
    auto [nats, n] = detail::subset_entropy_nats(c, key_subset.to(pattern.device(), at::kBool));
    return finish(nats, n, k - q);
}

at::Tensor mean_over_rows(const at::Tensor& values, const TokenMask& mask,
                          std::int64_t query_offset) {
    const char* fn = "mean_over_rows";
    if (!values.defined() || values.dim() != 2)
        detail::shape_error(fn, "values", "[head, query_pos]",
                            values.defined() ? values.sizes() : at::IntArrayRef{});
    detail::check_mask(mask, fn);
    const std::int64_t q = values.size(1);
    at::Tensor t = at::arange(query_offset, query_offset + q,
                              at::TensorOptions().dtype(at::kLong).device(values.device()));
    at::Tensor in_r = t.ge(mask.rows_begin);
    if (mask.rows_end != kUnbounded) in_r = in_r.logical_and(t.lt(mask.rows_end));
    at::Tensor v = values.to(at::kDouble);
    at::Tensor keep = v.isnan().logical_not().logical_and(in_r.unsqueeze(0));  // [head, q]
    at::Tensor sum = v.masked_fill(keep.logical_not(), 0.0).sum(1);
    at::Tensor cnt = keep.sum(1).to(at::kDouble);
    return at::where(cnt.gt(0), sum / cnt.clamp_min(1), at::full({}, kNaN, sum.options()));
}

}  // namespace attnscope::analysis
