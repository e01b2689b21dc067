#include "probes/eval.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "core/base/error.h"
#include "core/base/utf8.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"

namespace attnscope::probes {

using json = nlohmann::json;

std::string to_string(TaskType t) {
    switch (t) {
        case TaskType::kMultipleChoice: return "mc";
        case TaskType::kClassification: return "cls";
        case TaskType::kPerplexity: return "ppl";
    }
    return "?";
}

// --- task files ---------------------------------------------------------------------------------

namespace {

ConfigError item_error(const std::string& where, const std::string& what) {
    return ConfigError(where + ": " + what + " (task format: docs/eval.md)");
}

std::string req_string(const json& j, const char* key, const std::string& where) {
    if (!j.contains(key)) throw item_error(where, std::string("missing \"") + key + "\"");
    if (!j[key].is_string()) throw item_error(where, std::string("\"") + key + "\" must be a string");
    std::string s = j[key].get<std::string>();
    if (!utf8::is_valid(s)) throw item_error(where, std::string("\"") + key + "\" is not valid UTF-8");
    return s;
}

std::vector<std::string> req_strings(const json& j, const char* key, const std::string& where) {
    if (!j[key].is_array() || j[key].size() < 2)
        throw item_error(where, std::string("\"") + key + "\" must be an array of at least 2 strings");
    std::vector<std::string> v;
    for (const auto& e : j[key]) {
        if (!e.is_string() || e.get<std::string>().empty())
            throw item_error(where, std::string("\"") + key + "\" must hold non-empty strings");
        v.push_back(e.get<std::string>());
        if (!utf8::is_valid(v.back())) throw item_error(where, std::string("\"") + key + "\" is not valid UTF-8");
    }
    return v;
}

}  // namespace

Task load_task(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError("cannot open task file " + path.string() + " (check the path; tasks are .jsonl files)");
    Task task;
    task.path = path;
    std::string line;
    std::size_t lineno = 0;
    bool have_type = false;
    std::set<std::string> ids;
    while (std::getline(in, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        const std::string where = path.string() + ":" + std::to_string(lineno);
        json j;
        try {
            j = json::parse(line);
        } catch (const std::exception& e) {
            throw item_error(where, std::string("not valid JSON: ") + e.what());
        }
        if (!j.is_object()) throw item_error(where, "each line must be a JSON object");
        TaskItem it;
        it.source = where;
        if (j.contains("options")) {
            it.type = TaskType::kMultipleChoice;
            it.context = j.contains("context") ? req_string(j, "context", where) : "";
            it.options = req_strings(j, "options", where);
        } else if (j.contains("labels")) {
            it.type = TaskType::kClassification;
            it.context = req_string(j, "text", where);
            it.options = req_strings(j, "labels", where);
        } else if (j.contains("text")) {
            it.type = TaskType::kPerplexity;
            it.context = req_string(j, "text", where);
            if (it.context.empty()) throw item_error(where, "\"text\" is empty");
        } else {
            throw item_error(where, "no \"options\" (multiple choice), \"labels\" (classification) or \"text\" "
                                    "(perplexity)");
        }
        if (it.type != TaskType::kPerplexity) {
            if (!j.contains("answer")) throw item_error(where, "missing \"answer\" (index or the option itself)");
            const auto& a = j["answer"];
            if (a.is_number_integer()) {
                it.answer = a.get<int>();
            } else if (a.is_string()) {
                auto f = std::find(it.options.begin(), it.options.end(), a.get<std::string>());
                if (f == it.options.end()) throw item_error(where, "\"answer\" is not one of the options");
                it.answer = static_cast<int>(f - it.options.begin());
            } else {
                throw item_error(where, "\"answer\" must be an integer index or a string");
            }
            if (it.answer < 0 || it.answer >= static_cast<int>(it.options.size()))
                throw item_error(where, "\"answer\" " + std::to_string(it.answer) + " is outside the " +
                                            std::to_string(it.options.size()) + " options");
        }
        if (j.contains("id")) {
            if (j["id"].is_string()) it.id = j["id"].get<std::string>();
            else if (j["id"].is_number_integer()) it.id = std::to_string(j["id"].get<std::int64_t>());
            else throw item_error(where, "\"id\" must be a string or an integer");
        } else {
            it.id = std::to_string(task.items.size());
        }
        if (!ids.insert(it.id).second) throw item_error(where, "duplicate id \"" + it.id + "\"");
        if (j.contains("split")) {
            if (!j["split"].is_string()) throw item_error(where, "\"split\" must be a string");
            it.split = j["split"].get<std::string>();
        }
        if (j.contains("focus")) {
            const auto& f = j["focus"];
            if (!f.is_array() || f.size() != 2 || !f[0].is_number_unsigned() || !f[1].is_number_unsigned())
                throw item_error(where, "\"focus\" must be [begin, end] byte offsets into the context");
            it.focus = {f[0].get<std::size_t>(), f[1].get<std::size_t>()};
            if (it.focus.first >= it.focus.second || it.focus.second > it.context.size())
                throw item_error(where, "\"focus\" [" + std::to_string(it.focus.first) + ", " +
                                            std::to_string(it.focus.second) + ") is empty or outside the context (" +
                                            std::to_string(it.context.size()) + " bytes)");
        }
        if (have_type && it.type != task.type)
            throw item_error(where, "item of type " + to_string(it.type) + " in a " + to_string(task.type) +
                                        " task (one type per file)");
        task.type = it.type;
        have_type = true;
        task.items.push_back(std::move(it));
    }
    if (in.bad()) throw IoError("error reading task file " + path.string());
    if (task.items.empty()) throw ConfigError("task file " + path.string() + " has no items");
    return task;
}

std::vector<TaskItem> select_items(const Task& task, const std::string& split, std::size_t limit,
                                   std::uint64_t seed) {
    std::vector<TaskItem> v;
    std::set<std::string> splits;
    for (const auto& it : task.items) {
        splits.insert(it.split.empty() ? "(none)" : it.split);
        if (split.empty() || split == "all" || it.split == split) v.push_back(it);
    }
    if (v.empty()) {
        std::string list;
        for (const auto& s : splits) list += (list.empty() ? "" : ", ") + s;
        throw ConfigError("task " + task.path.string() + " has no items of split '" + split + "' (splits: " + list + ")");
    }
    if (limit > 0 && limit < v.size()) {
        std::mt19937_64 rng(seed);
        std::shuffle(v.begin(), v.end(), rng);
        v.resize(limit);
    }
    return v;
}

// --- scoring ------------------------------------------------------------------------------------

namespace {

struct Seq {
    std::vector<std::int32_t> ids;
    std::size_t score_from = 1;  // first scored position (predicted from the one before)
    std::pair<std::int64_t, std::int64_t> span{0, 0};
    std::size_t item = 0;
    int option = -1;
};

bool starts_with(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& prefix) {
    return a.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), a.begin());
}

// Cuts tokens after the first (BOS) from the left so that `s` fits `ctx` positions.
bool fit(Seq& s, std::int64_t ctx) {
    const std::int64_t n = static_cast<std::int64_t>(s.ids.size());
    if (n <= ctx) return false;
    const std::int64_t cut = n - ctx;
    if (static_cast<std::int64_t>(s.score_from) - cut < 1)
        throw ConfigError("eval: an option or text of " + std::to_string(n - static_cast<std::int64_t>(s.score_from)) +
                          " tokens does not fit the model's context of " + std::to_string(ctx));
    s.ids.erase(s.ids.begin() + 1, s.ids.begin() + 1 + cut);
    s.score_from -= static_cast<std::size_t>(cut);
    s.span = {std::max<std::int64_t>(1, s.span.first - cut), std::max<std::int64_t>(0, s.span.second - cut)};
    return true;
}

std::vector<Seq> build(const model::Model& m, const std::vector<TaskItem>& items, std::vector<bool>* truncated) {
    const text::Tokenizer& tok = m.require_tokenizer();
    const std::int64_t ctx = m.context_length();
    std::vector<Seq> out;
    if (truncated) truncated->assign(items.size(), false);
    for (std::size_t i = 0; i < items.size(); ++i) {
        const TaskItem& it = items[i];
        std::pair<std::int64_t, std::int64_t> span{0, 0};
        if (it.focus.second > 0) {
            span.first = static_cast<std::int64_t>(tok.encode(it.context.substr(0, it.focus.first)).size());
            span.second = static_cast<std::int64_t>(tok.encode(it.context.substr(0, it.focus.second)).size());
        }
        if (it.type == TaskType::kPerplexity) {
            Seq s;
            s.ids = tok.encode(it.context);
            s.score_from = 1;
            s.item = i;
            if (s.ids.size() < 2) throw ConfigError(it.source + ": text has fewer than 2 tokens; nothing to score");
            if (static_cast<std::int64_t>(s.ids.size()) > ctx)
                throw ConfigError(it.source + ": text of " + std::to_string(s.ids.size()) +
                                  " tokens exceeds the model's context of " + std::to_string(ctx) +
                                  " (split it into shorter items)");
            out.push_back(std::move(s));
            continue;
        }
        const auto ctx_ids = tok.encode(it.context);
        for (std::size_t o = 0; o < it.options.size(); ++o) {
            Seq s;
            auto full = tok.encode(it.context + it.options[o]);
            if (starts_with(full, ctx_ids) && full.size() > ctx_ids.size()) {
                s.ids = std::move(full);
            } else {  // the option merged into the context's last token: score it on its own
                s.ids = ctx_ids;
                const auto opt = tok.encode(it.options[o], false);
                s.ids.insert(s.ids.end(), opt.begin(), opt.end());
            }
            s.score_from = ctx_ids.size();
            if (s.score_from == 0) throw ConfigError(it.source + ": the context encodes to no token (add BOS or text)");
            s.span = span;
            s.item = i;
            s.option = static_cast<int>(o);
            if (fit(s, ctx) && truncated) (*truncated)[i] = true;
            out.push_back(std::move(s));
        }
    }
    return out;
}

}  // namespace

