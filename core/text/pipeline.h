// Internal: the tokenizer.json pipeline components other than the model — added-token splitting,
// normalizers, pre-tokenizers, post-processors and decoders — each reproducing the `tokenizers`
// component of the same name as far as token ids and decoded text are concerned. Offsets are not
// tracked (attnscope needs ids, not alignments); see Piece::at_origin for the one place where
// `tokenizers` looks at an offset. Not public API; parse_* refuse unsupported component types.
#pragma once

#include "core/text/unicode.h"

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace attnscope::text::detail {

/// One part of the input while encoding (a `tokenizers` Split).
struct Piece {
    std::string text;
    /// >= 0: an added token already resolved to this id; later stages leave the piece alone.
    std::int32_t token_id = -1;
    /// True when the piece starts at byte 0 of the original input. `tokenizers` asks this
    /// (offsets_original().0 == 0) in Metaspace's prepend_scheme "first". We approximate it as
    /// "every split that produced this piece started at offset 0 of its parent", which differs
    /// only when a normalizer inserted text before the first original character and a later
    /// split starts inside that inserted text.
    bool at_origin = false;
};

/// Reads component settings from tokenizer.json; `source` names the file in error messages.
struct Context {
    std::string source;
};

// ---------------------------------------------------------------------------------------------
// Text patterns of Split / Replace: {"String": "..."} or {"Regex": "..."}.

class Pattern {
public:
    Pattern(const nlohmann::json& spec, const Context& ctx, const std::string& where);
    std::vector<Match> find_all(std::string_view text) const;

private:
    std::optional<std::string> literal_;
    std::shared_ptr<Regex> regex_;
};

// ---------------------------------------------------------------------------------------------

class Normalizer {
public:
    virtual ~Normalizer() = default;
    virtual void normalize(std::string& text) const = 0;
};

class PreTokenizer {
public:
    virtual ~PreTokenizer() = default;
    /// Splits and rewrites the pieces that have no token id; drops pieces that become empty.
    virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
    virtual bool uses_byte_level() const { return false; }
};

class PostProcessor {
public:
    virtual ~PostProcessor() = default;
    /// Ids of the single-sequence encoding `ids` after post-processing.
    virtual std::vector<std::int32_t> process(std::vector<std::int32_t> ids,
                                              bool add_special_tokens) const = 0;
};

class Decoder {
public:
    virtual ~Decoder() = default;
    /// `tokenizers`' Decoder::decode_chain: tokens in, tokens out; the caller joins the result.
    virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
    virtual bool uses_byte_level() const { return false; }
};

/// Each returns nullptr for a JSON null; `where` is the JSON path used in messages
/// ("normalizer", "pre_tokenizer.pretokenizers[1]", ...).
std::unique_ptr<Normalizer> parse_normalizer(const nlohmann::json& spec, const Context& ctx,
                                             const std::string& where);
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const nlohmann::json& spec, const Context& ctx,
                                                  const std::string& where);
std::unique_ptr<PostProcessor> parse_post_processor(const nlohmann::json& spec,
                                                    const Context& ctx, const std::string& where);
std::unique_ptr<Decoder> parse_decoder(const nlohmann::json& spec, const Context& ctx,
                                       const std::string& where);

// ---------------------------------------------------------------------------------------------
// GPT-2 byte-level alphabet (bytes_to_unicode).

/// UTF-8 of the character standing for each byte ("Ġ" for 0x20, "!" for 0x21, ...).
const std::array<std::string, 256>& byte_level_chars();
/// The byte a byte-level character stands for, if `c` is one of the 256.
std::optional<unsigned char> byte_level_byte(char32_t c);
/// `text` with every byte replaced by its byte-level character.
std::string to_byte_level(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Added tokens ("added_tokens" of tokenizer.json) and the splitting of text around them.

struct AddedToken {
    std::int32_t id = 0;
    std::string content;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = true;
    bool special = false;
};

/// As `tokenizers`' AddedVocabulary: tokens with normalized=false are cut out of the raw input
/// first; the remaining pieces are normalized, then tokens with normalized=true are cut out of
/// the normalized pieces, their contents having been passed through the same normalizer (so with
/// Llama-2's Prepend("▁") a normalized token "x" only matches as "▁x"). Same ids as
/// `tokenizers`; the only thing not reproduced is offsets (see Piece::at_origin).
class AddedVocabulary {
public:
    /// `normalizer` (may be null) is applied to the contents of tokens with normalized=true.
    AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

    /// Splits out tokens with normalized=false (call on the raw input).
    void split_raw(std::vector<Piece>& pieces) const;
    /// Splits out tokens with normalized=true (call after normalizing the pieces).
    void split_normalized(std::vector<Piece>& pieces) const;

    const AddedToken* by_id(std::int32_t id) const;
    const AddedToken* by_content(std::string_view content) const;
    const std::vector<AddedToken>& tokens() const { return tokens_; }

private:
    /// Leftmost-longest literal search over a set of strings (what aho-corasick's
    /// MatchKind::LeftmostLongest gives `tokenizers`).
    class LiteralSet {
    public:
        void add(std::string_view literal, std::size_t token_index);
        bool empty() const { return nodes_.size() <= 1; }
        /// Longest entry starting exactly at `pos`: (length, token index); length 0 if none.
        std::pair<std::size_t, std::size_t> longest_at(std::string_view text,
                                                       std::size_t pos) const;
        bool may_start(unsigned char b) const { return first_byte_[b]; }

    private:
        struct Node {
            std::size_t token_index = SIZE_MAX;
        };
        std::vector<Node> nodes_{Node{}};
        std::unordered_map<std::uint64_t, std::size_t> edges_;  // (node << 8 | byte) -> child
        std::array<bool, 256> first_byte_{};
    };

    void split_with(const LiteralSet& set, std::vector<Piece>& pieces) const;

    std::vector<AddedToken> tokens_;
    std::unordered_map<std::int32_t, std::size_t> by_id_;
    std::unordered_map<std::string, std::size_t> by_content_;
    LiteralSet raw_;
    LiteralSet normalized_;
};

}  // namespace attnscope::text::detail
