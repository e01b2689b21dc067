// Model: loading a checkpoint folder stage by stage (config, weights, tokenizer), each stage's
// errors prefixed with its name, and the thin public wrapper over Model::Impl.
#include "core/model/model.h"

#include <ATen/ATen.h>

#include "core/base/error.h"
#include "core/model/detail/model_impl.h"

namespace attnscope::model {

at::ScalarType parse_dtype(const std::string& name, const at::Device& device) {
    if (name == "auto") return device.is_cuda() ? at::kBFloat16 : at::kFloat;
    if (name == "float32" || name == "f32" || name == "fp32") return at::kFloat;
    if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
    if (name == "float16" || name == "f16" || name == "fp16" || name == "half") return at::kHalf;
    throw ConfigError("dtype '" + name + "' is not supported; use float32, bfloat16, float16 or auto");
}

std::string dtype_name(at::ScalarType t) {
    switch (t) {
        case at::kFloat: return "float32";
        case at::kBFloat16: return "bfloat16";
        case at::kHalf: return "float16";
        case at::kDouble: return "float64";
        default: return c10::toString(t);
    }
}

namespace {
at::Device parse_device(const std::string& name) {
    try {
        at::Device d(name);
        if (d.is_cuda() && !at::hasCUDA())
            throw ConfigError("device '" + name +
                              "' requested but this build of LibTorch has no CUDA or no GPU is "
                              "visible; use --device cpu");
        if (!d.is_cpu() && !d.is_cuda())
            throw ConfigError("device '" + name + "' is not supported; use cpu or cuda[:N]");
        return d;
    } catch (const c10::Error&) {
        throw ConfigError("device '" + name + "' is not a device name; use cpu or cuda[:N]");
    }
}
}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir, const LoadOptions& options) {
    auto impl = std::make_unique<Impl>();
    impl->dir = dir;
    if (!std::filesystem::is_directory(dir))
        throw IoError(dir.string() + ": not a directory; --model expects a Hugging Face "
                                     "checkpoint folder (config.json, *.safetensors, tokenizer.json)");
    impl->device = parse_device(options.device);
    impl->dtype = parse_dtype(options.dtype, impl->device);
    try {
        impl->config = format::load_model_config(dir);
    } catch (...) {
        rethrow_with_stage("loading config");
    }
    try {
        const format::Checkpoint ckpt = format::Checkpoint::open(dir);
        impl->w = detail::load_weights(ckpt, impl->config, impl->device, impl->dtype);
    } catch (...) {
        rethrow_with_stage("loading weights");
    }
    if (options.load_tokenizer && std::filesystem::exists(dir / "tokenizer.json")) {
        try {
            impl->tokenizer.emplace(text::Tokenizer::load(dir));
        } catch (...) {
            rethrow_with_stage("loading tokenizer");
        }
    }
    const auto& cfg = impl->config;
    if (cfg.arch != format::Arch::kGpt2) impl->inv_freq = detail::rope_inv_freq(cfg).to(impl->device);
    impl->points = all_hook_names(cfg.n_layers, /*rope=*/cfg.arch != format::Arch::kGpt2,
                                  /*pos_embed=*/cfg.arch == format::Arch::kGpt2,
                                  /*gated_mlp=*/cfg.arch != format::Arch::kGpt2);
    impl->hooks = std::make_unique<HookRegistry>(impl->points, cfg.n_layers);
    return std::unique_ptr<Model>(new Model(std::move(impl)));
}

at::Tensor Model::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                          KVCache* cache) {
    return impl_->forward(input_ids, attention_mask, cache);
}

const format::ModelConfig& Model::config() const { return impl_->config; }
const text::Tokenizer* Model::tokenizer() const {
    return impl_->tokenizer ? &*impl_->tokenizer : nullptr;
}
const text::Tokenizer& Model::require_tokenizer() const {
    if (!impl_->tokenizer)
        throw ConfigError(impl_->dir.string() +
                          ": no tokenizer.json in the model folder; text input needs one "
                          "(copy the tokenizer files of the original model next to config.json)");
    return *impl_->tokenizer;
}
HookRegistry& Model::hooks() { return *impl_->hooks; }
void Model::set_attention_tap(AttentionTap tap) { impl_->attention_tap = std::move(tap); }
void Model::set_logits_to_keep(std::int64_t n) { impl_->logits_to_keep = n < 0 ? 0 : n; }
const std::vector<HookName>& Model::hook_points() const { return impl_->points; }
const std::filesystem::path& Model::dir() const { return impl_->dir; }
at::Device Model::device() const { return impl_->device; }
at::ScalarType Model::dtype() const { return impl_->dtype; }
std::int64_t Model::n_params() const { return impl_->w.n_params; }
const std::string& Model::stored_dtype() const { return impl_->w.stored_dtype; }
std::int64_t Model::context_length() const { return impl_->config.max_position_embeddings; }

}  // namespace attnscope::model
