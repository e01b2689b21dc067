// libFuzzer target: Tokenizer::encode on arbitrary bytes, for each of the tokenizer families in
// tests/fixtures/tokenizers (byte-level BPE: GPT-2, Llama-3, Qwen2; sentencepiece-style BPE:
// Llama-2, Mistral) and the tiny Hugging Face ones in tests/fixtures/hf. The first byte picks
// the tokenizer and the options; the rest is the text. Checks: every id is in the vocabulary
// and decodes; for valid UTF-8 input encode never throws.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/utf8.h"
#include "core/text/tokenizer.h"
#include "fuzz/fuzz_util.h"

using namespace attnscope;

namespace {
std::vector<std::unique_ptr<text::Tokenizer>> g_tokenizers;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    for (const char* dir : {"tests/fixtures/tokenizers/gpt2_tiny", "tests/fixtures/tokenizers/llama2_tiny",
                            "tests/fixtures/tokenizers/llama3_tiny", "tests/fixtures/tokenizers/mistral_tiny",
                            "tests/fixtures/tokenizers/qwen2_tiny", "tests/fixtures/hf/tok-metaspace",
                            "tests/fixtures/hf/tok-spm-legacy", "tests/fixtures/hf/tiny-gpt2"}) {
        g_tokenizers.push_back(std::make_unique<text::Tokenizer>(
            text::Tokenizer::load(fuzz::source_dir() + "/" + dir)));
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const text::Tokenizer& t = *g_tokenizers[data[0] % g_tokenizers.size()];
    const bool special = (data[0] / g_tokenizers.size()) & 1;
    const std::string_view s(reinterpret_cast<const char*>(data + 1), size - 1);
    std::vector<std::int32_t> ids;
    try {
        ids = t.encode(s, special);
    } catch (const TokenizerError&) {
        if (utf8::is_valid(s)) __builtin_trap();  // documented: throws only for invalid UTF-8
        return 0;
    }
    for (const auto id : ids) {
        if (id < 0 || id >= t.vocab_size()) __builtin_trap();
        (void)t.token_display(id);
    }
    (void)t.decode(ids, false);
    return 0;
}
