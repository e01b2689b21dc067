// Streaming accumulators (see stream.h for the design). Row statistics are written into their
// slots; column statistics (α sums and counts, FAI sums and counts) and the distance sums are
// added. State grows by doubling when a chunk reaches beyond the current capacity (decode).
#include "analysis/stream.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "analysis/detail/kernels.h"
#include "core/base/error.h"

namespace attnscope::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

at::Tensor nan_where_empty(const at::Tensor& sum, const at::Tensor& cnt) {
    // sum [head, pos], cnt [pos]: explicit empty-set branch.
    return at::where(cnt.gt(0).unsqueeze(0), sum / cnt.clamp_min(1).unsqueeze(0),
                     at::full({}, kNaN, sum.options()));
}

// `mask` with valid padded (true) to n slots, so whole-tensor helpers accept it.
TokenMask extended(const TokenMask& mask, std::int64_t n) {
    TokenMask m = mask;
    if (m.valid.defined() && m.valid.size(0) != n) {
        at::Tensor v = m.valid.to(at::kCPU, at::kBool);
        m.valid = v.size(0) > n ? v.narrow(0, 0, n)
                                : at::cat({v, at::ones({n - v.size(0)}, v.options())});
    }
    return m;
}

}  // namespace

// ---- LayerStats ---------------------------------------------------------------------------

at::Tensor LayerStats::fai() const {
    if (!fai_sums.defined()) return {};
    return nan_where_empty(fai_sums, fai_counts);
}

// ---- LayerAccumulator ---------------------------------------------------------------------

LayerAccumulator::LayerAccumulator(std::int64_t n_heads, LayerStatsOptions options, TokenMask mask)
    : n_heads_(n_heads), options_(std::move(options)), mask_(std::move(mask)) {
    const char* fn = "LayerAccumulator";
    if (n_heads_ < 1)
        throw ConfigError(std::string(fn) + ": n_heads = " + std::to_string(n_heads_) + " < 1");
    detail::check_mask(mask_, fn);
    sinks_ = detail::sorted_unique(options_.sink_set, fn, "sink_set");
    if (options_.preplan) {
        PreplanParams p;
        p.window = options_.window;
        p.horizon = options_.horizon;
        validate(p);
    }
}

void LayerAccumulator::grow(std::int64_t need) {
    if (need <= cap_) return;
    const std::int64_t cap = std::max({need, 2 * cap_, std::int64_t{64}});
    const std::int64_t extra = cap - cap_;
    const auto dopt = at::TensorOptions().dtype(at::kDouble).device(*device_);
    auto widen = [&](at::Tensor& t, bool per_head, double fill) {
        at::Tensor add = per_head ? at::full({n_heads_, extra}, fill, dopt) : at::full({extra}, fill, dopt);
        t = t.defined() ? at::cat({t, add}, -1) : add;
    };
    if (options_.sinks) {
        widen(col_sum_, true, 0.0);
        widen(col_cnt_, false, 0.0);
    }
    if (options_.entropy) {
        widen(ent_, true, kNaN);
        at::Tensor z = at::zeros({extra}, dopt.dtype(at::kLong));
        nvis_ = nvis_.defined() ? at::cat({nvis_, z}) : z;
    }
    if (!sinks_.empty()) widen(mass_, true, kNaN);
    if (options_.preplan) {
        widen(waad_, true, kNaN);
        widen(fai_sum_, true, 0.0);
        widen(fai_cnt_, false, 0.0);
    }
    seen_.resize(static_cast<size_t>(cap), 0);
    cap_ = cap;
}

void LayerAccumulator::add(const at::Tensor& pattern) {
    detail::check_pattern(pattern, "LayerAccumulator::add");
    add(pattern, pattern.size(2) - pattern.size(1));
}

