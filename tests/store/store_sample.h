// The archived example capture file of schema major 1 (samples/store/capture-v1.h5): what it
// contains, as functions, so that the generator (make_store_sample) writes it and the read-back
// test checks a file written by an older build against the same values. Never change the values
// of a released major: add a new sample file for a new major instead.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/store/types.h"

namespace attnscope::store::sample_v1 {

/// Tiny Llama-like model: 2 layers, 4 heads, 2 kv heads.
ModelInfo model();
/// Prompts 0..2; prompt 1 has CJK and emoji token strings, prompt 2 generated tokens.
std::vector<Prompt> prompts();
/// Run "main": complete, f16 maps of both layers, resid_post of layer 1, metrics.
RunInfo run_main();
/// Run "ablate": complete, f32 maps of layer 0, heads {1, 3} only, with an intervention.
RunInfo run_ablate();
/// Run "crashed": f16 maps, prompt 0 finished, prompt 1 begun, never closed.
RunInfo run_crashed();

/// Causal pattern value at (layer, head, q, k) for a prompt of T tokens: rows sum to 1, 0 above
/// the diagonal.
float pattern(int layer, int head, int q, int k, int t);
/// Residual value at (pos, d).
float resid(int pos, int d);
/// Per-prompt metric "entropy" [layer, head, query_pos] value.
float entropy(int layer, int head, int q);

/// Writes the whole sample to `path` (overwriting it).
void write(const std::filesystem::path& path);

}  // namespace attnscope::store::sample_v1
