#include "probes/intervention.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/base/error.h"
#include "core/model/model.h"
#include "probes/attention_edit.h"
#include "probes/capture.h"

namespace attnscope::probes {

using json = nlohmann::ordered_json;
using model::ForwardContext;
using model::HookHandle;
using model::Model;

// --- parsing --------------------------------------------------------------------------------

namespace {

std::string trim(const std::string& s) {
    const auto a = s.find_first_not_of(" \t");
    if (a == std::string::npos) return "";
    return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

// "3", "2-5", "*" -> inclusive range within [0, n).
std::pair<int, int> parse_range(const std::string& t, int n, const std::string& item, const char* what) {
    auto bad = [&](const std::string& why) {
        return ConfigError("head list item '" + item + "': " + why + " (the model has " + std::to_string(n) +
                           " " + what + "s, numbered 0-" + std::to_string(n - 1) + ")");
    };
    if (t == "*") return {0, n - 1};
    auto num = [&](const std::string& s) {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
            throw bad("'" + s + "' is not a " + std::string(what) + " number, range a-b or *");
        const long v = std::stol(s);
        if (v >= n) throw bad(std::string(what) + " " + s + " does not exist");
        return static_cast<int>(v);
    };
    const auto dash = t.find('-');
    if (dash == std::string::npos) {
        const int v = num(t);
        return {v, v};
    }
    const int a = num(t.substr(0, dash)), b = num(t.substr(dash + 1));
    if (a > b) throw bad("empty range " + t);
    return {a, b};
}

}  // namespace

std::vector<HeadRef> parse_heads(const std::string& text, int n_layers, int n_heads) {
    std::set<HeadRef> out;
    std::string norm = text;
    std::replace(norm.begin(), norm.end(), '+', ',');
    std::stringstream ss(norm);
    std::string item;
    while (std::getline(ss, item, ',')) {
        item = trim(item);
        if (item.empty()) continue;
        const auto dot = item.find('.');
        if (dot == std::string::npos)
            throw ConfigError("head list item '" + item + "': expected LAYER.HEAD, e.g. 2.3, 4.* or 2-5.0-3");
        const auto [l0, l1] = parse_range(item.substr(0, dot), n_layers, item, "layer");
        const auto [h0, h1] = parse_range(item.substr(dot + 1), n_heads, item, "head");
        for (int l = l0; l <= l1; ++l)
            for (int h = h0; h <= h1; ++h) out.insert({l, h});
    }
    if (out.empty()) throw ConfigError("head list '" + text + "' names no head");
    return {out.begin(), out.end()};
}

std::string format_heads(const std::vector<HeadRef>& heads) {
    std::string s;
    for (const auto& h : heads) s += (s.empty() ? "" : ",") + std::to_string(h.layer) + "." + std::to_string(h.head);
    return s;
}

MethodSpec parse_method_spec(const std::string& text) {
    MethodSpec spec;
    const auto colon = text.find(':');
    spec.name = trim(text.substr(0, colon));
    if (spec.name.empty()) throw ConfigError("method spec '" + text + "': no method name (e.g. act:beta=0.4)");
    if (colon == std::string::npos) return spec;
    std::stringstream ss(text.substr(colon + 1));
    std::string kv;
    while (std::getline(ss, kv, ',')) {
        kv = trim(kv);
        if (kv.empty()) continue;
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            throw ConfigError("method spec '" + text + "': '" + kv + "' is not key=value");
        spec.params.emplace_back(trim(kv.substr(0, eq)), trim(kv.substr(eq + 1)));
    }
    return spec;
}

namespace {

// Typed access to a method's parameters; unknown keys are reported by finish().
class Params {
public:
    Params(const MethodSpec& spec, std::vector<std::string> known)
        : method_(spec.name), known_(std::move(known)) {
        for (const auto& [k, v] : spec.params) {
            if (std::find(known_.begin(), known_.end(), k) == known_.end()) {
                std::string list;
                for (const auto& n : known_) list += (list.empty() ? "" : ", ") + n;
                throw ConfigError("method " + method_ + ": unknown parameter '" + k + "' (valid: " + list + ")");
            }
            values_[k] = v;
        }
    }
    bool has(const std::string& k) const { return values_.count(k) > 0; }
    std::string str(const std::string& k, const std::string& def) const {
        auto it = values_.find(k);
        return it == values_.end() ? def : it->second;
    }
    double num(const std::string& k, double def, double lo, double hi) const {
        auto it = values_.find(k);
        if (it == values_.end()) return def;
        double v = 0;
        try {
            std::size_t used = 0;
            v = std::stod(it->second, &used);
            if (used != it->second.size()) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            throw ConfigError("method " + method_ + ": " + k + "=" + it->second + " is not a number");
        }
        if (!(v >= lo && v <= hi))
            throw ConfigError("method " + method_ + ": " + k + "=" + it->second + " is outside [" + fmt(lo) + ", " +
                              fmt(hi) + "]");
        return v;
    }
    bool flag(const std::string& k, bool def) const {
        auto it = values_.find(k);
        if (it == values_.end()) return def;
        if (it->second == "1" || it->second == "true" || it->second == "yes" || it->second == "on") return true;
        if (it->second == "0" || it->second == "false" || it->second == "no" || it->second == "off") return false;
        throw ConfigError("method " + method_ + ": " + k + "=" + it->second + " is not a boolean (true/false)");
    }

private:
    static std::string fmt(double v) {
        std::ostringstream o;
        o << v;
        return o.str();
    }
    std::string method_;
    std::vector<std::string> known_;
    std::map<std::string, std::string> values_;
};

// "0,2,5-9" ('+' for ','), every value in [0, n).
std::vector<int> layer_list(std::string text, int n, const std::string& what) {
    std::replace(text.begin(), text.end(), '+', ',');
    auto v = parse_index_list(text, what);
    for (int x : v)
        if (x < 0 || x >= n)
            throw ConfigError(what + ": " + std::to_string(x) + " is outside [0, " + std::to_string(n) + ")");
    return v;
}

// Heads from heads=LIST or heads_file=FILE (a head-search result or {"heads": [[l, h], ...]}),
// restricted to `layers` when given.
std::vector<HeadRef> resolve_heads(const Params& p, const Model& m, const std::string& method,
                                   const std::vector<HeadRef>& fallback) {
    const int L = m.config().n_layers, H = m.config().n_heads;
    std::vector<HeadRef> heads;
    if (p.has("heads") && p.has("heads_file"))
        throw ConfigError("method " + method + ": give heads= or heads_file=, not both");
    if (p.has("heads")) {
        heads = parse_heads(p.str("heads", ""), L, H);
    } else if (p.has("heads_file")) {
        const std::string path = p.str("heads_file", "");
        std::ifstream in(path);
        if (!in) throw IoError("cannot open head list " + path + " (from heads_file= / --act-heads)");
        json j;
        try {
            j = json::parse(in);
        } catch (const std::exception& e) {
            throw ConfigError("head list " + path + " is not valid JSON: " + e.what());
        }
        if (!j.is_object() || !j.contains("heads"))
            throw ConfigError("head list " + path + " has no \"heads\" member (expected the output of "
                              "`attnscope head-search`)");
        if (j.contains("model") && j["model"].is_object()) {
            const auto& jm = j["model"];
            if (jm.value("n_layers", L) != L || jm.value("n_heads", H) != H)
                throw ConfigError("head list " + path + " was made for a model with " +
                                  std::to_string(jm.value("n_layers", 0)) + " layers x " +
                                  std::to_string(jm.value("n_heads", 0)) + " heads; " + m.dir().string() +
                                  " has " + std::to_string(L) + " x " + std::to_string(H));
        }
        try {
            if (j["heads"].is_string()) {
                heads = parse_heads(j["heads"].get<std::string>(), L, H);
            } else {
                std::set<HeadRef> s;
                for (const auto& e : j["heads"]) {
                    const int l = e.at(0).get<int>(), h = e.at(1).get<int>();
                    if (l < 0 || l >= L || h < 0 || h >= H)
                        throw ConfigError("head " + std::to_string(l) + "." + std::to_string(h) + " does not exist");
                    s.insert({l, h});
                }
                heads.assign(s.begin(), s.end());
            }
        } catch (const ConfigError& e) {
            throw ConfigError("head list " + path + ": " + e.what());
        } catch (const std::exception& e) {
            throw ConfigError("head list " + path + ": \"heads\" must be a list of [layer, head] pairs (" +
                              e.what() + ")");
        }
    } else {
        heads = fallback;
    }
    if (p.has("layers")) {
        const auto list = layer_list(p.str("layers", ""), L, method + ": layers");
        const std::set<int> keep(list.begin(), list.end());
        heads.erase(std::remove_if(heads.begin(), heads.end(), [&](const HeadRef& h) { return !keep.count(h.layer); }),
                    heads.end());
    }
    return heads;
}

std::vector<HeadRef> all_heads(int l0, int l1, int H) {
    std::vector<HeadRef> v;
    for (int l = l0; l <= l1; ++l)
        for (int h = 0; h < H; ++h) v.push_back({l, h});
    return v;
}

// Heads grouped by layer: layer -> head indices.
std::map<int, std::vector<std::int64_t>> by_layer(const std::vector<HeadRef>& heads) {
    std::map<int, std::vector<std::int64_t>> m;
    for (const auto& h : heads) m[h.layer].push_back(h.head);
    return m;
}

at::Tensor index_tensor(const std::vector<std::int64_t>& v, const at::Device& d) {
    return at::tensor(v, at::TensorOptions().dtype(at::kLong)).to(d);
}

json heads_json(const std::vector<HeadRef>& heads) {
    json a = json::array();
    for (const auto& h : heads) a.push_back({h.layer, h.head});
    return a;
}

// Applies `fn` to the selected heads of a [b, H, q, K] pattern, writing them back.
template <class Fn>
at::Tensor on_heads(const at::Tensor& x, const at::Tensor& idx, Fn&& fn) {
    at::Tensor sub = x.index_select(1, idx);
    at::Tensor out = x.clone();
    out.index_copy_(1, idx, fn(sub));
    return out;
}

bool windowed_layer(const ForwardContext& c, int layer) {
    return c.sliding_window > 0 && layer >= c.sliding_window_from_layer;
}

std::vector<std::pair<std::int64_t, std::int64_t>> spans_for(const InterventionState& st, std::int64_t b,
                                                             const std::pair<std::int64_t, std::int64_t>& own) {
    if (st.spans.empty()) return std::vector<std::pair<std::int64_t, std::int64_t>>(b, own);
    if (st.spans.size() == 1) return std::vector<std::pair<std::int64_t, std::int64_t>>(b, st.spans[0]);
    if (static_cast<std::int64_t>(st.spans.size()) != b)
        throw ShapeError("interventions: " + std::to_string(st.spans.size()) + " target spans for a batch of " +
                         std::to_string(b));
    return st.spans;
}

// --- ACT --------------------------------------------------------------------------------------

class Act final : public Intervention {
public:
    Act(const MethodSpec& spec, const Model& m) {
        Params p(spec, {"beta", "tau", "threshold", "alpha", "heads", "heads_file", "layers", "exclude_last"});
        const int L = m.config().n_layers, H = m.config().n_heads;
        beta_ = p.num("beta", 0.4, 0, 1);
        tau_ = p.num("tau", 0.1, 0, 1);
        alpha_ = p.num("alpha", 5, 0, 1e9);
        mode_ = p.str("threshold", "absolute");
        if (mode_ != "absolute" && mode_ != "relative")
            throw ConfigError("method act: threshold=" + mode_ + " (valid: absolute, relative)");
        exclude_last_ = p.flag("exclude_last", false);
        heads_ = resolve_heads(p, m, "act", L >= 4 ? all_heads(2, L - 2, H) : all_heads(0, L - 1, H));
        if (heads_.empty()) throw ConfigError("method act: the head set is empty");
    }
    std::string name() const override { return "act"; }
    std::string params_json() const override {
        json j{{"beta", beta_}, {"tau", tau_}, {"threshold", mode_}, {"alpha", alpha_},
               {"exclude_last", exclude_last_}, {"heads", heads_json(heads_)}};
        return j.dump();
    }
    std::string stats_json() const override {
        json j{{"rows_calibrated", rows_}, {"mass_moved", moved_},
               {"sinks_detected", sinks_}, {"head_sequences", head_seqs_}};
        return j.dump();
    }
    void attach(Model& m, std::shared_ptr<InterventionState> st, std::vector<HookHandle>& out) override {
        const at::Device dev = m.device();
        for (const auto& [layer, heads] : by_layer(heads_)) {
            const int l = layer;
            at::Tensor idx = index_tensor(heads, dev);
            const model::HookRegistry* reg = &m.hooks();
            out.push_back(m.hooks().add_editor(HookName{l, Site::kPattern},
                                               [this, st, idx, l, reg](const HookName&, const at::Tensor& x) {
                if (!st->enabled) return x;
                return edit(reg->context(), l, idx, x);
            }));
        }
    }

private:
    at::Tensor edit(const ForwardContext& c, int l, const at::Tensor& idx, const at::Tensor& x) {
        const std::int64_t b = x.size(0), K = x.size(3);
        at::Tensor rows = edit::real_queries(c);
        at::Tensor sub = x.index_select(1, idx);  // [b, h, q, K]
        at::Tensor sinks;
        if (c.past == 0) {
            at::Tensor vis = edit::visible_keys(c, windowed_layer(c, l));
            at::Tensor scores = edit::sink_scores(sub, vis);
            at::Tensor key_real = c.key_mask.to(at::kBool);
            at::Tensor n_real = key_real.sum(1);  // [b]
            at::Tensor last = key_real.to(at::kLong) * at::arange(K, c.key_mask.options().dtype(at::kLong)).view({1, K});
            last = last.amax(1);
            at::Tensor thr = mode_ == "absolute" ? at::full({b}, tau_, scores.options())
                                                 : (alpha_ / n_real.to(at::kFloat).clamp_min(1)).to(scores.options());
            sinks = edit::act_sinks(scores, thr, key_real, last, exclude_last_);
            prefill_[l] = sinks;
            sinks_ += sinks.sum().item<double>();
            head_seqs_ += static_cast<double>(sinks.size(0) * sinks.size(1));
        } else {
            auto it = prefill_.find(l);
            if (it == prefill_.end() || it->second.size(0) != b || it->second.size(2) > K) return x;
            sinks = it->second;
            if (sinks.size(2) < K)  // keys generated since the prefill are never sinks
                sinks = at::cat({sinks, at::zeros({b, sinks.size(1), K - sinks.size(2)}, sinks.options())}, 2);
        }
        at::Tensor cal = edit::act_calibrate(sub, sinks, beta_, rows);
        const at::Tensor S = sinks.unsqueeze(2);
        at::Tensor changed = (cal != sub).any(-1);
        rows_ += changed.sum().item<double>();
        moved_ += (sub - cal).masked_fill(S.logical_not(), 0).sum().item<double>();
        at::Tensor out = x.clone();
        out.index_copy_(1, idx, cal);
        return out;
    }