void LayerAccumulator::add(const at::Tensor& chunk, std::int64_t q0) {
    const char* fn = "LayerAccumulator::add";
    // State may be created inside the forward pass's InferenceMode (inference tensors, which
    // refuse in-place updates outside it): keep every creation and update inside it.
    c10::InferenceMode guard;
    detail::check_pattern(chunk, fn);
    const std::int64_t qc = chunk.size(1), k = chunk.size(2);
    if (chunk.size(0) != n_heads_)
        detail::shape_error(fn, "chunk", "[head = " + std::to_string(n_heads_) + ", q_chunk, key_pos]",
                            chunk.sizes());
    if (q0 < 0) throw ConfigError(std::string(fn) + ": q_offset = " + std::to_string(q0) + " < 0");
    if (k < q0 + qc)
        throw ShapeError(std::string(fn) + ": chunk " + detail::shape_str(chunk.sizes()) +
                         " at query offset " + std::to_string(q0) + " needs key_pos >= " +
                         std::to_string(q0 + qc) + " (each query sees its own slot)");
    if (!device_) {
        device_ = chunk.device();
        if (mask_.valid.defined()) mask_.valid = mask_.valid.to(*device_, at::kBool);
        dist_sum_ = at::zeros({n_heads_}, at::TensorOptions().dtype(at::kDouble).device(*device_));
        dist_rows_ = at::zeros({}, dist_sum_.options());
    } else if (chunk.device() != *device_) {
        throw ConfigError(std::string(fn) + ": chunk is on " + chunk.device().str() +
                          " but earlier chunks were on " + device_->str());
    }
    for (std::int64_t t = q0; t < q0 + qc && t < cap_; ++t)
        if (seen_[static_cast<size_t>(t)])
            throw ConfigError(std::string(fn) + ": query row " + std::to_string(t) +
                              " was already added (chunk " + detail::shape_str(chunk.sizes()) +
                              " at offset " + std::to_string(q0) + ")");

    grow(k);
    at::Tensor valid = detail::valid_keys(mask_, k, *device_, fn, /*exact=*/false, chunk.sizes());
    // Bound the temporaries (a few [head, rows, keys] tensors, float64 for the reductions) by
    // splitting large chunks; keys past a piece's last row are invisible to it, so each piece
    // only reads keys up to its own diagonal (half the work for a whole layer). Reductions
    // accumulate in float64, so the split does not change any result.
    const std::int64_t rows = std::max<std::int64_t>(1, kPieceElements / (n_heads_ * k));
    for (std::int64_t i = 0; i < qc; i += rows) {
        const std::int64_t n = std::min(rows, qc - i), keys = q0 + i + n;
        accumulate(chunk.narrow(1, i, n).narrow(2, 0, keys), q0 + i, valid.narrow(0, 0, keys));
    }
    std::fill(seen_.begin() + q0, seen_.begin() + q0 + qc, 1);
    rows_seen_ += qc;
    n_pos_ = std::max(n_pos_, k);
}

void LayerAccumulator::accumulate(const at::Tensor& piece, std::int64_t q0,
                                  const at::Tensor& valid) {
    const std::int64_t qc = piece.size(1), k = piece.size(2);
    const detail::Chunk c = detail::make_chunk(piece, q0, valid, mask_);

    if (options_.sinks) {
        col_sum_.narrow(1, 0, k).add_(detail::column_sums(c));
        col_cnt_.narrow(0, 0, k).add_(detail::column_counts(c));
    }
    if (options_.entropy) {
        ent_.narrow(1, q0, qc).copy_(detail::entropy_nats(c));
        nvis_.narrow(0, q0, qc).copy_(detail::visible_counts(c));
    }
    if (!sinks_.empty()) mass_.narrow(1, q0, qc).copy_(detail::sink_mass(c, sinks_));
    if (options_.distance || options_.preplan) {
        at::Tensor rows = detail::distance_rows(c).masked_fill(c.in_rows.logical_not().unsqueeze(0), 0.0);
        dist_sum_.add_(rows.sum(1));
        dist_rows_.add_(c.in_rows.sum().to(at::kDouble));
    }
    if (options_.preplan) {
        waad_.narrow(1, q0, qc).copy_(detail::waad_rows(c, options_.window));
        auto [sum, cnt] = detail::fai_parts(c, options_.horizon.lo, options_.horizon.hi);
        fai_sum_.narrow(1, 0, k).add_(sum);
        fai_cnt_.narrow(0, 0, k).add_(cnt);
    }
}

