// Analyze: one Analyzer per dataset owns a SequenceAccumulator per prompt (plus a second one over
// rows/keys [0, T) for the sink protocol); live runs and stored maps both end in add_pattern, so
// the two sources share every line that computes a number.
#include "probes/analyze.h"
#include "probes/capture.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <utility>

#include "analysis/stream.h"
#include "core/base/error.h"
#include "core/format/model_config.h"
#include "core/model/model.h"
#include "core/store/reader.h"
#include "core/store/writer.h"
#include "core/text/tokenizer.h"

namespace attnscope::probes {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kMetricVersion = 1;

const std::vector<AnalyzeMetric>& all_metrics() {
    static const std::vector<AnalyzeMetric> v = {
        AnalyzeMetric::kSink, AnalyzeMetric::kEntropy, AnalyzeMetric::kDistance,
        AnalyzeMetric::kWaad, AnalyzeMetric::kFai,     AnalyzeMetric::kRoles,
        AnalyzeMetric::kMassive};
    return v;
}

std::string join(const std::vector<std::int64_t>& v, const char* sep = ",") {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + std::to_string(v[i]);
    return s;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
    return s;
}

std::string pattern_hook(std::int64_t layer) {
    return HookName{static_cast<int>(layer), Site::kPattern}.to_string();
}

std::vector<double> to_vec(const at::Tensor& t) {
    at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

at::Tensor cpu64(const at::Tensor& t) { return t.to(at::kCPU, at::kDouble).contiguous(); }

// JSON number or null for NaN / inf (JSON has neither).
nlohmann::ordered_json jnum(double x) {
    if (!std::isfinite(x)) return nullptr;
    return x;
}

nlohmann::ordered_json horizon_json(const analysis::FaiHorizon& h) {
    nlohmann::ordered_json j;
    j["lo"] = h.lo;
    j["hi"] = h.hi == analysis::kUnbounded ? nlohmann::ordered_json(nullptr)
                                           : nlohmann::ordered_json(h.hi);
    return j;
}

}  // namespace

// ---- names and option parsing -------------------------------------------------------------

const char* to_string(AnalyzeMetric m) {
    switch (m) {
        case AnalyzeMetric::kSink: return "sink";
        case AnalyzeMetric::kEntropy: return "entropy";
        case AnalyzeMetric::kDistance: return "distance";
        case AnalyzeMetric::kWaad: return "waad";
        case AnalyzeMetric::kFai: return "fai";
        case AnalyzeMetric::kRoles: return "roles";
        case AnalyzeMetric::kMassive: return "massive";
    }
    return "?";
}

std::ostream& operator<<(std::ostream& os, AnalyzeMetric m) { return os << to_string(m); }

const std::vector<std::string>& analyze_metric_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (auto m : all_metrics()) v.push_back(to_string(m));
        return v;
    }();
    return names;
}

std::set<AnalyzeMetric> parse_metrics(const std::string& list) {
    std::set<AnalyzeMetric> out;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) {
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        if (item.empty()) continue;
        if (item == "all") {
            out.insert(all_metrics().begin(), all_metrics().end());
            continue;
        }
        bool found = false;
        for (auto m : all_metrics())
            if (item == to_string(m)) {
                out.insert(m);
                found = true;
            }
        if (!found)
            throw ConfigError("--metrics: unknown metric '" + item + "'; valid names: " +
                              join(analyze_metric_names()) + " (or all)");
    }
    if (out.empty())
        throw ConfigError("--metrics: empty list; valid names: " + join(analyze_metric_names()) +
                          " (or all)");
    return out;
}

analysis::FaiHorizon parse_horizon(const std::string& text) {
    if (text == "analysis") return analysis::FaiHorizon::analysis();
    if (text == "rl") return analysis::FaiHorizon::rl();
    auto bad = [&](const std::string& why) {
        return ConfigError("--horizon '" + text + "': " + why +
                           " (expected analysis, rl, or lo,hi such as 10,100 or 1,inf)");
    };
    const auto comma = text.find(',');
    if (comma == std::string::npos) throw bad("no comma");
    auto num = [&](const std::string& s) -> std::int64_t {
        if (s == "inf") return analysis::kUnbounded;
        if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos)
            throw bad("'" + s + "' is not a non-negative integer or inf");
        return std::stoll(s);
    };
    analysis::FaiHorizon h;
    h.lo = num(text.substr(0, comma));
    h.hi = num(text.substr(comma + 1));
    if (h.lo == analysis::kUnbounded) throw bad("lo cannot be inf");
    if (h.hi < h.lo) throw bad("hi < lo");
    return h;
}

std::string horizon_string(const analysis::FaiHorizon& h) {
    return std::to_string(h.lo) + "," +
           (h.hi == analysis::kUnbounded ? std::string("inf") : std::to_string(h.hi));
}

// ---- PromptAnalysis -----------------------------------------------------------------------

void PromptAnalysis::compact() {
    // [layer, head, pos] tensors go; [pos] series (WAAD, Δ, FAI) are small and stay.
    sink_scores = at::Tensor();
    entropy_nats = at::Tensor();
    entropy_norm = at::Tensor();
    if (preplan) preplan->roles.gamma = at::Tensor();
}

// ---- Analyzer -----------------------------------------------------------------------------

struct Analyzer::State {
    bool open = false;
    PromptAnalysis p;
    std::optional<analysis::SequenceAccumulator> acc;       // every pattern layer, whole prompt
    std::optional<analysis::SequenceAccumulator> sink_acc;  // layers_, rows/keys [0, sink_T)
    std::set<std::int64_t> seen_pattern, seen_resid;
};

Analyzer::Analyzer(std::int64_t n_layers, std::int64_t n_heads, AnalyzeOptions options, bool live)
    : n_layers_(n_layers), n_heads_(n_heads), options_(std::move(options)),
      st_(std::make_unique<State>()) {
    if (n_layers_ < 1 || n_heads_ < 1)
        throw ConfigError("analyze: model has " + std::to_string(n_layers_) + " layers and " +
                          std::to_string(n_heads_) + " heads");
    metrics_ = options_.metrics;
    if (metrics_.empty()) {
        metrics_.insert(all_metrics().begin(), all_metrics().end());
        if (!live) metrics_.erase(AnalyzeMetric::kMassive);
    } else if (!live && metrics_.count(AnalyzeMetric::kMassive)) {
        throw ConfigError("--metrics massive needs a live model run (it reads "
                          "blocks.*.hook_resid_post during the forward); drop it with --in");
    }
    if (options_.window < 1)
        throw ConfigError("--window must be >= 1, got " + std::to_string(options_.window));
    if (options_.sink_T < 0)
        throw ConfigError("--sink-T must be >= 0 (0 = whole prompt), got " +
                          std::to_string(options_.sink_T));
    if (!std::isfinite(options_.epsilon))
        throw ConfigError("--epsilon must be a finite number");
    if (options_.horizon.lo < 0 || options_.horizon.hi < options_.horizon.lo)
        throw ConfigError("--horizon: need 0 <= lo <= hi, got " + horizon_string(options_.horizon));
    if (options_.hist_bins < 1) throw ConfigError("analyze: hist_bins must be >= 1");
    if (options_.attention_window < 1)
        throw ConfigError("analyze: attention_window must be >= 1");
    if (options_.rows_begin < 0)
        throw ConfigError("--rows-from must be >= 0, got " + std::to_string(options_.rows_begin));

    if (options_.layers.empty()) {
        for (std::int64_t l = 0; l < n_layers_; ++l) layers_.push_back(l);
    } else {
        for (int l : options_.layers) {
            if (l < 0 || l >= n_layers_)
                throw ConfigError("--layers: layer " + std::to_string(l) +
                                  " does not exist; the model has " + std::to_string(n_layers_) +
                                  " (0-" + std::to_string(n_layers_ - 1) + ")");
            layers_.push_back(l);
        }
        std::sort(layers_.begin(), layers_.end());
        layers_.erase(std::unique(layers_.begin(), layers_.end()), layers_.end());
    }
    preplan_layers_ = analysis::middle_third_layers(n_layers_);
    std::set<std::int64_t> pl;
    if (wants(AnalyzeMetric::kSink) || wants(AnalyzeMetric::kEntropy) ||
        wants(AnalyzeMetric::kDistance))
        pl.insert(layers_.begin(), layers_.end());
    if (wants_preplan()) pl.insert(preplan_layers_.begin(), preplan_layers_.end());
    pattern_layers_.assign(pl.begin(), pl.end());
    if (wants(AnalyzeMetric::kMassive)) resid_layers_ = layers_;

    dataset_.n_heads = n_heads_;
    dataset_.layers = layers_;
    dataset_.preplan_layers = wants_preplan() ? preplan_layers_ : std::vector<std::int64_t>{};
    dataset_.sink_T = options_.sink_T;
    dataset_.epsilon = options_.epsilon;
    dataset_.sink_ratio = analysis::SinkRatioAccumulator({options_.epsilon, 0});
    for (size_t i = 0; i < layers_.size(); ++i)
        dataset_.entropy_hist.emplace_back(0.0, 1.0, options_.hist_bins);
    if (wants_preplan()) {
        const auto np = static_cast<std::int64_t>(preplan_layers_.size());
        dataset_.local_count = at::zeros({np, n_heads_}, at::kDouble);
        dataset_.global_count = at::zeros({np, n_heads_}, at::kDouble);
    }
}

