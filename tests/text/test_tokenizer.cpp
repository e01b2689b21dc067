// Unit tests of core/text (Tokenizer) and core/base/utf8. Expectations are worked out by hand on
// the tiny tokenizer.json files in tests/fixtures/tokenizers/ (256 byte tokens or sentencepiece
// pieces plus a handful of merges, small enough to follow the BPE rank order on paper) and on
// inline JSON built here. Not a comparison with the Python library: that lives in the
// reference-id test, once reference files from `tokenizers` are in tests/fixtures/hf/.
#include "tests/catch.h"

#include "core/base/error.h"
#include "core/base/utf8.h"
#include "core/text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using attnscope::text::Tokenizer;
using Ids = std::vector<std::int32_t>;
using json = nlohmann::json;

namespace {

std::string fixture_dir(const std::string& name) {
    return std::string(ATTNSCOPE_SOURCE_DIR) + "/tests/fixtures/tokenizers/" + name;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

json fixture_json(const std::string& name) {
    return json::parse(read_text(fixture_dir(name) + "/tokenizer.json"));
}

Tokenizer from(const json& j, const json& config = json()) {
    return Tokenizer::from_json(j.dump(), config.is_null() ? std::string() : config.dump(),
                                "test tokenizer.json");
}

// The message of the attnscope error `f` throws, or "" when it throws nothing.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const attnscope::Error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// A BPE model over single characters with the given merges and no pre-tokenizer, so that a
// whole input is one word. Merged tokens get ids after the characters.
json char_bpe(const std::vector<std::string>& chars,
              const std::vector<std::pair<std::string, std::string>>& merges) {
    json vocab = json::object();
    std::int32_t next = 0;
    for (const auto& c : chars) vocab[c] = next++;
    json merge_list = json::array();
    for (const auto& [a, b] : merges) {
        if (!vocab.contains(a + b)) vocab[a + b] = next++;
        merge_list.push_back(a + " " + b);
    }
    return json{{"version", "1.0"},
                {"added_tokens", json::array()},
                {"normalizer", nullptr},
                {"pre_tokenizer", nullptr},
                {"post_processor", nullptr},
                {"decoder", nullptr},
                {"model",
                 {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"vocab", vocab},
                  {"merges", merge_list}}}};
}

std::int32_t id_of(const Tokenizer& t, const std::string& token) {
    auto id = t.token_to_id(token);
    REQUIRE(id.has_value());
    return *id;
}

// Textbook BPE: repeatedly merge the adjacent pair with the lowest rank, leftmost on ties.
std::vector<std::string> naive_bpe(const std::string& word,
                                   const std::vector<std::pair<std::string, std::string>>& merges) {
    std::map<std::pair<std::string, std::string>, std::size_t> rank;
    for (std::size_t i = 0; i < merges.size(); ++i) rank.emplace(merges[i], i);
    std::vector<std::string> parts;
    for (char c : word) parts.emplace_back(1, c);
    while (true) {
        std::size_t best = SIZE_MAX;
        std::size_t at = 0;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
            auto it = rank.find({parts[i], parts[i + 1]});
            if (it != rank.end() && it->second < best) {
                best = it->second;
                at = i;
            }
        }
        if (best == SIZE_MAX) break;
        parts[at] += parts[at + 1];
        parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    return parts;
}

std::string english_text(std::size_t bytes) {
    static const char* words[] = {"the", "hello", "world", "quick", "brown", "fox", "jumps",
                                  "over", "lazy", "dog", "it's", "1234", "tokenizer", "aaa",
                                  "caf\xC3\xA9", "na\xC3\xAFve", "\xF0\x9F\x98\x80", "e.g.,",
                                  "(paren)", "\"quoted\"", "I'M", "don't", "\n", "  "};
    std::mt19937 rng(42);
    std::string out;
    while (out.size() < bytes) {
        out += words[rng() % (sizeof words / sizeof words[0])];
        out += (rng() % 7 == 0) ? ", " : " ";
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("utf8 validation reports the first bad byte", "[unit]") {
    namespace u = attnscope::utf8;
    CHECK(u::find_invalid("") == u::npos);
    CHECK(u::find_invalid("plain ascii") == u::npos);
    CHECK(u::find_invalid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == u::npos);
    CHECK(u::find_invalid("ab\xFF") == 2);
    CHECK(u::find_invalid("ab\x80") == 2);                 // lone continuation byte
    CHECK(u::find_invalid("x\xC0\x80") == 1);              // overlong NUL
    CHECK(u::find_invalid("x\xE0\x80\x80") == 1);          // overlong 3-byte
    CHECK(u::find_invalid("\xED\xA0\x80") == 0);           // surrogate U+D800
    CHECK(u::find_invalid("ok\xF4\x90\x80\x80") == 2);     // above U+10FFFF
    CHECK(u::find_invalid("ok\xE2\x82") == 2);             // truncated at the end
    CHECK(u::find_invalid("\xF4\x8F\xBF\xBF") == u::npos); // U+10FFFF itself
    CHECK(u::is_valid("\xEF\xBF\xBD"));
}

TEST_CASE("utf8 decode, encode and lossy rendering", "[unit]") {
    namespace u = attnscope::utf8;
    for (char32_t cp : {U'A', U'\u00E9', U'\u20AC', U'\U0001F600', U'\U0010FFFF'}) {
        std::string s = u::encode(cp);
        CHECK(s.size() == u::encoded_length(cp));
        std::size_t pos = 0;
        CHECK(u::decode(s, pos) == cp);
        CHECK(pos == s.size());
    }
    CHECK(u::encode(0xD800) == "\xEF\xBF\xBD");
    CHECK(u::count_code_points("a\xC3\xA9\xF0\x9F\x98\x80") == 3);
    // A truncated 4-byte sequence is one maximal subpart: one U+FFFD (Rust from_utf8_lossy).
    CHECK(u::to_valid_lossy("\xF0\x9F\x98" "a") == "\xEF\xBF\xBD" "a");
    CHECK(u::to_valid_lossy("\xFF\xFE") == "\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(u::to_valid_lossy("ok") == "ok");
    CHECK(u::escape_invalid("a\xC3\xA9\xFF") == "a\xC3\xA9\\xFF");
    // decode never stalls on garbage
    std::string garbage = "\xC3\xF0\x9F\x80";
    std::size_t pos = 0;
    int steps = 0;
    while (pos < garbage.size() && steps < 10) {
        u::decode(garbage, pos);
        ++steps;
    }
    CHECK(pos >= garbage.size());
}

TEST_CASE("byte-level alphabet is GPT-2's bytes_to_unicode", "[unit]") {
    // In gpt2_tiny the 256 byte tokens have id == byte value.
    Tokenizer t = Tokenizer::load(fixture_dir("gpt2_tiny"));
    CHECK(t.id_to_token(' ') == "\xC4\xA0");     // Ġ U+0120
    CHECK(t.id_to_token('\n') == "\xC4\x8A");    // Ċ U+010A
    CHECK(t.id_to_token(0) == "\xC4\x80");       // Ā U+0100
    CHECK(t.id_to_token('!') == "!");
    CHECK(t.id_to_token('~') == "~");
    CHECK(t.id_to_token(0x7F) == "\xC4\xA1");    // ġ U+0121
    CHECK(t.id_to_token(0xA0) == "\xC5\x82");    // ł U+0142
    CHECK(t.id_to_token(0xA1) == "\xC2\xA1");    // ¡ itself
    CHECK(t.id_to_token(0xAD) == "\xC5\x83");    // Ń U+0143
    CHECK(t.id_to_token(0xFF) == "\xC3\xBF");    // ÿ itself
    CHECK(t.token_display(' ') == " ");
    CHECK(t.token_display(0xC3) == "\\xC3");
    CHECK(t.token_display(258) == " the");
    CHECK(t.kind() == "byte_level_bpe");
}

TEST_CASE("GPT-2 style byte-level BPE encodes as tokenizers does", "[unit]") {
    Tokenizer t = Tokenizer::load(fixture_dir("gpt2_tiny"));
    // "hello": h+e (rank 1), l+l (3), he+ll (4), hell+o (5). " world": Ġ+w, o+r, Ġw+or, ...
    CHECK(t.encode("hello world") == Ids{261, 266});
    CHECK(t.encode("the") == Ids{'t', 257});
    CHECK(t.encode(" the") == Ids{258});       // Ġ+t (0) before h+e (1), then Ġt+he (2)
    CHECK(t.encode("aaa") == Ids{267, 'a'});    // equal ranks: leftmost pair first
    CHECK(t.encode("it's") == Ids{'i', 't', 268});
    CHECK(t.encode("a  b") == Ids{'a', ' ', ' ', 'b'});  // \s+(?!\S) leaves one space for " b"
    CHECK(t.encode("1234") == Ids{270, 269});   // one pre-token: 3+4 (13) first, then 1+2 (14)
    CHECK(t.encode("caf\xC3\xA9") == Ids{'c', 'a', 'f', 0xC3, 0xA9});
    CHECK(t.encode("\xF0\x9F\x98\x80") == Ids{0xF0, 0x9F, 0x98, 0x80});
    CHECK(t.encode("").empty());
    CHECK(t.encode("hello<|endoftext|> world") == Ids{261, 272, 266});
    CHECK(t.encode("hello world", false) == Ids{261, 266});
    CHECK(t.bos_id() == 272);  // GPT-2 convention: <|endoftext|> is both
    CHECK(t.eos_id() == 272);
    CHECK(t.vocab_size() == 273);
    CHECK(t.is_special(272));
    CHECK(!t.is_special(261));
    CHECK(t.token_to_id("Ġworld") == 266);
    CHECK(!t.token_to_id("nope").has_value());
}

TEST_CASE("byte-level decode round-trips and replaces broken UTF-8", "[unit]") {
    Tokenizer t = Tokenizer::load(fixture_dir("gpt2_tiny"));
    CHECK(t.decode({261, 266}) == "hello world");
    CHECK(t.decode({261, 272, 266}) == "hello<|endoftext|> world");
    CHECK(t.decode({261, 272, 266}, true) == "hello world");
    CHECK(t.decode({0xC3, 0xA9}) == "\xC3\xA9");
    CHECK(t.decode({0xC3}) == "\xEF\xBF\xBD");            // lone lead byte
    CHECK(t.decode({0xF0, 0x9F, 0x98, 'a'}) == "\xEF\xBF\xBD" "a");
    CHECK(t.decode({}).empty());
    const std::string text = english_text(5000) + "\t\r\n \xE2\x80\xA8 end";
    CHECK(t.decode(t.encode(text)) == text);
}

TEST_CASE("Llama-3 style: Split regex, ignore_merges, BOS template", "[unit]") {
    Tokenizer t = Tokenizer::load(fixture_dir("llama3_tiny"));
    const std::int32_t bos = 273;
    CHECK(t.encode("hello world") == Ids{bos, 261, 266});
    CHECK(t.encode("hello world", false) == Ids{261, 266});
    CHECK(t.encode("") == Ids{bos});
    // \p{N}{1,3}: "123" + "4", unlike GPT-2's single "1234" pre-token.
    CHECK(t.encode("1234", false) == Ids{271, '4'});
    // ignore_merges: "abc" is in the vocabulary but no merge builds it.
    CHECK(t.encode("abc", false) == Ids{272});
    CHECK(t.encode("abcd", false) == Ids{'a', 'b', 'c', 'd'});
    // (?i:'s) also takes "'S"; the merge ' + s is lower-case only.
    CHECK(t.encode("it'S", false) == Ids{'i', 't', '\'', 'S'});
    CHECK(t.encode("it's", false) == Ids{'i', 't', 268});
    CHECK(t.encode("<|begin_of_text|>hello", true) == Ids{bos, bos, 261});
    CHECK(t.bos_id() == bos);
    CHECK(t.eos_id() == 274);
    CHECK(t.decode(t.encode("hello world")) == "<|begin_of_text|>hello world");
    CHECK(t.decode(t.encode("hello world"), true) == "hello world");
    const std::string text = english_text(5000);
    CHECK(t.decode(t.encode(text), true) == text);
}

TEST_CASE("Qwen2 style: NFC normalizer, single digits, ChatML tokens", "[unit]") {
    Tokenizer t = Tokenizer::load(fixture_dir("qwen2_tiny"));
    CHECK(t.encode("e\xCC\x81") == Ids{0xC3, 0xA9});   // e + U+0301 -> é
    CHECK(t.encode("1234") == Ids{'1', '2', '3', '4'});
    CHECK(t.encode("<|im_start|>user\nhello<|im_end|>") ==
          Ids{273, 'u', 's', 'e', 'r', '\n', 261, 274});
    CHECK(t.decode({273, 261, 274}, true) == "hello");
    CHECK(t.decode({273, 261, 274}) == "<|im_start|>hello<|im_end|>");
    // No template, no tokenizer_config.json: the well-known <|endoftext|> is both.
    CHECK(t.bos_id() == 272);
    CHECK(t.eos_id() == 272);
}

TEST_CASE("sentencepiece-style (Llama-2 legacy): prepend, byte fallback, BOS", "[unit]") {
    Tokenizer t = Tokenizer::load(fixture_dir("llama2_tiny"));
    CHECK(t.kind() == "sentencepiece_bpe");
    // Normalizer: "▁" prepended, spaces -> "▁"; the whole text is one BPE word.
    CHECK(t.encode("hello world") == Ids{1, 271, 276});
    CHECK(t.encode("hello world", false) == Ids{271, 276});
    // "é" is not a piece: its bytes <0xC3> <0xA9> (ids 3 + byte).
    CHECK(t.encode("h\xC3\xA9") == Ids{1, 267, 3 + 0xC3, 3 + 0xA9});
    // Added tokens are cut out before normalization, so each part gets its own "▁".
    CHECK(t.encode("<s>hello") == Ids{1, 1, 271});
    CHECK(t.encode("hello</s>") == Ids{1, 271, 2});
    CHECK(t.encode("") == Ids{1});
    CHECK(t.encode(" the", false) == Ids{259, 259, 3 + 't', id_of(t, "h"), id_of(t, "e")});
    CHECK(t.bos_id() == 1);
    CHECK(t.eos_id() == 2);
    // Decoder: ▁ -> space, bytes fused, one leading space stripped.
    CHECK(t.decode({1, 271, 276}) == "<s> hello world");
    CHECK(t.decode({1, 271, 276}, true) == "hello world");
    CHECK(t.decode({267, 3 + 0xC3, 3 + 0xA9}) == "h\xC3\xA9");
    CHECK(t.decode({267, 3 + 0xC3}) == "h\xEF\xBF\xBD");   // one U+FFFD per bad byte
    CHECK(t.decode({3 + 0xC3, 3 + 0xC3}) == "\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(t.token_display(271) == " hello");
    CHECK(t.token_display(3 + 0x41) == "A");
    CHECK(t.token_display(3 + 0xC3) == "\\xC3");
    CHECK(t.token_display(1) == "<s>");
    const std::string text = "caf\xC3\xA9 \xF0\x9F\x98\x80 hello  world\nbye";
    CHECK(t.decode(t.encode(text), true) == text);
}

TEST_CASE("Metaspace pre-tokenizer with prepend_scheme first (Mistral)", "[unit]") {
    Tokenizer t = Tokenizer::load(fixture_dir("mistral_tiny"));
    CHECK(t.encode("hello world") == Ids{1, 271, 276});
    CHECK(t.encode(" hello", false) == Ids{271});       // already starts with ▁: no prepend
    // After an added token the text is not at offset 0: no "▁" (legacy=false behaviour).
    CHECK(t.encode("<s>hello", false) ==
          Ids{1, id_of(t, "h"), id_of(t, "e"), id_of(t, "ll"), id_of(t, "o")});
    // Metaspace decoder: every ▁ of the first token is dropped, later ones become spaces.
    CHECK(t.decode({271, 276}) == "hello world");
    CHECK(t.decode({1, 271, 276}) == "<s> hello world");

    json j = fixture_json("mistral_tiny");
    SECTION("prepend_scheme always and split") {
        j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "▁"},
                              {"prepend_scheme", "always"}, {"split", true}};
        Tokenizer a = from(j);
        CHECK(a.encode("<s>hello", false) == Ids{1, 271});
        CHECK(a.encode("hello  world", false) == Ids{271, 259, 276});
    }
    SECTION("legacy add_prefix_space false means never") {
        j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "▁"},
                              {"add_prefix_space", false}};
        Tokenizer a = from(j);
        CHECK(a.encode("hello world", false) ==
              Ids{id_of(a, "h"), id_of(a, "e"), id_of(a, "ll"), id_of(a, "o"), 276});
    }
}

TEST_CASE("BOS / EOS of the Hugging Face fixture tokenizers", "[unit]") {
    // tests/fixtures/hf: written by transformers; ids checked in test_tokenizer_golden.cpp.
    const std::string hf = std::string(ATTNSCOPE_SOURCE_DIR) + "/tests/fixtures/hf/";
    Tokenizer gpt2 = Tokenizer::load(hf + "tiny-gpt2");
    CHECK(gpt2.bos_id() == gpt2.token_to_id("<|endoftext|>"));
    CHECK(gpt2.eos_id() == gpt2.token_to_id("<|endoftext|>"));
    CHECK(gpt2.kind() == "byte_level_bpe");
    Tokenizer llama = Tokenizer::load(hf + "tiny-llama");
    CHECK(llama.bos_id() == llama.token_to_id("<|begin_of_text|>"));
    CHECK(llama.eos_id() == llama.token_to_id("<|end_of_text|>"));
    CHECK(llama.encode("Hello", true).front() == *llama.bos_id());
    Tokenizer qwen = Tokenizer::load(hf + "tiny-qwen2");
    CHECK(qwen.eos_id() == qwen.token_to_id("<|endoftext|>"));
    CHECK(qwen.vocab_size() == 503);
    Tokenizer mistral = Tokenizer::load(hf + "tiny-mistral");
    CHECK(mistral.bos_id() == 1);
    CHECK(mistral.eos_id() == 2);
    CHECK(mistral.kind() == "sentencepiece_bpe");
    CHECK(mistral.is_special(1));
}

TEST_CASE("tokenizer_config.json add_bos_token / add_eos_token override the template",
          "[unit]") {
    json j = fixture_json("llama2_tiny");
    CHECK(from(j, json{{"add_bos_token", true}, {"add_eos_token", true}}).encode("hello") ==
          Ids{1, 271, 2});
    CHECK(from(j, json{{"add_bos_token", false}}).encode("hello") == Ids{271});
    CHECK(from(j, json{{"add_eos_token", true}}).encode("hello") == Ids{1, 271, 2});
    CHECK(from(j, json{{"add_eos_token", true}}).encode("hello", false) == Ids{271});
    CHECK(from(j, json{{"bos_token", nullptr}}).bos_id() == std::nullopt);
    CHECK(from(j, json{{"eos_token", {{"content", "<s>"}}}}).eos_id() == 1);
    CHECK(error_of([&] { from(j, json{{"add_eos_token", "yes"}}); }).find("add_eos_token") !=
          std::string::npos);
    CHECK_THROWS_AS(from(j, json{{"add_bos_token", true}, {"bos_token", nullptr}}),
                    attnscope::ConfigError);
    CHECK_THROWS_AS(Tokenizer::from_json(j.dump(), "{not json", "t"), attnscope::ConfigError);
}

TEST_CASE("added tokens: leftmost-longest, lstrip, rstrip, single_word, normalized", "[unit]") {
    json j = fixture_json("gpt2_tiny");
    auto add = [&](int id, const std::string& content, bool lstrip, bool rstrip, bool single,
                   bool normalized, bool special) {
        j["added_tokens"].push_back({{"id", id}, {"content", content}, {"lstrip", lstrip},
                                     {"rstrip", rstrip}, {"single_word", single},
                                     {"normalized", normalized}, {"special", special}});
    };
    SECTION("longest match wins at the leftmost position") {
        add(300, "<a>", false, false, false, false, true);
        add(301, "<a><b>", false, false, false, false, true);
        Tokenizer t = from(j);
        CHECK(t.encode("x<a><b>y<a>") == Ids{'x', 301, 'y', 300});
        CHECK(t.vocab_size() == 302);
    }
    SECTION("lstrip and rstrip absorb whitespace") {
        add(300, "<mask>", true, false, false, false, true);
        add(301, "<sep>", false, true, false, false, true);
        Tokenizer t = from(j);
        CHECK(t.encode("a <mask> b") == Ids{'a', 300, ' ', 'b'});
        CHECK(t.encode("a <sep>  b") == Ids{'a', ' ', 301, 'b'});
    }
    SECTION("single_word only matches between non-word characters") {
        add(300, "cat", false, false, true, false, false);
        Tokenizer t = from(j);
        CHECK(t.encode("cat") == Ids{300});
        CHECK(t.encode("a cat.") == Ids{'a', ' ', 300, '.'});
        CHECK(t.encode("concat") == Ids{'c', 'o', 'n', 'c', 'a', 't'});
        CHECK(t.encode("cats") == Ids{'c', 'a', 't', 's'});
    }
    SECTION("normalized tokens are matched in normalized text") {
        json s = fixture_json("llama2_tiny");
        // Its normalized form is "▁xy" (Prepend + Replace), so it matches after a space only.
        s["added_tokens"].push_back({{"id", 400}, {"content", "xy"}, {"lstrip", false},
                                     {"rstrip", false}, {"single_word", false},
                                     {"normalized", true}, {"special", false}});
        Tokenizer t = from(s);
        CHECK(t.encode("xy hello", false) == Ids{400, 271});
        CHECK(t.encode("hello xy", false) == Ids{271, 400});
        CHECK(t.encode("axy", false) ==
              Ids{259, id_of(t, "a"), 3 + 'x', 3 + 'y'});
        CHECK(t.decode({400}) == "xy");
    }
}

TEST_CASE("BPE merge order equals textbook rank-ordered BPE", "[unit]") {
    // Random merge tables over a 3-letter alphabet; every merge is a valid vocabulary entry.
    std::mt19937 rng(7);
    for (int round = 0; round < 20; ++round) {
        std::vector<std::string> tokens{"a", "b", "c"};
        std::vector<std::pair<std::string, std::string>> merges;
        for (int i = 0; i < 40; ++i) {
            const std::string& x = tokens[rng() % tokens.size()];
            const std::string& y = tokens[rng() % tokens.size()];
            if (x.size() + y.size() > 6) continue;
            bool seen = false;
            for (const auto& m : merges) seen = seen || (m.first == x && m.second == y);
            if (seen) continue;
            merges.emplace_back(x, y);
            if (std::find(tokens.begin(), tokens.end(), x + y) == tokens.end()) {
                tokens.push_back(x + y);
            }
        }
        Tokenizer t = from(char_bpe({"a", "b", "c"}, merges));
        for (int w = 0; w < 30; ++w) {
            std::string word;
            std::size_t len = 1 + rng() % 24;
            for (std::size_t k = 0; k < len; ++k) word.push_back("abc"[rng() % 3]);
            Ids expected;
            for (const auto& part : naive_bpe(word, merges)) expected.push_back(id_of(t, part));
            CHECK(t.encode(word) == expected);
        }
    }
}

TEST_CASE("unk token, fuse_unk, dropped characters, old and new merge formats", "[unit]") {
    json j = char_bpe({"<unk>", "a", "b"}, {{"a", "b"}});
    SECTION("no unk token: unknown characters are dropped before merging") {
        CHECK(from(j).encode("axb") == Ids{3});
    }
    SECTION("unk, not fused") {
        j["model"]["unk_token"] = "<unk>";
        CHECK(from(j).encode("axyb") == Ids{1, 0, 0, 2});
    }
    SECTION("unk, fused") {
        j["model"]["unk_token"] = "<unk>";
        j["model"]["fuse_unk"] = true;
        CHECK(from(j).encode("axyb") == Ids{1, 0, 2});
        CHECK(from(j).encode("x\xC3\xA9y") == Ids{0});
    }
    SECTION("unk token missing from the vocabulary") {
        j["model"]["unk_token"] = "<nope>";
        Tokenizer t = from(j);
        CHECK(t.encode("ab") == Ids{3});
        CHECK(contains(error_of([&] { t.encode("x"); }), "<nope>"));
    }
    SECTION("merges as pairs") {
        j["model"]["merges"] = json::array({json::array({"a", "b"})});
        CHECK(from(j).encode("abab") == Ids{3, 3});
    }
}

TEST_CASE("Split pre-tokenizer delimiter behaviours", "[unit]") {
    json j = char_bpe({"a", "b", "-"}, {{"a", "-"}, {"-", "b"}, {"a-", "b"}, {"-", "-"}});
    Tokenizer whole = from(j);
    const auto a = id_of(whole, "a"), b = id_of(whole, "b"), d = id_of(whole, "-");
    const auto ad = id_of(whole, "a-"), db = id_of(whole, "-b"), dd = id_of(whole, "--");
    CHECK(whole.encode("a-b") == Ids{id_of(whole, "a-b")});
    auto with = [&](const std::string& behavior, bool invert) {
        json k = j;
        k["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "-"}}},
                              {"behavior", behavior}, {"invert", invert}};
        return from(k);
    };
    CHECK(with("Isolated", false).encode("a-b") == Ids{a, d, b});
    CHECK(with("Removed", false).encode("a-b") == Ids{a, b});
    CHECK(with("MergedWithPrevious", false).encode("a-b") == Ids{ad, b});
    CHECK(with("MergedWithNext", false).encode("a-b") == Ids{a, db});
    CHECK(with("Contiguous", false).encode("a--b") == Ids{a, dd, b});
    CHECK(with("Isolated", false).encode("a--b") == Ids{a, d, d, b});
    CHECK(with("Removed", true).encode("a-b") == Ids{d});
    json r = j;
    r["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "-+"}}},
                          {"behavior", "Isolated"}, {"invert", false}};
    CHECK(from(r).encode("a--b") == Ids{a, dd, b});
}

TEST_CASE("Digits pre-tokenizer and simple normalizers", "[unit]") {
    json j = char_bpe({"1", "2", "x", " ", "X", "a"}, {{"1", "2"}, {"2", "x"}});
    const auto one = 0, two = 1, x = 2, twelve = 6, twox = 7;
    j["pre_tokenizer"] = {{"type", "Digits"}, {"individual_digits", true}};
    CHECK(from(j).encode("12x") == Ids{one, two, x});
    j["pre_tokenizer"] = {{"type", "Digits"}, {"individual_digits", false}};
    CHECK(from(j).encode("12x") == Ids{twelve, x});
    j["pre_tokenizer"] = nullptr;
    CHECK(from(j).encode("12x") == Ids{twelve, x});

    j["normalizer"] = {{"type", "Lowercase"}};
    CHECK(from(j).encode("X") == Ids{x});
    j["normalizer"] = {{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}};
    CHECK(from(j).encode("  x \n") == Ids{x});
    j["normalizer"] = {{"type", "NFKC"}};
    CHECK(from(j).encode("\xEF\xBC\x91") == Ids{one});  // fullwidth 1
    j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"Regex", "[0-9]"}}}, {"content", "a"}};
    CHECK(from(j).encode("1x2") == Ids{5, x, 5});
    (void)twox;
}