    double beta_, tau_, alpha_;
    std::string mode_;
    bool exclude_last_;
    std::vector<HeadRef> heads_;
    std::map<int, at::Tensor> prefill_;  // layer -> [b, h, K_prefill] calibrated sinks
    double rows_ = 0, moved_ = 0, sinks_ = 0, head_seqs_ = 0;
};

// --- VAR --------------------------------------------------------------------------------------

class Var final : public Intervention {
public:
    Var(const MethodSpec& spec, const Model& m) {
        Params p(spec, {"dims", "tau", "f", "vis_min", "rho", "first_layer", "include_last_layer", "span",
                        "massive_abs", "massive_factor", "layers"});
        const auto& cfg = m.config();
        n_layers_ = cfg.n_layers;
        d_model_ = cfg.d_model;
        vp_.moved = p.num("f", 0.4, 0, 1);
        vp_.vis_min = p.num("vis_min", 0.2, 0, 1);
        vp_.rho = p.num("rho", 0.5, 0, 1);
        first_layer_ = static_cast<int>(p.num("first_layer", 2, 0, cfg.n_layers));
        include_last_ = p.flag("include_last_layer", false);
        massive_abs_ = p.num("massive_abs", 100, 0, 1e12);
        massive_factor_ = p.num("massive_factor", 1000, 0, 1e12);
        const std::string dims = p.str("dims", "auto");
        if (dims == "auto") {
            auto_dims_ = true;
        } else {
            std::string d = dims;
            std::replace(d.begin(), d.end(), '+', ',');
            for (int v : layer_list(d, static_cast<int>(cfg.d_model), "var: dims (d_model)")) dims_.push_back(v);
        }
        const std::string tau = p.str("tau", auto_dims_ ? "auto" : "20");
        if (tau == "auto") {
            auto_tau_ = true;
        } else {
            tau_ = p.num("tau", 20, 0, 1e9);
        }
        if (p.has("span")) {
            const std::string s = p.str("span", "");
            const auto c = s.find(':');
            try {
                if (c == std::string::npos) throw std::invalid_argument("no colon");
                span_ = {std::stoll(s.substr(0, c)), std::stoll(s.substr(c + 1))};
            } catch (const std::exception&) {
                throw ConfigError("method var: span=" + s + " is not BEGIN:END (token positions)");
            }
            if (span_.first < 0 || span_.second <= span_.first)
                throw ConfigError("method var: span=" + s + " is empty or negative");
        }
        int last = include_last_ ? cfg.n_layers - 1 : cfg.n_layers - 2;
        for (int l = first_layer_; l <= last; ++l) layers_.push_back(l);
        if (p.has("layers")) {
            const auto list = layer_list(p.str("layers", ""), cfg.n_layers, "var: layers");
            const std::set<int> keep(list.begin(), list.end());
            layers_.erase(std::remove_if(layers_.begin(), layers_.end(), [&](int l) { return !keep.count(l); }),
                          layers_.end());
        }
        if (layers_.empty()) throw ConfigError("method var: no layer to act on (first_layer / layers)");
    }
    std::string name() const override { return "var"; }
    bool needs_calibration() const override { return auto_dims_ || auto_tau_; }
    std::string params_json() const override {
        json j{{"dims", dims_}, {"tau", tau_}, {"f", vp_.moved}, {"vis_min", vp_.vis_min}, {"rho", vp_.rho},
               {"first_layer", first_layer_}, {"include_last_layer", include_last_}, {"layers", layers_}};
        if (span_.second > 0) j["span"] = {span_.first, span_.second};
        if (calibrated_) {
            j["calibration"] = {{"dims_auto", auto_dims_}, {"tau_auto", auto_tau_},
                                {"massive_abs", massive_abs_}, {"massive_factor", massive_factor_},
                                {"phi_bos_median", phi_bos_}, {"phi_other_p99", phi_other_}, {"sequences", calib_n_}};
        }
        return j.dump();
    }
    std::string stats_json() const override {
        json j{{"rows_selected", selected_}, {"rows_candidate", candidates_}, {"mass_moved", moved_},
               {"sink_tokens", sink_tokens_}};
        return j.dump();
    }

