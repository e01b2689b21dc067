// Massive activations (arXiv 2402.17762 §2; methods.md §1.4).
#include "analysis/massive.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "analysis/detail/kernels.h"
#include "core/base/error.h"

namespace attnscope::analysis {

std::vector<MassiveActivation> massive_activations(const at::Tensor& resid,
                                                   const MassiveParams& params,
                                                   const TokenMask& mask) {
    const char* fn = "massive_activations";
    if (!resid.defined() || resid.dim() != 2 || resid.size(1) == 0)
        detail::shape_error(fn, "resid", "[pos, d_model] (one sequence; slice the batch first)",
                            resid.defined() ? resid.sizes() : at::IntArrayRef{});
    if (!at::isFloatingType(resid.scalar_type()))
        throw ShapeError(std::string(fn) + ": resid must be floating point, got dtype " +
                         std::string(c10::toString(resid.scalar_type())));
    if (!(std::isfinite(params.abs_threshold) && params.abs_threshold >= 0 &&
          std::isfinite(params.factor) && params.factor >= 0))
        throw ConfigError(std::string(fn) + ": abs_threshold = " +
                          std::to_string(params.abs_threshold) + " and factor = " +
                          std::to_string(params.factor) + " must be finite and >= 0");
    detail::check_mask(mask, fn);
    const std::int64_t p = resid.size(0), d = resid.size(1);
    if (p == 0) return {};
    at::Tensor valid = detail::valid_keys(mask, p, resid.device(), fn, true, resid.sizes());

    at::Tensor a = resid.to(detail::compute_dtype(resid.scalar_type())).abs();  // [pos, d_model]
    at::Tensor sorted = std::get<0>(a.sort(1));
    // True median (mean of the two middle values for even d_model); torch.median would take
    // the lower one. The factor 1000 makes the difference immaterial in practice.
    at::Tensor med = d % 2 ? sorted.select(1, d / 2)
                           : 0.5 * (sorted.select(1, d / 2 - 1) + sorted.select(1, d / 2));
    at::Tensor hit = a.gt(params.abs_threshold)
                         .logical_and(a.ge(med.unsqueeze(1) * params.factor))
                         .logical_and(valid.unsqueeze(1));
    at::Tensor idx = hit.nonzero().to(at::kCPU);  // [n, 2] (pos, dim), row-major order
    const std::int64_t n = idx.size(0);
    std::vector<MassiveActivation> out;
    if (n == 0) return out;
    at::Tensor vals = resid.masked_select(hit).to(at::kCPU, at::kDouble);  // row-major, as nonzero()
    at::Tensor meds = med.index_select(0, idx.select(1, 0).to(med.device())).to(at::kCPU, at::kDouble);
    auto ia = idx.accessor<std::int64_t, 2>();
    const double* v = vals.data_ptr<double>();
    const double* m = meds.data_ptr<double>();
    out.reserve(static_cast<size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) out.push_back({ia[i][0], ia[i][1], v[i], m[i]});
    return out;
}

void SinkDimensionCounter::add(std::int64_t layer, const std::vector<MassiveActivation>& found) {
    for (const auto& f : found) {
        Entry& e = dims_[f.dim];
        ++e.count;
        ++e.layers[layer];
        e.max_abs = std::max(e.max_abs, std::abs(f.value));
    }
}

void SinkDimensionCounter::merge(const SinkDimensionCounter& other) {
    for (const auto& [dim, o] : other.dims_) {
        Entry& e = dims_[dim];
        e.count += o.count;
        e.max_abs = std::max(e.max_abs, o.max_abs);
        for (const auto& [l, c] : o.layers) e.layers[l] += c;
    }
}

std::vector<SinkDimension> SinkDimensionCounter::sorted() const {
    std::vector<SinkDimension> out;
    for (const auto& [dim, e] : dims_)
        out.push_back({dim, e.count, static_cast<std::int64_t>(e.layers.size()), e.max_abs});
    std::stable_sort(out.begin(), out.end(), [](const SinkDimension& a, const SinkDimension& b) {
        return a.count > b.count;  // dims_ is ordered by dim, so ties stay in increasing dim
    });
    return out;
}

}  // namespace attnscope::analysis
