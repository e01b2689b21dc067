// The forward pass of GPT-2 and the Llama family, top to bottom, one hook call per TransformerLens
// hook point. Mirrors transformers' GPT2Model / LlamaModel (eager attention) operation by
// operation, so that fp32 logits and patterns agree to ~1e-5; see tests/golden.
// Shapes: b = batch, p = new positions, K = all key positions (cache + new), H = query heads,
// G = KV heads, dh = d_head, D = d_model.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "core/base/error.h"
#include "core/model/detail/model_impl.h"
#include "core/model/detail/torch_compat.h"

namespace attnscope::model {
namespace {

using format::Activation;
using format::Arch;

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
    // LlamaRMSNorm: normalise in float32, cast back, then scale.
    at::Tensor h = x.to(at::kFloat);
    h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
    return w * h.to(x.scalar_type());
}

at::Tensor norm(const format::ModelConfig& cfg, const at::Tensor& x, const at::Tensor& w,
                const at::Tensor& b) {
    if (cfg.arch == Arch::kGpt2) return at::layer_norm(x, {x.size(-1)}, w, b, cfg.norm_eps);
    return rms_norm(x, w, cfg.norm_eps);
}

at::Tensor activation(Activation a, const at::Tensor& x) {
    switch (a) {
        case Activation::kSilu: return at::silu(x);
        case Activation::kGeluNew:
        case Activation::kGeluPytorchTanh: return at::gelu(x, "tanh");
        case Activation::kGelu: return at::gelu(x);
        case Activation::kRelu: return at::relu(x);
    }
    return x;
}

at::Tensor rotate_half(const at::Tensor& x) {
    const auto half = x.size(-1) / 2;
    return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

std::int64_t KVCache::length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }

void KVCache::clear() {
    k.clear();
    v.clear();
    mask = at::Tensor();
}

at::Tensor Model::Impl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                KVCache* cache) {
    c10::InferenceMode guard;
    const auto& cfg = config;
    if (input_ids.dim() != 2)
        throw ShapeError("forward: input_ids must be [batch, pos], got " +
                         std::to_string(input_ids.dim()) + " dims");
    const std::int64_t b = input_ids.size(0), p = input_ids.size(1);
    if (b == 0 || p == 0) throw ShapeError("forward: input_ids is empty");
    at::Tensor ids = input_ids.to(device, at::kLong);
    {
        const auto lo = ids.min().item<std::int64_t>(), hi = ids.max().item<std::int64_t>();
        if (lo < 0 || hi >= cfg.vocab_size)
            throw ConfigError("forward: token id " + std::to_string(lo < 0 ? lo : hi) +
                              " is outside the vocabulary [0, " +
                              std::to_string(cfg.vocab_size) + ") of " + dir.string() +
                              " (were the ids made by another tokenizer?)");
    }
    at::Tensor new_mask;
    if (attention_mask.defined()) {
        if (attention_mask.sizes() != input_ids.sizes())
            throw ShapeError("forward: attention_mask shape differs from input_ids [batch, pos]");
        new_mask = attention_mask.to(device, at::kLong);
    } else {
        new_mask = at::ones({b, p}, ids.options());
    }
    const std::int64_t past = cache ? cache->length() : 0;
    if (cache && past > 0 && cache->mask.size(0) != b)
        throw ShapeError("forward: batch size differs from the KV cache's");
    at::Tensor full_mask = past > 0 ? at::cat({cache->mask, new_mask}, 1) : new_mask;  // [b, K]
    const std::int64_t K = past + p;

    // Positions count real tokens only, so left padding does not shift RoPE or learned positions
    // (transformers' generate() does the same via attention_mask.cumsum(-1) - 1).
    at::Tensor positions = (full_mask.cumsum(-1) - 1).clamp_min(0).narrow(1, past, p);  // [b, p]
    if (cfg.arch == Arch::kGpt2) {
        const auto max_pos = positions.max().item<std::int64_t>();
        if (max_pos >= cfg.max_position_embeddings)
            throw ConfigError("forward: sequence needs position " + std::to_string(max_pos) +
                              " but " + dir.string() + " has learned positions up to " +
                              std::to_string(cfg.max_position_embeddings - 1) +
                              " (n_positions); shorten the prompt (e.g. --max-tokens)");
    }
    const bool padded = full_mask.min().item<std::int64_t>() == 0;

    // allowed[b, 1, p, K]: causal in cache-slot coordinates, padding keys excluded, optional
    // sliding window (transformers: q_slot - k_slot < window). Each query may always see its own
    // slot so padding rows stay finite (their outputs are discarded) and never poison real rows
    // through NaN * 0 in the next layer.
    // Built on first use only: [p, K] booleans are 17 GB at 128k tokens, and the fused path of
    // an unpadded prefill never needs them.
    at::Tensor causal, windowed;
    auto allowed_mask = [&](bool layer_window) -> const at::Tensor& {
        if (!causal.defined()) {
            auto q_slot = at::arange(past, K, ids.options()).view({1, 1, p, 1});
            auto k_slot = at::arange(0, K, ids.options()).view({1, 1, 1, K});
            auto key_real = full_mask.view({b, 1, 1, K}).to(at::kBool);
            causal = (k_slot <= q_slot).logical_and(key_real).logical_or(k_slot == q_slot);
            if (cfg.sliding_window)
                windowed = causal.logical_and((q_slot - k_slot) < *cfg.sliding_window);
        }
        return layer_window ? windowed : causal;
    };
    // The fused path can use the cheap is_causal flag only for an unpadded, window-free prefill.
    const bool simple_prefill = !padded && past == 0;
    const bool window_bites = cfg.sliding_window && K > *cfg.sliding_window;

    // RoPE tables, float32 like transformers, cast to the compute dtype before use.
    at::Tensor cos, sin;  // [b, p, 1, dh]
    if (cfg.arch != Arch::kGpt2) {
        at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq.view({1, 1, -1});
        at::Tensor emb = at::cat({freqs, freqs}, -1);
        cos = emb.cos().to(dtype).unsqueeze(2);
        sin = emb.sin().to(dtype).unsqueeze(2);
    }

    hooks->set_context({full_mask, past, p, cfg.sliding_window ? *cfg.sliding_window : 0,
                        cfg.sliding_window_from_layer});
    const auto& H = *hooks;
    const std::int64_t nh = cfg.n_heads, ng = cfg.n_kv_heads, dh = cfg.d_head;

    // [b, p, D]
    at::Tensor x = H.run(-1, Site::kEmbed, at::embedding(w.embed, ids));
    if (cfg.arch == Arch::kGpt2)
        x = x + H.run(-1, Site::kPosEmbed, at::embedding(w.pos_embed, positions));

    if (cache && past == 0) {
        cache->k.assign(cfg.n_layers, at::Tensor());
        cache->v.assign(cfg.n_layers, at::Tensor());
    }

    for (int l = 0; l < cfg.n_layers; ++l) {
        const detail::LayerWeights& L = w.layers[l];
        x = H.run(l, Site::kResidPre, x);
        at::Tensor h = H.run(l, Site::kLn1Normalized, norm(cfg, x, L.ln1_w, L.ln1_b));

        at::Tensor qkv = at::linear(h, L.w_qkv, L.b_qkv);  // [b, p, (H + 2G) dh]
        at::Tensor q = qkv.narrow(-1, 0, nh * dh).view({b, p, nh, dh});
        at::Tensor k = qkv.narrow(-1, nh * dh, ng * dh).view({b, p, ng, dh});
        at::Tensor v = qkv.narrow(-1, (nh + ng) * dh, ng * dh).view({b, p, ng, dh});
        q = H.run(l, Site::kQ, q);
        k = H.run(l, Site::kK, k);
        v = H.run(l, Site::kV, v);
        if (cfg.arch != Arch::kGpt2) {
            q = H.run(l, Site::kRotQ, q * cos + rotate_half(q) * sin);
            k = H.run(l, Site::kRotK, k * cos + rotate_half(k) * sin);
        }
        at::Tensor qh = q.transpose(1, 2);  // [b, H, p, dh]
        at::Tensor kh = k.transpose(1, 2);  // [b, G, p, dh]
        at::Tensor vh = v.transpose(1, 2);  // [b, G, p, dh]
        if (cache) {
            if (past > 0) {
                kh = at::cat({cache->k[l], kh}, 2);  // [b, G, K, dh]
                vh = at::cat({cache->v[l], vh}, 2);
            }
            cache->k[l] = kh;
            cache->v[l] = vh;
        }

        double scale = cfg.arch == Arch::kGpt2 && !cfg.scale_attn_weights ? 1.0
                                                                          : 1.0 / std::sqrt(double(dh));
        if (cfg.arch == Arch::kGpt2 && cfg.scale_attn_by_inverse_layer_idx) scale /= double(l + 1);
        const bool layer_window = cfg.sliding_window && l >= cfg.sliding_window_from_layer;

        at::Tensor z;  // [b, H, p, dh]
        if (H.pattern_chunked(l)) {
            // Streaming path: the pattern exists one query chunk at a time, so memory is
            // O(chunk x K) per layer instead of O(p x K). Same float32 math as below.
            const std::int64_t rep = nh / ng;
            const at::Tensor kr = detail::repeat_kv(kh, rep).transpose(-1, -2);  // [b, H, dh, K]
            const at::Tensor vr = detail::repeat_kv(vh, rep);                     // [b, H, K, dh]
            const std::int64_t rows = std::max<std::int64_t>(1, H.chunk_elements() / (b * nh * K));
            std::vector<at::Tensor> zs;
            for (std::int64_t q0 = 0; q0 < p; q0 += rows) {
                const std::int64_t c = std::min(rows, p - q0);
                at::Tensor s = at::matmul(qh.narrow(2, q0, c), kr).to(at::kFloat) * scale;
                s = s.masked_fill(allowed_mask(layer_window).narrow(2, q0, c).logical_not(),
                                  -std::numeric_limits<float>::infinity());
                at::Tensor pc = at::softmax(s, -1);  // [b, H, c, K]
                H.run_pattern_chunk(l, pc, past + q0);
                zs.push_back(at::matmul(pc.to(dtype), vr));
            }
            z = zs.size() == 1 ? zs[0] : at::cat(zs, 2);
        } else if (H.attention_observed(l)) {
            // Materialised path: scores and pattern in float32 for the hooks (analysis wants
            // float32 whatever the compute dtype), cast back to the compute dtype for A.V.
            const std::int64_t rep = nh / ng;
            at::Tensor scores = at::matmul(qh, detail::repeat_kv(kh, rep).transpose(-1, -2))
                                    .to(at::kFloat) * scale;  // [b, H, p, K]
            scores = scores.masked_fill(allowed_mask(layer_window).logical_not(),
                                        -std::numeric_limits<float>::infinity());
            scores = H.run(l, Site::kAttnScores, scores);
            at::Tensor pattern = H.run(l, Site::kPattern, at::softmax(scores, -1));
            z = at::matmul(pattern.to(dtype), detail::repeat_kv(vh, rep));
        } else if (attention_tap && simple_prefill && !(layer_window && window_bites)) {
            // Statistics mode: the fused kernel also hands out each row's log-sum-exp, so the
            // tap can recompute probabilities blockwise without the [p, K] map.
            at::Tensor lse;
            z = detail::sdpa_causal_lse(qh, kh, vh, scale, lse);
            attention_tap(l, qh, kh, lse, scale);
        } else if (simple_prefill && !(layer_window && window_bites)) {
            z = detail::sdpa(qh, kh, vh, at::Tensor(), /*is_causal=*/p > 1, scale);
        } else if (!padded && p == 1 && !(layer_window && window_bites)) {
            z = detail::sdpa(qh, kh, vh, at::Tensor(), false, scale);  // one query sees all keys
        } else {
            z = detail::sdpa(qh, kh, vh, allowed_mask(layer_window), false, scale);
        }
        z = H.run(l, Site::kZ, z.transpose(1, 2).contiguous());  // [b, p, H, dh]
        at::Tensor attn_out = H.run(l, Site::kAttnOut,
                                    at::linear(z.view({b, p, nh * dh}), L.w_o, L.b_o));
        x = H.run(l, Site::kResidMid, x + attn_out);

        at::Tensor h2 = H.run(l, Site::kLn2Normalized, norm(cfg, x, L.ln2_w, L.ln2_b));
        at::Tensor post;  // [b, p, d_mlp]
        if (L.w_gate.defined()) {
            at::Tensor gate = H.run(l, Site::kMlpPre, at::linear(h2, L.w_gate, L.b_gate));
            at::Tensor up = H.run(l, Site::kMlpPreLinear, at::linear(h2, L.w_up, L.b_up));
            post = H.run(l, Site::kMlpPost, activation(cfg.activation, gate) * up);
        } else {
            at::Tensor pre = H.run(l, Site::kMlpPre, at::linear(h2, L.w_up, L.b_up));
            post = H.run(l, Site::kMlpPost, activation(cfg.activation, pre));
        }
        at::Tensor mlp_out = H.run(l, Site::kMlpOut, at::linear(post, L.w_down, L.b_down));
        x = H.run(l, Site::kResidPost, x + mlp_out);
    }
    if (cache) cache->mask = full_mask;

    if (logits_to_keep > 0 && logits_to_keep < p) x = x.narrow(1, p - logits_to_keep, logits_to_keep);
    x = H.run(-1, Site::kLnFinalNormalized, norm(cfg, x, w.lnf_w, w.lnf_b));
    at::Tensor logits = H.run(-1, Site::kUnembedOut, at::linear(x, w.lm_head));  // [b, p, V]
    return logits.to(at::kFloat);
}

}  // namespace attnscope::model
