// [gpu] tests: the runner on CUDA against the CPU runner and the Hugging Face reference.
// Without a CUDA build or device they are skipped with a warning (CI has no GPU); they run in
// tools/gpu/run.sh on the GPU machine.
#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>

#include "core/format/safetensors.h"
#include "core/model/generate.h"
#include "core/model/model.h"
#include "tests/catch.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {
const fs::path kFixtures = fs::path(ATTNSCOPE_SOURCE_DIR) / "tests/fixtures/hf";

at::Tensor ref_tensor(const fs::path& file, const std::string& name) {
    auto f = format::SafetensorsFile::open(file);
    for (const auto& t : f.tensors())
        if (t.name == name) {
            at::Tensor x = at::empty(t.shape, at::TensorOptions().dtype(
                                                  t.dtype == format::DType::kI64 ? at::kLong : at::kFloat));
            std::memcpy(x.data_ptr(), t.data, t.nbytes);
            return x;
        }
    FAIL("no tensor " << name);
    return {};
}
}  // namespace

TEST_CASE("gpu: CUDA forward matches the HF reference (fp32) and stays close in bf16/fp16", "[gpu]") {
    if (!at::hasCUDA()) {
        WARN("no CUDA device or CUDA LibTorch: [gpu] test skipped");
        return;
    }
    for (const char* name : {"tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-mistral"}) {
        INFO(name);
        const fs::path dir = kFixtures / name;
        const at::Tensor ids = ref_tensor(dir / "reference.safetensors", "p2.input_ids").view({1, -1});
        const at::Tensor want = ref_tensor(dir / "reference.safetensors", "p2.logits");
        auto m32 = model::Model::load(dir, {"cuda", "float32", false});
        at::Tensor pattern;
        {
            auto h = m32->hooks().add_observer("blocks.1.attn.hook_pattern",
                                               [&](const HookName&, const at::Tensor& p) { pattern = p; });
            const at::Tensor got = m32->forward(ids).cpu();
            CHECK(pattern.device().is_cuda());
            // TF32 may be on for CUDA matmuls; allow 1e-3.
            CHECK((got - want.view_as(got)).abs().max().item<double>() < 1e-3);
        }
        const at::Tensor fused = m32->forward(ids).cpu();  // SDPA path, no hooks
        CHECK((fused - want.view_as(fused)).abs().max().item<double>() < 1e-3);
        for (const char* dt : {"bfloat16", "float16"}) {
            auto m = model::Model::load(dir, {"cuda", dt, false});
            const at::Tensor got = m->forward(ids).cpu();
            const double scale = want.abs().max().item<double>();
            INFO(dt);
            CHECK((got - want.view_as(got)).abs().max().item<double>() < 0.05 * scale + 0.05);
        }
        // Generation on CUDA reproduces HF greedy tokens.
        const at::Tensor full = ref_tensor(dir / "reference.safetensors", "gen.greedy").flatten();
        const at::Tensor p0 = ref_tensor(dir / "reference.safetensors", "p0.input_ids").flatten();
        std::vector<std::int32_t> prompt(p0.data_ptr<std::int64_t>(), p0.data_ptr<std::int64_t>() + p0.numel());
        model::GenerateOptions o;
        o.max_new_tokens = static_cast<int>(full.numel() - p0.numel());
        o.stop_at_eos = false;
        auto r = model::generate(*m32, prompt, o);
        std::vector<std::int64_t> got(r.new_ids.begin(), r.new_ids.end());
        std::vector<std::int64_t> expect(full.data_ptr<std::int64_t>() + p0.numel(),
                                         full.data_ptr<std::int64_t>() + full.numel());
        CHECK(got == expect);
    }
}