Analyzer::~Analyzer() = default;

bool Analyzer::wants_preplan() const {
    return wants(AnalyzeMetric::kWaad) || wants(AnalyzeMetric::kFai) ||
           wants(AnalyzeMetric::kRoles);
}

void Analyzer::begin_prompt(std::int64_t id, std::string text, std::string source,
                            std::vector<std::int32_t> tokens, std::vector<std::string> token_str,
                            std::int64_t n_prompt_tokens) {
    const auto n = static_cast<std::int64_t>(tokens.size());
    if (n < 1) throw ConfigError("analyze: prompt " + std::to_string(id) + " (" + source + ") has no tokens");
    if (token_str.size() != tokens.size())
        throw ShapeError("analyze: prompt " + std::to_string(id) + " has " +
                         std::to_string(tokens.size()) + " tokens but " +
                         std::to_string(token_str.size()) + " token strings");
    State& s = *st_;
    s = State{};
    s.open = true;
    PromptAnalysis& p = s.p;
    p.id = id;
    p.text = std::move(text);
    p.source = std::move(source);
    p.tokens = std::move(tokens);
    p.token_str = std::move(token_str);
    p.n_tokens = n;
    p.layers = layers_;
    if (wants_preplan()) p.preplan_layers = preplan_layers_;
    p.rows_begin = options_.rows_begin;
    if (options_.response_only && n_prompt_tokens > 0 && n_prompt_tokens < n)
        p.rows_begin = std::max(p.rows_begin, n_prompt_tokens);
    analysis::TokenMask mask = analysis::TokenMask::response(p.rows_begin);
    mask.attention_window = options_.attention_window;

    const bool sink = wants(AnalyzeMetric::kSink);
    const bool truncate = sink && options_.sink_T > 0 && n > options_.sink_T;
    p.sink_T = sink ? (options_.sink_T > 0 ? std::min(n, options_.sink_T) : n) : 0;
    p.sink_counted = sink && (options_.sink_T == 0 || n >= options_.sink_T);

    if (!pattern_layers_.empty()) {
        analysis::SequenceOptions o;
        o.stats.sinks = sink && !truncate;
        o.stats.entropy = wants(AnalyzeMetric::kEntropy);
        o.stats.distance = wants(AnalyzeMetric::kDistance);
        o.stats.preplan = false;  // switched on for the sampled layers below
        o.layers = pattern_layers_;
        o.preplan = wants_preplan();
        o.preplan_layers = preplan_layers_;
        o.preplan_params.window = options_.window;
        o.preplan_params.horizon = options_.horizon;
        o.sink = {options_.epsilon, 0};
        s.acc.emplace(n_layers_, n_heads_, std::move(o), mask);
    }
    if (truncate) {
        analysis::SequenceOptions o;
        o.stats.sinks = true;
        o.stats.entropy = false;
        o.stats.distance = false;
        o.layers = layers_;
        o.preplan = false;
        o.sink = {options_.epsilon, 0};
        analysis::TokenMask m;
        m.attention_window = options_.attention_window;
        s.sink_acc.emplace(n_layers_, n_heads_, std::move(o), m);
    }
}

void Analyzer::add_pattern(std::int64_t layer, const at::Tensor& pattern) {
    State& s = *st_;
    if (!s.open) throw std::logic_error("Analyzer::add_pattern: no prompt is open");
    if (!std::binary_search(pattern_layers_.begin(), pattern_layers_.end(), layer)) return;
    const std::int64_t n = s.p.n_tokens;
    if (pattern.dim() != 3 || pattern.size(0) != n_heads_ || pattern.size(1) != n ||
        pattern.size(2) != n) {
        std::ostringstream m;
        m << "analyze: prompt " << s.p.id << " layer " << layer << ": attention pattern of shape "
          << pattern.sizes() << ", expected [head, T, T] = [" << n_heads_ << ", " << n << ", " << n
          << "]";
        throw ShapeError(m.str());
    }
    if (s.acc) s.acc->add(layer, pattern, 0);
    if (s.sink_acc && s.sink_acc->wants(layer)) {
        const std::int64_t t = s.p.sink_T;
        s.sink_acc->add(layer, pattern.narrow(1, 0, t).narrow(2, 0, t), 0);
    }
    s.seen_pattern.insert(layer);
}

void Analyzer::add_pattern_chunk(std::int64_t layer, const at::Tensor& rows, std::int64_t q0) {
    State& s = *st_;
    if (!s.open) throw std::logic_error("Analyzer::add_pattern_chunk: no prompt is open");
    if (!std::binary_search(pattern_layers_.begin(), pattern_layers_.end(), layer)) return;
    const std::int64_t n = s.p.n_tokens;
    if (rows.dim() != 3 || rows.size(0) != n_heads_ || rows.size(2) != n || q0 < 0 ||
        q0 + rows.size(1) > n) {
        std::ostringstream m;
        m << "analyze: prompt " << s.p.id << " layer " << layer << ": attention rows of shape "
          << rows.sizes() << " at query " << q0 << ", expected [head, q, T] with T = " << n;
        throw ShapeError(m.str());
    }
    if (s.acc) s.acc->add(layer, rows, q0);
    if (s.sink_acc && s.sink_acc->wants(layer)) {
        const std::int64_t t = s.p.sink_T;
        if (q0 < t) {
            const std::int64_t c = std::min(rows.size(1), t - q0);
            s.sink_acc->add(layer, rows.narrow(1, 0, c).narrow(2, 0, t), q0);
        }
    }
    if (q0 + rows.size(1) == n) s.seen_pattern.insert(layer);
}

void Analyzer::add_resid(std::int64_t layer, const at::Tensor& resid) {
    State& s = *st_;
    if (!s.open) throw std::logic_error("Analyzer::add_resid: no prompt is open");
    if (!std::binary_search(resid_layers_.begin(), resid_layers_.end(), layer)) return;
    if (resid.dim() != 2 || resid.size(0) != s.p.n_tokens) {
        std::ostringstream m;
        m << "analyze: prompt " << s.p.id << " layer " << layer << ": residual stream of shape "
          << resid.sizes() << ", expected [pos, d_model] with pos = " << s.p.n_tokens;
        throw ShapeError(m.str());
    }
    const auto found = analysis::massive_activations(resid, options_.massive);
    for (const auto& a : found) s.p.massive.push_back({layer, a});
    dataset_.sink_dims.add(layer, found);
    dataset_.n_massive += static_cast<std::int64_t>(found.size());
    s.seen_resid.insert(layer);
}

