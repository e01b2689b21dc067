// Write/read throughput of the store for attention maps (not a test; numbers for docs and
// reviews):
//   bench_store [DIR] [T] [HEADS] [LAYERS] [PROMPTS]
// Writes PROMPTS prompts of LAYERS float32 causal maps [HEADS, T, T] each, stored as float16,
// without and with compression, and reports MB/s of map data (full [H, T, T] binary16 size, the
// size a dense store would write), bytes on disk, and tile read speed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/store/reader.h"
#include "core/store/writer.h"

using namespace attnscope::store;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
    const fs::path dir = argc > 1 ? argv[1] : fs::temp_directory_path();
    const int t = argc > 2 ? std::atoi(argv[2]) : 1024;
    const int heads = argc > 3 ? std::atoi(argv[3]) : 16;
    const int layers = argc > 4 ? std::atoi(argv[4]) : 4;
    const int prompts = argc > 5 ? std::atoi(argv[5]) : 4;

    // Softmax-like causal rows: random positive weights normalised per row (realistic entropy
    // for the compressor), 0 above the diagonal.
    std::mt19937 rng(1);
    std::exponential_distribution<float> expo(1.0f);
    std::vector<float> maps(static_cast<std::size_t>(heads) * t * t, 0.0f);
    for (int h = 0; h < heads; ++h)
        for (int q = 0; q < t; ++q) {
            float* row = &maps[(static_cast<std::size_t>(h) * t + q) * t];
            float sum = 0.0f;
            for (int k = 0; k <= q; ++k) sum += row[k] = expo(rng) * expo(rng);
            for (int k = 0; k <= q; ++k) row[k] /= sum;
        }

    ModelInfo m{"llama", layers, heads, heads, 64 * heads, 64, 32000, "bench", "", "{}"};
    const double map_mb = static_cast<double>(heads) * t * t * 2 / 1e6;
    std::printf("T=%d heads=%d layers=%d prompts=%d: %.1f MB of float16 maps per layer\n", t, heads,
                layers, prompts, map_mb);
    for (const bool compress : {false, true}) {
        const fs::path file = dir / (compress ? "bench-z.h5" : "bench.h5");
        WriterOptions o;
        o.compress = compress;
        o.truncate = true;
        RunInfo run;
        const auto t0 = std::chrono::steady_clock::now();
        {
            Writer w(file, m, run, o);
            for (int p = 0; p < prompts; ++p) {
                Prompt pr;
                pr.id = p;
                for (int i = 0; i < t; ++i) {
                    pr.tokens.push_back(i);
                    pr.token_str.push_back("x");
                }
                w.begin_prompt(pr);
                for (int l = 0; l < layers; ++l)
                    w.write_hook("blocks." + std::to_string(l) + ".attn.hook_pattern",
                                 FloatRef::f32(maps.data(), {heads, t, t}));
                w.end_prompt();
            }
            w.close();
        }
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double total_mb = map_mb * layers * prompts;
        const double disk_mb = static_cast<double>(fs::file_size(file)) / 1e6;
        std::printf(
            "%-12s write %7.1f MB/s (%.2f s for %.0f MB of maps), file %.1f MB = %.1f%% "
            "of dense\n",
            compress ? "deflate(1):" : "plain:", total_mb / secs, secs, total_mb, disk_mb,
            100.0 * disk_mb / total_mb);
        Reader r(file);
        const auto r0 = std::chrono::steady_clock::now();
        int tiles = 0;
        for (int h = 0; h < heads; ++h)
            for (int q = 0; q + 256 <= t; q += 256) {
                r.read_map_tile("main", 0, "blocks.0.attn.hook_pattern", h, q, q + 256, 0, 256);
                ++tiles;
            }
        const double rsecs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
        std::printf("%-12s read  %d tiles of 256x256 in %.3f s (%.2f ms per tile)\n", "", tiles,
                    rsecs, 1e3 * rsecs / tiles);
        fs::remove(file);
    }
    return 0;
}
