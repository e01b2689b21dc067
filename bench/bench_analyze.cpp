// Benchmark (issue #5): `attnscope analyze`'s live path (all metrics but massive, every layer
// and head, streamed from the model's chunked attention) at L = 512, 2048, 8192 on the Llama
// sample, against a plain forward (fused/SDPA-style attention, no hooks) in the same run.
// Each (mode, L) runs in a child process so its peak RSS (getrusage ru_maxrss) is its own.
// tinydeb-llama uses RoPE and was trained at up to 1,024 positions; longer inputs only measure
// cost (random token ids, fixed seed).
// Usage: bench_analyze [MODEL_DIR] [L...]        (child: bench_analyze --child MODE L MODEL_DIR)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "core/model/model.h"
#include "probes/analyze.h"

using namespace attnscope;

namespace {
double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int child(const std::string& mode, std::int64_t L, const std::string& dir) {
    at::set_num_threads(1);
    auto m = model::Model::load(dir, {"cpu", "float32", true});
    at::manual_seed(0);
    const at::Tensor ids = at::randint(1, m->config().vocab_size, {1, L}, at::kLong);
    std::vector<std::int32_t> tok(L);
    for (std::int64_t i = 0; i < L; ++i) tok[i] = static_cast<std::int32_t>(ids[0][i].item<std::int64_t>());
    c10::InferenceMode guard;
    double best = 1e30;
    for (int rep = 0; rep < (L >= 4096 ? 1 : 2); ++rep) {
        const double t0 = now();
        if (mode == "plain") {
            m->forward(ids);
        } else {
            probes::AnalyzeOptions o;  // all metrics; massive needs resid hooks: left out here
            o.metrics = {probes::AnalyzeMetric::kSink, probes::AnalyzeMetric::kEntropy,
                         probes::AnalyzeMetric::kDistance, probes::AnalyzeMetric::kWaad,
                         probes::AnalyzeMetric::kFai, probes::AnalyzeMetric::kRoles};
            probes::Analyzer a(m->config().n_layers, m->config().n_heads, o, true);
            a.begin_prompt(0, "bench", "bench", tok, std::vector<std::string>(L, "x"));
            std::vector<model::HookHandle> hs;
            for (auto l : a.pattern_layers())
                hs.push_back(m->hooks().add_chunk_observer(
                    HookName{static_cast<int>(l), Site::kPattern},
                    [&a](const HookName& h, const at::Tensor& x, std::int64_t q0) { a.add_pattern_chunk(h.layer, x[0], q0); }));
            m->forward(ids);
            hs.clear();
            a.end_prompt();
        }
        best = std::min(best, now() - t0);
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::cout << best << " " << ru.ru_maxrss / 1024.0 << "\n";
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc >= 5 && std::string(argv[1]) == "--child") return child(argv[2], std::atoll(argv[3]), argv[4]);
    const std::string dir = argc > 1 ? argv[1] : std::string(ATTNSCOPE_SOURCE_DIR) + "/samples/models/tinydeb-llama";
    std::vector<std::int64_t> Ls = {512, 2048, 8192};
    if (argc > 2) {
        Ls.clear();
        for (int i = 2; i < argc; ++i) Ls.push_back(std::atoll(argv[i]));
    }
    std::cout << "bench_analyze: " << dir << ", CPU, 1 intra-op thread, float32, best of 2 (1 at L >= 4096)\n"
              << "L      plain_s   analyze_s  ratio   plain_peak_MiB  analyze_peak_MiB\n";
    for (auto L : Ls) {
        double res[2][2];
        int k = 0;
        for (const char* mode : {"plain", "analyze"}) {
            const std::string cmd = std::string(argv[0]) + " --child " + mode + " " + std::to_string(L) + " '" + dir + "'";
            FILE* f = popen(cmd.c_str(), "r");
            if (!f || std::fscanf(f, "%lf %lf", &res[k][0], &res[k][1]) != 2) {
                std::cerr << "child failed: " << cmd << "\n";
                return 1;
            }
            pclose(f);
            ++k;
        }
        std::printf("%-6lld %-9.3f %-10.3f %-7.2f %-15.0f %.0f\n", static_cast<long long>(L), res[0][0],
                    res[1][0], res[1][0] / res[0][0], res[0][1], res[1][1]);
        std::fflush(stdout);
    }
    return 0;
}
