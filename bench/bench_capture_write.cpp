// Benchmark (issue #4): throughput of the capture store's write path for attention maps against
// the raw sequential write speed of the same disk, measured side by side in one run.
//
//   raw:   fwrite of B bytes in 1 MiB blocks + fflush, to a file in the same directory
//   store: store::AsyncWriter with float16 maps [head, T, T] borrowed from the producer's buffer
//          (as capture borrows the host tensor) (causal: only chunks on or below the
//          diagonal are written), per-prompt flush, compression off; B = bytes of the file
//
// Two modes, each measured side by side: "cache" (no fsync: both land in the page cache, so
// this compares memory-copy paths) and "disk" (raw: one fsync at the end; store: fsync after
// every prompt, the store's power-loss-safe mode), which compares against the disk itself.
// Reported: MB/s of each, the ratio store/raw on file bytes, and the full-map-equivalent MB/s.
// Usage: bench_capture_write [DIR] [T] [prompts]   (defaults: $TMPDIR, 1024, 12)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <vector>

#include <unistd.h>

#include "core/store/async_writer.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {
double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double raw_write(const fs::path& path, std::uint64_t bytes, bool sync) {
    std::vector<char> block(1 << 20, 'x');
    const double t0 = now();
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write " + path.string());
    for (std::uint64_t done = 0; done < bytes; done += block.size())
        std::fwrite(block.data(), 1, std::min<std::uint64_t>(block.size(), bytes - done), f);
    std::fflush(f);
    if (sync) ::fsync(fileno(f));
    std::fclose(f);
    const double t = now() - t0;
    fs::remove(path);
    return t;
}
}  // namespace

int main(int argc, char** argv) {
    const fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path();
    const int T = argc > 2 ? std::atoi(argv[2]) : 1024;
    const int n_prompts = argc > 3 ? std::atoi(argv[3]) : 12;
    const int heads = 8, layers = 4;

    // A realistic causal map (random rows, zeros above the diagonal), as float16 bits.
    std::mt19937 rng(1);
    std::uniform_int_distribution<int> bits(0x1000, 0x3B00);  // positive halfs < 1
    auto map_owner = std::make_shared<std::vector<std::uint16_t>>(static_cast<std::size_t>(heads) * T * T, 0);
    std::vector<std::uint16_t>& map = *map_owner;
    for (int h = 0; h < heads; ++h)
        for (int q = 0; q < T; ++q)
            for (int k = 0; k <= q; ++k) map[(static_cast<std::size_t>(h) * T + q) * T + k] = bits(rng);

    store::ModelInfo model{"llama", layers, heads, heads, 64, 8, 100, "bench", "", "{}"};
    for (const bool sync : {false, true}) {
    std::vector<double> store_mbs, raw_mbs, ratio, logical_mbs;
    for (int rep = 0; rep < 3; ++rep) {
        const fs::path file = dir / ("attnscope-bench-" + std::to_string(rep) + ".h5");
        fs::remove(file);
        store::RunInfo run;
        run.name = "bench";
        const double t0 = now();
        {
            store::WriterOptions wo;
            wo.fsync = sync;
            store::AsyncWriter w(file, model, run, wo);
            for (int p = 0; p < n_prompts; ++p) {
                store::PromptRecord rec;
                rec.prompt.id = p;
                rec.prompt.text = "bench";
                rec.prompt.tokens.assign(T, 1);
                rec.prompt.token_str.assign(T, "x");
                for (int l = 0; l < layers; ++l)
                    rec.hooks.push_back({"blocks." + std::to_string(l) + ".attn.hook_pattern",
                                         store::FloatArray::borrow(store::Element::kF16Bits, map.data(), {heads, T, T},
                                                                   map_owner),
                                         {}});
                w.push(std::move(rec));
            }
            w.close();
        }
        const double t_store = now() - t0;
        const auto file_bytes = fs::file_size(file);
        fs::remove(file);
        const double t_raw = raw_write(dir / "attnscope-bench-raw.bin", file_bytes, sync);
        const double logical = double(n_prompts) * layers * heads * T * T * 2;
        store_mbs.push_back(file_bytes / t_store / 1e6);
        raw_mbs.push_back(file_bytes / t_raw / 1e6);
        ratio.push_back(t_raw / t_store);
        logical_mbs.push_back(logical / t_store / 1e6);
    }
    const auto med = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    std::cout << "bench_capture_write [" << (sync ? "disk: fsync" : "cache: no fsync") << "]: T=" << T << " heads=" << heads << " layers=" << layers
              << " prompts=" << n_prompts << " dir=" << dir << "\n"
              << "  raw sequential write : " << med(raw_mbs) << " MB/s\n"
              << "  store (file bytes)   : " << med(store_mbs) << " MB/s\n"
              << "  store (full-map eq.) : " << med(logical_mbs) << " MB/s (upper triangle not written)\n"
              << "  ratio store/raw      : " << med(ratio) << " (median of 3; goal >= 0.5)\n";
    }
    return 0;
}
