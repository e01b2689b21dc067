// Model: a Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json) loaded
// into a LibTorch runner for GPT-2 or the Llama family (Llama, Qwen2, Mistral), with hook points.
// The forward is written out by hand with ATen ops (no torch::nn) so every intermediate can be a
// hook point and the math can be checked line by line against transformers' modeling files.
// Layers whose attention nobody observes or edits use the fused SDPA path; only observed layers
// materialise [query_pos, key_pos] scores and pattern.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/format/model_config.h"
#include "core/model/hooks.h"

namespace attnscope::text {
class Tokenizer;
}

namespace attnscope::model {

struct LoadOptions {
    /// "cpu", "cuda", "cuda:1".
    std::string device = "cpu";
    /// Compute dtype: "float32", "bfloat16", "float16", or "auto" (float32 on CPU, bfloat16 on
    /// CUDA). Stored weights are converted to it.
    std::string dtype = "auto";
    /// Load tokenizer.json when present (a missing tokenizer is an error only for text commands).
    bool load_tokenizer = true;
};

/// Key/value cache for incremental decoding: per layer the post-RoPE keys and the values of all
/// positions seen so far, plus the attention mask over those positions.
struct KVCache {
    std::vector<at::Tensor> k;  // per layer [batch, n_kv_heads, key_pos, d_head]
    std::vector<at::Tensor> v;  // per layer [batch, n_kv_heads, key_pos, d_head]
    at::Tensor mask;            // [batch, key_pos] int64, 1 = real token, 0 = padding
    std::int64_t length() const;
    void clear();
};

/// Statistics tap on the fused attention path: called once per layer that runs SDPA in an
/// unpadded, window-free prefill (layers with pattern or score hooks take the materialised path
/// instead), with q [batch, heads, pos, d_head] and k [batch, kv_heads, pos, d_head] after RoPE,
/// `lse` float32 [batch, heads, pos], the natural-log log-sum-exp of each query row's scaled,
/// causal scores, and the score scale. Together they give every probability
/// exp(scale·q·k − lse) blockwise, without the [pos, pos] map (analysis/cuda/fused_stats.h).
/// Must not modify its arguments.
using AttentionTap = std::function<void(int layer, const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& lse, double scale)>;

class Model {
public:
    /// Loads `dir`. Throws ConfigError (config.json), WeightsError (safetensors, missing or
    /// unexpected tensors, shapes), TokenizerError / IoError, each message prefixed by the stage
    /// ("loading config", "loading weights", "loading tokenizer") and naming the file.
    static std::unique_ptr<Model> load(const std::filesystem::path& dir,
                                       const LoadOptions& options = {});
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    /// Logits [batch, pos, d_vocab] (float32 regardless of compute dtype).
    /// `input_ids` [batch, pos] integer ids. `attention_mask` [batch, pos] 1/0 (undefined = all
    /// real). Padding may be left or right: positions are counted over real tokens only, so a
    /// padded row computes the same as the unpadded sequence. With `cache`, the new positions
    /// are appended after the cached ones and `attention_mask` covers only the new positions.
    /// Throws ShapeError for malformed inputs, ConfigError when ids exceed the vocabulary or the
    /// sequence exceeds the context of a model with learned positions.
    at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                       KVCache* cache = nullptr);

    const format::ModelConfig& config() const;
    /// nullptr when the folder has no tokenizer.json or it was not requested.
    const text::Tokenizer* tokenizer() const;
    /// Throws ConfigError naming the folder when there is no tokenizer.
    const text::Tokenizer& require_tokenizer() const;
    HookRegistry& hooks();
    /// Installs (or, with an empty function, removes) the attention statistics tap.
    void set_attention_tap(AttentionTap tap);
    /// Compute logits (and ln_final / unembed hooks) for the last `n` positions only, like
    /// transformers' logits_to_keep; 0 (default) = every position. Long statistics runs use 1:
    /// full logits of a 128k-token prompt alone would take 60+ GB.
    void set_logits_to_keep(std::int64_t n);
    const std::vector<HookName>& hook_points() const;

    const std::filesystem::path& dir() const;
    at::Device device() const;
    at::ScalarType dtype() const;
    std::int64_t n_params() const;
    /// "float32"/"bfloat16"/... of the stored weights (first tensor's dtype, "mixed" if several).
    const std::string& stored_dtype() const;
    /// Context length the model supports (max_position_embeddings).
    std::int64_t context_length() const;

    struct Impl;

private:
    explicit Model(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

/// Parses "float32"|"f32"|"bfloat16"|"bf16"|"float16"|"f16"|"fp16"; "auto" resolves per device.
/// Throws ConfigError listing the accepted names.
at::ScalarType parse_dtype(const std::string& name, const at::Device& device);
std::string dtype_name(at::ScalarType t);

}  // namespace attnscope::model
