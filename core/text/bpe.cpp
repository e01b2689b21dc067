// BPE model of tokenizer.json, reproducing `tokenizers`' models/bpe: BPE::merge_word (characters
// to initial symbols, unk / byte fallback / fuse_unk), Word::merge_all (a priority queue of
// candidate merges ordered by rank, then position; stale entries skipped) and the ignore_merges
// short-cut of Llama-3. Not a trainer; dropout and subword prefixes/suffixes are refused.
#include "core/text/bpe.h"

#include "core/base/error.h"
#include "core/base/utf8.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <queue>

namespace attnscope::text::detail {

namespace {

// Real vocabularies have well under a million entries; ids beyond this are a broken file, and
// refusing them keeps id-indexed tables small whatever the input says.
constexpr std::int64_t max_vocab_id = (1 << 24) - 1;
// Words this long are tokenized every time rather than cached (they are rarely repeated).
constexpr std::size_t max_cached_word = 256;
// Same as `tokenizers`' DEFAULT_CACHE_CAPACITY; the cache is cleared when it fills up.
constexpr std::size_t cache_capacity = 10000;

std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
}

struct Symbol {
    std::int32_t id;
    std::int64_t prev;
    std::int64_t next;
    std::size_t len;  // bytes of the word this symbol covers; 0 marks a symbol merged away
};

struct QueuedMerge {
    std::size_t pos;
    std::uint32_t rank;
    std::int32_t new_id;
};

// Top of the queue = lowest rank, then leftmost position (tokenizers' `impl Ord for Merge`).
struct MergeOrder {
    bool operator()(const QueuedMerge& a, const QueuedMerge& b) const {
        if (a.rank != b.rank) return a.rank > b.rank;
        return a.pos > b.pos;
    }
};

void add_symbol(std::vector<Symbol>& symbols, std::int32_t id, std::size_t len) {
    auto n = static_cast<std::int64_t>(symbols.size());
    if (!symbols.empty()) symbols.back().next = n;
    symbols.push_back(Symbol{id, n - 1, -1, len});
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model, const std::string& source) : source_(source) {
    auto fail = [&](const std::string& what) -> TokenizerError {
        return TokenizerError(source_ + ": model: " + what);
    };
    if (!model.is_object()) throw fail("expected an object");

    // --- options that change the algorithm: refuse what we do not implement ---
    auto null_or_absent = [&](const char* key) {
        auto it = model.find(key);
        // GPT-2's file writes "" for the unused prefix/suffix; "" changes nothing.
        return it == model.end() || it->is_null() ||
               (it->is_string() && it->get_ref<const std::string&>().empty());
    };
    if (auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
        if (!it->is_number() || it->get<double>() != 0.0) {
            throw fail("dropout is set (" + it->dump() +
                       "); BPE dropout is random and not supported: set \"dropout\": null");
        }
    }
    if (!null_or_absent("continuing_subword_prefix")) {
        throw fail("continuing_subword_prefix is set; only byte-level and sentencepiece-style BPE "
                   "(no subword prefix) are supported");
    }
    if (!null_or_absent("end_of_word_suffix")) {
        throw fail("end_of_word_suffix is set; only byte-level and sentencepiece-style BPE "
                   "(no word suffix) are supported");
    }
    auto read_bool = [&](const char* key, bool fallback) {
        auto it = model.find(key);
        if (it == model.end() || it->is_null()) return fallback;
        if (!it->is_boolean()) throw fail(std::string(key) + " must be true or false");
        return it->get<bool>();
    };
    byte_fallback_ = read_bool("byte_fallback", false);
    fuse_unk_ = read_bool("fuse_unk", false);
    ignore_merges_ = read_bool("ignore_merges", false);
    if (auto it = model.find("unk_token"); it != model.end() && !it->is_null()) {
        if (!it->is_string()) throw fail("unk_token must be a string or null");
        unk_token_ = it->get<std::string>();
    }

    // --- vocabulary ---
    auto vit = model.find("vocab");
    if (vit == model.end() || !vit->is_object()) {
        throw fail("vocab is missing or not an object of token -> id");
    }
    vocab_.reserve(vit->size());
    std::int64_t max_id = -1;
    for (auto it = vit->begin(); it != vit->end(); ++it) {
        const auto& value = it.value();
        if (!value.is_number_integer() || value.get<std::int64_t>() < 0 ||
            value.get<std::int64_t>() > max_vocab_id) {
            throw fail("vocab entry '" + utf8::escape_invalid(it.key()) + "' has id " +
                       value.dump() + "; ids must be integers in 0.." +
                       std::to_string(max_vocab_id));
        }
        auto id = value.get<std::int64_t>();
        vocab_.emplace(it.key(), static_cast<std::int32_t>(id));
        if (id > max_id) max_id = id;
    }
    vocab_r_.assign(static_cast<std::size_t>(max_id + 1), std::string());
    has_id_.assign(static_cast<std::size_t>(max_id + 1), false);
    for (const auto& [token, id] : vocab_) {
        auto i = static_cast<std::size_t>(id);
        if (!has_id_[i]) {
            vocab_r_[i] = token;
            has_id_[i] = true;
        }
    }
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        auto it = vocab_.find(name);
        byte_ids_[static_cast<std::size_t>(b)] = it == vocab_.end() ? -1 : it->second;
    }