PromptAnalysis Analyzer::end_prompt() {
    State& s = *st_;
    if (!s.open) throw std::logic_error("Analyzer::end_prompt: no prompt is open");
    s.open = false;
    PromptAnalysis p = std::move(s.p);
    std::vector<std::int64_t> missing;
    for (auto l : pattern_layers_)
        if (!s.seen_pattern.count(l)) missing.push_back(l);
    if (!missing.empty())
        throw ConfigError("analyze: prompt " + std::to_string(p.id) +
                          ": no attention pattern was given for layers " + join(missing));
    for (auto l : resid_layers_)
        if (!s.seen_resid.count(l)) missing.push_back(l);
    if (!missing.empty())
        throw ConfigError("analyze: prompt " + std::to_string(p.id) +
                          ": no residual stream was given for layers " + join(missing));

    // Per-layer results, computed once.
    std::map<std::int64_t, analysis::LayerStats> res;
    if (s.acc)
        for (auto l : layers_)
            if (s.acc->wants(l)) res.emplace(l, s.acc->layer(l).result());

    if (s.acc) {
        for (const auto& row : s.acc->summary())
            if (std::binary_search(layers_.begin(), layers_.end(), row.layer))
                p.heads.push_back(row);
    }

    // sink
    if (wants(AnalyzeMetric::kSink)) {
        std::vector<at::Tensor> scores;
        for (auto l : layers_) {
            if (s.sink_acc)
                scores.push_back(s.sink_acc->layer(l).result().sink_scores);
            else
                scores.push_back(res.at(l).sink_scores);
        }
        p.sink_scores = cpu64(at::stack(scores));  // [layer, head, T]
        const analysis::SinkParams sp{options_.epsilon, 0};
        p.alpha0 = p.sink_scores.select(2, 0).contiguous();
        p.sink_flags = analysis::head_sink_flags(p.sink_scores, sp);
        p.sink_percent = analysis::sink_ratio(p.sink_scores, sp).percent;
        const auto a = to_vec(p.alpha0);
        for (auto& row : p.heads) {
            const auto li = std::lower_bound(layers_.begin(), layers_.end(), row.layer) - layers_.begin();
            row.sink_slot = 0;
            row.alpha = a[static_cast<size_t>(li * n_heads_ + row.head)];
            row.sink = row.alpha > options_.epsilon;
        }
    } else {
        for (auto& row : p.heads) {
            row.sink_slot = -1;
            row.alpha = kNaN;
            row.sink = false;
        }
    }

    // entropy
    if (wants(AnalyzeMetric::kEntropy)) {
        std::vector<at::Tensor> nats, norm, mean, mean_nats;
        for (auto l : layers_) {
            const auto& r = res.at(l);
            nats.push_back(r.entropy.nats);
            norm.push_back(r.entropy.normalized);
            mean.push_back(r.mean_entropy);
            mean_nats.push_back(r.mean_entropy_nats);
        }
        p.entropy_nats = cpu64(at::stack(nats));
        p.entropy_norm = cpu64(at::stack(norm));
        p.entropy_norm_mean = cpu64(at::stack(mean));
        p.entropy_nats_mean = cpu64(at::stack(mean_nats));
    }

    // distance
    if (wants(AnalyzeMetric::kDistance)) {
        std::vector<at::Tensor> d;
        for (auto l : layers_) d.push_back(res.at(l).distance);
        p.distance = cpu64(at::stack(d));
    } else {
        for (auto& row : p.heads) row.distance = kNaN;
    }
    if (!wants(AnalyzeMetric::kEntropy))
        for (auto& row : p.heads) row.entropy_norm = row.entropy_nats = kNaN;

    // waad / fai / roles
    // A prompt with no row of interest has no distances, hence no head groups: no preplan.
    if (wants_preplan() && p.rows_begin < p.n_tokens) {
        analysis::PreplanResult r = s.acc->preplan();
        r.distance = cpu64(r.distance);
        r.roles.waad = cpu64(r.roles.waad);
        r.roles.delta = cpu64(r.roles.delta);
        r.roles.fai = cpu64(r.roles.fai);
        if (r.roles.gamma.defined()) r.roles.gamma = cpu64(r.roles.gamma);
        p.preplan = std::move(r);
    }

    // ---- dataset ----
    DatasetAnalysis& d = dataset_;
    ++d.n_prompts;
    d.n_tokens += p.n_tokens;
    if (wants(AnalyzeMetric::kSink)) {
        if (p.sink_counted) {
            d.sink_ratio.add(p.sink_scores);
            d.alpha0.add(p.alpha0);
        } else {
            ++d.n_sink_short;
        }
    }
    if (wants(AnalyzeMetric::kEntropy)) {
        d.entropy_norm.add(p.entropy_norm_mean);
        d.entropy_nats.add(p.entropy_nats_mean);
        if (p.rows_begin < p.n_tokens)  // rows of R only
            for (size_t i = 0; i < layers_.size(); ++i)
                d.entropy_hist[i].add(p.entropy_norm.select(0, static_cast<std::int64_t>(i))
                                          .narrow(1, p.rows_begin, p.n_tokens - p.rows_begin));
    }
    if (wants(AnalyzeMetric::kDistance)) d.distance.add(p.distance);
    if (p.preplan) {
        at::Tensor cls = p.preplan->groups.classes.to(at::kCPU, at::kChar);
        d.local_count += cls.eq(static_cast<int>(analysis::HeadClass::kLocal)).to(at::kDouble);
        d.global_count += cls.eq(static_cast<int>(analysis::HeadClass::kGlobal)).to(at::kDouble);
        for (auto t : p.preplan->roles.t_loc) ++d.preplan_token_counts[p.token_str[static_cast<size_t>(t)]];
        for (auto t : p.preplan->roles.t_glob) ++d.anchor_token_counts[p.token_str[static_cast<size_t>(t)]];
    }
    s = State{};
    return p;
}

// ---- sources ------------------------------------------------------------------------------

PromptAnalysis analyze_live(Analyzer& a, model::Model& m, const format::PromptInput& prompt) {
    const text::Tokenizer& tok = m.require_tokenizer();
    const auto ids = tok.encode(prompt.text, a.options().add_special_tokens);
    if (ids.empty())
        throw ConfigError(prompt.source + ": prompt " + std::to_string(prompt.id) +
                          " has no tokens (empty text without BOS)");
    const auto n = static_cast<std::int64_t>(ids.size());
    if (n > m.context_length())
        throw ConfigError(prompt.source + ": prompt " + std::to_string(prompt.id) + " has " +
                          std::to_string(n) + " tokens, more than the model's context of " +
                          std::to_string(m.context_length()) + "; shorten it");
    std::vector<std::string> strs;
    strs.reserve(ids.size());
    for (auto id : ids) strs.push_back(tok.token_display(id));
    a.begin_prompt(prompt.id, prompt.text, prompt.source, ids, std::move(strs));

    std::vector<model::HookHandle> handles;
    for (auto l : a.pattern_layers())
        handles.push_back(m.hooks().add_chunk_observer(
            HookName{static_cast<int>(l), Site::kPattern},
            [&a](const HookName& h, const at::Tensor& x, std::int64_t q0) {
                a.add_pattern_chunk(h.layer, x[0], q0);
            }));
    for (auto l : a.resid_layers())
        handles.push_back(m.hooks().add_observer(
            HookName{static_cast<int>(l), Site::kResidPost},
            [&a](const HookName& h, const at::Tensor& x) { a.add_resid(h.layer, x[0]); }));
    {
        c10::InferenceMode guard;
        std::vector<std::int64_t> v(ids.begin(), ids.end());
        at::Tensor input = at::tensor(v, at::TensorOptions().dtype(at::kLong)).view({1, n}).to(m.device());
        m.forward(input);
    }
    handles.clear();
    return a.end_prompt();
}