    void calibrate(Model& m, const std::vector<std::vector<std::int32_t>>& seqs) override {
        if (seqs.empty()) throw ConfigError("method var: automatic sink dimensions need reference sequences");
        c10::InferenceMode guard;
        const int L = n_layers_;
        const int lo = std::min(2, L - 1), hi = std::max(lo, L / 2);
        // Pass 1: which dims are massive at the first token, counted over (layer, sequence).
        std::vector<at::Tensor> bos;    // [D] per (layer, seq)
        std::vector<at::Tensor> other;  // [n, D] per (layer, seq)
        std::vector<HookHandle> hs;
        for (int l = lo; l <= hi; ++l)
            hs.push_back(m.hooks().add_observer(HookName{l, Site::kResidPre}, [&](const HookName&, const at::Tensor& x) {
                at::Tensor xf = x[0].to(at::kFloat).cpu();  // [p, D]
                bos.push_back(xf[0]);
                if (xf.size(0) > 1) other.push_back(xf.narrow(0, 1, xf.size(0) - 1));
            }));
        for (const auto& s : seqs) {
            std::vector<std::int64_t> ids(s.begin(), s.end());
            m.forward(at::tensor(ids, at::kLong).view({1, -1}));
        }
        hs.clear();
        calib_n_ = static_cast<int>(seqs.size());
        if (auto_dims_) {
            at::Tensor B = at::stack(bos).abs();  // [n, D]
            at::Tensor med = std::get<0>(B.median(1, true));
            at::Tensor massive = (B > massive_abs_).logical_and(B >= med * massive_factor_);
            at::Tensor frac = massive.to(at::kFloat).mean(0);  // [D]
            dims_.clear();
            for (std::int64_t d = 0; d < frac.size(0); ++d)
                if (frac[d].item<float>() > 0.5f) dims_.push_back(d);
            if (dims_.empty()) {
                at::Tensor ratio = std::get<0>((B / med.clamp_min(1e-12)).median(0));  // typical ratio per dim
                const auto top = ratio.topk(std::min<std::int64_t>(3, ratio.size(0)));
                const at::Tensor top_v = std::get<0>(top), top_i = std::get<1>(top);
                std::ostringstream hint;
                for (std::int64_t i = 0; i < top_v.size(0); ++i)
                    hint << (i ? ", " : "") << "dim " << top_i[i].item<std::int64_t>() << " |x|/median "
                         << top_v[i].item<float>();
                throw ConfigError("method var: no sink dimension found: no dimension of the first token's hidden "
                                  "state is massive (|x| > massive_abs=" + std::to_string(massive_abs_) +
                                  " and >= massive_factor=" + std::to_string(massive_factor_) +
                                  " x median) in most of layers " + std::to_string(lo) + "-" + std::to_string(hi) +
                                  " over " + std::to_string(seqs.size()) + " sequences; largest: " + hint.str() +
                                  ". Lower massive_abs/massive_factor (small models) or give dims=");
            }
        }
        at::Tensor phib = edit::var_phi(at::stack(bos), dims_);
        phi_bos_ = phib.median().item<double>();
        at::Tensor phio = other.empty() ? at::zeros({1}) : edit::var_phi(at::cat(other, 0), dims_);
        phi_other_ = at::quantile(phio.to(at::kDouble), 0.99).item<double>();
        if (auto_tau_) {
            if (!(phi_bos_ > phi_other_))
                throw ConfigError("method var: cannot choose tau automatically: phi of the first token (median " +
                                  std::to_string(phi_bos_) + ") does not exceed phi of other tokens (99th pct " +
                                  std::to_string(phi_other_) + ") for dims " + json(dims_).dump() + "; give tau=");
            tau_ = std::sqrt(phi_bos_ * std::max(phi_other_, 1e-6));  // geometric midpoint
        }
        calibrated_ = true;
    }