LayerStats LayerAccumulator::result() const {
    if (!device_) throw ConfigError("LayerAccumulator::result: no chunk was added");
    const std::int64_t n = n_pos_;
    LayerStats r;
    r.n_pos = n;
    r.rows_seen = rows_seen_;
    r.window = options_.window;
    r.horizon = options_.horizon;
    if (options_.sinks) {
        r.column_sums = col_sum_.narrow(1, 0, n).clone();
        r.column_counts = col_cnt_.narrow(0, 0, n).clone();
        r.sink_scores = nan_where_empty(r.column_sums, r.column_counts);
    }
    if (options_.entropy) {
        RowEntropy& e = r.entropy;
        e.query_offset = 0;
        e.nats = ent_.narrow(1, 0, n).clone();
        e.bits = e.nats / std::log(2.0);
        e.n_visible = nvis_.narrow(0, 0, n).clone();
        e.normalized = normalize_entropy(e.nats, e.n_visible);
        r.mean_entropy = mean_over_rows(e.normalized, mask_, 0);
        r.mean_entropy_nats = mean_over_rows(e.nats, mask_, 0);
    }
    if (!sinks_.empty()) r.sink_mass = mass_.narrow(1, 0, n).clone();
    if (options_.distance || options_.preplan)
        r.distance = at::where(dist_rows_.gt(0), dist_sum_ / dist_rows_.clamp_min(1),
                               at::full({}, kNaN, dist_sum_.options()));
    if (options_.preplan) {
        r.waad = waad_.narrow(1, 0, n).clone();
        r.fai_sums = fai_sum_.narrow(1, 0, n).clone();
        r.fai_counts = fai_cnt_.narrow(0, 0, n).clone();
    }
    return r;
}

// ---- preplan_from_stats -------------------------------------------------------------------

PreplanResult preplan_from_stats(const std::vector<LayerStats>& layers, const TokenMask& mask,
                                 const PreplanParams& params,
                                 const std::optional<HeadGroups>& fixed_groups) {
    const char* fn = "preplan_from_stats";
    validate(params);
    detail::check_mask(mask, fn);
    if (layers.empty()) throw ConfigError(std::string(fn) + ": no layers given");
    const LayerStats& first = layers.front();
    for (size_t i = 0; i < layers.size(); ++i) {
        const LayerStats& l = layers[i];
        if (!l.waad.defined() || !l.distance.defined())
            throw ConfigError(std::string(fn) + ": layer " + std::to_string(i) +
                              " has no WAAD/FAI statistics; accumulate it with options.preplan");
        if (l.window != params.window || l.horizon.lo != params.horizon.lo ||
            l.horizon.hi != params.horizon.hi)
            throw ConfigError(std::string(fn) + ": layer " + std::to_string(i) +
                              " was accumulated with W = " + std::to_string(l.window) +
                              ", H = [" + std::to_string(l.horizon.lo) + ", " +
                              std::to_string(l.horizon.hi) + "] but params ask for W = " +
                              std::to_string(params.window) + ", H = [" +
                              std::to_string(params.horizon.lo) + ", " +
                              std::to_string(params.horizon.hi) + "]");
        if (l.waad.sizes() != first.waad.sizes())
            throw ShapeError(std::string(fn) + ": layer " + std::to_string(i) + " WAAD " +
                             detail::shape_str(l.waad.sizes()) + " differs from layer 0's " +
                             detail::shape_str(first.waad.sizes()));
    }
    const std::int64_t n = first.n_pos;

    PreplanResult out;
    std::vector<at::Tensor> d, w, f;
    for (const auto& l : layers) {
        d.push_back(l.distance);
        w.push_back(l.waad);
        f.push_back(l.fai());
    }
    out.distance = at::stack(d);  // [layer, head]
    if (params.grouping == Grouping::kFixed) {
        if (!fixed_groups)
            throw ConfigError(std::string(fn) + ": grouping = fixed needs the caller's head groups");
        if (!fixed_groups->classes.defined() || fixed_groups->classes.sizes() != out.distance.sizes())
            throw ShapeError(std::string(fn) + ": fixed head groups do not cover [layer, head] = " +
                             detail::shape_str(out.distance.sizes()));
        out.groups = *fixed_groups;
    } else {
        if (fixed_groups)
            throw ConfigError(std::string(fn) + ": head groups were given but grouping = "
                              "per_sequence; set grouping = fixed to use them");
        out.groups = classify_heads(out.distance, params);
    }
    at::Tensor all_w = at::cat(w, 0), all_f = at::cat(f, 0);  // [layer·head, pos], flat = l·H + h
    auto mean_of = [&](const at::Tensor& per_head, const std::vector<std::int64_t>& members,
                       const char* name) {
        if (members.empty())
            throw ConfigError(std::string(fn) + ": the " + name + " head group is empty");
        for (auto m : members)
            if (m < 0 || m >= per_head.size(0))
                throw ConfigError(std::string(fn) + ": " + name + " group member " +
                                  std::to_string(m) + " is outside the " +
                                  std::to_string(per_head.size(0)) + " sampled heads");
        at::Tensor idx = at::tensor(members, at::TensorOptions().dtype(at::kLong)).to(per_head.device());
        return per_head.index_select(0, idx).mean(0);  // exact: Ā is a plain mean over heads
    };
    at::Tensor waad_t = mean_of(all_w, out.groups.local, "local");
    at::Tensor fai_s = mean_of(all_f, out.groups.global, "global");
    out.roles = token_roles(waad_t, fai_s, extended(mask, n), params);
    return out;
}

