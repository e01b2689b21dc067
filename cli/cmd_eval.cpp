// attnscope eval: a task file scored without and with interventions, with bootstrap intervals.
// attnscope head-search: ACT's offline head selection (spec §2.4) for any head-list method.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <unistd.h>

#include "cli/common.h"
#include "core/model/model.h"
#include "probes/capture.h"
#include "probes/eval.h"

namespace attnscope::cli {

namespace {

using json = nlohmann::ordered_json;

void add_task_options(po::options_description& desc, const char* split_default, int limit_default) {
    desc.add_options()
        ("task,t", po::value<std::string>()->required(), "task file (.jsonl: multiple choice, classification or perplexity)")
        ("split", po::value<std::string>()->default_value(split_default), "items of this split (all = every item)")
        ("limit", po::value<std::size_t>()->default_value(static_cast<std::size_t>(limit_default)),
         "use N items of a seeded shuffle (0 = all, in file order)")
        ("seed", po::value<std::uint64_t>()->default_value(0), "seed of --limit sampling and of the bootstrap")
        ("batch", po::value<int>()->default_value(16), "sequences per forward")
        ("length-norm", "mc/cls: compare mean per-token log-likelihood instead of the sum")
        ("full-sequences", "mc/cls: run context + option as one sequence per option (default: the context once, "
                           "options as a continuation on its KV cache)")
        ("quiet,q", "no progress on stderr")
        ("json", "print one JSON object");
}

std::string metric_name(probes::TaskType t) { return t == probes::TaskType::kPerplexity ? "perplexity" : "accuracy"; }

json estimate_json(const probes::Estimate& e) { return {{"value", e.value}, {"ci95", {e.lo, e.hi}}}; }

json model_json(const model::Model& m) {
    const auto& c = m.config();
    return {{"dir", m.dir().string()}, {"arch", c.model_type}, {"n_layers", c.n_layers}, {"n_heads", c.n_heads}};
}

std::string fmt(double v, bool sign = false) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(4) << (sign && v >= 0 ? "+" : "") << v;
    return o.str();
}

struct Progress {
    bool on;
    std::string what;
    void operator()(std::size_t done, std::size_t total) const {
        if (!on) return;
        std::fprintf(stderr, "\r%s %zu/%zu   ", what.c_str(), done, total);
        if (done == total) std::fprintf(stderr, "\n");
        std::fflush(stderr);
    }
};

}  // namespace

