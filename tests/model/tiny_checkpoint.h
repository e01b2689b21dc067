// Test helper: writes a random-init checkpoint folder (config.json + model.safetensors) for any
// supported architecture, so [model] tests need no downloaded or Python-made files. The
// safetensors writer here is deliberately independent of core/format (it is what the reader is
// tested against).
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <unistd.h>

#include "tests/remove_tree.h"

namespace attnscope::test {

inline void write_safetensors(const std::filesystem::path& path,
                              const std::map<std::string, at::Tensor>& tensors) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    std::string data;
    for (const auto& [name, t0] : tensors) {
        at::Tensor t = t0.contiguous().cpu();
        const char* dt = t.scalar_type() == at::kFloat      ? "F32"
                         : t.scalar_type() == at::kBFloat16 ? "BF16"
                         : t.scalar_type() == at::kHalf     ? "F16"
                                                            : "I64";
        const std::size_t begin = data.size();
        data.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
        header[name] = {{"dtype", dt},
                        {"shape", std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end())},
                        {"data_offsets", {begin, data.size()}}};
    }
    std::string h = header.dump();
    while ((h.size() + 8) % 8) h += ' ';
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t n = h.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << h << data;
}

struct TinySpec {
    std::string arch = "llama";  // gpt2 | llama | qwen2 | mistral
    int n_layers = 2, n_heads = 4, n_kv_heads = 2, d_model = 32, d_mlp = 64, vocab = 50;
    int n_ctx = 64;
    bool tie = false;
    int sliding_window = 0;  // mistral
    at::ScalarType dtype = at::kFloat;
    std::uint64_t seed = 0;
};

inline std::map<std::string, at::Tensor> tiny_weights(const TinySpec& s) {
    at::manual_seed(static_cast<std::int64_t>(s.seed));
    std::map<std::string, at::Tensor> w;
    const std::int64_t d = s.d_model, m = s.d_mlp, v = s.vocab, dh = s.d_model / s.n_heads;
    auto r = [&](std::vector<std::int64_t> shape, double scale = 0.3) {
        return (at::randn(shape) * scale).to(s.dtype);
    };
    auto ones = [&](std::int64_t n) { return (1 + 0.1 * at::randn({n})).to(s.dtype); };
    if (s.arch == "gpt2") {
        w["transformer.wte.weight"] = r({v, d});
        w["transformer.wpe.weight"] = r({s.n_ctx, d}, 0.1);
        for (int l = 0; l < s.n_layers; ++l) {
            const std::string p = "transformer.h." + std::to_string(l) + ".";
            w[p + "ln_1.weight"] = ones(d);
            w[p + "ln_1.bias"] = r({d}, 0.1);
            w[p + "attn.c_attn.weight"] = r({d, 3 * d});
            w[p + "attn.c_attn.bias"] = r({3 * d}, 0.1);
            w[p + "attn.c_proj.weight"] = r({d, d});
            w[p + "attn.c_proj.bias"] = r({d}, 0.1);
            w[p + "ln_2.weight"] = ones(d);
            w[p + "ln_2.bias"] = r({d}, 0.1);
            w[p + "mlp.c_fc.weight"] = r({d, m});
            w[p + "mlp.c_fc.bias"] = r({m}, 0.1);
            w[p + "mlp.c_proj.weight"] = r({m, d});
            w[p + "mlp.c_proj.bias"] = r({d}, 0.1);
        }
        w["transformer.ln_f.weight"] = ones(d);
        w["transformer.ln_f.bias"] = r({d}, 0.1);
        return w;
    }
    const std::int64_t qd = s.n_heads * dh, kvd = s.n_kv_heads * dh;
    w["model.embed_tokens.weight"] = r({v, d});
    for (int l = 0; l < s.n_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        w[p + "input_layernorm.weight"] = ones(d);
        w[p + "post_attention_layernorm.weight"] = ones(d);
        w[p + "self_attn.q_proj.weight"] = r({qd, d}, 0.5);
        w[p + "self_attn.k_proj.weight"] = r({kvd, d}, 0.5);
        w[p + "self_attn.v_proj.weight"] = r({kvd, d});
        w[p + "self_attn.o_proj.weight"] = r({d, qd});
        if (s.arch == "qwen2") {
            w[p + "self_attn.q_proj.bias"] = r({qd}, 0.1);
            w[p + "self_attn.k_proj.bias"] = r({kvd}, 0.1);
            w[p + "self_attn.v_proj.bias"] = r({kvd}, 0.1);
        }
        w[p + "mlp.gate_proj.weight"] = r({m, d});
        w[p + "mlp.up_proj.weight"] = r({m, d});
        w[p + "mlp.down_proj.weight"] = r({d, m});
    }
    w["model.norm.weight"] = ones(d);
    if (!s.tie) w["lm_head.weight"] = r({v, d});
    return w;
}

inline nlohmann::json tiny_config(const TinySpec& s) {
    if (s.arch == "gpt2")
        return {{"model_type", "gpt2"}, {"n_layer", s.n_layers}, {"n_head", s.n_heads},
                {"n_embd", s.d_model}, {"n_inner", s.d_mlp}, {"vocab_size", s.vocab},
                {"n_positions", s.n_ctx}, {"layer_norm_epsilon", 1e-5},
                {"activation_function", "gelu_new"}, {"tie_word_embeddings", true}};
    nlohmann::json c = {{"model_type", s.arch},
                        {"num_hidden_layers", s.n_layers},
                        {"num_attention_heads", s.n_heads},
                        {"num_key_value_heads", s.n_kv_heads},
                        {"hidden_size", s.d_model},
                        {"intermediate_size", s.d_mlp},
                        {"vocab_size", s.vocab},
                        {"max_position_embeddings", s.n_ctx},
                        {"rms_norm_eps", 1e-6},
                        {"hidden_act", "silu"},
                        {"rope_theta", 10000.0},
                        {"tie_word_embeddings", s.tie}};
    if (s.arch == "mistral")
        c["sliding_window"] = s.sliding_window > 0 ? nlohmann::json(s.sliding_window) : nullptr;
    return c;
}

/// Writes the folder and returns it. `dir` is created (and emptied) first.
inline std::filesystem::path make_tiny_checkpoint(const std::filesystem::path& dir,
                                                  const TinySpec& s) {
    remove_tree(dir);
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "config.json") << tiny_config(s).dump(2);
    write_safetensors(dir / "model.safetensors", tiny_weights(s));
    return dir;
}

/// A fresh temporary folder under the system temp dir, unique per call.
inline std::filesystem::path temp_dir(const std::string& tag) {
    static int counter = 0;
    auto p = std::filesystem::temp_directory_path() /
             ("attnscope-test-" + std::to_string(::getpid()) + "-" + tag + "-" +
              std::to_string(counter++));
    std::filesystem::create_directories(p);
    return p;
}

}  // namespace attnscope::test
