// Autoregressive generation with a KV cache: greedy or sampled (temperature, top-k, top-p) with
// a seeded host-side RNG, so a seed gives the same tokens on CPU and GPU. Hooks registered on the
// model fire at the prefill and at every decoding step (the step's pattern is one query row).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace attnscope::model {

class Model;

struct GenerateOptions {
    int max_new_tokens = 32;
    bool sample = false;       // false: greedy (argmax, ties to the lowest id)
    double temperature = 1.0;  // sampling only; > 0
    int top_k = 0;             // 0 = off
    double top_p = 1.0;        // nucleus; 1 = off
    std::uint64_t seed = 0;
    bool stop_at_eos = true;   // stop after emitting an EOS id of config.json / the tokenizer
    /// Called after each new token with its 0-based step index and id.
    std::function<void(int step, std::int32_t id)> on_token;
    /// Optional: rewrites the next-token logits (float32 [d_vocab], on the model's device) before
    /// the pick. `step_input` [1, p] holds the ids this step fed to the model (the prompt at step
    /// 0, then the previous token), so a processor can run a second model pass with its own
    /// KV cache (e.g. guidance by a perturbed forward).
    std::function<void(const at::Tensor& step_input, at::Tensor& logits)> logits_processor;
};

struct GenerateResult {
    std::vector<std::int32_t> prompt_ids;
    std::vector<std::int32_t> new_ids;
    std::string stop_reason;  // "max_new_tokens" or "eos"
};

/// Generates after `prompt_ids` (non-empty). Throws ConfigError when prompt + max_new_tokens
/// exceeds the model's context (max_position_embeddings), naming both numbers, or when options
/// are out of range.
GenerateResult generate(Model& model, const std::vector<std::int32_t>& prompt_ids,
                        const GenerateOptions& options);

}  // namespace attnscope::model