namespace {

std::string stored_where(const store::Reader& r, const std::string& run, std::int64_t id) {
    return r.path().string() + ": run '" + run + "', prompt " + std::to_string(id);
}

void check_heads(const Analyzer& a, const store::ArrayInfo& info, const store::Reader& r,
                 const std::string& run, std::int64_t id, std::int64_t layer) {
    bool all = static_cast<std::int64_t>(info.heads.size()) == a.n_heads();
    for (size_t h = 0; all && h < info.heads.size(); ++h) all = info.heads[h] == static_cast<std::int64_t>(h);
    if (!all)
        throw SchemaError(stored_where(r, run, id) + ": " + pattern_hook(layer) + " holds heads " +
                          join(info.heads) + " but analyze needs all " +
                          std::to_string(a.n_heads()) +
                          " heads of a layer; re-capture without --heads");
}

}  // namespace

void check_stored(const Analyzer& a, const store::Reader& r, const std::string& run,
                  const std::vector<std::int64_t>& ids) {
    std::int64_t n_bad = 0, first_bad = -1;
    std::vector<std::int64_t> first_missing;
    std::set<std::int64_t> stored_layers;
    for (auto id : ids) {
        const auto hooks = r.hooks(run, id);
        std::set<std::string> have(hooks.begin(), hooks.end());
        std::vector<std::int64_t> missing;
        for (auto l : a.pattern_layers())
            if (!have.count(pattern_hook(l))) missing.push_back(l);
        if (!missing.empty()) {
            if (n_bad++ == 0) {
                first_bad = id;
                first_missing = missing;
                for (const auto& h : hooks)
                    if (auto hn = HookName::try_parse(h); hn && hn->site == Site::kPattern)
                        stored_layers.insert(hn->layer);
            }
        }
    }
    if (n_bad > 0) {
        std::vector<std::string> needed;
        for (auto m : a.metrics())
            if (m != AnalyzeMetric::kMassive) needed.push_back(to_string(m));
        std::string msg = stored_where(r, run, first_bad) + ": no attention maps (" +
                          "blocks.L.attn.hook_pattern) for layers " + join(first_missing) +
                          ", which --metrics " + join(needed, ",") + " need (analysed layers " +
                          join(a.layers()) + ")";
        if (a.wants_preplan()) msg += "; waad/fai/roles use layers " + join(a.preplan_layers());
        msg += ". ";
        if (n_bad > 1) msg += std::to_string(n_bad - 1) + " more prompt(s) of the run lack maps too. ";
        msg += "The prompt has maps for layers " +
               (stored_layers.empty() ? std::string("none")
                                      : join(std::vector<std::int64_t>(stored_layers.begin(),
                                                                       stored_layers.end()))) +
               ". Re-capture with `attnscope capture --hooks 'blocks.*.attn.hook_pattern'` "
               "(and --layers including " + join(first_missing) +
               "), or restrict analyze to the stored layers with --layers and --metrics";
        throw SchemaError(msg);
    }
    if (!ids.empty())
        for (auto l : a.pattern_layers())
            check_heads(a, r.array_info(run, ids.front(), pattern_hook(l)), r, run, ids.front(), l);
}

PromptAnalysis analyze_stored(Analyzer& a, const store::Reader& r, const std::string& run,
                              std::int64_t id) {
    const store::PromptSummary ps = r.prompt(id);
    std::vector<std::int32_t> tokens = r.tokens(id);
    std::vector<std::string> strs = r.token_strings(id);
    const auto hooks = r.hooks(run, id);
    const std::set<std::string> have(hooks.begin(), hooks.end());
    std::vector<std::int64_t> missing;
    for (auto l : a.pattern_layers())
        if (!have.count(pattern_hook(l))) missing.push_back(l);
    if (!missing.empty()) check_stored(a, r, run, {id});  // throws the full message

    // Map length T: n_tokens or n_prompt_tokens (store::Writer::write_hook).
    std::int64_t T = static_cast<std::int64_t>(tokens.size());
    std::vector<store::ArrayInfo> infos;
    for (auto l : a.pattern_layers()) {
        infos.push_back(r.array_info(run, id, pattern_hook(l)));
        const auto& info = infos.back();
        check_heads(a, info, r, run, id, l);
        if (info.shape.size() != 3 || info.shape[1] != info.shape[2] || info.shape[1] > T)
            throw SchemaError(stored_where(r, run, id) + ": " + pattern_hook(l) +
                              " is not a [head, T, T] map with T <= " + std::to_string(T) +
                              " tokens");
        if (&info != &infos.front() && info.shape[1] != infos.front().shape[1])
            throw SchemaError(stored_where(r, run, id) + ": maps of layers " +
                              std::to_string(a.pattern_layers().front()) + " and " +
                              std::to_string(l) + " cover different token counts");
    }
    if (!infos.empty()) T = infos.front().shape[1];
    tokens.resize(static_cast<size_t>(T));
    strs.resize(static_cast<size_t>(T));
    a.begin_prompt(id, ps.text, ps.source, std::move(tokens), std::move(strs), ps.n_prompt_tokens);
    for (auto l : a.pattern_layers()) {
        std::vector<float> data = r.read_array(run, id, pattern_hook(l));
        at::Tensor t = at::from_blob(data.data(), {a.n_heads(), T, T}, at::TensorOptions().dtype(at::kFloat));
        a.add_pattern(l, t);
    }
    return a.end_prompt();
}

std::string pick_run(const store::Reader& r, const std::string& requested) {
    if (!requested.empty()) return r.run(requested).info.name;  // throws listing the runs
    const auto runs = r.runs();
    if (runs.size() == 1) return runs.front().info.name;
    std::vector<std::string> names;
    for (const auto& x : runs) names.push_back(x.info.name);
    if (names.empty()) throw SchemaError(r.path().string() + ": the file has no runs; capture one first");
    throw SchemaError(r.path().string() + ": the file has " + std::to_string(names.size()) +
                      " runs (" + join(names) + "); choose one with --run");
}

// ---- HDF5 output --------------------------------------------------------------------------

namespace {

template <class W>
void put(W&& write, const std::string& name, const at::Tensor& t, const std::string& dims,
         const nlohmann::ordered_json& params, const std::string& units) {
    at::Tensor f = t.to(at::kCPU, at::kFloat).contiguous();
    std::vector<std::int64_t> shape(f.sizes().begin(), f.sizes().end());
    for (auto s : shape)
        if (s == 0) return;  // the store has no empty arrays; absence means "none"
    store::MetricInfo info;
    info.dims = dims;
    info.params_json = params.dump();
    info.units = units;
    info.metric_version = kMetricVersion;
    write(name, store::FloatRef::f32(f.data_ptr<float>(), shape), info);
}

at::Tensor positions(const std::vector<std::int64_t>& v) {
    std::vector<double> d(v.begin(), v.end());
    return at::tensor(d, at::TensorOptions().dtype(at::kDouble));
}

nlohmann::ordered_json preplan_params_json(const Analyzer& a) {
    nlohmann::ordered_json j;
    const analysis::PreplanParams pp;
    j["layers"] = a.preplan_layers();
    j["window"] = a.options().window;
    j["horizon"] = horizon_json(a.options().horizon);
    j["local_fraction"] = pp.local_fraction;
    j["global_fraction"] = pp.global_fraction;
    j["q"] = pp.q;
    j["grouping"] = "per_sequence";
    j["rows_begin"] = a.options().rows_begin;
    j["response_only"] = a.options().response_only;
    return j;
}

}  // namespace

