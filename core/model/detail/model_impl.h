// Internals of Model shared by the loader (weights.cpp), the forward (transformer.cpp) and the
// public wrapper (model.cpp). Not a public header.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/format/model_config.h"
#include "core/format/safetensors.h"
#include "core/model/hooks.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"

namespace attnscope::model::detail {

/// One decoder block's weights in nn.Linear convention ([out_features, in_features]); biases
/// undefined when the architecture has none. GPT-2's Conv1D weights are transposed at load.
struct LayerWeights {
    at::Tensor ln1_w, ln1_b;    // [d_model]; ln*_b undefined for RMSNorm
    at::Tensor ln2_w, ln2_b;    // [d_model]
    at::Tensor w_qkv, b_qkv;    // [(n_heads + 2 n_kv_heads) d_head, d_model]: q, k, v fused
    at::Tensor w_o, b_o;        // [d_model, n_heads d_head]
    at::Tensor w_gate, b_gate;  // [d_mlp, d_model]  (gated MLPs only)
    at::Tensor w_up, b_up;      // [d_mlp, d_model]  (GPT-2: c_fc)
    at::Tensor w_down, b_down;  // [d_model, d_mlp]  (GPT-2: mlp.c_proj)
};

struct Weights {
    at::Tensor embed;      // [d_vocab, d_model]
    at::Tensor pos_embed;  // [n_ctx, d_model] (GPT-2 only)
    std::vector<LayerWeights> layers;
    at::Tensor lnf_w, lnf_b;  // [d_model]
    at::Tensor lm_head;       // [d_vocab, d_model]; aliases embed when tied
    std::int64_t n_params = 0;
    std::string stored_dtype;
};

/// Reads every tensor the architecture needs from `ckpt`, checks names and shapes, converts to
/// `device`/`dtype`. Throws WeightsError listing all missing and unexpected tensor names, or
/// naming the tensor whose shape or dtype is wrong.
Weights load_weights(const format::Checkpoint& ckpt, const format::ModelConfig& cfg,
                     at::Device device, at::ScalarType dtype);

/// RoPE inverse frequencies [d_head / 2] float32, with linear / llama3 scaling applied exactly as
/// transformers' ROPE_INIT_FUNCTIONS.
at::Tensor rope_inv_freq(const format::ModelConfig& cfg);

}  // namespace attnscope::model::detail

namespace attnscope::model {

struct Model::Impl {
    std::filesystem::path dir;
    format::ModelConfig config;
    std::optional<text::Tokenizer> tokenizer;
    detail::Weights w;
    at::Tensor inv_freq;  // [d_head / 2] float32 on device (Llama family)
    std::vector<HookName> points;
    std::unique_ptr<HookRegistry> hooks;
    at::Device device = at::kCPU;
    at::ScalarType dtype = at::kFloat;
    AttentionTap attention_tap;       // empty = off (model.h)
    std::int64_t logits_to_keep = 0;  // 0 = logits of every position (model.h)

    at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                       KVCache* cache);
};

}  // namespace attnscope::model
