// Per-chunk kernels: every attention statistic of the module is a masked elementwise product of
// the chunk with a [q_chunk, key_pos] weight, reduced over keys (row statistics) or over queries
// (column statistics). Memory is O(head · q_chunk · key_pos) per call.
#include "analysis/detail/kernels.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/base/error.h"

namespace attnscope::analysis::detail {

std::string shape_str(at::IntArrayRef s) {
    std::ostringstream os;
    os << '[';
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    os << ']';
    return os.str();
}

void shape_error(const std::string& fn, const std::string& what, const std::string& expected,
                 at::IntArrayRef got) {
    throw ShapeError(fn + ": " + what + " must be " + expected + ", got " + shape_str(got));
}

void check_pattern(const at::Tensor& p, const char* fn) {
    const std::string expected = "[head, query_pos, key_pos] with query_pos <= key_pos";
    if (!p.defined()) throw ShapeError(std::string(fn) + ": pattern is undefined, expected " + expected);
    if (p.dim() != 3) shape_error(fn, "pattern", expected, p.sizes());
    if (p.size(0) == 0 || p.size(1) == 0 || p.size(2) == 0)
        shape_error(fn, "pattern", expected + " (non-empty)", p.sizes());
    if (p.size(1) > p.size(2)) shape_error(fn, "pattern", expected, p.sizes());
    if (!at::isFloatingType(p.scalar_type()))
        throw ShapeError(std::string(fn) + ": pattern must be floating point (post-softmax "
                         "probabilities), got dtype " + std::string(c10::toString(p.scalar_type())));
}

void check_mask(const TokenMask& m, const char* fn) {
    if (m.rows_begin < 0 || m.rows_end < m.rows_begin)
        throw ConfigError(std::string(fn) + ": query rows [" + std::to_string(m.rows_begin) + ", " +
                          (m.rows_end == kUnbounded ? std::string("end") : std::to_string(m.rows_end)) +
                          ") is not a valid range (need 0 <= rows_begin <= rows_end)");
    if (m.attention_window < 1)
        throw ConfigError(std::string(fn) + ": attention_window = " +
                          std::to_string(m.attention_window) + " must be >= 1");
    if (m.valid.defined() && m.valid.dim() != 1)
        shape_error(fn, "mask.valid", "[pos]", m.valid.sizes());
}

at::ScalarType compute_dtype(at::ScalarType t) {
    return t == at::kDouble ? at::kDouble : at::kFloat;
}

at::Tensor valid_keys(const TokenMask& mask, std::int64_t k, at::Device device, const char* fn,
                      bool exact, at::IntArrayRef pattern_shape) {
    const auto bopt = at::TensorOptions().dtype(at::kBool).device(device);
    if (!mask.valid.defined()) return at::ones({k}, bopt);
    if (mask.valid.dim() != 1) shape_error(fn, "mask.valid", "[pos]", mask.valid.sizes());
    const std::int64_t n = mask.valid.size(0);
    if (exact && n != k)
        throw ShapeError(std::string(fn) + ": mask.valid has shape " + shape_str(mask.valid.sizes()) +
                         " but the pattern " + shape_str(pattern_shape) + " has key_pos = " +
                         std::to_string(k) + "; expected mask.valid [" + std::to_string(k) + "]");
    at::Tensor v = mask.valid.to(device, at::kBool);  // 0/1 integers: nonzero = real
    if (n >= k) return v.narrow(0, 0, k);
    return at::cat({v, at::ones({k - n}, bopt)});
}

Chunk make_chunk(const at::Tensor& pattern, std::int64_t q0, const at::Tensor& valid_k,
                 const TokenMask& m) {
    const std::int64_t qc = pattern.size(1), k = pattern.size(2);
    const auto device = pattern.device();
    const auto lopt = at::TensorOptions().dtype(at::kLong).device(device);
    const auto dt = compute_dtype(pattern.scalar_type());

    Chunk c;
    c.q_offset = q0;
    at::Tensor t = at::arange(q0, q0 + qc, lopt);   // [q_chunk] query slots
    at::Tensor s = at::arange(0, k, lopt);          // [key_pos]
    at::Tensor off = t.unsqueeze(1) - s.unsqueeze(0);  // [q_chunk, key_pos]  t - s
    c.row_valid = valid_k.narrow(0, q0, qc);
    c.visible = off.ge(0).logical_and(valid_k.unsqueeze(0)).logical_and(c.row_valid.unsqueeze(1));
    if (m.attention_window != kUnbounded) c.visible = c.visible.logical_and(off.lt(m.attention_window));
    c.in_rows = c.row_valid.logical_and(t.ge(m.rows_begin));
    if (m.rows_end != kUnbounded) c.in_rows = c.in_rows.logical_and(t.lt(m.rows_end));
    // Upcast (a no-op alias for float32 input); masked_fill is out of place, so the caller's
    // tensor (which may alias the forward pass's buffers) is never written.
    c.a = pattern.to(dt).masked_fill(c.visible.logical_not().unsqueeze(0), 0.0);
    c.offset = off.to(dt);
    return c;
}

at::Tensor nan_tensor(at::IntArrayRef shape, at::Device device) {
    return at::full(shape, std::numeric_limits<double>::quiet_NaN(),
                    at::TensorOptions().dtype(at::kDouble).device(device));
}

namespace {
// Elementwise work runs in the compute dtype (float32 for model patterns); every reduction
// accumulates in float64. The summed terms are then bitwise the same whatever the chunking or the
// key length of a chunk, so streamed and whole-tensor results agree to float64 rounding, not to
// float32 rounding of a differently blocked sum.
at::Tensor dsum(const at::Tensor& x, std::int64_t dim) {
    return at::sum(x, {dim}, /*keepdim=*/false, at::kDouble);
}

// Replaces entries of x [head, q_chunk] on rows where keep [q_chunk] is false by NaN.
at::Tensor nan_rows(const at::Tensor& x, const at::Tensor& keep) {
    return x.masked_fill(keep.logical_not().unsqueeze(0), std::numeric_limits<double>::quiet_NaN());
}
}  // namespace

at::Tensor column_sums(const Chunk& c) { return dsum(c.a, 1); }

at::Tensor column_counts(const Chunk& c) { return c.visible.sum(0).to(at::kDouble); }

at::Tensor entropy_nats(const Chunk& c) {
    // xlogy(0, 0) = 0 implements 0·ln 0 = 0 (methods.md §0).
    at::Tensor h = dsum(at::xlogy(c.a, c.a), -1).neg();  // [head, q_chunk]
    return nan_rows(h, c.row_valid);
}

at::Tensor visible_counts(const Chunk& c) { return c.visible.sum(-1); }

std::pair<at::Tensor, at::Tensor> subset_entropy_nats(const Chunk& c, const at::Tensor& subset) {
    at::Tensor sub = c.a.masked_fill(subset.logical_not().view({1, 1, -1}), 0.0);
    at::Tensor mass = sub.sum(-1, /*keepdim=*/true);                  // [head, q_chunk, 1]
    at::Tensor p = sub / mass;                                        // NaN rows handled below
    at::Tensor h = dsum(at::xlogy(p, p), -1).neg();                  // [head, q_chunk]
    h = h.masked_fill(mass.squeeze(-1).le(0), std::numeric_limits<double>::quiet_NaN());
    h = nan_rows(h, c.row_valid);
    at::Tensor n = c.visible.logical_and(subset.unsqueeze(0)).sum(-1);  // [q_chunk]
    return {h, n};
}

at::Tensor sink_mass(const Chunk& c, const std::vector<std::int64_t>& sinks) {
    const std::int64_t k = c.a.size(2);
    std::vector<std::int64_t> idx;
    for (auto j : sinks)
        if (j < k) idx.push_back(j);
    at::Tensor m;
    if (idx.empty()) {
        m = at::zeros({c.a.size(0), c.a.size(1)},
                      at::TensorOptions().dtype(at::kDouble).device(c.a.device()));
    } else {
        at::Tensor it = at::tensor(idx, at::TensorOptions().dtype(at::kLong)).to(c.a.device());
        m = dsum(c.a.index_select(2, it), -1);
    }
    return nan_rows(m, c.row_valid);
}

at::Tensor distance_rows(const Chunk& c) {
    return dsum(c.a * c.offset.unsqueeze(0), -1);
}

at::Tensor waad_rows(const Chunk& c, std::int64_t window) {
    at::Tensor w = c.offset.clamp(0, static_cast<double>(window));  // min(t - s, W)
    at::Tensor r = dsum(c.a * w.unsqueeze(0), -1);
    return nan_rows(r, c.in_rows);
}

std::pair<at::Tensor, at::Tensor> fai_parts(const Chunk& c, std::int64_t lo, std::int64_t hi) {
    at::Tensor m = c.visible.logical_and(c.in_rows.unsqueeze(1)).logical_and(
        c.offset.ge(static_cast<double>(lo)));
    // hi = kUnbounded: T(s) runs to the end of the sequence; rows only exist up to N - 1, so the
    // paper's min(N - 1, s + H_hi) needs no explicit N.
    if (hi != kUnbounded) m = m.logical_and(c.offset.le(static_cast<double>(hi)));
    at::Tensor sums = dsum(c.a.masked_fill(m.logical_not().unsqueeze(0), 0.0), 1);
    return {sums, m.sum(0).to(at::kDouble)};
}

std::vector<std::int64_t> sorted_unique(std::vector<std::int64_t> v, const char* fn,
                                        const char* what) {
    for (auto x : v)
        if (x < 0)
            throw ConfigError(std::string(fn) + ": " + what + " contains position " +
                              std::to_string(x) + "; positions must be >= 0");
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

std::vector<double> to_vector(const at::Tensor& t) {
    at::Tensor c = t.detach().to(at::kCPU, at::kDouble).contiguous().view({-1});
    const double* p = c.data_ptr<double>();
    return std::vector<double>(p, p + c.numel());
}

}  // namespace attnscope::analysis::detail