std::vector<std::vector<std::int32_t>> item_sequences(const model::Model& m, const std::vector<TaskItem>& items,
                                                      std::size_t max_items) {
    std::vector<TaskItem> head(items.begin(), items.begin() + std::min(items.size(), max_items));
    const text::Tokenizer& tok = m.require_tokenizer();
    std::vector<std::vector<std::int32_t>> out;
    for (const auto& it : head) {
        auto ids = tok.encode(it.type == TaskType::kPerplexity ? it.context
                                                               : it.context + it.options[static_cast<std::size_t>(std::max(0, it.answer))]);
        if (static_cast<std::int64_t>(ids.size()) > m.context_length()) ids.resize(static_cast<std::size_t>(m.context_length()));
        if (!ids.empty()) out.push_back(std::move(ids));
    }
    return out;
}

namespace {

// Logits of one forward, or with SoftPAG guidance z + s (z - z_perturbed) from a second pass on
// its own cache.
at::Tensor guided_forward(model::Model& m, InterventionSet* set, const at::Tensor& ids, const at::Tensor& mask,
                          model::KVCache* cache, model::KVCache* weak_cache) {
    const double g = set && set->enabled() ? set->guidance() : 0;
    if (g <= 0) return m.forward(ids, mask, cache);
    set->set_perturb(false);
    at::Tensor z = m.forward(ids, mask, cache);
    set->set_perturb(true);
    at::Tensor zw = m.forward(ids, mask, weak_cache);
    set->set_perturb(false);
    return z + g * (z - zw);
}

void select_cache_rows(model::KVCache& c, const at::Tensor& rows) {
    for (auto& t : c.k)
        if (t.defined()) t = t.index_select(0, rows.to(t.device()));
    for (auto& t : c.v)
        if (t.defined()) t = t.index_select(0, rows.to(t.device()));
    if (c.mask.defined()) c.mask = c.mask.index_select(0, rows.to(c.mask.device()));
}

// seqs: every option of each item (grouped by item, options in order), all sharing the item's
// context ids[0, score_from).
void score_shared(model::Model& m, const std::vector<TaskItem>& items, const std::vector<Seq>& seqs,
                  InterventionSet* set, const EvalConfig& cfg, std::vector<ItemScore>& scores, std::size_t total) {
    struct Group {
        std::size_t first, count;
    };
    std::vector<Group> groups;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
        if (groups.empty() || seqs[groups.back().first].item != seqs[i].item) groups.push_back({i, 0});
        ++groups.back().count;
    }
    std::stable_sort(groups.begin(), groups.end(),
                     [&](const Group& a, const Group& b) { return seqs[a.first].score_from < seqs[b.first].score_from; });
    const std::size_t per = std::max<std::size_t>(1, static_cast<std::size_t>(cfg.batch) / 4);
    std::size_t done = 0;
    for (std::size_t g0 = 0; g0 < groups.size(); g0 += per) {
        const std::size_t g1 = std::min(groups.size(), g0 + per);
        const std::int64_t B = static_cast<std::int64_t>(g1 - g0);
        std::size_t Pc = 0, Po = 1, R = 0;
        for (std::size_t g = g0; g < g1; ++g) {
            Pc = std::max(Pc, seqs[groups[g].first].score_from);
            for (std::size_t k = 0; k < groups[g].count; ++k) {
                const Seq& q = seqs[groups[g].first + k];
                Po = std::max(Po, q.ids.size() - q.score_from);
                ++R;
            }
        }
        std::vector<std::int64_t> cid(static_cast<std::size_t>(B) * Pc, 0), cmask(cid.size(), 0);
        std::vector<std::int64_t> oid(R * Po, 0), omask(oid.size(), 0), rowmap;
        std::vector<std::pair<std::int64_t, std::int64_t>> cspans, ospans;
        std::size_t r = 0;
        for (std::size_t g = g0; g < g1; ++g) {
            const Seq& head = seqs[groups[g].first];
            for (std::size_t t = 0; t < head.score_from; ++t) {
                cid[(g - g0) * Pc + t] = head.ids[t];
                cmask[(g - g0) * Pc + t] = 1;
            }
            cspans.push_back(head.span);
            for (std::size_t k = 0; k < groups[g].count; ++k, ++r) {
                const Seq& q = seqs[groups[g].first + k];
                for (std::size_t t = q.score_from; t < q.ids.size(); ++t) {
                    oid[r * Po + (t - q.score_from)] = q.ids[t];
                    omask[r * Po + (t - q.score_from)] = 1;
                }
                rowmap.push_back(static_cast<std::int64_t>(g - g0));
                ospans.push_back(q.span);
            }
        }
        model::KVCache cache, weak;
        if (set) set->set_spans(cspans);
        at::Tensor ctx_ids = at::tensor(cid, at::kLong).view({B, static_cast<std::int64_t>(Pc)});
        at::Tensor lc = guided_forward(m, set, ctx_ids, at::tensor(cmask, at::kLong).view({B, static_cast<std::int64_t>(Pc)}),
                                       &cache, &weak);
        // Logits at each context's last real token predict the first option token.
        std::vector<std::int64_t> last;
        for (std::size_t g = g0; g < g1; ++g) last.push_back(static_cast<std::int64_t>(seqs[groups[g].first].score_from) - 1);
        at::Tensor last_t = at::tensor(last, at::kLong).to(lc.device());
        at::Tensor first = at::log_softmax(lc.index({at::arange(B, last_t.options()), last_t}).to(at::kFloat), -1);  // [B, V]
        at::Tensor rows = at::tensor(rowmap, at::kLong);
        select_cache_rows(cache, rows);
        if (!weak.k.empty()) select_cache_rows(weak, rows);
        if (set) {
            set->select_rows(rows);
            set->set_spans(ospans);
        }
        const auto Ri = static_cast<std::int64_t>(R), Pi = static_cast<std::int64_t>(Po);
        at::Tensor opt_ids = at::tensor(oid, at::kLong).view({Ri, Pi});
        at::Tensor lo = guided_forward(m, set, opt_ids, at::tensor(omask, at::kLong).view({Ri, Pi}), &cache, &weak);
        at::Tensor lp0 = first.index_select(0, rows.to(first.device()))
                             .gather(-1, opt_ids.narrow(1, 0, 1).to(first.device()))
                             .squeeze(-1).to(at::kDouble).cpu().contiguous();  // [R]
        at::Tensor rest;
        if (Po > 1) {
            at::Tensor lp = at::log_softmax(lo.narrow(1, 0, Pi - 1).to(at::kFloat), -1);
            rest = lp.gather(-1, opt_ids.narrow(1, 1, Pi - 1).to(lp.device()).unsqueeze(-1))
                       .squeeze(-1).to(at::kDouble).cpu().contiguous();  // [R, Po-1]
        }
        r = 0;
        for (std::size_t g = g0; g < g1; ++g)
            for (std::size_t k = 0; k < groups[g].count; ++k, ++r) {
                const Seq& q = seqs[groups[g].first + k];
                const std::size_t n = q.ids.size() - q.score_from;
                double ll = lp0.data_ptr<double>()[r];
                for (std::size_t t = 1; t < n; ++t) ll += rest.data_ptr<double>()[r * (Po - 1) + (t - 1)];
                ItemScore& sc = scores[q.item];
                sc.option_ll[static_cast<std::size_t>(q.option)] = cfg.length_norm ? ll / static_cast<double>(n) : ll;
                sc.tokens = static_cast<std::int64_t>(q.score_from);
                ++done;
            }
        if (cfg.progress) cfg.progress(done, total);
    }
    if (set) set->set_spans({});
}

}  // namespace