    // --- merges: ["a b", ...] (tokenizers < 0.20) or [["a", "b"], ...] ---
    auto mit = model.find("merges");
    if (mit == model.end() || mit->is_null()) {
        throw fail("merges is missing; a BPE model needs its merge list");
    }
    if (!mit->is_array()) throw fail("merges must be an array");
    merges_.reserve(mit->size());
    std::uint32_t rank = 0;
    std::size_t index = 0;
    for (const auto& entry : *mit) {
        std::string left, right;
        std::string where = "merges[" + std::to_string(index) + "]";
        ++index;
        if (entry.is_string()) {
            const auto& line = entry.get_ref<const std::string&>();
            if (line.rfind("#version", 0) == 0) continue;  // merges.txt header kept by old exports
            auto space = line.find(' ');
            if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
                throw fail(where + " '" + utf8::escape_invalid(line) +
                           "' is not two tokens separated by one space");
            }
            left = line.substr(0, space);
            right = line.substr(space + 1);
        } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
                   entry[1].is_string()) {
            left = entry[0].get<std::string>();
            right = entry[1].get<std::string>();
        } else {
            throw fail(where + " must be \"a b\" or [\"a\", \"b\"], got " + entry.dump());
        }
        auto lookup = [&](const std::string& token) {
            auto it = vocab_.find(token);
            if (it == vocab_.end()) {
                throw fail(where + ": token '" + utf8::escape_invalid(token) +
                           "' is not in the vocab; the file is inconsistent, re-export it");
            }
            return it->second;
        };
        std::int32_t left_id = lookup(left);
        std::int32_t right_id = lookup(right);
        std::int32_t new_id = lookup(left + right);
        // Like tokenizers (a HashMap collected in order), a repeated pair keeps its last rank.
        merges_[pair_key(left_id, right_id)] = Merge{rank, new_id};
        ++rank;
    }
}

std::optional<std::int32_t> BpeModel::token_to_id(std::string_view token) const {
    auto it = vocab_.find(std::string(token));
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
}

const std::string* BpeModel::id_to_token(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= vocab_r_.size()) return nullptr;
    if (!has_id_[static_cast<std::size_t>(id)]) return nullptr;
    return &vocab_r_[static_cast<std::size_t>(id)];
}

const BpeModel::Merge* BpeModel::find_merge(std::int32_t left, std::int32_t right) const {
    auto it = merges_.find(pair_key(left, right));
    return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::tokenize(std::string_view word, std::vector<std::int32_t>& out) const {
    if (word.empty()) return;
    std::string key(word);
    if (ignore_merges_) {
        // Llama-3: a pre-token that is itself a vocabulary entry is emitted whole, even when
        // the merges would have split it differently.
        auto it = vocab_.find(key);
        if (it != vocab_.end()) {
            out.push_back(it->second);
            return;
        }
    }
    const bool cacheable = word.size() <= max_cached_word;
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        auto it = cache_.find(key);
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<std::int32_t> ids = merge_word(word);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        if (cache_.size() >= cache_capacity) cache_.clear();
        cache_.emplace(std::move(key), std::move(ids));
    }
}