// ---- SequenceAccumulator ------------------------------------------------------------------

SequenceAccumulator::SequenceAccumulator(std::int64_t n_layers, std::int64_t n_heads,
                                         SequenceOptions options, TokenMask mask)
    : n_layers_(n_layers), n_heads_(n_heads), options_(std::move(options)), mask_(std::move(mask)) {
    const char* fn = "SequenceAccumulator";
    if (n_layers_ < 1 || n_heads_ < 1)
        throw ConfigError(std::string(fn) + ": need n_layers >= 1 and n_heads >= 1, got " +
                          std::to_string(n_layers_) + " and " + std::to_string(n_heads_));
    detail::check_mask(mask_, fn);
    validate(options_.preplan_params);
    auto check_layers = [&](const std::vector<std::int64_t>& v, const char* what) {
        for (auto l : v)
            if (l < 0 || l >= n_layers_)
                throw ConfigError(std::string(fn) + ": " + what + " contains layer " +
                                  std::to_string(l) + " outside [0, " + std::to_string(n_layers_) + ")");
    };
    check_layers(options_.layers, "layers");
    check_layers(options_.preplan_layers, "preplan_layers");
    if (options_.sink.k < 0 || !std::isfinite(options_.sink.epsilon))
        throw ConfigError(std::string(fn) + ": sink k = " + std::to_string(options_.sink.k) +
                          " must be >= 0 and epsilon finite");

    if (options_.layers.empty()) {
        for (std::int64_t l = 0; l < n_layers_; ++l) layers_.push_back(l);
    } else {
        layers_ = detail::sorted_unique(options_.layers, fn, "layers");
    }
    preplan_layers_ = options_.preplan_layers.empty()
                          ? middle_third_layers(n_layers_)
                          : detail::sorted_unique(options_.preplan_layers, fn, "preplan_layers");
    acc_.resize(static_cast<size_t>(n_layers_));
    for (auto l : layers_) {
        LayerStatsOptions o = options_.stats;
        const bool sampled = std::binary_search(preplan_layers_.begin(), preplan_layers_.end(), l);
        if (sampled) o.distance = true;  // head classes need d on every sampled layer
        if (sampled && options_.preplan) {
            o.preplan = true;
            o.window = options_.preplan_params.window;
            o.horizon = options_.preplan_params.horizon;
        }
        acc_[static_cast<size_t>(l)].emplace(n_heads_, o, mask_);
    }
}

bool SequenceAccumulator::wants(std::int64_t layer) const {
    return layer >= 0 && layer < n_layers_ && acc_[static_cast<size_t>(layer)].has_value();
}

void SequenceAccumulator::add(std::int64_t layer, const at::Tensor& chunk, std::int64_t q_offset) {
    if (layer < 0 || layer >= n_layers_)
        throw ConfigError("SequenceAccumulator::add: layer " + std::to_string(layer) +
                          " outside [0, " + std::to_string(n_layers_) + ")");
    if (wants(layer)) acc_[static_cast<size_t>(layer)]->add(chunk, q_offset);
}

