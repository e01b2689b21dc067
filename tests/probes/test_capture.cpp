// Capture end to end: model -> HDF5 -> reader, against patterns observed directly.
#include <ATen/ATen.h>

#include "core/base/error.h"
#include "core/model/model.h"
#include "core/store/reader.h"
#include "core/text/tokenizer.h"
#include "probes/capture.h"
#include "tests/catch.h"
#include "tests/model/tiny_checkpoint.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {
const fs::path kModel = fs::path(ATTNSCOPE_SOURCE_DIR) / "tests/fixtures/hf/tiny-llama";

std::vector<format::PromptInput> sample_prompts() {
    return {{0, "The quick brown fox jumps over the lazy dog.", "t:1"},
            {1, "Hello", "t:2"},
            {7, "def f(x):\n    return x * 2  # doubled", "t:3"}};
}

// Direct observation of every layer's pattern for one prompt: [L][H, T, T].
std::vector<at::Tensor> observe(model::Model& m, const std::vector<std::int32_t>& ids) {
    std::vector<at::Tensor> pats(m.config().n_layers);
    auto h = m.hooks().add_observer("blocks.*.attn.hook_pattern",
                                    [&](const HookName& n, const at::Tensor& p) { pats[n.layer] = p[0].clone(); });
    std::vector<std::int64_t> v(ids.begin(), ids.end());
    m.forward(at::tensor(v, at::kLong).view({1, -1}));
    return pats;
}

at::Tensor read_map(const store::Reader& r, const std::string& run, std::int64_t p, int layer) {
    const std::string hook = "blocks." + std::to_string(layer) + ".attn.hook_pattern";
    const auto info = r.array_info(run, p, hook);
    auto v = r.read_array(run, p, hook);
    return at::tensor(v).view(info.shape);
}
}  // namespace

TEST_CASE("capture stores exactly the observed patterns (f32) and their f16 rounding", "[model]") {
    auto m = model::Model::load(kModel, {"cpu", "float32", true});
    const fs::path dir = test::temp_dir("capture");
    const auto prompts = sample_prompts();
    probes::CaptureOptions o;
    o.version = "test";
    o.batch = 2;  // right-padded batches must store what single runs compute
    o.map_f32 = true;
    const auto rep = probes::capture(*m, prompts, dir / "f32.h5", o);
    CHECK(rep.prompts == 3);
    o.map_f32 = false;
    o.batch = 3;
    probes::capture(*m, prompts, dir / "f16.h5", o);

    store::Reader r32(dir / "f32.h5"), r16(dir / "f16.h5");
    CHECK(r32.run("main").complete);
    CHECK(r32.run_prompts("main") == std::vector<std::int64_t>{0, 1, 7});
    for (const auto& p : prompts) {
        INFO(p.source);
        const auto ids = m->require_tokenizer().encode(p.text);
        CHECK(r32.tokens(p.id) == ids);
        const auto pats = observe(*m, ids);
        for (int l = 0; l < m->config().n_layers; ++l) {
            const at::Tensor want = pats[l];
            CHECK((read_map(r32, "main", p.id, l) - want).abs().max().item<double>() < 1e-6);
            const at::Tensor want16 = want.to(at::kHalf).to(at::kFloat);
            CHECK((read_map(r16, "main", p.id, l) - want16).abs().max().item<double>() < 1e-3);
        }
    }
}

TEST_CASE("capture selects layers, heads and other hooks", "[model]") {
    auto m = model::Model::load(kModel, {"cpu", "float32", true});
    const fs::path dir = test::temp_dir("capture-sel");
    probes::CaptureOptions o;
    o.layers = {1};
    o.heads = {0, 3};
    o.hooks = {"blocks.*.attn.hook_pattern", "blocks.*.hook_resid_post"};
    o.map_f32 = true;
    probes::capture(*m, sample_prompts(), dir / "sel.h5", o);
    store::Reader r(dir / "sel.h5");
    CHECK(r.hooks("main", 0) == std::vector<std::string>{"blocks.1.attn.hook_pattern", "blocks.1.hook_resid_post"});
    const auto info = r.array_info("main", 0, "blocks.1.attn.hook_pattern");
    CHECK(info.shape[0] == 2);
    const auto ids = m->require_tokenizer().encode(sample_prompts()[0].text);
    const auto pats = observe(*m, ids);
    const at::Tensor stored = read_map(r, "main", 0, 1);
    CHECK((stored[1] - pats[1][3]).abs().max().item<double>() < 1e-6);
}

TEST_CASE("captured decoding rows equal a full forward over prompt + generated tokens", "[model]") {
    auto m = model::Model::load(kModel, {"cpu", "float32", true});
    const fs::path dir = test::temp_dir("capture-gen");
    probes::CaptureOptions o;
    o.generate = 6;
    o.map_f32 = true;
    probes::capture(*m, {{0, "Once upon a time", "t:1"}}, dir / "gen.h5", o);
    store::Reader r(dir / "gen.h5");
    const auto tokens = r.tokens(0);
    const auto ps = r.prompt(0);
    CHECK(ps.n_prompt_tokens == static_cast<std::int64_t>(m->require_tokenizer().encode("Once upon a time").size()));
    CHECK(ps.n_tokens > ps.n_prompt_tokens);
    const auto pats = observe(*m, tokens);
    for (int l = 0; l < m->config().n_layers; ++l)
        CHECK((read_map(r, "main", 0, l) - pats[l]).abs().max().item<double>() < 1e-5);
}

TEST_CASE("capture refuses bad requests before writing anything", "[model]") {
    auto m = model::Model::load(kModel, {"cpu", "float32", true});
    const fs::path dir = test::temp_dir("capture-bad");
    probes::CaptureOptions o;
    o.layers = {9};
    CHECK_THROWS_AS(probes::capture(*m, sample_prompts(), dir / "a.h5", o), ConfigError);
    o.layers = {};
    o.hooks = {"blocks.*.attn.hook_nothing"};
    CHECK_THROWS_AS(probes::capture(*m, sample_prompts(), dir / "a.h5", o), HookError);
    o.hooks = {"blocks.*.attn.hook_pattern"};
    const std::string long_text(5000, 'x');
    try {
        probes::capture(*m, {{0, "a " + std::string(2000, 'b') + " " + long_text, "long.txt:4"}}, dir / "a.h5", o);
        FAIL("no throw");
    } catch (const ConfigError& e) {
        CHECK(std::string(e.what()).find("long.txt:4") != std::string::npos);
        CHECK(std::string(e.what()).find("--max-tokens") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(dir / "a.h5"));
    // An existing run is not replaced without force.
    probes::capture(*m, sample_prompts(), dir / "b.h5", o);
    CHECK_THROWS_AS(probes::capture(*m, sample_prompts(), dir / "b.h5", o), IoError);
    o.force = true;
    CHECK(probes::capture(*m, sample_prompts(), dir / "b.h5", o).prompts == 3);
    CHECK(probes::parse_index_list("0,2,5-7", "--layers") == std::vector<int>{0, 2, 5, 6, 7});
    CHECK_THROWS_AS(probes::parse_index_list("3-1", "--layers"), ConfigError);
    CHECK_THROWS_AS(probes::parse_index_list("a", "--layers"), ConfigError);
}