void write_prompt_metrics(store::Writer& w, const Analyzer& a, const PromptAnalysis& p) {
    auto wr = [&w](const std::string& n, const store::FloatRef& d, const store::MetricInfo& i) {
        w.write_metric(n, d, i);
    };
    nlohmann::ordered_json layers;
    layers["layers"] = p.layers;
    if (a.wants(AnalyzeMetric::kSink) && p.sink_scores.defined()) {
        auto j = layers;
        j["T"] = p.sink_T;
        j["sink_T_option"] = a.options().sink_T;
        j["k"] = 0;
        j["paper"] = "Gu et al. 2410.10781";
        put(wr, "sink_scores", p.sink_scores, "layer,head,key_pos", j, "fraction");
        put(wr, "sink_alpha0", p.alpha0, "layer,head", j, "fraction");
        j["epsilon"] = a.options().epsilon;
        put(wr, "sink_flags", p.sink_flags, "layer,head", j, "bool");
        j["counted"] = p.sink_counted;
        put(wr, "sink_ratio", at::scalar_tensor(p.sink_percent, at::kDouble), "", j, "percent");
    }
    if (a.wants(AnalyzeMetric::kEntropy) && p.entropy_nats.defined()) {
        auto j = layers;
        j["log"] = "natural";
        j["rows_begin"] = p.rows_begin;  // per-head means over rows [rows_begin, T)
        put(wr, "entropy_nats", p.entropy_nats, "layer,head,query_pos", j, "nats");
        put(wr, "entropy_nats_mean", p.entropy_nats_mean, "layer,head", j, "nats");
        j["normalised_by"] = "ln(n_visible); rows with one visible key skipped";
        put(wr, "entropy_norm_mean", p.entropy_norm_mean, "layer,head", j, "normalized");
    }
    if (a.wants(AnalyzeMetric::kDistance) && p.distance.defined()) {
        auto j = layers;
        j["rows_begin"] = p.rows_begin;
        put(wr, "distance", p.distance, "layer,head", j, "tokens");
    }
    if (p.preplan) {
        const auto& r = p.preplan->roles;
        const auto pj = preplan_params_json(a);
        if (a.wants(AnalyzeMetric::kWaad) && r.waad.defined()) {
            put(wr, "waad", r.waad, "pos", pj, "tokens");
            put(wr, "waad_delta", r.delta, "pos", pj, "tokens");
        }
        if (a.wants(AnalyzeMetric::kFai) && r.fai.defined())
            put(wr, "fai", r.fai, "pos", pj, "fraction");
        if (a.wants(AnalyzeMetric::kRoles)) {
            put(wr, "preplan_tokens", positions(r.t_loc), "rank", pj, "positions");
            put(wr, "anchor_tokens", positions(r.t_glob), "rank", pj, "positions");
            auto cj = pj;
            cj["codes"] = {{"-1", "unranked"}, {"0", "middle"}, {"1", "local"}, {"2", "global"}};
            put(wr, "head_class", p.preplan->groups.classes.to(at::kDouble), "layer,head", cj, "class");
            put(wr, "preplan_distance", p.preplan->distance, "layer,head", pj, "tokens");
        }
    }
    if (a.wants(AnalyzeMetric::kMassive)) {
        nlohmann::ordered_json j;
        j["hook"] = "blocks.L.hook_resid_post";
        j["layers"] = p.layers;
        j["abs_threshold"] = a.options().massive.abs_threshold;
        j["factor"] = a.options().massive.factor;
        put(wr, "massive_count", at::scalar_tensor(static_cast<double>(p.massive.size()), at::kDouble), "", j,
            "count");
        j["fields"] = {"layer", "pos", "dim", "value", "median_abs"};
        at::Tensor t = at::empty({static_cast<std::int64_t>(p.massive.size()), 5}, at::kDouble);
        for (size_t i = 0; i < p.massive.size(); ++i) {
            const auto& m = p.massive[i];
            const auto ii = static_cast<std::int64_t>(i);
            t[ii][0] = static_cast<double>(m.layer);
            t[ii][1] = static_cast<double>(m.act.pos);
            t[ii][2] = static_cast<double>(m.act.dim);
            t[ii][3] = m.act.value;
            t[ii][4] = m.act.median_abs;
        }
        put(wr, "massive_activations", t, "entry,field", j, "mixed");
    }
}

void write_dataset_metrics(store::Writer& w, const Analyzer& a) {
    auto wr = [&w](const std::string& n, const store::FloatRef& d, const store::MetricInfo& i) {
        w.write_run_metric(n, d, i);
    };
    const DatasetAnalysis& d = a.dataset();
    nlohmann::ordered_json base;
    base["layers"] = d.layers;
    base["n_prompts"] = d.n_prompts;
    base["std"] = "population";
    if (a.wants(AnalyzeMetric::kSink)) {
        auto j = base;
        j["T"] = d.sink_T;
        j["epsilon"] = d.epsilon;
        j["k"] = 0;
        j["n_sequences"] = d.sink_ratio.result().n_sequences;
        j["n_short_excluded"] = d.n_sink_short;
        j["paper"] = "Gu et al. 2410.10781";
        const auto sr = d.sink_ratio.result();
        put(wr, "sink_ratio", at::scalar_tensor(sr.percent, at::kDouble), "", j, "percent");
        put(wr, "sink_ratio_outside_layer0",
            at::scalar_tensor(sr.percent_outside_layer0, at::kDouble), "", j, "percent");
        if (sr.head_rate.defined()) put(wr, "sink_head_rate", sr.head_rate, "layer,head", j, "fraction");
        if (!d.alpha0.empty()) {
            put(wr, "alpha0_mean", d.alpha0.mean(), "layer,head", j, "fraction");
            put(wr, "alpha0_std", d.alpha0.stddev(), "layer,head", j, "fraction");
        }
    }
    if (a.wants(AnalyzeMetric::kEntropy) && !d.entropy_norm.empty()) {
        put(wr, "entropy_norm_mean", d.entropy_norm.mean(), "layer,head", base, "normalized");
        put(wr, "entropy_norm_std", d.entropy_norm.stddev(), "layer,head", base, "normalized");
        put(wr, "entropy_nats_mean", d.entropy_nats.mean(), "layer,head", base, "nats");
        put(wr, "entropy_nats_std", d.entropy_nats.stddev(), "layer,head", base, "nats");
        const auto bins = a.options().hist_bins;
        at::Tensor h = at::zeros({static_cast<std::int64_t>(d.layers.size()), bins}, at::kDouble);
        std::vector<std::int64_t> nan;
        for (size_t i = 0; i < d.entropy_hist.size(); ++i) {
            const auto& c = d.entropy_hist[i].counts();
            for (std::int64_t b = 0; b < bins; ++b)
                h[static_cast<std::int64_t>(i)][b] = static_cast<double>(c[static_cast<size_t>(b)]);
            nan.push_back(d.entropy_hist[i].n_nan());
        }
        auto j = base;
        j["values"] = "per-query normalised entropy of every (prompt, head, query) of the layer";
        j["edges"] = d.entropy_hist.empty() ? std::vector<double>{} : d.entropy_hist.front().edges();
        j["n_nan_per_layer"] = nan;
        put(wr, "entropy_norm_hist", h, "layer,bin", j, "count");
    }
    if (a.wants(AnalyzeMetric::kDistance) && !d.distance.empty()) {
        put(wr, "distance_mean", d.distance.mean(), "layer,head", base, "tokens");
        put(wr, "distance_std", d.distance.stddev(), "layer,head", base, "tokens");
    }
    if (a.wants(AnalyzeMetric::kRoles) && d.local_count.defined() && d.n_prompts > 0) {
        auto j = preplan_params_json(a);
        j["n_prompts"] = d.n_prompts;
        put(wr, "head_local_rate", d.local_count / static_cast<double>(d.n_prompts), "layer,head", j,
            "fraction");
        put(wr, "head_global_rate", d.global_count / static_cast<double>(d.n_prompts), "layer,head",
            j, "fraction");
    }
    if (a.wants(AnalyzeMetric::kMassive)) {
        const auto dims = d.sink_dims.sorted();
        nlohmann::ordered_json j;
        j["hook"] = "blocks.L.hook_resid_post";
        j["layers"] = d.layers;
        j["abs_threshold"] = a.options().massive.abs_threshold;
        j["factor"] = a.options().massive.factor;
        j["fields"] = {"dim", "count", "n_layers", "max_abs"};
        at::Tensor t = at::empty({static_cast<std::int64_t>(dims.size()), 4}, at::kDouble);
        for (size_t i = 0; i < dims.size(); ++i) {
            const auto ii = static_cast<std::int64_t>(i);
            t[ii][0] = static_cast<double>(dims[i].dim);
            t[ii][1] = static_cast<double>(dims[i].count);
            t[ii][2] = static_cast<double>(dims[i].n_layers);
            t[ii][3] = dims[i].max_abs;
        }
        put(wr, "sink_dims", t, "entry,field", j, "mixed");
    }
}

