// Golden test for the bundled sample models (samples/models): the C++ runner on CPU reproduces
// Hugging Face logits and attention patterns in fp32 after upcasting the stored bf16 weights.
// Reference: tools/samples/make_reference.py -> tests/fixtures/samples/.
#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>

#include "core/format/safetensors.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include "tests/catch.h"

using namespace attnscope;
namespace fs = std::filesystem;

TEST_CASE("golden: the bundled sample models reproduce transformers (fp32, 1e-3)", "[golden]") {
    const fs::path root(ATTNSCOPE_SOURCE_DIR);
    for (const char* name : {"tinydeb-llama", "tinydeb-gpt2"}) {
        INFO(name);
        const fs::path ref_file = root / "tests/fixtures/samples" / (std::string(name) + ".reference.safetensors");
        REQUIRE(fs::exists(ref_file));
        auto m = model::Model::load(root / "samples/models" / name, {"cpu", "float32", true});
        std::map<std::string, at::Tensor> ref;
        auto f = format::SafetensorsFile::open(ref_file);
        for (const auto& t : f.tensors()) {
            at::Tensor x = at::empty(t.shape, at::TensorOptions().dtype(
                                                  t.dtype == format::DType::kI64 ? at::kLong : at::kFloat));
            std::memcpy(x.data_ptr(), t.data, t.nbytes);
            ref[t.name] = x;
        }
        std::ifstream meta(root / "tests/fixtures/samples" / (std::string(name) + ".reference.json"));
        REQUIRE(meta);
        const auto prompts = nlohmann::json::parse(meta).at("prompts");
        std::map<int, at::Tensor> pattern;
        auto h = m->hooks().add_observer("blocks.*.attn.hook_pattern",
                                         [&](const HookName& n, const at::Tensor& p) { pattern[n.layer] = p[0].clone(); });
        for (int i = 0; ref.count("p" + std::to_string(i) + ".input_ids"); ++i) {
            const std::string k = "p" + std::to_string(i) + ".";
            const at::Tensor ids = ref[k + "input_ids"];
            // The C++ tokenizer must produce HF's ids from the same text.
            const auto ours = m->require_tokenizer().encode(prompts.at(i).get<std::string>());
            CHECK(std::vector<std::int64_t>(ours.begin(), ours.end()) ==
                  std::vector<std::int64_t>(ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + ids.numel()));
            const at::Tensor logits = m->forward(ids.view({1, -1}))[0];
            const double d = (logits - ref[k + "logits"]).abs().max().item<double>();
            INFO(k << "logits max |diff| = " << d << " (tolerance 1e-3)");
            CHECK(d < 1e-3);
            double dp = 0;
            for (int l = 0; l < m->config().n_layers; ++l)
                dp = std::max(dp, (pattern[l] - ref[k + "attentions"][l]).abs().max().item<double>());
            INFO(k << "hook_pattern max |diff| over layers = " << dp << " (tolerance 1e-3)");
            CHECK(dp < 1e-3);
        }
    }
}
