// Tokenizer: loads a Hugging Face tokenizer.json (the `tokenizers` library's serialisation) and
// reproduces its token ids exactly for the families attnscope runs: byte-level BPE (GPT-2,
// Llama-3, Qwen2 regex splits) and sentencepiece-style BPE (Metaspace / "▁", byte_fallback, as
// in Llama-2 and Mistral). Torch-free; also a fuzz target. Not a general `tokenizers` port:
// unsupported components are a TokenizerError naming the component, never silently skipped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnscope::text {

class Tokenizer {
public:
    /// Loads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json` (which can
    /// switch BOS/EOS insertion via add_bos_token / add_eos_token). Throws IoError when
    /// tokenizer.json is missing, TokenizerError naming the file and the component when its
    /// content is malformed or unsupported.
    static Tokenizer load(const std::filesystem::path& dir);

    /// Same from in-memory JSON texts; `tokenizer_config_json` may be empty. `source` names the
    /// origin in messages.
    static Tokenizer from_json(const std::string& tokenizer_json,
                               const std::string& tokenizer_config_json,
                               const std::string& source);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    /// Token ids of `text`, identical to `tokenizers`' Tokenizer.encode(text,
    /// add_special_tokens).ids. Throws TokenizerError when `text` is not valid UTF-8 (the
    /// message gives the byte offset).
    std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

    /// Text of `ids` as `tokenizers`' decode(ids, skip_special_tokens). Ids outside the
    /// vocabulary throw TokenizerError. Invalid byte sequences from byte fallback decode to
    /// U+FFFD as in `tokenizers`.
    std::string decode(const std::vector<std::int32_t>& ids,
                       bool skip_special_tokens = false) const;

    /// The vocabulary string of one id (e.g. "Ġthe", "▁the", "<0x0A>", "<|endoftext|>").
    std::string id_to_token(std::int32_t id) const;
    /// Human-readable form of one token for display: the bytes it stands for as text (invalid
    /// UTF-8 shown as \xNN escapes), special tokens verbatim.
    std::string token_display(std::int32_t id) const;
    std::optional<std::int32_t> token_to_id(std::string_view token) const;

    /// Largest id + 1, counting added tokens.
    std::int32_t vocab_size() const;
    std::optional<std::int32_t> bos_id() const;
    std::optional<std::int32_t> eos_id() const;
    bool is_special(std::int32_t id) const;
    /// "byte_level_bpe" or "sentencepiece_bpe", for `attnscope info`.
    std::string kind() const;

private:
    struct Impl;
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    /// from_json with a separate name for tokenizer_config.json in messages.
    static Tokenizer from_json_sources(const std::string& tokenizer_json,
                                       const std::string& source,
                                       const std::string& config_json,
                                       const std::string& config_source);
    std::unique_ptr<Impl> impl_;
};

}  // namespace attnscope::text