// ---- CSV / JSON / table -------------------------------------------------------------------

std::string to_csv(const std::vector<PromptAnalysis>& prompts) {
    std::string out = "prompt";
    for (const auto& c : analysis::head_summary_columns()) out += "," + c;
    out += '\n';
    for (const auto& p : prompts) {
        const std::string body = analysis::to_csv(p.heads);  // header line + rows
        std::istringstream in(body);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line))
            if (!line.empty()) out += std::to_string(p.id) + "," + line + "\n";
    }
    return out;
}

namespace {

nlohmann::ordered_json head_json(const analysis::HeadSummary& h) {
    nlohmann::ordered_json j;
    j["layer"] = h.layer;
    j["head"] = h.head;
    j["entropy_norm"] = jnum(h.entropy_norm);
    j["entropy_nats"] = jnum(h.entropy_nats);
    j["sink_slot"] = h.sink_slot;
    j["alpha"] = jnum(h.alpha);
    j["sink"] = h.sink;
    j["distance"] = jnum(h.distance);
    j["class"] = analysis::to_string(h.head_class);
    return j;
}

double at_or_nan(const at::Tensor& t, std::int64_t i) {
    if (!t.defined() || i < 0 || i >= t.numel()) return kNaN;
    return t.to(at::kDouble).reshape({-1})[i].item<double>();
}

std::vector<std::pair<std::int64_t, std::int64_t>> group_heads(const PromptAnalysis& p,
                                                               const std::vector<std::int64_t>& flat,
                                                               std::int64_t n_heads) {
    std::vector<std::pair<std::int64_t, std::int64_t>> v;
    for (auto f : flat) v.emplace_back(p.preplan_layers[static_cast<size_t>(f / n_heads)], f % n_heads);
    return v;
}

std::vector<std::pair<std::string, std::int64_t>> top_counts(
    const std::map<std::string, std::int64_t>& m, size_t k) {
    std::vector<std::pair<std::string, std::int64_t>> v(m.begin(), m.end());
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    if (v.size() > k) v.resize(k);
    return v;
}

}  // namespace

std::string to_json(const Analyzer& a, const std::vector<PromptAnalysis>& prompts,
                    const std::string& source_description, const std::string& model_description) {
    using J = nlohmann::ordered_json;
    J j;
    j["source"] = source_description;
    j["model"] = model_description;
    J o;
    std::vector<std::string> ms;
    for (auto m : a.metrics()) ms.push_back(to_string(m));
    o["metrics"] = ms;
    o["window"] = a.options().window;
    o["horizon"] = horizon_json(a.options().horizon);
    o["epsilon"] = a.options().epsilon;
    o["sink_T"] = a.options().sink_T;
    o["rows_begin"] = a.options().rows_begin;
    o["response_only"] = a.options().response_only;
    j["options"] = o;
    j["layers"] = a.layers();
    if (a.wants_preplan()) j["preplan_layers"] = a.preplan_layers();
    J arr = J::array();
    for (const auto& p : prompts) {
        J q;
        q["id"] = p.id;
        q["text"] = p.text;
        q["source"] = p.source;
        q["n_tokens"] = p.n_tokens;
        q["rows_begin"] = p.rows_begin;
        if (a.wants(AnalyzeMetric::kSink)) {
            q["sink"] = {{"T", p.sink_T}, {"counted", p.sink_counted}, {"percent", jnum(p.sink_percent)}};
        }
        J heads = J::array();
        for (const auto& h : p.heads) heads.push_back(head_json(h));
        q["heads"] = heads;
        if (p.preplan) {
            const auto& r = p.preplan->roles;
            J pp;
            auto pairs = [&](const std::vector<std::int64_t>& flat) {
                J x = J::array();
                for (auto [l, h] : group_heads(p, flat, a.n_heads())) x.push_back({l, h});
                return x;
            };
            pp["local_heads"] = pairs(p.preplan->groups.local);
            pp["global_heads"] = pairs(p.preplan->groups.global);
            if (a.wants(AnalyzeMetric::kRoles)) {
                J pre = J::array(), anc = J::array();
                for (auto t : r.t_loc)
                    pre.push_back({{"pos", t}, {"token", p.token_str[static_cast<size_t>(t)]},
                                   {"delta", jnum(at_or_nan(r.delta, t))}});
                for (auto t : r.t_glob)
                    anc.push_back({{"pos", t}, {"token", p.token_str[static_cast<size_t>(t)]},
                                   {"fai", jnum(at_or_nan(r.fai, t))}});
                pp["preplan_tokens"] = pre;
                pp["anchor_tokens"] = anc;
            }
            if (a.wants(AnalyzeMetric::kWaad) && r.waad.defined()) {
                J w = J::array();
                for (double x : to_vec(r.waad)) w.push_back(jnum(x));
                pp["waad"] = w;
            }
            if (a.wants(AnalyzeMetric::kFai) && r.fai.defined()) {
                J f = J::array();
                for (double x : to_vec(r.fai)) f.push_back(jnum(x));
                pp["fai"] = f;
            }
            q["preplan"] = pp;
        }
        if (a.wants(AnalyzeMetric::kMassive)) {
            J m = J::array();
            for (const auto& x : p.massive)
                m.push_back({{"layer", x.layer}, {"pos", x.act.pos}, {"dim", x.act.dim},
                             {"value", x.act.value}, {"median_abs", x.act.median_abs},
                             {"token", p.token_str[static_cast<size_t>(x.act.pos)]}});
            q["massive"] = m;
        }
        arr.push_back(q);
    }
    j["prompts"] = arr;

    const DatasetAnalysis& d = a.dataset();
    J ds;
    ds["n_prompts"] = d.n_prompts;
    ds["n_tokens"] = d.n_tokens;
    auto grid = [&](const at::Tensor& t) {
        J g = J::array();
        if (!t.defined()) return g;
        at::Tensor c = cpu64(t);
        for (std::int64_t i = 0; i < c.size(0); ++i) {
            J row = J::array();
            for (std::int64_t h = 0; h < c.size(1); ++h) row.push_back(jnum(c[i][h].item<double>()));
            g.push_back(row);
        }
        return g;
    };
    if (a.wants(AnalyzeMetric::kSink)) {
        const auto sr = d.sink_ratio.result();
        ds["sink"] = {{"T", d.sink_T},
                      {"epsilon", d.epsilon},
                      {"n_sequences", sr.n_sequences},
                      {"n_short_excluded", d.n_sink_short},
                      {"percent", jnum(sr.percent)},
                      {"percent_outside_layer0", jnum(sr.percent_outside_layer0)},
                      {"head_rate", grid(sr.head_rate)},
                      {"alpha0_mean", grid(d.alpha0.empty() ? at::Tensor() : d.alpha0.mean())},
                      {"alpha0_std", grid(d.alpha0.empty() ? at::Tensor() : d.alpha0.stddev())}};
    }
    if (a.wants(AnalyzeMetric::kEntropy) && !d.entropy_norm.empty()) {
        J hist = J::array();
        for (const auto& h : d.entropy_hist) hist.push_back(h.counts());
        ds["entropy"] = {{"norm_mean", grid(d.entropy_norm.mean())},
                         {"norm_std", grid(d.entropy_norm.stddev())},
                         {"nats_mean", grid(d.entropy_nats.mean())},
                         {"nats_std", grid(d.entropy_nats.stddev())},
                         {"hist_edges", d.entropy_hist.front().edges()},
                         {"hist_counts", hist}};
    }
    if (a.wants(AnalyzeMetric::kDistance) && !d.distance.empty())
        ds["distance"] = {{"mean", grid(d.distance.mean())}, {"std", grid(d.distance.stddev())}};
    if (a.wants(AnalyzeMetric::kRoles) && d.local_count.defined() && d.n_prompts > 0) {
        J tp = J::array(), ta = J::array();
        for (const auto& [tok, n] : top_counts(d.preplan_token_counts, 20)) tp.push_back({{"token", tok}, {"count", n}});
        for (const auto& [tok, n] : top_counts(d.anchor_token_counts, 20)) ta.push_back({{"token", tok}, {"count", n}});
        ds["roles"] = {{"preplan_layers", d.preplan_layers},
                       {"local_rate", grid(d.local_count / static_cast<double>(d.n_prompts))},
                       {"global_rate", grid(d.global_count / static_cast<double>(d.n_prompts))},
                       {"top_preplan_tokens", tp},
                       {"top_anchor_tokens", ta}};
    }
    if (a.wants(AnalyzeMetric::kMassive)) {
        J dims = J::array();
        for (const auto& s : d.sink_dims.sorted())
            dims.push_back({{"dim", s.dim}, {"count", s.count}, {"n_layers", s.n_layers}, {"max_abs", s.max_abs}});
        ds["massive"] = {{"n_activations", d.n_massive}, {"sink_dims", dims}};
    }
    j["dataset"] = ds;
    return j.dump(2);
}