TEST_CASE("invalid input and unsupported files are clear errors", "[unit]") {
    Tokenizer t = Tokenizer::load(fixture_dir("gpt2_tiny"));
    std::string msg = error_of([&] { t.encode(std::string("ab\xFF" "cd")); });
    CHECK(contains(msg, "UTF-8"));
    CHECK(contains(msg, "offset 2"));
    CHECK_THROWS_AS(t.encode(std::string("\xED\xA0\x80")), attnscope::TokenizerError);
    CHECK_THROWS_AS(t.decode({100000}), attnscope::TokenizerError);
    CHECK_THROWS_AS(t.decode({-1}), attnscope::TokenizerError);
    CHECK_THROWS_AS(t.id_to_token(-5), attnscope::TokenizerError);

    CHECK_THROWS_AS(Tokenizer::load(fixture_dir("does_not_exist")), attnscope::IoError);
    CHECK_THROWS_AS(Tokenizer::from_json("{", "", "t"), attnscope::TokenizerError);
    CHECK_THROWS_AS(Tokenizer::from_json("[]", "", "t"), attnscope::TokenizerError);

    json j = fixture_json("gpt2_tiny");
    auto error_with = [&](const char* key, const json& value) {
        json k = j;
        k[key] = value;
        return error_of([&] { from(k); });
    };
    msg = error_with("pre_tokenizer", {{"type", "BertPreTokenizer"}});
    CHECK(contains(msg, "pre_tokenizer type 'BertPreTokenizer' is not supported"));
    CHECK(contains(msg, "supported: ByteLevel"));
    CHECK(contains(msg, "test tokenizer.json"));
    msg = error_with("pre_tokenizer", {{"type", "Sequence"},
                                       {"pretokenizers", {{{"type", "Whitespace"}}}}});
    CHECK(contains(msg, "pre_tokenizer.pretokenizers[0]"));
    CHECK(contains(error_with("normalizer", {{"type", "BertNormalizer"}}), "BertNormalizer"));
    CHECK(contains(error_with("decoder", {{"type", "WordPiece"}}), "WordPiece"));
    CHECK(contains(error_with("post_processor", {{"type", "Nope"}}), "Nope"));
    CHECK(contains(error_with("pre_tokenizer", {{"type", "Split"},
                                                {"pattern", {{"Regex", "(unclosed"}}},
                                                {"behavior", "Isolated"}}),
                   "regex"));
    CHECK(contains(error_with("model", {{"type", "WordPiece"}, {"vocab", json::object()}}),
                   "WordPiece"));

    auto model_error = [&](const char* key, const json& value) {
        json k = j;
        k["model"][key] = value;
        return error_of([&] { from(k); });
    };
    CHECK(contains(model_error("dropout", 0.1), "dropout"));
    CHECK(contains(model_error("continuing_subword_prefix", "##"), "continuing_subword_prefix"));
    CHECK(contains(model_error("end_of_word_suffix", "</w>"), "end_of_word_suffix"));
    CHECK(contains(model_error("merges", json::array({"Ġ zz"})), "zz"));
    CHECK(contains(model_error("merges", json::array({"a b c"})), "merges[0]"));
    CHECK(contains(model_error("vocab", json{{"a", -3}}), "'a'"));
    json nested = json{{"type", "NFC"}};
    for (int i = 0; i < 200; ++i) nested = {{"type", "Sequence"}, {"normalizers", {nested}}};
    CHECK(contains(error_with("normalizer", nested), "nested"));
    json missing_special = fixture_json("llama3_tiny");
    missing_special["post_processor"]["processors"][1]["special_tokens"] = json::object();
    CHECK(contains(error_of([&] { from(missing_special); }), "<|begin_of_text|>"));
}

