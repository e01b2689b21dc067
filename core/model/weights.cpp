// Checkpoint tensor names -> runner weights, per architecture. The name tables below are the
// whole contract with Hugging Face's module layout (GPT2LMHeadModel, LlamaForCausalLM and its
// Qwen2 / Mistral siblings). Every tensor is shape-checked; every missing or unexpected name is
// reported at once so a user sees the whole problem, not the first symptom.
#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

#include "core/base/error.h"
#include "core/model/detail/model_impl.h"

namespace attnscope::model::detail {
namespace {

using format::Arch;
using format::DType;

std::string shape_str(at::IntArrayRef s) {
    std::ostringstream o;
    o << "[";
    for (std::size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
    o << "]";
    return o.str();
}

at::ScalarType torch_dtype(const format::TensorView& t, const std::string& file) {
    switch (t.dtype) {
        case DType::kF32: return at::kFloat;
        case DType::kF16: return at::kHalf;
        case DType::kBF16: return at::kBFloat16;
        default:
            throw WeightsError(file + ": tensor '" + t.name + "' has dtype " +
                               format::to_string(t.dtype) +
                               "; model weights must be F32, F16 or BF16 (quantized checkpoints "
                               "are not supported: export an unquantized copy)");
    }
}

// Collects tensors by name, recording what is missing and what was never asked for.
class Collector {
public:
    Collector(const format::Checkpoint& ckpt, const format::ModelConfig& cfg, at::Device device,
              at::ScalarType dtype)
        : ckpt_(ckpt), cfg_(cfg), device_(device), dtype_(dtype) {
        for (const auto& name : ckpt.names()) names_.insert(name);
    }

    // Canonical name -> name in this checkpoint. Original OpenAI GPT-2 uploads lack the
    // "transformer." prefix that GPT2LMHeadModel.save_pretrained writes; accept both.
    const format::TensorView* lookup(const std::string& canonical) const {
        if (const auto* t = ckpt_.find(canonical)) return t;
        constexpr std::string_view kPrefix = "transformer.";
        if (cfg_.arch == Arch::kGpt2 && canonical.rfind(kPrefix, 0) == 0)
            return ckpt_.find(canonical.substr(kPrefix.size()));
        return nullptr;
    }

    at::Tensor get(const std::string& name, std::vector<std::int64_t> shape) {
        const format::TensorView* t = lookup(name);
        if (!t) {
            missing_.push_back(name);
            return {};
        }
        used_.insert(t->name);
        const std::string file = t->file ? t->file->path().filename().string() : "checkpoint";
        if (t->shape != shape)
            throw WeightsError(file + ": tensor '" + t->name + "' has shape " +
                               shape_str(t->shape) + ", expected " + shape_str(shape) +
                               " from config.json (is config.json from another model?)");
        const at::ScalarType st = torch_dtype(*t, file);
        const std::string dn = format::to_string(t->dtype);
        if (stored_dtype_.empty())
            stored_dtype_ = dn;
        else if (stored_dtype_ != dn)
            stored_dtype_ = "mixed";
        // Copy out of the mapping into aligned memory: safetensors offsets need not be aligned
        // to the element size, and the mapping is released after loading.
        at::Tensor host = at::empty(shape, at::TensorOptions().dtype(st));
        if (t->nbytes) std::memcpy(host.data_ptr(), t->data, t->nbytes);
        n_params_ += host.numel();
        return host.to(device_, dtype_);
    }

    // Optional tensor: absent is fine.
    at::Tensor get_optional(const std::string& name, std::vector<std::int64_t> shape) {
        if (!lookup(name)) return {};
        return get(name, std::move(shape));
    }

    void ignore(const std::string& name) {
        if (const auto* t = lookup(name)) used_.insert(t->name);
    }

    // Buffers some exporters save that carry no weights.
    void ignore_buffers() {
        for (const auto& n : names_) {
            auto ends = [&](std::string_view s) {
                return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
            };
            if (ends(".attn.bias") && cfg_.arch == Arch::kGpt2) used_.insert(n);
            if (ends(".attn.masked_bias")) used_.insert(n);
            if (ends("rotary_emb.inv_freq")) used_.insert(n);
        }
    }

    void finish() const {
        std::vector<std::string> unexpected;
        for (const auto& n : names_)
            if (!used_.count(n)) unexpected.push_back(n);
        if (missing_.empty() && unexpected.empty()) return;
        auto list = [](const std::vector<std::string>& v) {
            std::string s;
            const std::size_t shown = std::min<std::size_t>(v.size(), 12);
            for (std::size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + v[i];
            if (v.size() > shown) s += ", ... (" + std::to_string(v.size() - shown) + " more)";
            return s;
        };
        std::string msg = ckpt_.dir().string() + ": tensors do not match a " + cfg_.model_type +
                          " model with the sizes in config.json.";
        if (!missing_.empty())
            msg += " Missing (" + std::to_string(missing_.size()) + "): " + list(missing_) + ".";
        if (!unexpected.empty())
            msg += " Unexpected (" + std::to_string(unexpected.size()) +
                   "): " + list(unexpected) + ".";
        msg += " Check that config.json and the *.safetensors files belong to the same model.";
        throw WeightsError(msg);
    }

    std::int64_t n_params() const { return n_params_; }
    const std::string& stored_dtype() const { return stored_dtype_; }

private:
    const format::Checkpoint& ckpt_;
    const format::ModelConfig& cfg_;
    at::Device device_;
    at::ScalarType dtype_;
    std::set<std::string> names_;
    std::set<std::string> used_;
    std::vector<std::string> missing_;
    std::int64_t n_params_ = 0;
    std::string stored_dtype_;
};

Weights load_gpt2(Collector& c, const format::ModelConfig& cfg) {
    const std::int64_t d = cfg.d_model, m = cfg.d_mlp, v = cfg.vocab_size;
    Weights w;
    w.embed = c.get("transformer.wte.weight", {v, d});
    w.pos_embed = c.get("transformer.wpe.weight", {cfg.max_position_embeddings, d});
    for (int l = 0; l < cfg.n_layers; ++l) {
        const std::string p = "transformer.h." + std::to_string(l) + ".";
        LayerWeights L;
        L.ln1_w = c.get(p + "ln_1.weight", {d});
        L.ln1_b = c.get(p + "ln_1.bias", {d});
        // Conv1D stores [in, out]; transpose to Linear's [out, in]. c_attn's output is q|k|v.
        auto t = [](const at::Tensor& x) { return x.defined() ? x.t().contiguous() : x; };
        L.w_qkv = t(c.get(p + "attn.c_attn.weight", {d, 3 * d}));
        L.b_qkv = c.get(p + "attn.c_attn.bias", {3 * d});
        L.w_o = t(c.get(p + "attn.c_proj.weight", {d, d}));
        L.b_o = c.get(p + "attn.c_proj.bias", {d});
        L.ln2_w = c.get(p + "ln_2.weight", {d});
        L.ln2_b = c.get(p + "ln_2.bias", {d});
        L.w_up = t(c.get(p + "mlp.c_fc.weight", {d, m}));
        L.b_up = c.get(p + "mlp.c_fc.bias", {m});
        L.w_down = t(c.get(p + "mlp.c_proj.weight", {m, d}));
        L.b_down = c.get(p + "mlp.c_proj.bias", {d});
        w.layers.push_back(std::move(L));
    }
    w.lnf_w = c.get("transformer.ln_f.weight", {d});
    w.lnf_b = c.get("transformer.ln_f.bias", {d});
    if (cfg.tie_word_embeddings) {
        c.ignore("lm_head.weight");  // transformers re-ties it to wte on load
        w.lm_head = w.embed;
    } else {
        w.lm_head = c.get("lm_head.weight", {v, d});
    }
    return w;
}

Weights load_llama(Collector& c, const format::ModelConfig& cfg) {
    const std::int64_t d = cfg.d_model, m = cfg.d_mlp, v = cfg.vocab_size;
    const std::int64_t qd = std::int64_t(cfg.n_heads) * cfg.d_head;
    const std::int64_t kvd = std::int64_t(cfg.n_kv_heads) * cfg.d_head;
    Weights w;
    w.embed = c.get("model.embed_tokens.weight", {v, d});
    for (int l = 0; l < cfg.n_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        LayerWeights L;
        L.ln1_w = c.get(p + "input_layernorm.weight", {d});
        L.ln2_w = c.get(p + "post_attention_layernorm.weight", {d});
        at::Tensor wq = c.get(p + "self_attn.q_proj.weight", {qd, d});
        at::Tensor wk = c.get(p + "self_attn.k_proj.weight", {kvd, d});
        at::Tensor wv = c.get(p + "self_attn.v_proj.weight", {kvd, d});
        if (wq.defined() && wk.defined() && wv.defined()) L.w_qkv = at::cat({wq, wk, wv}, 0);
        if (cfg.attention_bias) {
            at::Tensor bq = c.get(p + "self_attn.q_proj.bias", {qd});
            at::Tensor bk = c.get(p + "self_attn.k_proj.bias", {kvd});
            at::Tensor bv = c.get(p + "self_attn.v_proj.bias", {kvd});
            if (bq.defined() && bk.defined() && bv.defined()) L.b_qkv = at::cat({bq, bk, bv}, 0);
        }
        L.w_o = c.get(p + "self_attn.o_proj.weight", {d, qd});
        if (cfg.o_proj_bias) L.b_o = c.get(p + "self_attn.o_proj.bias", {d});
        L.w_gate = c.get(p + "mlp.gate_proj.weight", {m, d});
        L.w_up = c.get(p + "mlp.up_proj.weight", {m, d});
        L.w_down = c.get(p + "mlp.down_proj.weight", {d, m});
        if (cfg.mlp_bias) {
            L.b_gate = c.get(p + "mlp.gate_proj.bias", {m});
            L.b_up = c.get(p + "mlp.up_proj.bias", {m});
            L.b_down = c.get(p + "mlp.down_proj.bias", {d});
        }
        w.layers.push_back(std::move(L));
    }
    w.lnf_w = c.get("model.norm.weight", {d});
    if (cfg.tie_word_embeddings) {
        c.ignore("lm_head.weight");
        w.lm_head = w.embed;
    } else {
        w.lm_head = c.get("lm_head.weight", {v, d});
    }
    return w;
}

}  // namespace

Weights load_weights(const format::Checkpoint& ckpt, const format::ModelConfig& cfg,
                     at::Device device, at::ScalarType dtype) {
    Collector c(ckpt, cfg, device, dtype);
    c.ignore_buffers();
    Weights w = cfg.arch == Arch::kGpt2 ? load_gpt2(c, cfg) : load_llama(c, cfg);
    c.finish();
    w.n_params = c.n_params();
    w.stored_dtype = c.stored_dtype();
    return w;
}

at::Tensor rope_inv_freq(const format::ModelConfig& cfg) {
    // transformers computes in float32: 1 / base ** (arange(0, dim, 2).float() / dim).
    const std::int64_t dim = cfg.d_head;
    at::Tensor exponent = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<float>(dim);
    at::Tensor inv_freq =
        1.0 / at::pow(at::scalar_tensor(cfg.rope.theta, at::kFloat), exponent);
    const auto& r = cfg.rope;
    switch (r.type) {
        case format::RopeType::kDefault: break;
        case format::RopeType::kLinear: inv_freq = inv_freq / r.factor; break;
        case format::RopeType::kLlama3: {
            // _compute_llama3_parameters (Llama 3.1): long wavelengths are slowed by `factor`,
            // short ones kept, the band between interpolated smoothly.
            const double old_ctx = r.original_max_position_embeddings;
            const double low_wavelen = old_ctx / r.low_freq_factor;
            const double high_wavelen = old_ctx / r.high_freq_factor;
            at::Tensor wavelen = 2 * M_PI / inv_freq;
            at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / r.factor, inv_freq);
            at::Tensor smooth = (old_ctx / wavelen - r.low_freq_factor) /
                                (r.high_freq_factor - r.low_freq_factor);
            at::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
            at::Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
            inv_freq = at::where(medium, smoothed, scaled);
            break;
        }
    }
    return inv_freq.contiguous();
}

}  // namespace attnscope::model::detail