std::vector<ItemScore> score_items(model::Model& m, const std::vector<TaskItem>& items, InterventionSet* set,
                                   const EvalConfig& cfg) {
    if (cfg.batch < 1) throw ConfigError("eval: batch must be >= 1");
    c10::InferenceMode guard;
    std::vector<bool> truncated;
    std::vector<Seq> all = build(m, items, &truncated);
    // Multiple-choice items whose options share the context run the context once and the options
    // as a continuation on its KV cache (as decoding does); the rest run as full sequences.
    std::vector<Seq> seqs, shared;
    for (auto& q : all) {
        const bool share = cfg.share_context && q.option >= 0 && !truncated[q.item];
        (share ? shared : seqs).push_back(std::move(q));
    }
    // Batches of similar lengths waste little on padding; results do not depend on the order.
    std::stable_sort(seqs.begin(), seqs.end(), [](const Seq& a, const Seq& b) { return a.ids.size() < b.ids.size(); });
    std::vector<ItemScore> scores(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        scores[i].option_ll.assign(items[i].options.size(), 0.0);
        scores[i].truncated = truncated[i];
    }
    const std::size_t total = seqs.size() + shared.size();
    if (!shared.empty()) score_shared(m, items, shared, set, cfg, scores, total);

    for (std::size_t b0 = 0; b0 < seqs.size(); b0 += static_cast<std::size_t>(cfg.batch)) {
        const std::size_t b1 = std::min(seqs.size(), b0 + static_cast<std::size_t>(cfg.batch));
        const std::int64_t B = static_cast<std::int64_t>(b1 - b0);
        std::size_t P = 0;
        for (std::size_t s = b0; s < b1; ++s) P = std::max(P, seqs[s].ids.size());
        std::vector<std::int64_t> ids(static_cast<std::size_t>(B) * P, 0), mask(ids.size(), 0);
        std::vector<std::pair<std::int64_t, std::int64_t>> spans;
        for (std::size_t s = b0; s < b1; ++s) {
            for (std::size_t t = 0; t < seqs[s].ids.size(); ++t) {
                ids[(s - b0) * P + t] = seqs[s].ids[t];
                mask[(s - b0) * P + t] = 1;
            }
            spans.push_back(seqs[s].span);
        }
        at::Tensor tid = at::tensor(ids, at::kLong).view({B, static_cast<std::int64_t>(P)});
        at::Tensor tmask = at::tensor(mask, at::kLong).view({B, static_cast<std::int64_t>(P)});
        if (set) set->set_spans(spans);
        const at::Tensor logits = guided_forward(m, set, tid, tmask, nullptr, nullptr);
        // log p(token t | < t) for t >= 1: [B, P-1]
        at::Tensor lp = at::log_softmax(logits.narrow(1, 0, static_cast<std::int64_t>(P) - 1).to(at::kFloat), -1);
        at::Tensor tgt = tid.narrow(1, 1, static_cast<std::int64_t>(P) - 1).to(lp.device()).unsqueeze(-1);
        at::Tensor tok_lp = lp.gather(-1, tgt).squeeze(-1).to(at::kDouble).cpu().contiguous();
        const double* d = tok_lp.data_ptr<double>();
        for (std::size_t s = b0; s < b1; ++s) {
            const Seq& q = seqs[s];
            double ll = 0;
            for (std::size_t t = q.score_from; t < q.ids.size(); ++t) ll += d[(s - b0) * (P - 1) + (t - 1)];
            ItemScore& sc = scores[q.item];
            const std::int64_t n = static_cast<std::int64_t>(q.ids.size() - q.score_from);
            if (q.option < 0) {
                sc.nll = -ll;
                sc.tokens = n;
            } else {
                sc.option_ll[static_cast<std::size_t>(q.option)] = cfg.length_norm ? ll / static_cast<double>(n) : ll;
                sc.tokens = static_cast<std::int64_t>(q.score_from);
            }
        }
        if (cfg.progress) cfg.progress(shared.size() + b1, total);
    }
    if (set) set->set_spans({});
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].type == TaskType::kPerplexity) continue;
        auto& sc = scores[i];
        sc.chosen = static_cast<int>(std::max_element(sc.option_ll.begin(), sc.option_ll.end()) - sc.option_ll.begin());
        sc.correct = sc.chosen == items[i].answer;
    }
    return scores;
}

