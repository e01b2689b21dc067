// Contents of samples/store/capture-v1.h5 and the code that writes it (see store_sample.h).
#include "tests/store/store_sample.h"

#include <cmath>

#include "core/store/writer.h"

namespace attnscope::store::sample_v1 {

ModelInfo model() {
    ModelInfo m;
    m.arch = "llama";
    m.n_layers = 2;
    m.n_heads = 4;
    m.n_kv_heads = 2;
    m.d_model = 8;
    m.d_head = 2;
    m.vocab_size = 512;
    m.source = "samples/models/tiny-llama";
    m.weights_sha256 = "";
    m.config_json = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8})";
    return m;
}

std::vector<Prompt> prompts() {
    std::vector<Prompt> out(3);
    out[0].id = 0;
    out[0].text = "The cat sat on the mat";
    out[0].source = "prompts.txt:1";
    out[0].tokens = {1, 450, 6635, 3290, 373, 278, 1775};
    out[0].token_str = {"<s>", "The", " cat", " sat", " on", " the", " mat"};
    out[1].id = 1;
    out[1].text = "東京は🍣";
    out[1].source = "prompts.txt:2";
    out[1].tokens = {1, 30591, 30675, 30449, 243, 162};
    out[1].token_str = {"<s>", "東", "京", "は", "🍣", "!"};
    out[2].id = 2;
    out[2].text = "1 2 3";
    out[2].source = "prompts.txt:3";
    out[2].tokens = {1, 29896, 29871, 29906, 29871, 29941, 29871, 29946, 29871, 29945};
    out[2].token_str = {"<s>", "1", " ", "2", " ", "3", " ", "4", " ", "5"};
    out[2].n_prompt_tokens = 6;  // "<s>1 2 3" then 4 generated tokens
    return out;
}

RunInfo run_main() {
    RunInfo r;
    r.name = "main";
    r.hooks = {"blocks.*.attn.hook_pattern", "blocks.1.hook_resid_post"};
    r.seed = 7;
    r.argv = {"attnscope", "capture", "--out", "capture-v1.h5"};
    r.version = "0.1.0";
    r.map_dtype = DType::kF16;
    return r;
}

RunInfo run_ablate() {
    RunInfo r = run_main();
    r.name = "ablate";
    r.hooks = {"blocks.0.attn.hook_pattern"};
    r.intervention_json = R"({"kind": "head_ablation", "heads": [[0, 2]]})";
    r.map_dtype = DType::kF32;
    return r;
}

RunInfo run_crashed() {
    RunInfo r = run_main();
    r.name = "crashed";
    return r;
}

float pattern(int layer, int head, int q, int k, int t) {
    (void)t;
    if (k > q) return 0.0f;
    // Weights w_k = 1 + ((layer + head + k) % 3), normalised over k <= q.
    float sum = 0.0f;
    for (int j = 0; j <= q; ++j) sum += 1.0f + static_cast<float>((layer + head + j) % 3);
    return (1.0f + static_cast<float>((layer + head + k) % 3)) / sum;
}

float resid(int pos, int d) { return std::sin(0.5f * static_cast<float>(pos) + d) * 3.0f; }

float entropy(int layer, int head, int q) {
    return std::log(static_cast<float>(q + 1)) - 0.01f * static_cast<float>(layer * 4 + head);
}

namespace {

std::vector<float> map_of(int layer, const std::vector<std::int64_t>& heads, int t) {
    std::vector<float> a;
    a.reserve(heads.size() * t * t);
    for (const auto h : heads)
        for (int q = 0; q < t; ++q)
            for (int k = 0; k < t; ++k) a.push_back(pattern(layer, static_cast<int>(h), q, k, t));
    return a;
}

void write_prompt(Writer& w, const Prompt& p, const std::vector<int>& layers,
                  const std::vector<std::int64_t>& heads, bool resid_and_metrics, bool end) {
    const int t = static_cast<int>(p.tokens.size());
    w.begin_prompt(p);
    for (const int l : layers) {
        const auto a = map_of(l, heads, t);
        HookOptions o;
        o.heads = heads;
        w.write_hook("blocks." + std::to_string(l) + ".attn.hook_pattern",
                     FloatRef::f32(a.data(), {static_cast<std::int64_t>(heads.size()), t, t}), o);
    }
    if (resid_and_metrics) {
        std::vector<float> r;
        for (int pos = 0; pos < t; ++pos)
            for (int d = 0; d < 8; ++d) r.push_back(resid(pos, d));
        w.write_hook("blocks.1.hook_resid_post", FloatRef::f32(r.data(), {t, 8}));
        std::vector<float> e;
        for (int l = 0; l < 2; ++l)
            for (int h = 0; h < 4; ++h)
                for (int q = 0; q < t; ++q) e.push_back(entropy(l, h, q));
        MetricInfo mi;
        mi.dims = "layer,head,query_pos";
        mi.params_json = R"({"base": "e"})";
        mi.units = "nats";
        w.write_metric("entropy", FloatRef::f32(e.data(), {2, 4, t}), mi);
    }
    if (end) w.end_prompt();
}

}  // namespace

void write(const std::filesystem::path& path) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    WriterOptions o;
    o.created_by = "attnscope 0.1.0 (tests/store/make_store_sample)";
    const auto ps = prompts();
    {
        Writer w(path, model(), run_main(), o);
        for (const auto& p : ps) write_prompt(w, p, {0, 1}, {0, 1, 2, 3}, true, true);
        MetricInfo mi;
        mi.dims = "layer,head";
        mi.units = "nats";
        std::vector<float> mean;
        for (int i = 0; i < 8; ++i) mean.push_back(0.25f * static_cast<float>(i));
        w.write_run_metric("mean_entropy", FloatRef::f32(mean.data(), {2, 4}), mi);
        w.close();
    }
    {
        Writer w(path, model(), run_ablate(), o);
        for (const auto& p : ps) write_prompt(w, p, {0}, {1, 3}, false, true);
        w.close();
    }
    {
        Writer w(path, model(), run_crashed(), o);
        write_prompt(w, ps[0], {0, 1}, {0, 1, 2, 3}, false, true);
        write_prompt(w, ps[1], {0}, {0, 1, 2, 3}, false, false);
        w.abandon();
    }
}

}  // namespace attnscope::store::sample_v1