namespace {

std::string fmt(double x, int prec = 3) {
    if (std::isnan(x)) return "nan";
    std::ostringstream s;
    s << std::fixed << std::setprecision(prec) << x;
    return s.str();
}

// Token string for one-line display: control characters escaped.
std::string show_token(const std::string& s) {
    std::string o = "'";
    for (char c : s) {
        if (c == '\n') o += "\\n";
        else if (c == '\t') o += "\\t";
        else if (c == '\r') o += "\\r";
        else o += c;
    }
    return o + "'";
}

std::string head_list(const std::vector<std::int64_t>& v) {
    return v.empty() ? std::string("-") : join(v, " ");
}

}  // namespace

void print_table(std::ostream& out, const Analyzer& a, const std::vector<PromptAnalysis>& prompts) {
    const DatasetAnalysis& d = a.dataset();
    const std::int64_t H = a.n_heads();
    out << "attnscope analyze: " << d.n_prompts << " prompt(s), " << d.n_tokens << " tokens, "
        << a.layers().size() << " layer(s) x " << H << " heads\n\n";

    at::Tensor ent = d.entropy_norm.empty() ? at::Tensor() : d.entropy_norm.mean();
    at::Tensor dist = d.distance.empty() ? at::Tensor() : d.distance.mean();
    const auto sr = d.sink_ratio.result();
    const bool per_layer = a.wants(AnalyzeMetric::kSink) || a.wants(AnalyzeMetric::kEntropy) ||
                           a.wants(AnalyzeMetric::kDistance) || a.wants_preplan();
    if (per_layer) {
        out << std::left << std::setw(6) << "layer" << std::setw(9) << "entropy" << std::setw(10)
            << "distance" << std::setw(26) << "sink heads" << std::setw(22) << "local heads"
            << "global heads\n";
        for (size_t i = 0; i < a.layers().size(); ++i) {
            const auto l = a.layers()[i];
            const auto ii = static_cast<std::int64_t>(i);
            std::string e = "-", dd = "-", sinks = "-", loc, glob;
            if (ent.defined()) e = fmt(ent[ii].nanmean().item<double>());
            if (dist.defined()) dd = fmt(dist[ii].nanmean().item<double>(), 2);
            // Sink heads: flagged in at least half of the counted prompts.
            if (a.wants(AnalyzeMetric::kSink) && sr.head_rate.defined()) {
                std::vector<std::int64_t> hs;
                for (std::int64_t h = 0; h < H; ++h)
                    if (sr.head_rate[ii][h].item<double>() >= 0.5) hs.push_back(h);
                sinks = head_list(hs) + " (" + std::to_string(hs.size()) + "/" +
                        std::to_string(H) + ")";
            }
            const auto& pl = d.preplan_layers;
            auto it = std::find(pl.begin(), pl.end(), l);
            if (it != pl.end() && d.n_prompts > 0) {
                const auto pi = it - pl.begin();
                const double half = static_cast<double>(d.n_prompts) / 2;
                std::vector<std::int64_t> lo, gl;
                for (std::int64_t h = 0; h < H; ++h) {
                    if (d.local_count[pi][h].item<double>() >= half) lo.push_back(h);
                    if (d.global_count[pi][h].item<double>() >= half) gl.push_back(h);
                }
                loc = head_list(lo);
                glob = head_list(gl);
            }
            out << std::setw(6) << l << std::setw(9) << e << std::setw(10) << dd << std::setw(26)
                << sinks << std::setw(22) << loc << glob << "\n";
        }
        out << "\nentropy: mean normalised entropy (0-1) over heads, prompts and query rows "
            << a.options().rows_begin << "..T-1; distance: mean backward distance d (tokens)\n"
            << "sink heads: alpha_0 > " << d.epsilon << " in at least half of the prompts";
        if (!d.preplan_layers.empty())
            out << "; local / global heads: lowest / highest 30% by d among the heads of layers "
                << join(d.preplan_layers) << ", shown when so in at least half of the prompts";
        out << "\n";
    }
    if (a.wants(AnalyzeMetric::kSink)) {
        out << "sink ratio Sink_1^eps (eps = " << d.epsilon << ", T = "
            << (d.sink_T > 0 ? std::to_string(d.sink_T) : std::string("whole prompt"))
            << "): " << fmt(sr.percent, 2) << "% of heads over " << sr.n_sequences
            << " prompt(s); outside layer 0: " << fmt(sr.percent_outside_layer0, 2) << "%";
        if (d.n_sink_short > 0)
            out << " (" << d.n_sink_short << " prompt(s) shorter than T left out)";
        out << "\n";
    }
    if (a.wants(AnalyzeMetric::kRoles) && d.n_prompts > 0) {
        auto line = [&](const char* what, const std::map<std::string, std::int64_t>& m) {
            out << what;
            for (const auto& [tok, n] : top_counts(m, 10)) out << " " << show_token(tok) << " x" << n;
            out << "\n";
        };
        out << "\n";
        line("top preplan tokens (T_loc, all prompts):", d.preplan_token_counts);
        line("top anchor tokens (T_glob, all prompts):", d.anchor_token_counts);
        const size_t show = std::min<size_t>(prompts.size(), 3);
        for (size_t i = 0; i < show; ++i) {
            const auto& p = prompts[i];
            if (!p.preplan) continue;
            const auto& r = p.preplan->roles;
            out << "prompt " << p.id << " (" << p.n_tokens << " tokens): preplan";
            for (size_t k = 0; k < std::min<size_t>(r.t_loc.size(), 5); ++k)
                out << " " << show_token(p.token_str[static_cast<size_t>(r.t_loc[k])]) << "@" << r.t_loc[k];
            out << "; anchor";
            for (size_t k = 0; k < std::min<size_t>(r.t_glob.size(), 5); ++k)
                out << " " << show_token(p.token_str[static_cast<size_t>(r.t_glob[k])]) << "@" << r.t_glob[k];
            out << "\n";
        }
    }
    if (a.wants(AnalyzeMetric::kMassive)) {
        out << "\nmassive activations (|x| > " << a.options().massive.abs_threshold << ", >= "
            << a.options().massive.factor << " x median): " << d.n_massive;
        const auto dims = d.sink_dims.sorted();
        if (!dims.empty()) {
            out << "; sink dimensions:";
            for (size_t i = 0; i < std::min<size_t>(dims.size(), 5); ++i)
                out << " " << dims[i].dim << " (x" << dims[i].count << ", max " << fmt(dims[i].max_abs, 1) << ")";
        }
        out << "\n";
    }
}