void SequenceAccumulator::add(std::int64_t layer, const at::Tensor& pattern) {
    detail::check_pattern(pattern, "SequenceAccumulator::add");
    add(layer, pattern, pattern.size(2) - pattern.size(1));
}

const LayerAccumulator& SequenceAccumulator::layer(std::int64_t l) const {
    if (!wants(l))
        throw ConfigError("SequenceAccumulator::layer: layer " + std::to_string(l) +
                          " is not accumulated");
    return *acc_[static_cast<size_t>(l)];
}

std::int64_t SequenceAccumulator::sink_slot() const {
    std::int64_t n = 0;
    for (auto l : layers_) n = std::max(n, acc_[static_cast<size_t>(l)]->n_pos());
    const std::int64_t k = options_.sink.k;
    if (!mask_.valid.defined()) {
        if (k >= n && n > 0)
            throw ConfigError("SequenceAccumulator: sink position k = " + std::to_string(k) +
                              " is beyond the " + std::to_string(n) + " tokens seen");
        return k;
    }
    // Slots beyond the mask are real tokens, so the k-th real token lies within len slots.
    const std::int64_t len = std::max(n, mask_.valid.size(0)) + k + 1;
    std::vector<double> v = detail::to_vector(extended(mask_, len).valid.to(at::kDouble));
    std::int64_t seen = 0;
    for (std::int64_t s = 0; s < len; ++s) {
        if (v[static_cast<size_t>(s)] == 0) continue;
        if (seen++ < k) continue;
        if (n > 0 && s >= n) break;
        return s;
    }
    throw ConfigError("SequenceAccumulator: the sequence has no real token number k = " +
                      std::to_string(k));
}

at::Tensor SequenceAccumulator::sink_scores() const {
    std::vector<at::Tensor> s;
    for (auto l : layers_) {
        LayerStats r = acc_[static_cast<size_t>(l)]->result();
        if (!r.sink_scores.defined())
            throw ConfigError("SequenceAccumulator::sink_scores: options.stats.sinks is off");
        s.push_back(r.sink_scores);
    }
    return at::stack(s);
}

SinkRatio SequenceAccumulator::sink_ratio() const {
    SinkParams p = options_.sink;
    p.k = sink_slot();
    return analysis::sink_ratio(sink_scores(), p);
}

PreplanResult SequenceAccumulator::preplan(const std::optional<HeadGroups>& fixed_groups) const {
    if (!options_.preplan)
        throw ConfigError("SequenceAccumulator::preplan: options.preplan is off");
    std::vector<LayerStats> stats;
    for (auto l : preplan_layers_) {
        if (!wants(l))
            throw ConfigError("SequenceAccumulator::preplan: preplan layer " + std::to_string(l) +
                              " is not accumulated (options.layers)");
        stats.push_back(acc_[static_cast<size_t>(l)]->result());
    }
    return preplan_from_stats(stats, mask_, options_.preplan_params, fixed_groups);
}