// --- statistics ---------------------------------------------------------------------------------

double task_metric(TaskType type, const std::vector<ItemScore>& s, const std::vector<std::size_t>& idx) {
    const std::size_t n = idx.empty() ? s.size() : idx.size();
    if (n == 0) return std::nan("");
    if (type == TaskType::kPerplexity) {
        double nll = 0, tok = 0;
        for (std::size_t k = 0; k < n; ++k) {
            const auto& x = s[idx.empty() ? k : idx[k]];
            nll += x.nll;
            tok += static_cast<double>(x.tokens);
        }
        return std::exp(nll / tok);
    }
    double c = 0;
    for (std::size_t k = 0; k < n; ++k) c += s[idx.empty() ? k : idx[k]].correct ? 1 : 0;
    return c / static_cast<double>(n);
}

namespace {
double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const double pos = q * static_cast<double>(v.size() - 1);
    const std::size_t i = static_cast<std::size_t>(pos);
    const double f = pos - static_cast<double>(i);
    return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}
std::vector<std::size_t> resample(std::size_t n, std::mt19937_64& rng) {
    std::uniform_int_distribution<std::size_t> u(0, n - 1);
    std::vector<std::size_t> idx(n);
    for (auto& i : idx) i = u(rng);
    return idx;
}
}  // namespace