// ---- end to end ---------------------------------------------------------------------------

namespace {


// The config of a stored model, when its config_json parses (a file written by a test may hold
// "{}"); otherwise nothing is known about sliding windows.
std::optional<format::ModelConfig> stored_config(const store::ModelInfo& m) {
    try {
        return format::parse_model_config(m.config_json, m.source + "/config.json");
    } catch (const Error&) {
        return std::nullopt;
    }
}

AnalyzeOptions with_window(AnalyzeOptions o, const std::optional<format::ModelConfig>& c) {
    // A window that starts at a later layer (Qwen2 max_window_layers) would need a mask per
    // layer; such models are analysed as full causal attention, exact up to the window length.
    if (c && c->sliding_window && c->sliding_window_from_layer == 0 &&
        o.attention_window == analysis::kUnbounded)
        o.attention_window = *c->sliding_window;
    return o;
}

bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
    std::error_code ec;
    if (std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec))
        return std::filesystem::equivalent(a, b, ec);
    return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}

}  // namespace

AnalyzeReport run_analyze(const AnalyzeRequest& rq, std::ostream& out, std::ostream* log) {
    const auto t0 = std::chrono::steady_clock::now();
    const bool live_prompts = !rq.prompts.empty() || !rq.prompts_file.empty();
    const bool stored = !rq.in_file.empty();
    if (!live_prompts && !stored)
        throw ConfigError("analyze: no input; give --prompt TEXT, --prompts FILE or --in FILE.h5");
    if (live_prompts && stored)
        throw ConfigError("analyze: --in cannot be combined with --prompt / --prompts");
    if (!rq.prompts.empty() && !rq.prompts_file.empty())
        throw ConfigError("analyze: give either --prompt or --prompts, not both");
    if (stored && !rq.out_file.empty() && same_file(rq.in_file, rq.out_file))
        throw ConfigError("analyze: --out " + rq.out_file.string() +
                          " is the input file; analyze never modifies its input, choose another --out");

    std::unique_ptr<model::Model> model;
    std::unique_ptr<store::Reader> reader;
    std::unique_ptr<Analyzer> an;
    std::vector<format::PromptInput> inputs;
    std::vector<std::int64_t> ids;
    std::string run, source_desc, model_desc;
    store::ModelInfo minfo;
    std::string intervention = "{}";

    if (stored) {
        reader = std::make_unique<store::Reader>(rq.in_file);
        run = pick_run(*reader, rq.in_run);
        ids = reader->run_prompts(run);
        if (ids.empty())
            throw ConfigError(rq.in_file.string() + ": run '" + run + "' has no complete prompts");
        minfo = reader->model();
        intervention = reader->run(run).info.intervention_json;
        an = std::make_unique<Analyzer>(minfo.n_layers, minfo.n_heads,
                                        with_window(rq.options, stored_config(minfo)), false);
        check_stored(*an, *reader, run, ids);
        source_desc = rq.in_file.string() + " (run " + run + ")";
        model_desc = minfo.source;
    } else {
        model = model::Model::load(rq.model_dir, {rq.device, rq.dtype, true});
        model->require_tokenizer();
        if (!rq.prompts.empty()) {
            for (size_t i = 0; i < rq.prompts.size(); ++i)
                inputs.push_back({static_cast<std::int64_t>(i), rq.prompts[i],
                                  "--prompt " + std::to_string(i + 1)});
        } else {
            inputs = format::read_prompts(rq.prompts_file);
            if (inputs.empty())
                throw ConfigError(rq.prompts_file.string() + ": no prompts in the file");
        }
        minfo = model_info(*model);
        an = std::make_unique<Analyzer>(minfo.n_layers, minfo.n_heads,
                                        with_window(rq.options, model->config()), true);
        source_desc = rq.prompts_file.empty() ? "--prompt" : rq.prompts_file.string();
        model_desc = minfo.source;
    }

    std::unique_ptr<store::Writer> writer;
    if (!rq.out_file.empty()) {
        store::RunInfo ri;
        ri.name = rq.out_run.empty() ? "analysis" : rq.out_run;
        ri.intervention_json = intervention;
        for (auto l : an->pattern_layers()) ri.hooks.push_back(pattern_hook(l));
        for (auto l : an->resid_layers())
            ri.hooks.push_back(HookName{static_cast<int>(l), Site::kResidPost}.to_string());
        ri.argv = rq.argv;
        ri.version = rq.version;
        store::WriterOptions wo;
        wo.force = rq.force;
        wo.created_by = "attnscope " + rq.version;
        writer = std::make_unique<store::Writer>(rq.out_file, minfo, ri, wo);
    }

    std::vector<PromptAnalysis> kept;
    const std::int64_t total = stored ? static_cast<std::int64_t>(ids.size())
                                      : static_cast<std::int64_t>(inputs.size());
    for (std::int64_t i = 0; i < total; ++i) {
        PromptAnalysis p = stored ? analyze_stored(*an, *reader, run, ids[static_cast<size_t>(i)])
                                  : analyze_live(*an, *model, inputs[static_cast<size_t>(i)]);
        if (writer) {
            store::Prompt sp;
            sp.id = p.id;
            sp.text = p.text;
            sp.source = p.source;
            if (stored) {
                const auto ps = reader->prompt(p.id);
                sp.tokens = reader->tokens(p.id);
                sp.token_str = reader->token_strings(p.id);
                sp.n_prompt_tokens = ps.n_prompt_tokens == ps.n_tokens ? -1 : ps.n_prompt_tokens;
            } else {
                sp.tokens = p.tokens;
                sp.token_str = p.token_str;
            }
            writer->begin_prompt(sp);
            write_prompt_metrics(*writer, *an, p);
            writer->end_prompt();
        }
        p.compact();
        kept.push_back(std::move(p));
        if (log && total >= 10 && ((i + 1) % 10 == 0 || i + 1 == total))
            *log << "\ranalyze: " << (i + 1) << "/" << total << " prompts" << std::flush;
    }
    if (log && total >= 10) *log << "\n";
    if (writer) {
        write_dataset_metrics(*writer, *an);
        writer->close();
    }

    const bool table = rq.out_file.empty() && rq.csv_file.empty() && !rq.json;
    if (!rq.csv_file.empty()) {
        const std::string csv = to_csv(kept);
        if (rq.csv_file == "-") {
            out << csv;
        } else {
            std::ofstream f(rq.csv_file, std::ios::binary);
            if (!f) throw IoError(rq.csv_file.string() + ": cannot open for writing");
            f << csv;
            if (!f.flush()) throw IoError(rq.csv_file.string() + ": write error");
        }
    }
    if (rq.json) out << to_json(*an, kept, source_desc, model_desc) << "\n";
    if (table) print_table(out, *an, kept);

    AnalyzeReport rep;
    rep.prompts = an->dataset().n_prompts;
    rep.tokens = an->dataset().n_tokens;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
}

}  // namespace attnscope::probes
