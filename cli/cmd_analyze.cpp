// attnscope analyze: attention metrics (sinks, entropy, distance, WAAD/FAI roles, massive
// activations) of prompts run live through a model, or of the maps stored in a capture file.
// Option parsing only; the work is probes::run_analyze (probes/analyze.h, docs/analyze.md).
#include <iostream>

#include "cli/common.h"
#include "core/base/error.h"
#include "probes/analyze.h"
#include "probes/capture.h"

namespace attnscope::cli {

int cmd_analyze(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description desc("attnscope analyze options");
    desc.add_options()("help,h", "show this help")
        ("prompt,p", po::value<std::vector<std::string>>(), "prompt text (repeatable)")
        ("prompts", po::value<std::string>(), "prompts file: .txt (one per line) or .jsonl")
        ("in", po::value<std::string>(), "capture file (HDF5) to analyze instead of a live run")
        ("run", po::value<std::string>(),
         "with --in: the run to read (default: the file's only run); without --in: the run "
         "name written to --out")
        ("out-run", po::value<std::string>(), "run name written to --out (default: --run, else analysis)")
        ("metrics", po::value<std::string>()->default_value("all"),
         "comma list of sink, entropy, distance, waad, fai, roles, massive (massive: live only)")
        ("layers", po::value<std::string>(), "analysed layers, e.g. 0,2,5-7 (default: all)")
        ("window", po::value<std::int64_t>()->default_value(10), "WAAD clip window W (tokens)")
        ("horizon", po::value<std::string>()->default_value("analysis"),
         "FAI horizon: analysis (1,inf) | rl (10,100) | lo,hi")
        ("epsilon", po::value<double>()->default_value(0.3, "0.3"),
         "sink threshold: head has a sink if alpha_0 > eps")
        ("sink-T", po::value<std::int64_t>()->default_value(0),
         "sink protocol length T: 0 = whole prompt, else the first T tokens (Gu et al.: 64)")
        ("massive-abs", po::value<double>()->default_value(100.0),
         "massive activation: |x| must exceed this")
        ("massive-factor", po::value<double>()->default_value(1000.0),
         "massive activation: |x| >= factor x the token's median |x|")
        ("rows-from", po::value<std::int64_t>()->default_value(1),
         "first query row of interest for per-head means and WAAD/FAI (1 skips BOS)")
        ("response", "with --in: rows of interest = the generated tokens of each prompt")
        ("no-special", "live: do not add BOS to the prompts")
        ("out,o", po::value<std::string>(), "write the metrics as a run of this HDF5 file")
        ("force", "replace an existing run of the same name in --out")
        ("csv", po::value<std::string>(), "write one row per (prompt, layer, head) to this CSV file (- = stdout)")
        ("json", "print one JSON object (per-prompt summaries and dataset aggregates)");
    add_model_options(desc);
    po::variables_map vm;
    const std::string usage =
        "attnscope analyze [--model DIR] (--prompt TEXT | --prompts FILE | --in FILE.h5 [--run NAME]) "
        "[--metrics LIST] [--window W] [--epsilon E] [--sink-T T] [--horizon lo,hi|analysis|rl] "
        "[--layers LIST] [--out FILE.h5] [--csv FILE] [--json]";
    if (!parse(args, desc, vm, usage, out)) return kExitOk;

    probes::AnalyzeRequest rq;
    const int n_sources = (vm.count("prompt") ? 1 : 0) + (vm.count("prompts") ? 1 : 0) + (vm.count("in") ? 1 : 0);
    if (n_sources == 0) throw UsageError("give one input: --prompt TEXT, --prompts FILE or --in FILE.h5");
    if (n_sources > 1) throw UsageError("--prompt, --prompts and --in are exclusive; give one of them");
    if (vm.count("in") && vm.count("model"))
        throw UsageError("--model is not used with --in (the capture file names its model)");
    if (!vm.count("in") && vm.count("response"))
        throw UsageError("--response needs --in (a live run has no generated tokens)");
    if (vm.count("in") && vm.count("no-special"))
        throw UsageError("--no-special only applies to live runs (--prompt / --prompts)");

    try {
        auto& o = rq.options;
        o.metrics = probes::parse_metrics(vm["metrics"].as<std::string>());
        if (vm["metrics"].as<std::string>() == "all") o.metrics.clear();  // all the source supports
        if (vm.count("layers")) o.layers = probes::parse_index_list(vm["layers"].as<std::string>(), "--layers");
        o.window = vm["window"].as<std::int64_t>();
        o.horizon = probes::parse_horizon(vm["horizon"].as<std::string>());
        o.epsilon = vm["epsilon"].as<double>();
        o.sink_T = vm["sink-T"].as<std::int64_t>();
        o.add_special_tokens = !vm.count("no-special");
        o.massive.abs_threshold = vm["massive-abs"].as<double>();
        o.massive.factor = vm["massive-factor"].as<double>();
        o.rows_begin = vm["rows-from"].as<std::int64_t>();
        o.response_only = vm.count("response") > 0;
        if (o.rows_begin < 0) throw ConfigError("--rows-from must be >= 0");
        if (o.window < 1) throw ConfigError("--window must be >= 1");
        if (o.sink_T < 0) throw ConfigError("--sink-T must be >= 0 (0 = whole prompt)");
    } catch (const ConfigError& e) {
        throw UsageError(e.what());
    }

    if (vm.count("in")) {
        rq.in_file = vm["in"].as<std::string>();
        if (vm.count("run")) rq.in_run = vm["run"].as<std::string>();
    } else {
        const ModelArgs ma = model_args(vm);
        rq.model_dir = ma.dir;
        rq.device = ma.device;
        rq.dtype = ma.dtype;
        if (vm.count("prompt")) rq.prompts = vm["prompt"].as<std::vector<std::string>>();
        if (vm.count("prompts")) rq.prompts_file = vm["prompts"].as<std::string>();
    }
    if (vm.count("out")) rq.out_file = vm["out"].as<std::string>();
    rq.out_run = vm.count("out-run") ? vm["out-run"].as<std::string>()
                 : vm.count("run")   ? vm["run"].as<std::string>()
                                     : std::string("analysis");
    rq.force = vm.count("force") > 0;
    if (vm.count("csv")) rq.csv_file = vm["csv"].as<std::string>();
    rq.json = vm.count("json") > 0;
    rq.argv = {"attnscope", "analyze"};
    rq.argv.insert(rq.argv.end(), args.begin(), args.end());
    rq.version = ATTNSCOPE_VERSION;

    const auto rep = probes::run_analyze(rq, out, &std::cerr);
    if (!rq.out_file.empty() || (!rq.csv_file.empty() && rq.csv_file != "-")) {
        std::cerr << "[" << rep.prompts << " prompts, " << rep.tokens << " tokens in " << rep.seconds << " s";
        if (!rq.out_file.empty()) std::cerr << "; run '" << rq.out_run << "' in " << rq.out_file.string();
        if (!rq.csv_file.empty() && rq.csv_file != "-") std::cerr << "; CSV " << rq.csv_file.string();
        std::cerr << "]\n";
    }
    return kExitOk;
}

}  // namespace attnscope::cli
