// Internal: the BPE model of tokenizer.json ("model": {"type": "BPE", ...}) — vocabulary, merge
// ranks, unk / byte_fallback / fuse_unk / ignore_merges, and the rank-ordered merge loop of
// `tokenizers`' Word::merge_all, with a per-word cache. Not a trainer, and no BPE dropout,
// continuing_subword_prefix or end_of_word_suffix (refused at load time).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace attnscope::text::detail {

class BpeModel {
public:
    /// Builds the model from the "model" object of tokenizer.json. `source` prefixes messages.
    /// Throws TokenizerError on malformed or unsupported content.
    BpeModel(const nlohmann::json& model, const std::string& source);

    BpeModel(const BpeModel&) = delete;
    BpeModel& operator=(const BpeModel&) = delete;

    /// Appends the ids of one pre-tokenized word (already in the vocabulary's alphabet, e.g.
    /// byte-level mapped). Empty words add nothing. Thread-safe.
    void tokenize(std::string_view word, std::vector<std::int32_t>& out) const;

    std::optional<std::int32_t> token_to_id(std::string_view token) const;
    /// The token of `id`, or nullptr when the vocabulary has no such id.
    const std::string* id_to_token(std::int32_t id) const;
    /// Largest id in the vocabulary, -1 when it is empty.
    std::int32_t max_id() const { return static_cast<std::int32_t>(vocab_r_.size()) - 1; }

    bool byte_fallback() const { return byte_fallback_; }

private:
    struct Merge {
        std::uint32_t rank;
        std::int32_t new_id;
    };

    std::vector<std::int32_t> merge_word(std::string_view word) const;
    const Merge* find_merge(std::int32_t left, std::int32_t right) const;

    std::string source_;
    std::unordered_map<std::string, std::int32_t> vocab_;
    std::vector<std::string> vocab_r_;  // by id; empty string with has_id_ false for holes
    std::vector<bool> has_id_;
    std::unordered_map<std::uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
    std::optional<std::string> unk_token_;
    bool byte_fallback_ = false;
    bool fuse_unk_ = false;
    bool ignore_merges_ = false;
    std::array<std::int32_t, 256> byte_ids_{};  // id of "<0xNN>" or -1

    // Word -> ids. Results never depend on it; it only saves re-merging frequent words.
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache_;
};

}  // namespace attnscope::text::detail
