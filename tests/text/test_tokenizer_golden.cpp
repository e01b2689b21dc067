// Golden tokenizer test: ids, token strings and decodes identical to Hugging Face `tokenizers`
// for every fixture tokenizer (GPT-2, Llama-3, Qwen2, sentencepiece/Mistral, legacy Llama-2,
// Metaspace) on the text set in tools/gpu/tokenizer_texts.json (unicode, emoji, CJK, whitespace
// runs, digits, code). Reference made by tools/gpu/make_fixtures.py.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "core/text/tokenizer.h"
#include "tests/catch.h"

using namespace attnscope;
namespace fs = std::filesystem;

TEST_CASE("golden: token ids, tokens and decodes identical to HF tokenizers", "[golden]") {
    const fs::path root = fs::path(ATTNSCOPE_SOURCE_DIR) / "tests/fixtures/hf";
    std::ifstream in(root / "tokenizer_reference.json");
    REQUIRE(in);
    const auto ref = nlohmann::json::parse(in);
    const auto& texts = ref.at("texts");
    REQUIRE(texts.size() >= 40);
    REQUIRE(ref.at("tokenizers").size() >= 6);
    for (const auto& [name, r] : ref.at("tokenizers").items()) {
        const text::Tokenizer tok = text::Tokenizer::load(root / name);
        int mismatches = 0;
        for (std::size_t i = 0; i < texts.size(); ++i) {
            const std::string s = texts[i].get<std::string>();
            INFO(name << " text #" << i << ": " << nlohmann::json(s).dump());
            const auto with = tok.encode(s, true);
            const auto without = tok.encode(s, false);
            const auto want_with = r.at("with_special")[i].get<std::vector<std::int32_t>>();
            CHECK(with == want_with);
            CHECK(without == r.at("without_special")[i].get<std::vector<std::int32_t>>());
            std::vector<std::string> toks;
            for (auto id : with) toks.push_back(tok.id_to_token(id));
            CHECK(toks == r.at("tokens")[i].get<std::vector<std::string>>());
            CHECK(tok.decode(want_with, false) == r.at("decode")[i].get<std::string>());
            CHECK(tok.decode(want_with, true) == r.at("decode_skip")[i].get<std::string>());
            if (with != want_with) ++mismatches;
        }
        INFO(name << ": " << mismatches << " of " << texts.size() << " texts differ");
        CHECK(mismatches == 0);
    }
}
