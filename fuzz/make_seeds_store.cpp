// Writes the small capture files of the store_reader seed corpus (fuzz/corpus/store_reader):
//   make_seeds_store OUT_DIR
// Each is a valid attnscope capture as small as the schema allows, so that byte-level mutations
// land in metadata (superblock, object headers, attributes, B-trees, heaps) rather than in bulk
// data. samples/store/capture-v1.h5 is the large, complete seed beside them.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "core/store/writer.h"

using namespace attnscope::store;

namespace {

ModelInfo model() {
    ModelInfo m;
    m.arch = "gpt2";
    m.n_layers = 1;
    m.n_heads = 2;
    m.n_kv_heads = 2;
    m.d_model = 4;
    m.d_head = 2;
    m.vocab_size = 16;
    m.source = "seed";
    m.config_json = R"({"model_type": "gpt2"})";
    return m;
}

Prompt prompt(std::int64_t id, int t) {
    Prompt p;
    p.id = id;
    p.text = "ab";
    p.source = "p.txt:1";
    for (int i = 0; i < t; ++i) {
        p.tokens.push_back(i + 1);
        p.token_str.push_back(i == 0 ? "a" : "\xc3\xa9");
    }
    return p;
}

void map(Writer& w, int layer, const std::vector<std::int64_t>& heads, int t) {
    std::vector<float> a;
    for (std::size_t h = 0; h < heads.size(); ++h)
        for (int q = 0; q < t; ++q)
            for (int k = 0; k < t; ++k) a.push_back(k <= q ? 1.0f / static_cast<float>(q + 1) : 0.0f);
    HookOptions o;
    o.heads = heads;
    w.write_hook("blocks." + std::to_string(layer) + ".attn.hook_pattern",
                 FloatRef::f32(a.data(), {static_cast<std::int64_t>(heads.size()), t, t}), o);
}

void write_one(const std::filesystem::path& path, DType dtype, bool metrics, bool finish) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    RunInfo r;
    r.name = "main";
    r.hooks = {"blocks.0.attn.hook_pattern"};
    r.map_dtype = dtype;
    WriterOptions o;
    o.created_by = "attnscope fuzz/make_seeds_store";
    Writer w(path, model(), r, o);
    w.begin_prompt(prompt(0, 2));
    map(w, 0, {0, 1}, 2);
    if (metrics) {
        std::vector<float> resid = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, 1.0f, 1.0f, 1.0f};
        w.write_hook("blocks.0.hook_resid_post", FloatRef::f32(resid.data(), {2, 4}));
        std::vector<float> e = {0.0f, 0.1f, 0.2f, 0.3f};
        MetricInfo mi;
        mi.dims = "head,query_pos";
        mi.units = "nats";
        w.write_metric("entropy", FloatRef::f32(e.data(), {2, 2}), mi);
    }
    w.end_prompt();
    if (metrics) {
        MetricInfo mi;
        mi.units = "nats";
        float s = 0.25f;
        w.write_run_metric("mean_entropy", FloatRef::f32(&s, {}), mi);
    }
    if (finish)
        w.close();
    else
        w.abandon();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    try {
        const std::filesystem::path dir = argv[1];
        std::filesystem::create_directories(dir);
        write_one(dir / "min-f16.h5", DType::kF16, false, true);
        write_one(dir / "min-f32-metrics.h5", DType::kF32, true, true);
        write_one(dir / "min-incomplete.h5", DType::kF16, false, false);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_seeds_store: %s\n", e.what());
        return 1;
    }
    return 0;
}