TEST_CASE("arbitrary bytes never crash and valid text always round-trips", "[unit]") {
    std::mt19937 rng(1234);
    Tokenizer gpt2 = Tokenizer::load(fixture_dir("gpt2_tiny"));
    Tokenizer llama3 = Tokenizer::load(fixture_dir("llama3_tiny"));
    Tokenizer llama2 = Tokenizer::load(fixture_dir("llama2_tiny"));
    Tokenizer mistral = Tokenizer::load(fixture_dir("mistral_tiny"));
    Tokenizer qwen2 = Tokenizer::load(fixture_dir("qwen2_tiny"));
    const char* pieces[] = {" ", "  ", "\n", "\r\n", "\t", "a", "Z", "1", "'s", "'S", "!",
                            "\xC3\xA9", "e\xCC\x81", "\xE2\x96\x81", "\xF0\x9F\x98\x80",
                            "\xE4\xB8\xAD", "<s>", "</s>", "<|endoftext|>", "<|im_end|>", "<0x41>",
                            "\xEF\xBC\x91", "\xC2\xA0", "\xE2\x80\xA8"};
    for (int i = 0; i < 300; ++i) {
        std::string text;
        std::size_t n = rng() % 20;
        for (std::size_t k = 0; k < n; ++k) {
            text += pieces[rng() % (sizeof pieces / sizeof *pieces)];
        }
        // Byte-level BPE is lossless.
        CHECK(gpt2.decode(gpt2.encode(text)) == text);
        CHECK(llama3.decode(llama3.encode(text, false)) == text);
        // The others normalize (NFC, "▁"), so only check that they run.
        CHECK(error_of([&] { qwen2.decode(qwen2.encode(text)); }).empty());
        CHECK(error_of([&] { llama2.decode(llama2.encode(text), true); }).empty());
        CHECK(error_of([&] { mistral.decode(mistral.encode(text)); }).empty());

        std::string bytes;
        std::size_t m = rng() % 16;
        for (std::size_t k = 0; k < m; ++k) bytes.push_back(static_cast<char>(rng() % 256));
        const bool valid = attnscope::utf8::is_valid(bytes);
        for (const Tokenizer* t : {&gpt2, &llama2, &qwen2}) {
            std::string msg = error_of([&] { t->encode(bytes); });
            CHECK(msg.empty() == valid);
        }
    }
}

