// attnscope capture: per-head attention (and any hook) of a prompt set into an HDF5 store.
#include <nlohmann/json.hpp>

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include <unistd.h>

#include "cli/common.h"
#include "core/format/prompts.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"
#include "probes/capture.h"

namespace attnscope::cli {

int cmd_capture(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description desc("attnscope capture options");
    desc.add_options()("help,h", "show this help")
        ("prompt,p", po::value<std::string>(), "one prompt")
        ("prompts", po::value<std::string>(), "prompts file: .txt (one per line) or .jsonl ({\"id\",\"text\"})")
        ("out,o", po::value<std::string>()->required(), "output HDF5 file (created, or a run is added)")
        ("run", po::value<std::string>()->default_value("main"), "run name inside the file")
        ("layers", po::value<std::string>(), "layers, e.g. 0,2,5-9 (default all)")
        ("heads", po::value<std::string>(), "heads of attention maps, e.g. 0-3 (default all)")
        ("hooks", po::value<std::vector<std::string>>()->multitoken(),
         "hook names or globs (default blocks.*.attn.hook_pattern)")
        ("map-dtype", po::value<std::string>()->default_value("f16"), "stored maps: f16 | f32")
        ("max-tokens", po::value<int>()->default_value(0), "truncate prompts to N tokens (0 = off)")
        ("batch", po::value<int>()->default_value(1), "prompts per forward")
        ("generate", po::value<int>()->default_value(0), "also capture N greedy decoding steps")
        ("force", "replace an existing run of the same name")
        ("compress", "shuffle + deflate(1) the stored arrays")
        ("max-bytes", po::value<std::int64_t>()->default_value(0),
         "refuse when the estimated output exceeds N bytes (0 = only free disk/memory checks)")
        ("quiet,q", "no progress on stderr")
        ("json", "print a JSON report")
        ("baseline-run", po::value<std::string>(),
         "with --method: first capture the same prompts without interventions as this run");
    add_method_options(desc);
    add_model_options(desc);
    po::variables_map vm;
    const std::string usage =
        "attnscope capture [--model DIR] (--prompt TEXT | --prompts FILE) --out FILE.h5 [options]";
    if (!parse(args, desc, vm, usage, out)) return kExitOk;
    if (vm.count("prompt") == vm.count("prompts"))
        throw UsageError("give exactly one of --prompt and --prompts\nusage: " + usage);
    const std::string map_dtype = vm["map-dtype"].as<std::string>();
    if (map_dtype != "f16" && map_dtype != "f32")
        throw UsageError("--map-dtype must be f16 or f32, not '" + map_dtype + "'");

    std::vector<format::PromptInput> prompts;
    if (vm.count("prompts")) {
        prompts = format::read_prompts(vm["prompts"].as<std::string>());
    } else {
        prompts.push_back({0, vm["prompt"].as<std::string>(), "--prompt"});
    }
    probes::CaptureOptions o;
    o.run = vm["run"].as<std::string>();
    if (vm.count("hooks")) o.hooks = vm["hooks"].as<std::vector<std::string>>();
    if (vm.count("layers")) o.layers = probes::parse_index_list(vm["layers"].as<std::string>(), "--layers");
    if (vm.count("heads")) o.heads = probes::parse_index_list(vm["heads"].as<std::string>(), "--heads");
    o.map_f32 = map_dtype == "f32";
    o.max_tokens = vm["max-tokens"].as<int>();
    o.batch = vm["batch"].as<int>();
    o.generate = vm["generate"].as<int>();
    o.force = vm.count("force") > 0;
    o.compress = vm.count("compress") > 0;
    o.argv = {"attnscope", "capture"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.version = ATTNSCOPE_VERSION;
    o.max_bytes = vm["max-bytes"].as<std::int64_t>();

    const ModelArgs ma = model_args(vm);
    auto m = model::Model::load(ma.dir, {ma.device, ma.dtype});
    // Progress only when stderr is a terminal (logs and pipes stay clean).
    const bool quiet = vm.count("quiet") > 0 || vm.count("json") > 0 || !::isatty(2);
    const auto t0 = std::chrono::steady_clock::now();
    auto set = method_set(vm, *m, [&] {
        std::vector<std::vector<std::int32_t>> seqs;
        const auto& tok = m->require_tokenizer();
        for (std::size_t i = 0; i < prompts.size() && i < 32; ++i) {
            auto ids = tok.encode(prompts[i].text);
            if (static_cast<std::int64_t>(ids.size()) > m->context_length()) ids.resize(static_cast<std::size_t>(m->context_length()));
            seqs.push_back(std::move(ids));
        }
        return seqs;
    });
    if (vm.count("baseline-run")) {
        if (set.empty()) throw UsageError("--baseline-run needs --method (or --act-heads)");
        probes::CaptureOptions b = o;
        b.run = vm["baseline-run"].as<std::string>();
        if (b.run == o.run) throw UsageError("--baseline-run must differ from --run");
        const auto rb = probes::capture(*m, prompts, vm["out"].as<std::string>(), b);
        if (!quiet) std::cerr << "baseline run '" << b.run << "': " << rb.prompts << " prompts\n";
    }
    if (!set.empty()) {
        if (set.guidance() > 0)
            throw UsageError("capture records one forward per prompt; SoftPAG guidance (s > 0) applies to "
                             "generate and eval only (use s=0 to capture the perturbed maps)");
        o.intervention_json = set.to_json();
        set.attach(*m);
    }
    const auto report = probes::capture(
        *m, prompts, vm["out"].as<std::string>(), o,
        [&](std::int64_t done, std::int64_t total, std::int64_t tokens) {
            if (quiet) return;
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double eta = done > 0 ? s / done * (total - done) : 0;
            std::fprintf(stderr, "\rprompt %lld/%lld  %.0f tokens/s  ETA %.0f s   ",
                         static_cast<long long>(done), static_cast<long long>(total),
                         s > 0 ? tokens / s : 0.0, eta);
            std::fflush(stderr);
        });
    if (!quiet) std::cerr << "\n";
    nlohmann::ordered_json j;
    j["out"] = vm["out"].as<std::string>();
    j["run"] = o.run;
    j["prompts"] = report.prompts;
    j["tokens"] = report.tokens;
    j["hooks"] = report.hooks;
    j["map_bytes"] = report.map_bytes;
    j["estimated_bytes"] = report.estimated_bytes;
    j["seconds"] = report.seconds;
    if (!set.empty()) {
        j["interventions"] = nlohmann::ordered_json::parse(set.to_json());
        j["stats"] = nlohmann::ordered_json::parse(set.stats_json());
    }
    if (vm.count("json")) {
        out << j.dump(2) << "\n";
    } else {
        out << "wrote run '" << o.run << "' to " << j["out"].get<std::string>() << ": "
            << report.prompts << " prompts, " << report.tokens << " tokens, " << report.hooks.size()
            << " hook points, " << report.map_bytes / 1024 << " KiB of maps in " << report.seconds
            << " s\n";
    }
    return kExitOk;
}

}  // namespace attnscope::cli
