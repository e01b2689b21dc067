// Golden tests: our runners against Hugging Face transformers. The reference tensors were made by
// tools/gpu/make_fixtures.py (transformers, eager attention, float32) from tiny random-init
// checkpoints saved with save_pretrained; see tests/fixtures/hf/README.md. Every comparison
// reports its max absolute difference and tolerance.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/format/safetensors.h"
#include "core/model/generate.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"
#include "tests/catch.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

constexpr double kTol = 1e-4;  // fp32, max |ours - HF|

const fs::path kFixtures = fs::path(ATTNSCOPE_SOURCE_DIR) / "tests/fixtures/hf";

// Reference tensors as ATen tensors (F32 or I64).
std::map<std::string, at::Tensor> read_reference(const fs::path& file) {
    auto f = format::SafetensorsFile::open(file);
    std::map<std::string, at::Tensor> out;
    for (const auto& t : f.tensors()) {
        const auto st = t.dtype == format::DType::kI64 ? at::kLong : at::kFloat;
        REQUIRE((t.dtype == format::DType::kI64 || t.dtype == format::DType::kF32));
        at::Tensor x = at::empty(t.shape, at::TensorOptions().dtype(st));
        if (t.nbytes) std::memcpy(x.data_ptr(), t.data, t.nbytes);
        out[t.name] = x;
    }
    return out;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
    REQUIRE(a.sizes() == b.sizes());
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

void check_close(const std::string& what, const at::Tensor& ours, const at::Tensor& ref,
                 double tol = kTol) {
    const double d = max_diff(ours, ref);
    INFO(what << ": max |diff| = " << d << " (tolerance " << tol << ")");
    CHECK(d <= tol);
}

std::vector<std::string> golden_models() {
    return {"tiny-gpt2", "tiny-llama", "tiny-llama-linear", "tiny-qwen2", "tiny-mistral"};
}

}  // namespace

TEST_CASE("golden: logits, hidden states and every hook_pattern match transformers", "[golden]") {
    for (const auto& name : golden_models()) {
        const fs::path dir = kFixtures / name;
        INFO("model " << name);
        REQUIRE(fs::exists(dir / "reference.safetensors"));
        auto m = model::Model::load(dir, {"cpu", "float32", true});
        auto ref = read_reference(dir / "reference.safetensors");
        const int L = m->config().n_layers;

        std::map<int, at::Tensor> pattern, resid_pre;
        at::Tensor final_norm;
        auto h1 = m->hooks().add_observer("blocks.*.attn.hook_pattern", [&](const HookName& n, const at::Tensor& t) {
            pattern[n.layer] = t.clone();
        });
        auto h2 = m->hooks().add_observer("blocks.*.hook_resid_pre", [&](const HookName& n, const at::Tensor& t) {
            resid_pre[n.layer] = t.clone();
        });
        auto h3 = m->hooks().add_observer("ln_final.hook_normalized",
                                          [&](const HookName&, const at::Tensor& t) { final_norm = t.clone(); });
        for (int p = 0; ref.count("p" + std::to_string(p) + ".input_ids"); ++p) {
            const std::string k = "p" + std::to_string(p) + ".";
            const at::Tensor ids = ref[k + "input_ids"].view({1, -1});
            const at::Tensor logits = m->forward(ids);
            check_close(name + " " + k + "logits", logits, ref[k + "logits"].view_as(logits));
            const at::Tensor hs = ref[k + "hidden_states"];  // [L+1, T, D]
            for (int l = 0; l < L; ++l)
                check_close(name + " " + k + "blocks." + std::to_string(l) + ".hook_resid_pre",
                            resid_pre[l][0], hs[l]);
            check_close(name + " " + k + "ln_final.hook_normalized", final_norm[0], hs[L]);
            const at::Tensor att = ref[k + "attentions"];  // [L, H, T, T]
            for (int l = 0; l < L; ++l)
                check_close(name + " " + k + "blocks." + std::to_string(l) + ".attn.hook_pattern",
                            pattern[l][0], att[l]);
        }
    }
}

TEST_CASE("golden: a left-padded batch matches transformers", "[golden]") {
    for (const auto& name : golden_models()) {
        const fs::path dir = kFixtures / name;
        INFO("model " << name);
        auto ref = read_reference(dir / "reference.safetensors");
        if (!ref.count("batch.input_ids")) continue;
        auto m = model::Model::load(dir, {"cpu", "float32", false});
        const at::Tensor mask = ref["batch.attention_mask"];
        const at::Tensor logits = m->forward(ref["batch.input_ids"], mask);
        // Compare real (unpadded) positions only: padded rows are meaningless in both.
        const at::Tensor real = mask.to(at::kBool).unsqueeze(-1).expand_as(logits);
        check_close(name + " batch logits (real positions)", logits.masked_select(real),
                    ref["batch.logits"].masked_select(real));
    }
}

TEST_CASE("golden: greedy generation reproduces transformers' generate()", "[golden]") {
    for (const auto& name : golden_models()) {
        const fs::path dir = kFixtures / name;
        INFO("model " << name);
        auto ref = read_reference(dir / "reference.safetensors");
        if (!ref.count("gen.greedy")) continue;
        auto m = model::Model::load(dir, {"cpu", "float32", false});
        const at::Tensor prompt = ref["p0.input_ids"].flatten();
        const at::Tensor full = ref["gen.greedy"].flatten();
        std::vector<std::int32_t> ids(prompt.data_ptr<std::int64_t>(),
                                      prompt.data_ptr<std::int64_t>() + prompt.numel());
        model::GenerateOptions o;
        o.max_new_tokens = static_cast<int>(full.numel() - prompt.numel());
        o.stop_at_eos = false;
        const auto r = model::generate(*m, ids, o);
        std::vector<std::int64_t> expect(full.data_ptr<std::int64_t>() + prompt.numel(),
                                         full.data_ptr<std::int64_t>() + full.numel());
        std::vector<std::int64_t> got(r.new_ids.begin(), r.new_ids.end());
        CHECK(got == expect);
    }
}

TEST_CASE("golden: sharded, bf16 and 4.x-config copies load and agree", "[golden]") {
    auto base = model::Model::load(kFixtures / "tiny-llama", {"cpu", "float32", false});
    auto ref = read_reference(kFixtures / "tiny-llama" / "reference.safetensors");
    const at::Tensor ids = ref["p1.input_ids"].view({1, -1});
    const at::Tensor want = ref["p1.logits"];
    for (const char* variant : {"tiny-llama-sharded", "tiny-llama-v4config"}) {
        INFO(variant);
        REQUIRE(fs::exists(kFixtures / variant));
        auto m = model::Model::load(kFixtures / variant, {"cpu", "float32", false});
        check_close(std::string(variant) + " logits", m->forward(ids), want.view({1, ids.size(1), -1}));
    }
    // bf16-stored weights: the reference was computed in fp32 from the bf16-rounded weights.
    const fs::path bf = kFixtures / "tiny-llama-bf16";
    REQUIRE(fs::exists(bf / "reference.safetensors"));
    auto mb = model::Model::load(bf, {"cpu", "float32", false});
    CHECK(mb->stored_dtype() == "BF16");
    auto rb = read_reference(bf / "reference.safetensors");
    const at::Tensor bids = rb["p0.input_ids"].view({1, -1});
    check_close("tiny-llama-bf16 upcast logits", mb->forward(bids), rb["p0.logits"].view({1, bids.size(1), -1}), 1e-3);
}
