#include "core/model/generate.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "core/base/error.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"

namespace attnscope::model {
namespace {

// Picks the next id from float32 logits [V] on the host.
std::int32_t pick(const at::Tensor& logits_row, const GenerateOptions& o, std::mt19937_64& rng) {
    at::Tensor l = logits_row.to(at::kCPU, at::kDouble).contiguous();
    const double* d = l.data_ptr<double>();
    const std::int64_t n = l.numel();
    if (!o.sample) return static_cast<std::int32_t>(std::max_element(d, d + n) - d);
    std::vector<std::int32_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](auto a, auto b) { return d[a] > d[b]; });
    std::size_t keep = idx.size();
    if (o.top_k > 0) keep = std::min<std::size_t>(keep, o.top_k);
    std::vector<double> prob(keep);
    const double mx = d[idx[0]];
    double z = 0;
    for (std::size_t i = 0; i < keep; ++i) z += prob[i] = std::exp((d[idx[i]] - mx) / o.temperature);
    if (o.top_p < 1.0) {  // smallest prefix with mass >= top_p (at least one token)
        double c = 0;
        std::size_t cut = keep;
        for (std::size_t i = 0; i < keep; ++i) {
            c += prob[i] / z;
            if (c >= o.top_p) {
                cut = i + 1;
                break;
            }
        }
        keep = cut;
        prob.resize(keep);
    }
    std::discrete_distribution<std::size_t> dist(prob.begin(), prob.end());
    return idx[dist(rng)];
}

}  // namespace

GenerateResult generate(Model& model, const std::vector<std::int32_t>& prompt_ids,
                        const GenerateOptions& o) {
    if (prompt_ids.empty()) throw ConfigError("generate: the prompt has no tokens");
    if (o.max_new_tokens < 0) throw ConfigError("generate: max_new_tokens must be >= 0");
    if (o.sample && !(o.temperature > 0))
        throw ConfigError("generate: temperature must be > 0 when sampling");
    if (!(o.top_p > 0 && o.top_p <= 1)) throw ConfigError("generate: top_p must be in (0, 1]");
    const std::int64_t ctx = model.context_length();
    const std::int64_t need = static_cast<std::int64_t>(prompt_ids.size()) + o.max_new_tokens;
    if (need > ctx)
        throw ConfigError("generate: prompt (" + std::to_string(prompt_ids.size()) +
                          " tokens) + max_new_tokens (" + std::to_string(o.max_new_tokens) +
                          ") exceeds the context of " + model.dir().string() + " (" +
                          std::to_string(ctx) +
                          " positions, max_position_embeddings); shorten the prompt or ask for "
                          "fewer tokens");

    std::vector<std::int64_t> eos(model.config().eos_token_ids.begin(),
                                  model.config().eos_token_ids.end());
    if (eos.empty() && model.tokenizer() && model.tokenizer()->eos_id())
        eos.push_back(*model.tokenizer()->eos_id());

    c10::InferenceMode guard;
    GenerateResult r;
    r.prompt_ids = prompt_ids;
    r.stop_reason = "max_new_tokens";
    std::mt19937_64 rng(o.seed);
    KVCache cache;
    std::vector<std::int64_t> ids64(prompt_ids.begin(), prompt_ids.end());
    at::Tensor input = at::tensor(ids64, at::kLong).view({1, -1});
    for (int step = 0; step < o.max_new_tokens; ++step) {
        at::Tensor logits = model.forward(input, at::Tensor(), &cache);  // [1, p, V]
        at::Tensor last = logits[0][logits.size(1) - 1];
        if (o.logits_processor) o.logits_processor(input, last);
        const std::int32_t next = pick(last, o, rng);
        r.new_ids.push_back(next);
        if (o.on_token) o.on_token(step, next);
        if (o.stop_at_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) {
            r.stop_reason = "eos";
            break;
        }
        input = at::full({1, 1}, static_cast<std::int64_t>(next), at::kLong);
    }
    return r;
}

}  // namespace attnscope::model