Estimate bootstrap(TaskType type, const std::vector<ItemScore>& s, int resamples, std::uint64_t seed) {
    Estimate e;
    e.value = task_metric(type, s);
    if (resamples < 1 || s.empty()) {
        e.lo = e.hi = e.value;
        return e;
    }
    std::mt19937_64 rng(seed);
    std::vector<double> v;
    for (int r = 0; r < resamples; ++r) v.push_back(task_metric(type, s, resample(s.size(), rng)));
    e.lo = percentile(v, 0.025);
    e.hi = percentile(v, 0.975);
    return e;
}

Comparison compare(TaskType type, const std::vector<ItemScore>& base, const std::vector<ItemScore>& method,
                   int resamples, std::uint64_t seed) {
    if (base.size() != method.size()) throw std::logic_error("compare: different item counts");
    Comparison c;
    c.base.value = task_metric(type, base);
    c.method.value = task_metric(type, method);
    c.delta.value = c.method.value - c.base.value;
    const bool lower_better = type == TaskType::kPerplexity;
    std::mt19937_64 rng(seed);
    std::vector<double> vb, vm, vd;
    int not_better = 0;
    for (int r = 0; r < resamples; ++r) {
        const auto idx = resample(base.size(), rng);
        const double b = task_metric(type, base, idx), m = task_metric(type, method, idx);
        vb.push_back(b);
        vm.push_back(m);
        vd.push_back(m - b);
        if (lower_better ? !(m < b) : !(m > b)) ++not_better;
    }
    if (resamples > 0 && !base.empty()) {
        c.base.lo = percentile(vb, 0.025), c.base.hi = percentile(vb, 0.975);
        c.method.lo = percentile(vm, 0.025), c.method.hi = percentile(vm, 0.975);
        c.delta.lo = percentile(vd, 0.025), c.delta.hi = percentile(vd, 0.975);
        c.p_not_better = static_cast<double>(not_better) / resamples;
    } else {
        c.base.lo = c.base.hi = c.base.value;
        c.method.lo = c.method.hi = c.method.value;
        c.delta.lo = c.delta.hi = c.delta.value;
    }
    return c;
}