TEST_CASE("long inputs and concurrent use", "[unit]") {
    Tokenizer gpt2 = Tokenizer::load(fixture_dir("gpt2_tiny"));
    Tokenizer llama2 = Tokenizer::load(fixture_dir("llama2_tiny"));
    const std::string text = english_text(100 * 1024);
    Ids ids = gpt2.encode(text);
    CHECK(gpt2.decode(ids) == text);
    // Sentencepiece style without a pre-tokenizer: the whole input is one BPE word.
    CHECK(llama2.decode(llama2.encode(text), true) == text);
    CHECK(gpt2.encode(std::string(200000, ' ')).size() == 200000);
    CHECK(gpt2.encode(std::string(100000, 'a')).size() == 50000);

    std::vector<Ids> results(4);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < results.size(); ++i) {
        threads.emplace_back([&, i] { results[i] = gpt2.encode(text.substr(0, 20000)); });
    }
    for (auto& th : threads) th.join();
    Ids expected = gpt2.encode(text.substr(0, 20000));
    for (const Ids& r : results) CHECK(r == expected);
}

// Fuzzing finding F-1 (docs/fuzzing.md): a number beyond double range made nlohmann-json throw
// out_of_range (not parse_error), which escaped Tokenizer::from_json as a non-attnscope
// exception. The fuzzer's input is fuzz/findings/tokenizer_json/f1-number-overflow-1e999.json.
TEST_CASE("tokenizer: numbers out of double range are a TokenizerError, not a JSON exception",
          "[text][fuzz]") {
    const std::string input = read_text(std::string(ATTNSCOPE_SOURCE_DIR) +
                                        "/fuzz/findings/tokenizer_json/f1-number-overflow-1e999.json");
    REQUIRE(input.find("1e999") != std::string::npos);
    auto message_of = [](const std::string& tok, const std::string& cfg) -> std::string {
        try {
            Tokenizer::from_json(tok, cfg, "t.json");
        } catch (const attnscope::TokenizerError& e) {
            return std::string("TokenizerError: ") + e.what();
        } catch (const attnscope::ConfigError& e) {
            return std::string("ConfigError: ") + e.what();
        }
        return "no error";
    };
    CHECK_CONTAINS(message_of(input, ""), "TokenizerError: t.json: not valid JSON");
    CHECK_CONTAINS(message_of(R"({"model": {"type": "BPE", "dropout": 1e999}})", ""),
                   "number overflow");
    CHECK_CONTAINS(message_of(read_text(fixture_dir("gpt2_tiny") + "/tokenizer.json"),
                              R"({"add_bos_token": -1e400})"),
                   "ConfigError");
}