int cmd_eval(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description desc("attnscope eval options");
    desc.add_options()("help,h", "show this help")("help-methods", "list the methods and their parameters");
    add_task_options(desc, "test", 0);
    desc.add_options()
        ("bootstrap", po::value<int>()->default_value(1000), "bootstrap resamples for the 95% intervals (0 = none)")
        ("items", "with --json/--out: include per-item results")
        ("out,o", po::value<std::string>(), "also write the JSON report to this file");
    add_method_options(desc);
    add_model_options(desc);
    const std::string usage =
        "attnscope eval [--model DIR] --task FILE.jsonl [--split test] [--method NAME[:k=v,...]] [--param k=v ...] [--json]";
    if (std::find(args.begin(), args.end(), "--help-methods") != args.end()) {
        out << probes::method_help();
        return kExitOk;
    }
    po::variables_map vm;
    if (!parse(args, desc, vm, usage, out)) return kExitOk;
    const bool as_json = vm.count("json") > 0;
    const bool quiet = vm.count("quiet") > 0 || as_json || !::isatty(2);
    const std::uint64_t seed = vm["seed"].as<std::uint64_t>();
    const int B = vm["bootstrap"].as<int>();
    if (B < 0) throw UsageError("--bootstrap must be >= 0");

    const auto task = probes::load_task(vm["task"].as<std::string>());
    const auto items = probes::select_items(task, vm["split"].as<std::string>(), vm["limit"].as<std::size_t>(), seed);
    const ModelArgs ma = model_args(vm);
    auto m = model::Model::load(ma.dir, {ma.device, ma.dtype});
    auto set = method_set(vm, *m, [&] { return probes::item_sequences(*m, items, 32); });

    probes::EvalConfig cfg;
    cfg.batch = vm["batch"].as<int>();
    cfg.length_norm = vm.count("length-norm") > 0;
    cfg.share_context = !vm.count("full-sequences");
    const auto t0 = std::chrono::steady_clock::now();
    cfg.progress = Progress{!quiet, "baseline"};
    const auto base = probes::score_items(*m, items, nullptr, cfg);
    std::vector<probes::ItemScore> with;
    if (!set.empty()) {
        set.attach(*m);
        cfg.progress = Progress{!quiet, set.describe()};
        with = probes::score_items(*m, items, &set, cfg);
        set.detach();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    int truncated = 0;
    for (const auto& s : base) truncated += s.truncated ? 1 : 0;
    json j;
    j["task"] = task.path.string();
    j["type"] = probes::to_string(task.type);
    j["split"] = vm["split"].as<std::string>();
    j["items"] = items.size();
    j["truncated_items"] = truncated;
    j["metric"] = metric_name(task.type);
    j["model"] = model_json(*m);
    j["bootstrap"] = {{"resamples", B}, {"seed", seed}};
    j["scoring"] = cfg.share_context ? "shared-context" : "full-sequences";
    if (set.empty()) {
        j["baseline"] = estimate_json(probes::bootstrap(task.type, base, B, seed));
    } else {
        const auto c = probes::compare(task.type, base, with, B, seed);
        j["interventions"] = json::parse(set.to_json());
        j["baseline"] = estimate_json(c.base);
        j["method"] = estimate_json(c.method);
        j["difference"] = estimate_json(c.delta);
        j["p_not_better"] = c.p_not_better;
        j["stats"] = json::parse(set.stats_json());
    }
    j["seconds"] = secs;
    if (vm.count("items")) {
        json a = json::array();
        for (std::size_t i = 0; i < items.size(); ++i) {
            json e{{"id", items[i].id}};
            if (task.type == probes::TaskType::kPerplexity) {
                e["nll"] = base[i].nll;
                e["tokens"] = base[i].tokens;
                if (!with.empty()) e["nll_method"] = with[i].nll;
            } else {
                e["answer"] = items[i].answer;
                e["chosen"] = base[i].chosen;
                e["option_ll"] = base[i].option_ll;
                if (!with.empty()) {
                    e["chosen_method"] = with[i].chosen;
                    e["option_ll_method"] = with[i].option_ll;
                }
            }
            a.push_back(e);
        }
        j["per_item"] = a;
    }
    if (vm.count("out")) write_file_atomic(vm["out"].as<std::string>(), j.dump(2) + "\n");
    if (as_json) {
        out << j.dump(2) << "\n";
        return kExitOk;
    }
    const std::string metric = metric_name(task.type);
    out << "task " << task.path.string() << "  split " << j["split"].get<std::string>() << "  items " << items.size()
        << "  " << metric << (task.type == probes::TaskType::kPerplexity ? " (lower is better)" : "") << "\n";
    if (truncated) out << "(" << truncated << " items had their context cut from the left to fit the model)\n";
    auto row = [&](const std::string& name, const json& e, bool sign = false) {
        out << "  " << std::left << std::setw(12) << name << std::right << std::setw(9)
            << fmt(e["value"].get<double>(), sign) << "   [" << fmt(e["ci95"][0].get<double>(), sign) << ", "
            << fmt(e["ci95"][1].get<double>(), sign) << "]\n";
    };
    out << "  " << std::left << std::setw(12) << "" << std::right << std::setw(9) << metric.substr(0, 8) << "   95% CI ("
        << B << " bootstrap resamples)\n";
    row("baseline", j["baseline"]);
    if (!set.empty()) {
        row("with", j["method"]);
        row("difference", j["difference"], true);
        out << "  methods: " << set.describe() << "\n";
        out << "  share of resamples where the method is not better: " << fmt(j["p_not_better"].get<double>()) << "\n";
    }
    out << "  " << fmt(secs) << " s\n";
    return kExitOk;
}

int cmd_head_search(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description desc("attnscope head-search options");
    desc.add_options()("help,h", "show this help");
    add_task_options(desc, "dev", 300);
    desc.add_options()
        ("method", po::value<std::string>()->default_value("act"), "method applied to one candidate head at a time, NAME[:k=v,...]")
        ("param", po::value<std::vector<std::string>>()->composing(), "method parameter k=v (repeatable)")
        ("layers", po::value<std::string>(), "candidate layers, e.g. 2-6 (default 2 .. L-2)")
        ("heads", po::value<std::string>(), "candidate heads, e.g. 0-7 (default all)")
        ("delta", po::value<double>()->default_value(0.0), "keep heads whose gain exceeds this")
        ("out,o", po::value<std::string>()->required(), "head list (JSON) for --act-heads / heads_file=");
    add_model_options(desc);
    const std::string usage =
        "attnscope head-search [--model DIR] --task FILE.jsonl [--split dev] [--limit 300] [--method act[:k=v,...]] --out heads.json";
    po::variables_map vm;
    if (!parse(args, desc, vm, usage, out)) return kExitOk;
    const bool quiet = vm.count("quiet") > 0 || vm.count("json") > 0 || !::isatty(2);
    const std::uint64_t seed = vm["seed"].as<std::uint64_t>();
    const auto task = probes::load_task(vm["task"].as<std::string>());
    const auto items = probes::select_items(task, vm["split"].as<std::string>(), vm["limit"].as<std::size_t>(), seed);
    const ModelArgs ma = model_args(vm);
    auto m = model::Model::load(ma.dir, {ma.device, ma.dtype});

    probes::HeadSearchOptions o;
    o.method = probes::parse_method_spec(vm["method"].as<std::string>());
    if (vm.count("param"))
        for (const auto& kv : vm["param"].as<std::vector<std::string>>()) {
            const auto eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) throw UsageError("--param '" + kv + "' is not key=value");
            o.method.params.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        }
    if (vm.count("layers")) o.layers = probes::parse_index_list(vm["layers"].as<std::string>(), "--layers");
    if (vm.count("heads")) o.heads = probes::parse_index_list(vm["heads"].as<std::string>(), "--heads");
    o.delta = vm["delta"].as<double>();
    o.eval.batch = vm["batch"].as<int>();
    o.eval.length_norm = vm.count("length-norm") > 0;
    o.eval.share_context = !vm.count("full-sequences");
    // Validate the method once before the long loop (unknown parameters, ranges).
    {
        auto probe = o.method;
        probe.params.emplace_back("heads", "0.0");
        probes::make_intervention(probe, *m);
    }
    o.progress = [&](std::size_t done, std::size_t total, double metric) {
        if (quiet) return;
        std::fprintf(stderr, "\rcandidate %zu/%zu  last %s %.4f   ", done, total, metric_name(task.type).c_str(), metric);
        if (done == total) std::fprintf(stderr, "\n");
        std::fflush(stderr);
    };
    const auto r = probes::head_search(*m, items, o);

    json j;
    j["attnscope_heads"] = 1;
    j["method"] = o.method.name;
    json params = json::object();
    for (const auto& [k, v] : o.method.params) params[k] = v;
    j["params"] = params;
    json heads = json::array();
    for (const auto& h : r.selected) heads.push_back({h.layer, h.head});
    j["heads"] = heads;
    j["model"] = model_json(*m);
    j["task"] = task.path.string();
    j["split"] = vm["split"].as<std::string>();
    j["items"] = items.size();
    j["seed"] = seed;
    j["metric"] = metric_name(task.type);
    j["baseline"] = r.baseline;
    j["delta"] = o.delta;
    json cands = json::array();
    for (const auto& c : r.candidates)
        cands.push_back({{"layer", c.head.layer}, {"head", c.head.head}, {"metric", c.metric}, {"gain", c.gain}, {"kept", c.kept}});
    j["candidates"] = cands;
    j["seconds"] = r.seconds;
    write_file_atomic(vm["out"].as<std::string>(), j.dump(2) + "\n");
    if (vm.count("json")) {
        out << j.dump(2) << "\n";
    } else {
        out << "head search: " << o.method.name << " on " << r.candidates.size() << " candidate heads, " << items.size()
            << " " << j["split"].get<std::string>() << " items; baseline " << metric_name(task.type) << " "
            << fmt(r.baseline) << "\n";
        out << "kept " << r.selected.size() << " heads (gain > " << o.delta << "): " << probes::format_heads(r.selected)
            << "\nwrote " << vm["out"].as<std::string>() << " (" << fmt(r.seconds) << " s)\n";
    }
    return kExitOk;
}

}  // namespace attnscope::cli