// --- head search --------------------------------------------------------------------------------

HeadSearchResult head_search(model::Model& m, const std::vector<TaskItem>& items, const HeadSearchOptions& o) {
    const auto t0 = std::chrono::steady_clock::now();
    if (items.empty()) throw ConfigError("head search: no items");
    const int L = m.config().n_layers, H = m.config().n_heads;
    std::vector<int> layers = o.layers, heads = o.heads;
    if (layers.empty())
        for (int l = (L >= 4 ? 2 : 0); l <= (L >= 4 ? L - 2 : L - 1); ++l) layers.push_back(l);
    if (heads.empty())
        for (int h = 0; h < H; ++h) heads.push_back(h);
    for (int l : layers)
        if (l < 0 || l >= L) throw ConfigError("head search: layer " + std::to_string(l) + " outside [0, " + std::to_string(L) + ")");
    for (int h : heads)
        if (h < 0 || h >= H) throw ConfigError("head search: head " + std::to_string(h) + " outside [0, " + std::to_string(H) + ")");
    for (const auto& [k, v] : o.method.params)
        if (k == "heads" || k == "heads_file" || k == "layers")
            throw ConfigError("head search: the method's " + k + "= is chosen by the search; leave it out");

    HeadSearchResult r;
    r.type = items.front().type;
    r.baseline = task_metric(r.type, score_items(m, items, nullptr, o.eval));
    const bool lower_better = r.type == TaskType::kPerplexity;
    const std::size_t total = layers.size() * heads.size();
    for (int l : layers) {
        for (int h : heads) {
            MethodSpec spec = o.method;
            spec.params.emplace_back("heads", std::to_string(l) + "." + std::to_string(h));
            InterventionSet set;
            set.add(make_intervention(spec, m));
            if (set.needs_calibration()) set.calibrate(m, item_sequences(m, items, 32));
            set.attach(m);
            HeadCandidate c;
            c.head = {l, h};
            c.metric = task_metric(r.type, score_items(m, items, &set, o.eval));
            c.gain = lower_better ? r.baseline - c.metric : c.metric - r.baseline;
            c.kept = c.gain > o.delta;
            if (c.kept) r.selected.push_back(c.head);
            r.candidates.push_back(c);
            if (o.progress) o.progress(r.candidates.size(), total, c.metric);
        }
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace attnscope::probes