    void attach(Model& m, std::shared_ptr<InterventionState> st, std::vector<HookHandle>& out) override {
        if (dims_.empty()) throw ConfigError("method var: sink dimensions not set (dims= or calibrate first)");
        const model::HookRegistry* reg = &m.hooks();
        for (int l : layers_) {
            out.push_back(m.hooks().add_observer(HookName{l, Site::kResidPre}, [this, st, l, reg](const HookName&, const at::Tensor& x) {
                if (!st->enabled || reg->context().past != 0) return;
                at::Tensor s = edit::var_phi(x, dims_) >= tau_;  // [b, p]
                s = s.logical_and(reg->context().key_mask.to(at::kBool));
                sinks_[l] = s;
                sink_tokens_ += s.sum().item<double>();
            }));
            out.push_back(m.hooks().add_editor(HookName{l, Site::kPattern}, [this, st, l, reg](const HookName&, const at::Tensor& x) {
                if (!st->enabled) return x;
                return edit(*st, reg->context(), l, x);
            }));
        }
    }

private:
    at::Tensor edit(const InterventionState& st, const ForwardContext& c, int l, const at::Tensor& x) {
        const std::int64_t b = x.size(0), q = x.size(2), K = x.size(3);
        auto it = sinks_.find(l);
        if (it == sinks_.end() || it->second.size(0) != b || it->second.size(1) > K) return x;
        at::Tensor sinks = it->second;
        if (sinks.size(1) < K) sinks = at::cat({sinks, at::zeros({b, K - sinks.size(1)}, sinks.options())}, 1);
        const auto spans = spans_for(st, b, span_);
        const auto lopts = c.key_mask.options().dtype(at::kLong);
        at::Tensor begin = at::tensor(std::vector<std::int64_t>(b), lopts), end = begin.clone();
        std::vector<std::int64_t> bv(b), ev(b);
        for (std::int64_t i = 0; i < b; ++i) {
            bv[i] = spans[i].first;
            ev[i] = spans[i].second;
        }
        begin = at::tensor(bv, at::kLong).to(x.device()).view({b, 1});
        end = at::tensor(ev, at::kLong).to(x.device()).view({b, 1});
        at::Tensor kpos = at::arange(K, lopts).view({1, K});
        at::Tensor target = (kpos >= begin).logical_and(kpos < end).logical_and(c.key_mask.to(at::kBool));
        // Candidate queries: real rows after the target span (all decode rows are after it).
        at::Tensor qpos = at::arange(c.past, c.past + q, lopts).view({1, q});
        at::Tensor rows = (qpos >= end).view({b, 1, q, 1}).logical_and(edit::real_queries(c));
        at::Tensor sel;
        at::Tensor y = edit::var_redistribute(x, sinks, target, rows, vp_, &sel);
        candidates_ += rows.sum().item<double>() * x.size(1);
        selected_ += sel.sum().item<double>();
        moved_ += (x - y).clamp_min(0).sum().item<double>();
        return y;
    }