std::vector<std::int32_t> BpeModel::merge_word(std::string_view word) const {
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());

    // Initial symbols: one per character (BPE::merge_word). A character outside the vocabulary
    // becomes its <0xNN> byte tokens (byte_fallback), else the unk token (consecutive ones fused
    // into one when fuse_unk), else it is dropped, as in tokenizers.
    // A pending unk symbol (id, byte length); plain fields rather than std::optional because
    // GCC 12 warns (falsely) about the optional's payload under -O2.
    bool has_unk = false;
    std::int32_t unk_id = -1;
    std::size_t unk_len = 0;
    std::string piece;
    std::size_t pos = 0;
    while (pos < word.size()) {
        std::size_t start = pos;
        utf8::decode(word, pos);
        if (pos > word.size()) pos = word.size();
        std::size_t len = pos - start;
        piece.assign(word.substr(start, len));
        auto it = vocab_.find(piece);
        if (it != vocab_.end()) {
            if (has_unk) {
                add_symbol(symbols, unk_id, unk_len);
                has_unk = false;
            }
            add_symbol(symbols, it->second, len);
            continue;
        }
        if (byte_fallback_) {
            bool all = true;
            for (std::size_t i = 0; i < len; ++i) {
                if (byte_ids_[static_cast<unsigned char>(piece[i])] < 0) all = false;
            }
            if (all) {
                // tokenizers does not flush a pending unk here; keep its order exactly.
                for (std::size_t i = 0; i < len; ++i) {
                    add_symbol(symbols, byte_ids_[static_cast<unsigned char>(piece[i])], 1);
                }
                continue;
            }
        }
        if (unk_token_) {
            auto unk = vocab_.find(*unk_token_);
            if (unk == vocab_.end()) {
                throw TokenizerError(source_ + ": model: unk_token '" + *unk_token_ +
                                     "' is not in the vocab, so unknown character '" +
                                     utf8::escape_invalid(piece) +
                                     "' cannot be encoded; the file is inconsistent");
            }
            if (has_unk && fuse_unk_) {
                unk_len += len;
            } else {
                if (has_unk) add_symbol(symbols, unk_id, unk_len);
                has_unk = true;
                unk_id = unk->second;
                unk_len = len;
            }
        }
    }
    if (has_unk) add_symbol(symbols, unk_id, unk_len);

    // Word::merge_all: candidates ordered by (rank, position); entries made stale by earlier
    // merges are recognised and skipped when popped.
    std::priority_queue<QueuedMerge, std::vector<QueuedMerge>, MergeOrder> queue;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
        if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
            queue.push(QueuedMerge{i, m->rank, m->new_id});
        }
    }
    while (!queue.empty()) {
        QueuedMerge top = queue.top();
        queue.pop();
        Symbol& current = symbols[top.pos];
        if (current.len == 0 || current.next == -1) continue;
        auto next_pos = static_cast<std::size_t>(current.next);
        Symbol right = symbols[next_pos];
        const Merge* still = find_merge(current.id, right.id);
        if (still == nullptr || still->new_id != top.new_id) continue;

        current.id = top.new_id;
        current.len += right.len;
        current.next = right.next;
        symbols[next_pos].len = 0;
        if (right.next >= 0 && static_cast<std::size_t>(right.next) < symbols.size()) {
            symbols[static_cast<std::size_t>(right.next)].prev = static_cast<std::int64_t>(top.pos);
        }
        if (current.prev >= 0) {
            auto prev_pos = static_cast<std::size_t>(current.prev);
            if (const Merge* m = find_merge(symbols[prev_pos].id, current.id)) {
                queue.push(QueuedMerge{prev_pos, m->rank, m->new_id});
            }
        }
        if (current.next >= 0 && static_cast<std::size_t>(current.next) < symbols.size()) {
            if (const Merge* m = find_merge(current.id,
                                            symbols[static_cast<std::size_t>(current.next)].id)) {
                queue.push(QueuedMerge{top.pos, m->rank, m->new_id});
            }
        }
    }

    std::vector<std::int32_t> ids;
    ids.reserve(symbols.size());
    for (const Symbol& s : symbols) {
        if (s.len != 0) ids.push_back(s.id);
    }
    return ids;
}

}  // namespace attnscope::text::detail