std::vector<HeadSummary> SequenceAccumulator::summary(
    const std::optional<HeadGroups>& fixed_groups) const {
    // Head classes over the sampled layers' d.
    std::vector<std::int8_t> cls;
    std::vector<at::Tensor> d;
    for (auto l : preplan_layers_)
        if (wants(l)) d.push_back(acc_[static_cast<size_t>(l)]->result().distance);
    const bool classified = d.size() == preplan_layers_.size() && !d.empty();
    if (fixed_groups) {
        at::Tensor c = fixed_groups->classes.to(at::kCPU, at::kChar).contiguous();
        cls.assign(c.data_ptr<std::int8_t>(), c.data_ptr<std::int8_t>() + c.numel());
    } else if (classified) {
        HeadGroups g = classify_heads(at::stack(d), options_.preplan_params);
        cls.assign(g.classes.data_ptr<std::int8_t>(), g.classes.data_ptr<std::int8_t>() + g.classes.numel());
    }
    const std::int64_t slot = options_.stats.sinks ? sink_slot() : -1;

    std::vector<HeadSummary> rows;
    for (auto l : layers_) {
        LayerStats r = acc_[static_cast<size_t>(l)]->result();
        auto pick = [](const at::Tensor& t) {
            return t.defined() ? detail::to_vector(t) : std::vector<double>();
        };
        std::vector<double> ent = pick(r.mean_entropy), nats = pick(r.mean_entropy_nats),
                            dist = pick(r.distance), alpha;
        if (slot >= 0 && slot < r.n_pos) alpha = detail::to_vector(r.sink_scores.select(1, slot));
        auto it = std::find(preplan_layers_.begin(), preplan_layers_.end(), l);
        const std::int64_t li = it == preplan_layers_.end() ? -1 : it - preplan_layers_.begin();
        for (std::int64_t h = 0; h < n_heads_; ++h) {
            HeadSummary s;
            s.layer = l;
            s.head = h;
            const auto hh = static_cast<size_t>(h);
            s.entropy_norm = ent.empty() ? kNaN : ent[hh];
            s.entropy_nats = nats.empty() ? kNaN : nats[hh];
            s.sink_slot = slot;
            s.alpha = alpha.empty() ? kNaN : alpha[hh];
            s.sink = s.alpha > options_.sink.epsilon;
            s.distance = dist.empty() ? kNaN : dist[hh];
            const std::int64_t flat = li * n_heads_ + h;
            if (li >= 0 && flat < static_cast<std::int64_t>(cls.size()))
                s.head_class = static_cast<HeadClass>(cls[static_cast<size_t>(flat)]);
            rows.push_back(s);
        }
    }
    return rows;
}

// ---- Batch --------------------------------------------------------------------------------

std::vector<TokenMask> masks_from_attention_mask(const at::Tensor& attention_mask,
                                                 std::int64_t rows_begin, std::int64_t rows_end) {
    if (!attention_mask.defined() || attention_mask.dim() != 2)
        detail::shape_error("masks_from_attention_mask", "attention_mask", "[batch, pos]",
                            attention_mask.defined() ? attention_mask.sizes() : at::IntArrayRef{});
    at::Tensor m = attention_mask.to(at::kCPU, at::kBool);
    std::vector<TokenMask> out;
    for (std::int64_t b = 0; b < m.size(0); ++b) {
        TokenMask t = TokenMask::response(rows_begin, rows_end);
        t.valid = m[b].clone();
        out.push_back(t);
    }
    return out;
}

BatchAccumulator::BatchAccumulator(std::int64_t n_layers, std::int64_t n_heads,
                                   std::vector<TokenMask> masks, SequenceOptions options) {
    if (masks.empty()) throw ConfigError("BatchAccumulator: no sequences (empty mask list)");
    for (auto& m : masks) seqs_.emplace_back(n_layers, n_heads, options, std::move(m));
}

void BatchAccumulator::check_batch(const at::Tensor& x, const char* fn) const {
    if (!x.defined() || x.dim() != 4 || x.size(0) != batch_size())
        detail::shape_error(fn, "pattern",
                            "[batch = " + std::to_string(batch_size()) +
                                ", head, query_pos, key_pos]",
                            x.defined() ? x.sizes() : at::IntArrayRef{});
}

void BatchAccumulator::observe(const HookName& hook, const at::Tensor& pattern) {
    if (hook.site != Site::kPattern)
        throw HookError("BatchAccumulator::observe: expects blocks.*.attn.hook_pattern, got " +
                        hook.to_string());
    check_batch(pattern, "BatchAccumulator::observe");
    add(hook.layer, pattern, pattern.size(3) - pattern.size(2));
}

void BatchAccumulator::add(std::int64_t layer, const at::Tensor& chunk, std::int64_t q_offset) {
    check_batch(chunk, "BatchAccumulator::add");
    for (std::int64_t b = 0; b < batch_size(); ++b)
        seqs_[static_cast<size_t>(b)].add(layer, chunk.select(0, b), q_offset);
}

const SequenceAccumulator& BatchAccumulator::sequence(std::int64_t b) const {
    if (b < 0 || b >= batch_size())
        throw ConfigError("BatchAccumulator::sequence: index " + std::to_string(b) +
                          " outside [0, " + std::to_string(batch_size()) + ")");
    return seqs_[static_cast<size_t>(b)];
}

}  // namespace attnscope::analysis