    int n_layers_ = 0;
    std::int64_t d_model_ = 0;
    edit::VarParams vp_;
    int first_layer_ = 2;
    bool include_last_ = false;
    bool auto_dims_ = false, auto_tau_ = false, calibrated_ = false;
    double tau_ = 20, massive_abs_ = 100, massive_factor_ = 1000, phi_bos_ = 0, phi_other_ = 0;
    int calib_n_ = 0;
    std::vector<std::int64_t> dims_;
    std::vector<int> layers_;
    std::pair<std::int64_t, std::int64_t> span_{0, 0};
    std::map<int, at::Tensor> sinks_;  // layer -> [b, K_prefill] bool
    double selected_ = 0, candidates_ = 0, moved_ = 0, sink_tokens_ = 0;
};

// --- SoftPAG ----------------------------------------------------------------------------------

class SoftPag final : public Intervention {
public:
    SoftPag(const MethodSpec& spec, const Model& m) {
        Params p(spec, {"u", "s", "heads", "heads_file", "layers"});
        u_ = p.num("u", 1.0, 0, 1);
        s_ = p.num("s", 0, 0, 1e6);
        if (!p.has("heads") && !p.has("heads_file"))
            throw ConfigError("method softpag: give the perturbed heads, e.g. heads=3.1,5.*");
        heads_ = resolve_heads(p, m, "softpag", {});
        if (heads_.empty()) throw ConfigError("method softpag: the head set is empty");
    }
    std::string name() const override { return "softpag"; }
    double guidance() const override { return s_; }
    std::string params_json() const override {
        return json{{"u", u_}, {"s", s_}, {"heads", heads_json(heads_)}}.dump();
    }
    void attach(Model& m, std::shared_ptr<InterventionState> st, std::vector<HookHandle>& out) override {
        const model::HookRegistry* reg = &m.hooks();
        for (const auto& [layer, heads] : by_layer(heads_)) {
            at::Tensor idx = index_tensor(heads, m.device());
            out.push_back(m.hooks().add_editor(HookName{layer, Site::kPattern}, [this, st, idx, reg](const HookName&, const at::Tensor& x) {
                if (!st->enabled || (s_ > 0 && !st->perturb)) return x;
                const ForwardContext& c = reg->context();
                at::Tensor rows = edit::real_queries(c);
                return on_heads(x, idx, [&](const at::Tensor& sub) { return edit::softpag(sub, c.past, u_, rows); });
            }));
        }
    }

private:
    double u_ = 1, s_ = 0;
    std::vector<HeadRef> heads_;
};

// --- head ablation ------------------------------------------------------------------------------

class Ablate final : public Intervention {
public:
    Ablate(const MethodSpec& spec, const Model& m) {
        Params p(spec, {"mode", "heads", "heads_file", "layers"});
        mode_ = p.str("mode", "zero");
        if (mode_ != "zero" && mode_ != "mean" && mode_ != "uniform")
            throw ConfigError("method ablate: mode=" + mode_ + " (valid: zero, mean, uniform)");
        if (!p.has("heads") && !p.has("heads_file"))
            throw ConfigError("method ablate: give the ablated heads, e.g. heads=3.1,5.*");
        heads_ = resolve_heads(p, m, "ablate", {});
        if (heads_.empty()) throw ConfigError("method ablate: the head set is empty");
    }
    std::string name() const override { return "ablate"; }
    bool needs_calibration() const override { return mode_ == "mean"; }
    std::string params_json() const override {
        json j{{"mode", mode_}, {"heads", heads_json(heads_)}};
        if (mode_ == "mean") j["mean_over_positions"] = positions_;
        return j.dump();
    }
    void calibrate(Model& m, const std::vector<std::vector<std::int32_t>>& seqs) override {
        if (seqs.empty()) throw ConfigError("method ablate: mode=mean needs reference sequences");
        c10::InferenceMode guard;
        std::vector<HookHandle> hs;
        means_.clear();
        positions_ = 0;
        for (const auto& [layer, heads] : by_layer(heads_)) {
            const int l = layer;
            hs.push_back(m.hooks().add_observer(HookName{l, Site::kZ}, [this, l](const HookName&, const at::Tensor& z) {
                at::Tensor s = z[0].to(at::kDouble).sum(0);  // [H, dh]
                auto it = means_.find(l);
                if (it == means_.end()) means_[l] = s;
                else it->second += s;
            }));
        }
        for (const auto& s : seqs) {
            std::vector<std::int64_t> ids(s.begin(), s.end());
            m.forward(at::tensor(ids, at::kLong).view({1, -1}));
            positions_ += static_cast<std::int64_t>(s.size());
        }
        for (auto& [l, t] : means_) t = (t / static_cast<double>(positions_)).to(m.dtype());
    }
    void attach(Model& m, std::shared_ptr<InterventionState> st, std::vector<HookHandle>& out) override {
        const model::HookRegistry* reg = &m.hooks();
        for (const auto& [layer, heads] : by_layer(heads_)) {
            const int l = layer;
            at::Tensor idx = index_tensor(heads, m.device());
            if (mode_ == "uniform") {
                out.push_back(m.hooks().add_editor(HookName{l, Site::kPattern}, [st, idx, reg, l](const HookName&, const at::Tensor& x) {
                    if (!st->enabled) return x;
                    const ForwardContext& c = reg->context();
                    at::Tensor u = edit::uniform_rows(edit::visible_keys(c, windowed_layer(c, l)));
                    at::Tensor rows = edit::real_queries(c);
                    return on_heads(x, idx, [&](const at::Tensor& sub) { return at::where(rows, u.expand_as(sub), sub); });
                }));
            } else {
                if (mode_ == "mean" && !means_.count(l))
                    throw ConfigError("method ablate: mode=mean needs calibration before attach");
                at::Tensor mean = mode_ == "mean" ? means_.at(l).index_select(0, idx.cpu()).to(m.device()) : at::Tensor();
                out.push_back(m.hooks().add_editor(HookName{l, Site::kZ}, [this, st, idx, mean](const HookName&, const at::Tensor& z) {
                    if (!st->enabled) return z;
                    at::Tensor out = z.clone();  // [b, p, H, dh]
                    at::Tensor repl = mode_ == "zero" ? at::zeros({z.size(0), z.size(1), idx.size(0), z.size(3)}, z.options())
                                                      : mean.view({1, 1, idx.size(0), z.size(3)}).expand({z.size(0), z.size(1), idx.size(0), z.size(3)}).contiguous();
                    out.index_copy_(2, idx, repl);
                    return out;
                }));
            }
        }
    }

private:
    std::string mode_;
    std::vector<HeadRef> heads_;
    std::map<int, at::Tensor> means_;  // layer -> [H, dh] mean of hook_z
    std::int64_t positions_ = 0;
};

// --- temperature --------------------------------------------------------------------------------

class Temperature final : public Intervention {
public:
    Temperature(const MethodSpec& spec, const Model& m) {
        Params p(spec, {"t", "heads", "heads_file", "layers"});
        t_ = p.num("t", 1.0, 1e-6, 1e6);
        heads_ = resolve_heads(p, m, "temperature", all_heads(0, m.config().n_layers - 1, m.config().n_heads));
        if (heads_.empty()) throw ConfigError("method temperature: the head set is empty");
    }
    std::string name() const override { return "temperature"; }
    std::string params_json() const override { return json{{"t", t_}, {"heads", heads_json(heads_)}}.dump(); }
    void attach(Model& m, std::shared_ptr<InterventionState> st, std::vector<HookHandle>& out) override {
        for (const auto& [layer, heads] : by_layer(heads_)) {
            at::Tensor idx = index_tensor(heads, m.device());
            out.push_back(m.hooks().add_editor(HookName{layer, Site::kAttnScores}, [this, st, idx](const HookName&, const at::Tensor& x) {
                if (!st->enabled) return x;
                return on_heads(x, idx, [&](const at::Tensor& sub) { return sub / t_; });
            }));
        }
    }

private:
    double t_ = 1;
    std::vector<HeadRef> heads_;
};

}  // namespace

std::unique_ptr<Intervention> make_intervention(const MethodSpec& spec, const Model& m) {
    if (spec.name == "act") return std::make_unique<Act>(spec, m);
    if (spec.name == "var") return std::make_unique<Var>(spec, m);
    if (spec.name == "softpag") return std::make_unique<SoftPag>(spec, m);
    if (spec.name == "ablate") return std::make_unique<Ablate>(spec, m);
    if (spec.name == "temperature") return std::make_unique<Temperature>(spec, m);
    throw ConfigError("unknown method '" + spec.name + "' (valid: act, var, softpag, ablate, temperature; "
                      "see `attnscope eval --help-methods`)");
}

std::string method_help() {
    return "act:          beta=0.4 tau=0.1 threshold=absolute|relative alpha=5 heads=LIST|heads_file=FILE "
           "layers=2-(L-2) exclude_last=false\n"
           "var:          dims=auto|D,D tau=auto|20 f=0.4 vis_min=0.2 rho=0.5 first_layer=2 "
           "include_last_layer=false span=BEGIN:END massive_abs=100 massive_factor=1000 layers=LIST\n"
           "softpag:      heads=LIST u=1.0 s=0 (s > 0: guidance z + s (z - z_perturbed))\n"
           "ablate:       heads=LIST mode=zero|mean|uniform\n"
           "temperature:  t=1.0 heads=LIST (default all)\n"
           "LIST: LAYER.HEAD items, e.g. 2.3+4.*+2-5.0-3 ('+' or ',' between items)\n";
}

// --- InterventionSet ---------------------------------------------------------------------------

InterventionSet::InterventionSet() : state_(std::make_shared<InterventionState>()) {}
InterventionSet::~InterventionSet() = default;
InterventionSet::InterventionSet(InterventionSet&&) noexcept = default;
InterventionSet& InterventionSet::operator=(InterventionSet&&) noexcept = default;

InterventionSet InterventionSet::from_cli(const std::vector<std::string>& methods, const std::vector<std::string>& params,
                                          const Model& m) {
    std::vector<MethodSpec> specs;
    for (const auto& s : methods) specs.push_back(parse_method_spec(s));
    for (const auto& kv : params) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            throw ConfigError("--param '" + kv + "' is not key=value (or method.key=value)");
        std::string key = trim(kv.substr(0, eq));
        const std::string value = trim(kv.substr(eq + 1));
        const auto dot = key.find('.');
        MethodSpec* target = nullptr;
        if (dot != std::string::npos) {
            const std::string name = key.substr(0, dot);
            for (auto& s : specs)
                if (s.name == name) target = &s;
            if (!target) throw ConfigError("--param " + kv + ": no --method " + name + " was given");
            key = key.substr(dot + 1);
        } else {
            if (specs.size() != 1)
                throw ConfigError("--param " + kv + ": with " + std::to_string(specs.size()) +
                                  " methods, name the method (e.g. --param act." + key + "=" + value + ")");
            target = &specs[0];
        }
        target->params.emplace_back(key, value);
    }
    InterventionSet set;
    for (const auto& s : specs) set.add(make_intervention(s, m));
    return set;
}

void InterventionSet::add(std::unique_ptr<Intervention> method) {
    if (attached()) throw std::logic_error("InterventionSet::add after attach");
    methods_.push_back(std::move(method));
}
bool InterventionSet::empty() const { return methods_.empty(); }
std::size_t InterventionSet::size() const { return methods_.size(); }

bool InterventionSet::needs_calibration() const {
    return std::any_of(methods_.begin(), methods_.end(), [](const auto& m) { return m->needs_calibration(); });
}
void InterventionSet::calibrate(Model& m, const std::vector<std::vector<std::int32_t>>& seqs) {
    if (attached()) throw std::logic_error("InterventionSet::calibrate after attach");
    for (auto& x : methods_)
        if (x->needs_calibration()) x->calibrate(m, seqs);
}
void InterventionSet::attach(Model& m) {
    detach();
    for (auto& x : methods_) x->attach(m, state_, handles_);
}
void InterventionSet::detach() { handles_.clear(); }
bool InterventionSet::attached() const { return !handles_.empty(); }
void InterventionSet::set_enabled(bool on) { state_->enabled = on; }
bool InterventionSet::enabled() const { return state_->enabled; }
void InterventionSet::set_perturb(bool on) { state_->perturb = on; }
void InterventionSet::set_spans(std::vector<std::pair<std::int64_t, std::int64_t>> spans) { state_->spans = std::move(spans); }
double InterventionSet::guidance() const {
    double g = 0;
    for (const auto& x : methods_) g = std::max(g, x->guidance());
    return g;
}

std::string InterventionSet::to_json() const {
    if (methods_.empty()) return "{}";
    json a = json::array();
    for (const auto& x : methods_) a.push_back({{"method", x->name()}, {"params", json::parse(x->params_json())}});
    return json{{"methods", a}}.dump();
}
std::string InterventionSet::stats_json() const {
    json j = json::object();
    for (const auto& x : methods_) j[x->name()] = json::parse(x->stats_json());
    return j.dump();
}
std::string InterventionSet::describe() const {
    if (methods_.empty()) return "none";
    std::string s;
    for (const auto& x : methods_) {
        json p = json::parse(x->params_json());
        std::string args;
        for (auto it = p.begin(); it != p.end(); ++it) {
            if (it.key() == "calibration") continue;
            std::string v = it.key() == "heads" ? std::to_string(it.value().size()) : it.value().dump();
            if (v.size() > 24) v = v.substr(0, 21) + "...";
            args += (args.empty() ? "" : ", ") + it.key() + "=" + v;
        }
        s += (s.empty() ? "" : " + ") + x->name() + "(" + args + ")";
    }
    return s;
}

}  // namespace attnscope::probes
