// ModelConfig: the architecture facts read from a Hugging Face config.json that change the
// math of a forward pass. Parsing is torch-free (this library is also a fuzz target). It is not
// a full mirror of transformers' PretrainedConfig: fields that only affect training or
// generation defaults are ignored, and fields that change the math but are unsupported are
// errors, never silently dropped.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace attnscope::format {

enum class Arch { kGpt2, kLlama, kQwen2, kMistral };

/// "gpt2", "llama", "qwen2", "mistral".
std::string to_string(Arch arch);

enum class RopeType { kDefault, kLinear, kLlama3 };

std::string to_string(RopeType type);

struct RopeConfig {
    double theta = 10000.0;
    RopeType type = RopeType::kDefault;
    double factor = 1.0;                              // linear, llama3
    double low_freq_factor = 1.0;                     // llama3
    double high_freq_factor = 4.0;                    // llama3
    int original_max_position_embeddings = 8192;      // llama3
};

enum class Activation { kGeluNew, kGelu, kGeluPytorchTanh, kRelu, kSilu };

std::string to_string(Activation act);

struct ModelConfig {
    Arch arch = Arch::kLlama;
    std::string model_type;          // verbatim from config.json
    int n_layers = 0;
    int n_heads = 0;
    int n_kv_heads = 0;              // == n_heads without GQA
    int d_model = 0;
    int d_head = 0;                  // head_dim; default d_model / n_heads
    int d_mlp = 0;                   // intermediate_size (GPT-2: n_inner or 4*d_model)
    int vocab_size = 0;
    int max_position_embeddings = 0;
    double norm_eps = 1e-5;          // rms_norm_eps (Llama family) / layer_norm_epsilon (GPT-2)
    Activation activation = Activation::kSilu;
    bool tie_word_embeddings = false;
    bool attention_bias = false;     // q/k/v (and, for Llama's attention_bias, o) projections
    bool o_proj_bias = false;        // Llama attention_bias also biases o_proj; Qwen2 does not
    bool mlp_bias = false;           // Llama mlp_bias
    std::optional<int> sliding_window;  // only when enabled (Mistral; Qwen2 use_sliding_window)
    int sliding_window_from_layer = 0;  // first layer the window applies to (Qwen2:
                                        // max_window_layers; layers before it attend fully)
    RopeConfig rope;                 // Llama family only
    // GPT-2 specifics
    bool scale_attn_weights = true;
    bool scale_attn_by_inverse_layer_idx = false;
    std::vector<int> bos_token_ids;  // may be empty
    std::vector<int> eos_token_ids;  // may be empty; several for Llama-3 instruct
    std::optional<int> pad_token_id;
    std::string torch_dtype;         // as saved ("float32", "bfloat16", ...) or empty
};

/// Parses config.json text. `source` names the file in error messages.
/// Throws ConfigError naming the field and what is supported, for: malformed JSON, missing or
/// non-positive sizes, unsupported model_type or rope type, inconsistent head counts.
/// Reads both rope forms: transformers 4.x (`rope_theta`, `rope_scaling` at top level) and 5.x
/// (`rope_parameters`).
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);

/// Reads `dir/config.json` and parses it. Throws IoError if the file cannot be read.
ModelConfig load_model_config(const std::filesystem::path& dir);

/// The model types parse_model_config accepts, for messages and `attnscope info`.
const std::vector<std::string>& supported_model_types();

}  // namespace attnscope::format
