// GPU benchmarks of issue #8, our side (bench/gpu/README.md; results in bench/RESULTS.md).
// Every ratio is measured side by side in one process; timings are medians over repeats after
// a warm-up, bracketed by device synchronisation. Output: one JSON object per line on stdout.
//
//   bench_gpu forward DIR L...      G1: forward (full logits and last-token logits)
//   bench_gpu stats DIR L...        G2 + memory: plain SDPA forward vs forward + fused statistics
//                                   of every layer and head (and the split: lse-SDPA alone,
//                                   kernel alone on one layer's q / k)
//   bench_gpu longest DIR L...      G3: forward + statistics (last-token logits) until OOM
//   bench_gpu capture DIR L OUT.h5  G4 / G5: all attention maps to HDF5 via probes/capture, and
//                                   the pinned / pageable device-to-host copy bandwidth
#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/cuda/fused_stats.h"
#include "core/format/prompts.h"
#include "core/model/detail/torch_compat.h"
#include "core/model/model.h"
#include "probes/capture.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

void sync() { torch::cuda::synchronize(); }

double now_s() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// Median seconds of `reps` timed calls after `warm` untimed ones.
double time_median(const std::function<void()>& f, int warm, int reps) {
    for (int i = 0; i < warm; ++i) f();
    sync();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        const double t0 = now_s();
        f();
        sync();
        t.push_back(now_s() - t0);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

void reset_peak() {
    sync();
    c10::cuda::CUDACachingAllocator::emptyCache();
    c10::cuda::CUDACachingAllocator::resetPeakStats(0);
}
double peak_gib() {
    sync();
    return double(c10::cuda::CUDACachingAllocator::getDeviceStats(0).allocated_bytes[0].peak) /
           double(1ull << 30);
}

at::Tensor random_ids(std::int64_t n, std::int64_t vocab, std::uint64_t seed) {
    at::manual_seed(seed);
    return at::randint(0, vocab, {1, n}, at::TensorOptions().dtype(at::kLong)).to(at::kCUDA);
}

std::unique_ptr<model::Model> load(const std::string& dir) {
    return model::Model::load(dir, {"cuda", "bfloat16", false});
}

// Forward + fused statistics of every layer; the statistics stay on the GPU (as a caller that
// goes on to preplan_from_stats would keep them), kept until the next call.
struct StatsRun {
    std::vector<analysis::FusedStats> layers;
    bool kernel = true;  // false: lse-SDPA only (split of the cost)
    void install(model::Model& m) {
        layers.assign(m.config().n_layers, {});
        m.set_attention_tap([this](int l, const at::Tensor& q, const at::Tensor& k,
                                   const at::Tensor& lse, double scale) {
            if (kernel) layers[l] = analysis::fused_attention_stats(q, k, lse, scale, {});
        });
    }
};

void cmd_forward(const std::string& dir, const std::vector<std::int64_t>& lens) {
    auto m = load(dir);
    for (auto L : lens) {
        const at::Tensor ids = random_ids(L, m->config().vocab_size, 1);
        for (int keep : {0, 1}) {
            m->set_logits_to_keep(keep);
            const int reps = L >= 16384 ? 5 : 10;
            const double t = time_median([&] { (void)m->forward(ids); }, 2, reps);
            std::printf("{\"bench\":\"G1\",\"side\":\"attnscope\",\"L\":%lld,\"logits_to_keep\":%d,"
                        "\"median_s\":%.6f}\n", (long long)L, keep, t);
            std::fflush(stdout);
        }
    }
}

void cmd_stats(const std::string& dir, const std::vector<std::int64_t>& lens) {
    auto m = load(dir);
    const auto& c = m->config();
    StatsRun run;
    for (auto L : lens) {
        const at::Tensor ids = random_ids(L, c.vocab_size, 2);
        const int reps = L >= 16384 ? 3 : 7;
        m->set_attention_tap({});
        analysis::set_fused_stats_variant(0);  // first pass: variant 0; the faster one below
        reset_peak();
        const double t_plain = time_median([&] { (void)m->forward(ids); }, 1, reps);
        const double mem_plain = peak_gib();
        run.kernel = false;
        run.install(*m);
        const double t_lse_fwd = time_median([&] { (void)m->forward(ids); }, 1, reps);
        run.kernel = true;
        reset_peak();
        const double t_stats = time_median([&] { (void)m->forward(ids); }, 1, reps);
        const double mem_stats = peak_gib();
        m->set_attention_tap({});
        run.layers.clear();

        // One layer in isolation: flash-with-lse vs the statistics kernel on the same q / k.
        const auto bf = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
        at::Tensor q = at::randn({1, c.n_heads, L, c.d_head}, bf);
        at::Tensor k = at::randn({1, c.n_kv_heads, L, c.d_head}, bf);
        at::Tensor v = at::randn({1, c.n_kv_heads, L, c.d_head}, bf);
        const double scale = 1.0 / std::sqrt(double(c.d_head));
        at::Tensor lse;
        const double t_flash = time_median(
            [&] {
                auto r = at::_scaled_dot_product_flash_attention(q, k, v, 0.0, true, false, scale);
                lse = std::get<1>(r);
            },
            2, 10);
        const double t_sdpa = time_median(
            [&] {
                (void)at::scaled_dot_product_attention(q, k, v, {}, 0.0, true, scale, true);
            },
            2, 10);
        const double t_lse = time_median(
            [&] {
                at::Tensor l;
                (void)model::detail::sdpa_causal_lse(q, k, v, scale, l);
            },
            2, 10);
        double t_kv[2];
        analysis::set_fused_stats_variant(0);
        const analysis::FusedStats ref = analysis::fused_attention_stats(q, k, lse, scale, {});
        for (int var = 0; var < 2; ++var) {
            analysis::set_fused_stats_variant(var);
            const analysis::FusedStats got = analysis::fused_attention_stats(q, k, lse, scale, {});
            const double e1 = (got.entropy - ref.entropy).norm().item<double>() / ref.entropy.norm().item<double>();
            const double e2 = (got.column_sums - ref.column_sums).norm().item<double>() /
                              ref.column_sums.norm().item<double>();
            if (!(e1 < 1e-4 && e2 < 1e-4)) {  // a variant that disagrees never counts as fastest
                std::fprintf(stderr, "variant %d disagrees with variant 0: %g %g\n", var, e1, e2);
                t_kv[var] = 1e9;
                continue;
            }
            t_kv[var] = time_median(
                [&] { (void)analysis::fused_attention_stats(q, k, lse, scale, {}); }, 2, 10);
        }
        const int best = t_kv[1] < t_kv[0] ? 1 : 0;
        const double t_kernel = t_kv[best];
        // End-to-end again with the faster variant (the first pass used variant 0).
        double t_stats_best = t_stats;
        if (best != 0) {
            analysis::set_fused_stats_variant(best);
            run.kernel = true;
            run.install(*m);
            t_stats_best = time_median([&] { (void)m->forward(ids); }, 1, reps);
            m->set_attention_tap({});
            run.layers.clear();
        }
        analysis::set_fused_stats_variant(0);
        const double flops_qk = 2.0 * double(L) * double(L + 1) / 2.0 * c.d_head * c.n_heads;
        std::printf("{\"bench\":\"G2\",\"L\":%lld,\"plain_s\":%.6f,\"lse_sdpa_s\":%.6f,"
                    "\"stats_s\":%.6f,\"ratio\":%.4f,\"peak_plain_gib\":%.3f,"
                    "\"peak_stats_gib\":%.3f,\"mem_ratio\":%.4f,\"layer_flash_lse_ms\":%.4f,"
                    "\"layer_sdpa_ms\":%.4f,\"layer_sdpa_lse_ms\":%.4f,\"layer_kernel_ms\":%.4f,"
                    "\"kernel_v0_ms\":%.4f,\"kernel_v1_ms\":%.4f,\"best_variant\":%d,\"stats_best_s\":%.6f,"
                    "\"ratio_best\":%.4f,\"kernel_qk_tflops\":%.1f,"
                    "\"n_layers\":%d}\n",
                    (long long)L, t_plain, t_lse_fwd, t_stats, t_stats / t_plain, mem_plain, mem_stats,
                    mem_stats / mem_plain, t_flash * 1e3, t_sdpa * 1e3, t_lse * 1e3, t_kernel * 1e3,
                    t_kv[0] * 1e3, t_kv[1] * 1e3, best, t_stats_best, std::min(t_stats, t_stats_best) / t_plain,
                    flops_qk / t_kernel / 1e12, c.n_layers);
        std::fflush(stdout);
    }
}

void cmd_longest(const std::string& dir, const std::vector<std::int64_t>& lens) {
    auto m = load(dir);
    m->set_logits_to_keep(1);
    StatsRun run;
    run.install(*m);
    for (auto L : lens) {
        const at::Tensor ids = random_ids(L, m->config().vocab_size, 3);
        bool ok = true;
        double t = 0, mem = 0;
        std::string err;
        try {
            reset_peak();
            const double t0 = now_s();
            (void)m->forward(ids);
            sync();
            t = now_s() - t0;
            mem = peak_gib();
            // The statistics are complete: every row and column of every layer and head.
            double mass = 0;
            for (const auto& s : run.layers) mass += s.column_sums.sum().item<double>();
            ok = std::abs(mass / double(L * m->config().n_heads * m->config().n_layers) - 1.0) < 1e-2;
        } catch (const std::exception& e) {
            ok = false;
            err = e.what();
            err = err.substr(0, std::min<size_t>(err.find('\n'), 160));
            for (auto& ch : err)
                if (ch == '"' || ch == '\\') ch = '\'';
        }
        for (auto& s : run.layers) s = {};
        std::printf("{\"bench\":\"G3\",\"L\":%lld,\"ok\":%s,\"seconds\":%.3f,\"peak_gib\":%.3f,"
                    "\"error\":\"%s\"}\n", (long long)L, ok ? "true" : "false", t, mem, err.c_str());
        std::fflush(stdout);
        if (!ok) break;
    }
}

void cmd_capture(const std::string& dir, std::int64_t L, const std::string& out,
                 const std::string& text_file) {
    // PCIe device-to-host bandwidth: 4 GiB, pinned and pageable destinations.
    {
        const std::int64_t n = std::int64_t(1) << 31;  // bf16 elements = 4 GiB
        at::Tensor src = at::randn({n}, at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16));
        at::Tensor pinned = at::empty({n}, at::TensorOptions().dtype(at::kBFloat16).pinned_memory(true));
        at::Tensor pageable = at::empty({n}, at::TensorOptions().dtype(at::kBFloat16));
        pageable.fill_(0);
        const double gb = double(n) * 2 / 1e9;
        const double tp = time_median([&] { pinned.copy_(src); }, 1, 5);
        const double tq = time_median([&] { pageable.copy_(src); }, 1, 3);
        std::printf("{\"bench\":\"G5-pcie\",\"bytes\":%lld,\"pinned_GBps\":%.2f,\"pageable_GBps\":%.2f}\n",
                    (long long)(n * 2), gb / tp, gb / tq);
        std::fflush(stdout);
    }
    model::LoadOptions lo{"cuda", "bfloat16", true};
    auto m = model::Model::load(dir, lo);
    std::ifstream in(text_file);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str(), big;
    while (big.size() < std::size_t(L) * 8) big += text + "\n";
    // Stage costs (what bounds G4 / G5): the materialised forward alone, then + float16 maps
    // copied to one pinned host buffer per layer (device-to-host at full speed).
    {
        const auto& c = m->config();
        const at::Tensor ids = random_ids(L, c.vocab_size, 4);
        m->set_logits_to_keep(1);
        double t_mat = 0, t_d2h = 0;
        {
            auto h = m->hooks().add_observer("blocks.*.attn.hook_pattern",
                                             [](const HookName&, const at::Tensor&) {});
            t_mat = time_median([&] { (void)m->forward(ids); }, 1, 3);
        }
        {
            std::vector<at::Tensor> host;
            for (int l = 0; l < c.n_layers; ++l)
                host.push_back(at::empty({c.n_heads, L, L},
                                         at::TensorOptions().dtype(at::kHalf).pinned_memory(true)));
            auto h = m->hooks().add_observer(
                "blocks.*.attn.hook_pattern", [&](const HookName& n, const at::Tensor& x) {
                    host[n.layer].copy_(x.select(0, 0).to(at::kHalf), /*non_blocking=*/true);
                });
            t_d2h = time_median([&] { (void)m->forward(ids); }, 1, 3);
        }
        m->set_logits_to_keep(0);
        const double bytes = double(c.n_layers) * c.n_heads * double(L) * double(L) * 2;
        std::printf("{\"bench\":\"G4-stages\",\"L\":%lld,\"forward_materialised_s\":%.3f,"
                    "\"forward_plus_pinned_d2h_s\":%.3f,\"map_bytes\":%.0f,\"d2h_GBps\":%.2f,"
                    "\"end_to_end_GBps\":%.2f}\n",
                    (long long)L, t_mat, t_d2h, bytes, bytes / std::max(1e-9, t_d2h - t_mat) / 1e9,
                    bytes / t_d2h / 1e9);
        std::fflush(stdout);
    }
    format::PromptInput p;
    p.id = 0;
    p.text = big;
    p.source = text_file;
    probes::CaptureOptions o;
    o.max_tokens = int(L);
    o.force = true;
    for (int rep = 0; rep < 1; ++rep) {
        fs::remove(out);
        sync();
        const double t0 = now_s();
        const probes::CaptureReport r = probes::capture(*m, {p}, out, o);
        const double t = now_s() - t0;
        std::printf("{\"bench\":\"G4\",\"side\":\"attnscope\",\"rep\":%d,\"L\":%lld,\"seconds\":%.3f,"
                    "\"map_bytes\":%lld,\"file_bytes\":%lld,\"map_GBps\":%.2f}\n",
                    rep, (long long)L, t, (long long)r.map_bytes, (long long)fs::file_size(out),
                    double(r.map_bytes) / t / 1e9);
        std::fflush(stdout);
    }
}

std::vector<std::int64_t> lens_of(int argc, char** argv, int from) {
    std::vector<std::int64_t> v;
    for (int i = from; i < argc; ++i) v.push_back(std::stoll(argv[i]));
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || !at::hasCUDA()) {
        std::cerr << "usage: bench_gpu forward|stats|longest DIR L... | capture DIR L OUT.h5 TEXT "
                     "(needs CUDA)\n";
        return 2;
    }
    const std::string cmd = argv[1], dir = argv[2];
    try {
        if (cmd == "forward") cmd_forward(dir, lens_of(argc, argv, 3));
        else if (cmd == "stats") cmd_stats(dir, lens_of(argc, argv, 3));
        else if (cmd == "longest") cmd_longest(dir, lens_of(argc, argv, 3));
        else if (cmd == "capture" && argc >= 6) cmd_capture(dir, std::stoll(argv[3]), argv[4], argv[5]);
        else {
            std::cerr << "unknown command " << cmd << "\n";
            return 2;
        }
    } catch (const std::exception& e) {
        std::cerr << "bench_gpu: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
