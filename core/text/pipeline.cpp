// tokenizer.json pipeline components (see pipeline.h): each class mirrors the `tokenizers` Rust
// component of the same name (normalizers/*.rs, pre_tokenizers/*.rs, processors/*.rs,
// decoders/*.rs, tokenizer/added_vocabulary.rs and NormalizedString::split's delimiter
// behaviours). Where the Rust code has a quirk that changes ids or text, it is kept and marked.
// Deliberately not here: offsets/alignments, pair sequences, truncation and padding.
#include "core/text/pipeline.h"

#include "core/base/error.h"
#include "core/base/utf8.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace attnscope::text::detail {

using json = nlohmann::json;

namespace {

// ------------------------------------------------------------------------------------------
// JSON access with messages that say where in tokenizer.json the problem is.

std::string short_dump(const json& j) {
    std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return s;
}

[[noreturn]] void fail(const Context& ctx, const std::string& where, const std::string& what) {
    throw TokenizerError(ctx.source + ": " + where + ": " + what);
}

const json* field(const json& obj, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
}

// An unknown component type. `where` is the JSON path; the message leads with the component kind
// so that it reads "pre_tokenizer type 'X' is not supported; supported: ...".
[[noreturn]] void unsupported(const Context& ctx, const std::string& where, const char* component,
                              const std::string& type, const char* supported) {
    std::string msg = std::string(component) + " type '" + type +
                      "' is not supported; supported: " + supported +
                      ". attnscope reads byte-level BPE tokenizers (GPT-2, Llama-3, Qwen2) and "
                      "sentencepiece-style BPE tokenizers (Llama-2, Mistral)";
    if (where != component) msg += " (at " + where + ")";
    throw TokenizerError(ctx.source + ": " + msg);
}

std::string type_of(const json& spec, const Context& ctx, const std::string& where) {
    if (!spec.is_object()) fail(ctx, where, "expected an object or null, got " + short_dump(spec));
    const json* t = field(spec, "type");
    if (t == nullptr || !t->is_string()) fail(ctx, where, "missing the \"type\" string");
    return t->get<std::string>();
}

bool get_bool(const json& obj, const char* key, bool fallback, const Context& ctx,
              const std::string& where) {
    const json* v = field(obj, key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(ctx, where + "." + key, "must be true or false");
    return v->get<bool>();
}

std::string get_string(const json& obj, const char* key, const Context& ctx,
                       const std::string& where) {
    const json* v = field(obj, key);
    if (v == nullptr || !v->is_string()) fail(ctx, where + "." + key, "missing or not a string");
    return v->get<std::string>();
}

std::size_t get_count(const json& obj, const char* key, std::size_t fallback, const Context& ctx,
                      const std::string& where) {
    const json* v = field(obj, key);
    if (v == nullptr) return fallback;
    if (!v->is_number_integer() || v->get<std::int64_t>() < 0 ||
        v->get<std::int64_t>() > (1 << 20)) {
        fail(ctx, where + "." + key, "must be a small non-negative integer, got " + short_dump(*v));
    }
    return static_cast<std::size_t>(v->get<std::int64_t>());
}

// A JSON string holding exactly one character (Rust `char` fields such as Metaspace's
// replacement).
char32_t get_char(const json& obj, const char* key, const Context& ctx, const std::string& where) {
    std::string s = get_string(obj, key, ctx, where);
    std::size_t pos = 0;
    char32_t c = s.empty() ? 0 : utf8::decode(s, pos);
    if (s.empty() || pos != s.size() || !utf8::is_valid(s)) {
        fail(ctx, where + "." + key, "must be exactly one character, got '" +
                                         utf8::escape_invalid(s) + "'");
    }
    return c;
}

const json& get_array(const json& obj, const char* key, const Context& ctx,
                      const std::string& where) {
    const json* v = field(obj, key);
    if (v == nullptr || !v->is_array()) fail(ctx, where + "." + key, "missing or not an array");
    return *v;
}

std::string indexed(const std::string& where, const char* key, std::size_t i) {
    return where + "." + key + "[" + std::to_string(i) + "]";
}

// Sequence components nest; real files use one level. The cap keeps a hostile file from
// recursing until the stack overflows.
constexpr int max_nesting = 16;

void check_depth(int depth, const Context& ctx, const std::string& where) {
    if (depth > max_nesting) {
        fail(ctx, where, "Sequence components nested more than " + std::to_string(max_nesting) +
                             " deep");
    }
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

char32_t code_point_before(std::string_view text, std::size_t pos) {
    std::size_t p = pos - 1;
    while (p > 0 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
    return utf8::decode(text, p);
}

std::size_t code_point_start_before(std::string_view text, std::size_t pos) {
    std::size_t p = pos - 1;
    while (p > 0 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
    return p;
}

std::string replace_matches(std::string_view text, const std::vector<Match>& matches,
                            std::string_view content) {
    std::string out;
    out.reserve(text.size());
    std::size_t last = 0;
    for (const Match& m : matches) {
        out.append(text.substr(last, m.start - last));
        out.append(content);
        last = m.end;
    }
    out.append(text.substr(last));
    return out;
}

// ------------------------------------------------------------------------------------------
// NormalizedString::split: matches -> (range, is_match) covering the text -> delimiter
// behaviour -> the kept ranges.

struct Flagged {
    std::size_t start;
    std::size_t end;
    bool flag;
};

// Pattern for a regex / literal (tokenizer/pattern.rs, `impl Pattern for &SysRegex`).
std::vector<Flagged> cover_matches(std::size_t len, const std::vector<Match>& matches) {
    std::vector<Flagged> out;
    if (len == 0) {
        out.push_back({0, 0, false});
        return out;
    }
    std::size_t prev = 0;
    for (const Match& m : matches) {
        if (prev != m.start) out.push_back({prev, m.start, false});
        out.push_back({m.start, m.end, true});
        prev = m.end;
    }
    if (prev != len) out.push_back({prev, len, false});
    return out;
}

// Pattern for a character predicate: every matching character is its own match.
template <class Pred>
std::vector<Flagged> cover_chars(std::string_view text, Pred pred) {
    std::vector<Flagged> out;
    if (text.empty()) {
        out.push_back({0, 0, false});
        return out;
    }
    std::size_t last_offset = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t b = pos;
        char32_t c = utf8::decode(text, pos);
        if (pred(c)) {
            if (last_offset < b) out.push_back({last_offset, b, false});
            out.push_back({b, pos, true});
            last_offset = pos;
        }
    }
    if (text.size() > last_offset) out.push_back({last_offset, text.size(), false});
    return out;
}

enum class Behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

Behavior parse_behavior(const json& spec, const Context& ctx, const std::string& where) {
    std::string b = get_string(spec, "behavior", ctx, where);
    if (b == "Removed") return Behavior::removed;
    if (b == "Isolated") return Behavior::isolated;
    if (b == "MergedWithPrevious") return Behavior::merged_with_previous;
    if (b == "MergedWithNext") return Behavior::merged_with_next;
    if (b == "Contiguous") return Behavior::contiguous;
    fail(ctx, where + ".behavior", "'" + b + "' is not one of Removed, Isolated, "
                                   "MergedWithPrevious, MergedWithNext, Contiguous");
}

// Returns ranges whose flag now means "remove".
std::vector<Flagged> apply_behavior(const std::vector<Flagged>& matches, Behavior behavior) {
    std::vector<Flagged> acc;
    acc.reserve(matches.size());
    bool previous_match = false;
    switch (behavior) {
    case Behavior::isolated:
        for (const Flagged& m : matches) acc.push_back({m.start, m.end, false});
        break;
    case Behavior::removed:
        acc = matches;
        break;
    case Behavior::contiguous:
        for (const Flagged& m : matches) {
            if (m.flag == previous_match && !acc.empty()) acc.back().end = m.end;
            else acc.push_back({m.start, m.end, false});
            previous_match = m.flag;
        }
        break;
    case Behavior::merged_with_previous:
        for (const Flagged& m : matches) {
            if (m.flag && !previous_match && !acc.empty()) acc.back().end = m.end;
            else acc.push_back({m.start, m.end, false});
            previous_match = m.flag;
        }
        break;
    case Behavior::merged_with_next:
        for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
            if (it->flag && !previous_match && !acc.empty()) acc.back().start = it->start;
            else acc.push_back({it->start, it->end, false});
            previous_match = it->flag;
        }
        std::reverse(acc.begin(), acc.end());
        break;
    }
    return acc;
}

void emit_splits(Piece&& parent, std::vector<Flagged> matches, Behavior behavior, bool invert,
                 std::vector<Piece>& out) {
    if (invert) {
        for (Flagged& m : matches) m.flag = !m.flag;
    }
    for (const Flagged& r : apply_behavior(matches, behavior)) {
        if (r.flag || r.start >= r.end) continue;  // removed, or empty (tokenizers drops those)
        Piece p;
        p.text = parent.text.substr(r.start, r.end - r.start);
        p.at_origin = parent.at_origin && r.start == 0;
        out.push_back(std::move(p));
    }
}

// Runs `f(piece, out)` on each piece without a token id; token pieces pass through.
template <class F>
void split_each(std::vector<Piece>& pieces, F&& f) {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    for (Piece& p : pieces) {
        if (p.token_id >= 0) out.push_back(std::move(p));
        else f(std::move(p), out);
    }
    pieces.swap(out);
}

// ------------------------------------------------------------------------------------------
// Normalizers (normalizers/*.rs).

class UnicodeNormalizer final : public Normalizer {
public:
    explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
    void normalize(std::string& text) const override { text = detail::normalize(text, form_); }

private:
    NormalForm form_;
};

class LowercaseNormalizer final : public Normalizer {
public:
    void normalize(std::string& text) const override { text = to_lower(text); }
};

class StripNormalizer final : public Normalizer {
public:
    StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
    void normalize(std::string& text) const override {
        std::size_t begin = 0;
        std::size_t end = text.size();
        if (left_) {
            while (begin < end) {
                std::size_t next = begin;
                if (!is_white_space(utf8::decode(text, next))) break;
                begin = next;
            }
        }
        if (right_) {
            while (end > begin && is_white_space(code_point_before(text, end))) {
                end = code_point_start_before(text, end);
            }
        }
        text = text.substr(begin, end - begin);
    }

private:
    bool left_;
    bool right_;
};

class PrependNormalizer final : public Normalizer {
public:
    explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
    void normalize(std::string& text) const override {
        // Only non-empty text gets the prefix (normalizers/prepend.rs).
        if (!text.empty()) text.insert(0, prepend_);
    }

private:
    std::string prepend_;
};

class ReplaceNormalizer final : public Normalizer {
public:
    ReplaceNormalizer(Pattern pattern, std::string content)
        : pattern_(std::move(pattern)), content_(std::move(content)) {}
    void normalize(std::string& text) const override {
        text = replace_matches(text, pattern_.find_all(text), content_);
    }

private:
    Pattern pattern_;
    std::string content_;
};

class SequenceNormalizer final : public Normalizer {
public:
    explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
        : steps_(std::move(steps)) {}
    void normalize(std::string& text) const override {
        for (const auto& s : steps_) s->normalize(text);
    }

private:
    std::vector<std::unique_ptr<Normalizer>> steps_;
};

// ------------------------------------------------------------------------------------------
// Pre-tokenizers (pre_tokenizers/*.rs).

const Regex& gpt2_regex() {
    // pre_tokenizers/byte_level.rs; compiled once, searches are thread-safe.
    static const Regex re(
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
        "ByteLevel pre_tokenizer (built-in GPT-2 pattern)");
    return re;
}

class ByteLevelPreTokenizer final : public PreTokenizer {
public:
    ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
        : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}

    void pre_tokenize(std::vector<Piece>& pieces) const override {
        split_each(pieces, [&](Piece&& p, std::vector<Piece>& out) {
            // Applied to every piece it is given, not just the first (as in tokenizers).
            if (add_prefix_space_ && !starts_with(p.text, " ")) p.text.insert(0, " ");
            if (use_regex_) {
                auto matches = cover_matches(p.text.size(), gpt2_regex().find_all(p.text));
                emit_splits(std::move(p), std::move(matches), Behavior::isolated, false, out);
            } else {
                out.push_back(std::move(p));
            }
        });
        for (Piece& p : pieces) {
            if (p.token_id < 0) p.text = to_byte_level(p.text);
        }
    }
    bool uses_byte_level() const override { return true; }

private:
    bool add_prefix_space_;
    bool use_regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
public:
    SplitPreTokenizer(Pattern pattern, Behavior behavior, bool invert)
        : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}

    void pre_tokenize(std::vector<Piece>& pieces) const override {
        split_each(pieces, [&](Piece&& p, std::vector<Piece>& out) {
            auto matches = cover_matches(p.text.size(), pattern_.find_all(p.text));
            emit_splits(std::move(p), std::move(matches), behavior_, invert_, out);
        });
    }

private:
    Pattern pattern_;
    Behavior behavior_;
    bool invert_;
};

enum class PrependScheme { first, never, always };

class MetaspacePreTokenizer final : public PreTokenizer {
public:
    MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
        : replacement_(replacement), rep_(utf8::encode(replacement)), scheme_(scheme),
          split_(split) {}

    void pre_tokenize(std::vector<Piece>& pieces) const override {
        split_each(pieces, [&](Piece&& p, std::vector<Piece>& out) {
            if (p.text.find(' ') != std::string::npos) {
                p.text = replace_matches(p.text, find_literal(p.text, " "), rep_);
            }
            bool prepend = false;
            if (scheme_ == PrependScheme::always) prepend = !starts_with(p.text, rep_);
            if (scheme_ == PrependScheme::first) {
                prepend = !starts_with(p.text, rep_) && p.at_origin;
            }
            if (prepend) p.text.insert(0, rep_);
            if (split_) {
                auto matches = cover_chars(p.text, [&](char32_t c) { return c == replacement_; });
                emit_splits(std::move(p), std::move(matches), Behavior::merged_with_next, false,
                            out);
            } else {
                out.push_back(std::move(p));
            }
        });
    }

private:
    char32_t replacement_;
    std::string rep_;
    PrependScheme scheme_;
    bool split_;
};

class DigitsPreTokenizer final : public PreTokenizer {
public:
    explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        split_each(pieces, [&](Piece&& p, std::vector<Piece>& out) {
            auto matches = cover_chars(p.text, is_numeric);
            emit_splits(std::move(p), std::move(matches),
                        individual_ ? Behavior::isolated : Behavior::contiguous, false, out);
        });
    }

private:
    bool individual_;
};

class SequencePreTokenizer final : public PreTokenizer {
public:
    explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
        : steps_(std::move(steps)) {}
    void pre_tokenize(std::vector<Piece>& pieces) const override {
        for (const auto& s : steps_) s->pre_tokenize(pieces);
    }
    bool uses_byte_level() const override {
        return std::any_of(steps_.begin(), steps_.end(),
                           [](const auto& s) { return s->uses_byte_level(); });
    }

private:
    std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

PrependScheme parse_prepend_scheme(const json& spec, const Context& ctx,
                                   const std::string& where) {
    // pre_tokenizers/metaspace.rs: prepend_scheme defaults to "always"; files from before
    // tokenizers 0.15 have add_prefix_space instead, false meaning "never".
    const json* scheme = field(spec, "prepend_scheme");
    const json* aps = field(spec, "add_prefix_space");
    PrependScheme result = PrependScheme::always;
    if (scheme != nullptr) {
        std::string s = scheme->is_string() ? scheme->get<std::string>() : short_dump(*scheme);
        if (s == "first") result = PrependScheme::first;
        else if (s == "never") result = PrependScheme::never;
        else if (s == "always") result = PrependScheme::always;
        else fail(ctx, where + ".prepend_scheme", "'" + s + "' is not first, never or always");
    }
    if (aps != nullptr) {
        if (!aps->is_boolean()) fail(ctx, where + ".add_prefix_space", "must be true or false");
        if (!aps->get<bool>()) {
            if (scheme != nullptr && result != PrependScheme::never) {
                fail(ctx, where, "add_prefix_space is false but prepend_scheme is not \"never\"");
            }
            result = PrependScheme::never;
        }
    }
    return result;
}

// ------------------------------------------------------------------------------------------
// Post-processors (processors/*.rs), single sequence only.

class TemplatePostProcessor final : public PostProcessor {
public:
    struct Item {
        bool is_sequence = false;
        std::vector<std::int32_t> ids;  // special token ids when !is_sequence
    };
    explicit TemplatePostProcessor(std::vector<Item> items) : items_(std::move(items)) {}

    std::vector<std::int32_t> process(std::vector<std::int32_t> ids,
                                      bool add_special_tokens) const override {
        std::vector<std::int32_t> out;
        out.reserve(ids.size() + 4);
        for (const Item& item : items_) {
            if (item.is_sequence) out.insert(out.end(), ids.begin(), ids.end());
            else if (add_special_tokens) out.insert(out.end(), item.ids.begin(), item.ids.end());
        }
        return out;
    }

private:
    std::vector<Item> items_;
};

class IdentityPostProcessor final : public PostProcessor {
public:
    std::vector<std::int32_t> process(std::vector<std::int32_t> ids, bool) const override {
        return ids;
    }
};

class SequencePostProcessor final : public PostProcessor {
public:
    explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
        : steps_(std::move(steps)) {}
    std::vector<std::int32_t> process(std::vector<std::int32_t> ids,
                                      bool add_special_tokens) const override {
        for (const auto& s : steps_) ids = s->process(std::move(ids), add_special_tokens);
        return ids;
    }

private:
    std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::unique_ptr<PostProcessor> parse_template(const json& spec, const Context& ctx,
                                              const std::string& where) {
    // special_tokens: {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}, ...}
    std::unordered_map<std::string, std::vector<std::int32_t>> specials;
    if (const json* st = field(spec, "special_tokens")) {
        if (!st->is_object()) fail(ctx, where + ".special_tokens", "must be an object");
        for (auto it = st->begin(); it != st->end(); ++it) {
            std::string w = where + ".special_tokens['" + it.key() + "']";
            if (!it.value().is_object()) fail(ctx, w, "must be an object with \"ids\"");
            const json& ids = get_array(it.value(), "ids", ctx, w);
            std::vector<std::int32_t> v;
            for (const json& id : ids) {
                if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
                    id.get<std::int64_t>() > INT32_MAX) {
                    fail(ctx, w + ".ids", "must hold non-negative integer ids");
                }
                v.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
            }
            std::string name = it.key();
            if (const json* id = field(it.value(), "id"); id != nullptr && id->is_string()) {
                name = id->get<std::string>();
            }
            specials[name] = v;
            specials.emplace(it.key(), std::move(v));
        }
    }
    auto special_ids = [&](const std::string& name, const std::string& w) {
        auto it = specials.find(name);
        if (it == specials.end()) {
            fail(ctx, w, "special token '" + name + "' is used by the template but missing "
                         "from special_tokens");
        }
        return it->second;
    };
    auto sequence_item = [&](const std::string& id, const std::string& w) {
        if (id != "A" && id != "$" && id != "$A" && id != "$0" && id != "0" && id != "a") {
            fail(ctx, w, "the single-sequence template refers to sequence '" + id +
                             "'; only $A is possible for one sequence");
        }
        return TemplatePostProcessor::Item{true, {}};
    };

    const json* single = field(spec, "single");
    if (single == nullptr) fail(ctx, where + ".single", "missing");
    std::vector<TemplatePostProcessor::Item> items;
    if (single->is_string()) {
        // Python-style template string, e.g. "<s> $A" or "$A:0 </s>:0".
        std::string s = single->get<std::string>();
        std::size_t pos = 0;
        while (pos < s.size()) {
            while (pos < s.size() && s[pos] == ' ') ++pos;
            std::size_t end = s.find(' ', pos);
            if (end == std::string::npos) end = s.size();
            if (end == pos) break;
            std::string word = s.substr(pos, end - pos);
            pos = end;
            // Strip a ":<type_id>" suffix.
            auto colon = word.rfind(':');
            if (colon != std::string::npos && colon + 1 < word.size() &&
                std::all_of(word.begin() + static_cast<std::ptrdiff_t>(colon) + 1, word.end(),
                            [](char c) { return c >= '0' && c <= '9'; })) {
                word = word.substr(0, colon);
            }
            if (!word.empty() && word[0] == '$') {
                std::string id = word.size() == 1 ? "A" : word.substr(1);
                items.push_back(sequence_item(id, where + ".single"));
            } else {
                items.push_back({false, special_ids(word, where + ".single")});
            }
        }
    } else if (single->is_array()) {
        for (std::size_t i = 0; i < single->size(); ++i) {
            const json& piece = (*single)[i];
            std::string w = indexed(where, "single", i);
            if (!piece.is_object()) fail(ctx, w, "expected {\"SpecialToken\": ...} or "
                                                 "{\"Sequence\": ...}");
            if (const json* sp = field(piece, "SpecialToken")) {
                items.push_back({false, special_ids(get_string(*sp, "id", ctx, w), w)});
            } else if (const json* sq = field(piece, "Sequence")) {
                items.push_back(sequence_item(get_string(*sq, "id", ctx, w), w));
            } else {
                fail(ctx, w, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}, got " +
                                 short_dump(piece));
            }
        }
    } else {
        fail(ctx, where + ".single", "must be an array of pieces or a template string");
    }
    return std::make_unique<TemplatePostProcessor>(std::move(items));
}

std::unique_ptr<PostProcessor> parse_cls_sep(const json& spec, const Context& ctx,
                                             const std::string& where) {
    // RobertaProcessing / BertProcessing: "cls": ["<s>", 0], "sep": ["</s>", 2].
    auto read = [&](const char* key) {
        const json* v = field(spec, key);
        if (v == nullptr || !v->is_array() || v->size() != 2 || !(*v)[1].is_number_integer() ||
            (*v)[1].get<std::int64_t>() < 0 || (*v)[1].get<std::int64_t>() > INT32_MAX) {
            fail(ctx, where + "." + key, "must be [token, id]");
        }
        return static_cast<std::int32_t>((*v)[1].get<std::int64_t>());
    };
    std::vector<TemplatePostProcessor::Item> items;
    items.push_back({false, {read("cls")}});
    items.push_back({true, {}});
    items.push_back({false, {read("sep")}});
    return std::make_unique<TemplatePostProcessor>(std::move(items));
}

// ------------------------------------------------------------------------------------------
// Decoders (decoders/*.rs).

class ByteLevelDecoder final : public Decoder {
public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        // All tokens become one byte string, then lossy UTF-8 (decoders: ByteLevel). A token
        // with any character outside the byte alphabet (an added token such as "[PA D]") is
        // taken as its UTF-8 bytes.
        std::string bytes;
        for (const std::string& t : tokens) {
            std::string mapped;
            bool all = true;
            std::size_t pos = 0;
            while (pos < t.size()) {
                auto b = byte_level_byte(utf8::decode(t, pos));
                if (!b) {
                    all = false;
                    break;
                }
                mapped.push_back(static_cast<char>(*b));
            }
            bytes += all ? mapped : t;
        }
        tokens.assign(1, utf8::to_valid_lossy(bytes));
    }
    bool uses_byte_level() const override { return true; }
};

class MetaspaceDecoder final : public Decoder {
public:
    MetaspaceDecoder(char32_t replacement, PrependScheme scheme)
        : replacement_(replacement), scheme_(scheme) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            std::string out;
            std::size_t pos = 0;
            const std::string& t = tokens[i];
            while (pos < t.size()) {
                std::size_t start = pos;
                char32_t c = utf8::decode(t, pos);
                if (c == replacement_) {
                    // Every replacement character of the first token is dropped, not only a
                    // leading one (decoders: Metaspace::decode_chain).
                    if (i == 0 && scheme_ != PrependScheme::never) continue;
                    out.push_back(' ');
                } else {
                    out.append(t, start, pos - start);
                }
            }
            tokens[i] = std::move(out);
        }
    }

private:
    char32_t replacement_;
    PrependScheme scheme_;
};

class ReplaceDecoder final : public Decoder {
public:
    ReplaceDecoder(Pattern pattern, std::string content)
        : pattern_(std::move(pattern)), content_(std::move(content)) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (std::string& t : tokens) t = replace_matches(t, pattern_.find_all(t), content_);
    }

private:
    Pattern pattern_;
    std::string content_;
};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class ByteFallbackDecoder final : public Decoder {
public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::vector<std::string> out;
        out.reserve(tokens.size());
        std::string pending;
        auto flush = [&]() {
            if (pending.empty()) return;
            // Valid UTF-8 as one token; otherwise one U+FFFD per byte (not per maximal
            // subpart: decoders/byte_fallback.rs).
            if (utf8::is_valid(pending)) {
                out.push_back(pending);
            } else {
                for (std::size_t i = 0; i < pending.size(); ++i) out.push_back("\xEF\xBF\xBD");
            }
            pending.clear();
        };
        for (std::string& t : tokens) {
            int byte = -1;
            if (t.size() == 6 && starts_with(t, "<0x") && t[5] == '>') {
                // u8::from_str_radix(&t[3..5], 16), which also accepts a leading '+'.
                int hi = hex_value(t[3]);
                int lo = hex_value(t[4]);
                if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
                else if (t[3] == '+' && lo >= 0) byte = lo;
            }
            if (byte >= 0) {
                pending.push_back(static_cast<char>(byte));
            } else {
                flush();
                out.push_back(std::move(t));
            }
        }
        flush();
        tokens.swap(out);
    }
};

class FuseDecoder final : public Decoder {
public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::string all;
        for (const std::string& t : tokens) all += t;
        tokens.assign(1, std::move(all));
    }
};

class StripDecoder final : public Decoder {
public:
    StripDecoder(char32_t content, std::size_t start, std::size_t stop)
        : content_(content), start_(start), stop_(stop) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (std::string& t : tokens) {
            std::vector<std::size_t> bounds;  // byte offset of each character, then the end
            std::vector<char32_t> chars;
            std::size_t pos = 0;
            while (pos < t.size()) {
                bounds.push_back(pos);
                chars.push_back(utf8::decode(t, pos));
            }
            bounds.push_back(t.size());
            std::size_t start_cut = 0;
            for (std::size_t i = 0; i < chars.size() && i < start_; ++i) {
                if (chars[i] != content_) break;
                start_cut = i + 1;
            }
            std::size_t stop_cut = chars.size();
            for (std::size_t i = 0; i < stop_ && i < chars.size(); ++i) {
                std::size_t index = chars.size() - i - 1;
                if (chars[index] != content_) break;
                stop_cut = index;
            }
            // tokenizers would panic when the cuts cross (e.g. a lone content character with
            // start and stop both set); an empty token is the sensible reading.
            if (start_cut >= stop_cut) t.clear();
            else t = t.substr(bounds[start_cut], bounds[stop_cut] - bounds[start_cut]);
        }
    }

private:
    char32_t content_;
    std::size_t start_;
    std::size_t stop_;
};

class SequenceDecoder final : public Decoder {
public:
    explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
        : steps_(std::move(steps)) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (const auto& s : steps_) s->decode_chain(tokens);
    }
    bool uses_byte_level() const override {
        return std::any_of(steps_.begin(), steps_.end(),
                           [](const auto& s) { return s->uses_byte_level(); });
    }

private:
    std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

// ------------------------------------------------------------------------------------------

Pattern::Pattern(const json& spec, const Context& ctx, const std::string& where) {
    if (!spec.is_object() || spec.size() != 1) {
        fail(ctx, where, "expected {\"String\": ...} or {\"Regex\": ...}, got " + short_dump(spec));
    }
    if (const json* s = field(spec, "String"); s != nullptr && s->is_string()) {
        literal_ = s->get<std::string>();
        if (!utf8::is_valid(*literal_)) fail(ctx, where, "the string pattern is not valid UTF-8");
    } else if (const json* r = field(spec, "Regex"); r != nullptr && r->is_string()) {
        regex_ = std::make_shared<Regex>(r->get<std::string>(), ctx.source + ": " + where);
    } else {
        fail(ctx, where, "expected {\"String\": ...} or {\"Regex\": ...}, got " + short_dump(spec));
    }
}

std::vector<Match> Pattern::find_all(std::string_view text) const {
    if (regex_) return regex_->find_all(text);
    return find_literal(text, *literal_);
}

namespace {

std::unique_ptr<Normalizer> parse_normalizer_at(const json& spec, const Context& ctx,
                                                const std::string& where, int depth) {
    check_depth(depth, ctx, where);
    if (spec.is_null()) return nullptr;
    std::string type = type_of(spec, ctx, where);
    if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::nfc);
    if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::nfd);
    if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::nfkc);
    if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::nfkd);
    if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
    if (type == "Strip") {
        return std::make_unique<StripNormalizer>(get_bool(spec, "strip_left", false, ctx, where),
                                                 get_bool(spec, "strip_right", false, ctx, where));
    }
    if (type == "Prepend") {
        return std::make_unique<PrependNormalizer>(get_string(spec, "prepend", ctx, where));
    }
    if (type == "Replace") {
        const json* pattern = field(spec, "pattern");
        if (pattern == nullptr) fail(ctx, where + ".pattern", "missing");
        return std::make_unique<ReplaceNormalizer>(Pattern(*pattern, ctx, where + ".pattern"),
                                                   get_string(spec, "content", ctx, where));
    }
    if (type == "Sequence") {
        const json& list = get_array(spec, "normalizers", ctx, where);
        std::vector<std::unique_ptr<Normalizer>> steps;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto step =
                parse_normalizer_at(list[i], ctx, indexed(where, "normalizers", i), depth + 1);
            if (step) steps.push_back(std::move(step));
        }
        return std::make_unique<SequenceNormalizer>(std::move(steps));
    }
    unsupported(ctx, where, "normalizer", type,
                "NFC, NFD, NFKC, NFKD, Lowercase, Strip, Prepend, Replace, Sequence");
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer_at(const json& spec, const Context& ctx,
                                                     const std::string& where, int depth) {
    check_depth(depth, ctx, where);
    if (spec.is_null()) return nullptr;
    std::string type = type_of(spec, ctx, where);
    if (type == "ByteLevel") {
        return std::make_unique<ByteLevelPreTokenizer>(
            get_bool(spec, "add_prefix_space", true, ctx, where),
            get_bool(spec, "use_regex", true, ctx, where));
    }
    if (type == "Split") {
        const json* pattern = field(spec, "pattern");
        if (pattern == nullptr) fail(ctx, where + ".pattern", "missing");
        return std::make_unique<SplitPreTokenizer>(Pattern(*pattern, ctx, where + ".pattern"),
                                                   parse_behavior(spec, ctx, where),
                                                   get_bool(spec, "invert", false, ctx, where));
    }
    if (type == "Metaspace") {
        return std::make_unique<MetaspacePreTokenizer>(
            get_char(spec, "replacement", ctx, where), parse_prepend_scheme(spec, ctx, where),
            get_bool(spec, "split", true, ctx, where));
    }
    if (type == "Digits") {
        return std::make_unique<DigitsPreTokenizer>(
            get_bool(spec, "individual_digits", false, ctx, where));
    }
    if (type == "Sequence") {
        const json& list = get_array(spec, "pretokenizers", ctx, where);
        std::vector<std::unique_ptr<PreTokenizer>> steps;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto step =
                parse_pre_tokenizer_at(list[i], ctx, indexed(where, "pretokenizers", i), depth + 1);
            if (step) steps.push_back(std::move(step));
        }
        return std::make_unique<SequencePreTokenizer>(std::move(steps));
    }
    unsupported(ctx, where, "pre_tokenizer", type, "ByteLevel, Split, Metaspace, Digits, Sequence");
}

std::unique_ptr<PostProcessor> parse_post_processor_at(const json& spec, const Context& ctx,
                                                       const std::string& where, int depth) {
    check_depth(depth, ctx, where);
    if (spec.is_null()) return nullptr;
    std::string type = type_of(spec, ctx, where);
    if (type == "ByteLevel") return std::make_unique<IdentityPostProcessor>();
    if (type == "TemplateProcessing") return parse_template(spec, ctx, where);
    if (type == "RobertaProcessing" || type == "BertProcessing") {
        return parse_cls_sep(spec, ctx, where);
    }
    if (type == "Sequence") {
        const json& list = get_array(spec, "processors", ctx, where);
        std::vector<std::unique_ptr<PostProcessor>> steps;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto step =
                parse_post_processor_at(list[i], ctx, indexed(where, "processors", i), depth + 1);
            if (step) steps.push_back(std::move(step));
        }
        return std::make_unique<SequencePostProcessor>(std::move(steps));
    }
    unsupported(ctx, where, "post_processor", type,
                "ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing, Sequence");
}

std::unique_ptr<Decoder> parse_decoder_at(const json& spec, const Context& ctx,
                                          const std::string& where, int depth) {
    check_depth(depth, ctx, where);
    if (spec.is_null()) return nullptr;
    std::string type = type_of(spec, ctx, where);
    if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
    if (type == "Metaspace") {
        return std::make_unique<MetaspaceDecoder>(get_char(spec, "replacement", ctx, where),
                                                  parse_prepend_scheme(spec, ctx, where));
    }
    if (type == "Replace") {
        const json* pattern = field(spec, "pattern");
        if (pattern == nullptr) fail(ctx, where + ".pattern", "missing");
        return std::make_unique<ReplaceDecoder>(Pattern(*pattern, ctx, where + ".pattern"),
                                                get_string(spec, "content", ctx, where));
    }
    if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
    if (type == "Fuse") return std::make_unique<FuseDecoder>();
    if (type == "Strip") {
        return std::make_unique<StripDecoder>(get_char(spec, "content", ctx, where),
                                              get_count(spec, "start", 0, ctx, where),
                                              get_count(spec, "stop", 0, ctx, where));
    }
    if (type == "Sequence") {
        const json& list = get_array(spec, "decoders", ctx, where);
        std::vector<std::unique_ptr<Decoder>> steps;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto step =
                parse_decoder_at(list[i], ctx, indexed(where, "decoders", i), depth + 1);
            if (step) steps.push_back(std::move(step));
        }
        return std::make_unique<SequenceDecoder>(std::move(steps));
    }
    unsupported(ctx, where, "decoder", type,
                "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence");
}

}  // namespace

std::unique_ptr<Normalizer> parse_normalizer(const json& spec, const Context& ctx,
                                             const std::string& where) {
    return parse_normalizer_at(spec, ctx, where, 0);
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& spec, const Context& ctx,
                                                  const std::string& where) {
    return parse_pre_tokenizer_at(spec, ctx, where, 0);
}

std::unique_ptr<PostProcessor> parse_post_processor(const json& spec, const Context& ctx,
                                                    const std::string& where) {
    return parse_post_processor_at(spec, ctx, where, 0);
}

std::unique_ptr<Decoder> parse_decoder(const json& spec, const Context& ctx,
                                       const std::string& where) {
    return parse_decoder_at(spec, ctx, where, 0);
}

// ------------------------------------------------------------------------------------------
// Byte-level alphabet.

namespace {

struct ByteAlphabet {
    std::array<std::string, 256> chars;
    std::array<char32_t, 256> code_points{};
    std::unordered_map<char32_t, unsigned char> reverse;

    ByteAlphabet() {
        // GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 take
        // U+0100.. in byte order.
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                             (b >= 0xAE && b <= 0xFF);
            char32_t cp = printable ? static_cast<char32_t>(b) : next++;
            code_points[static_cast<std::size_t>(b)] = cp;
            chars[static_cast<std::size_t>(b)] = utf8::encode(cp);
            reverse.emplace(cp, static_cast<unsigned char>(b));
        }
    }
};

const ByteAlphabet& byte_alphabet() {
    static const ByteAlphabet alphabet;
    return alphabet;
}

}  // namespace

const std::array<std::string, 256>& byte_level_chars() { return byte_alphabet().chars; }

std::optional<unsigned char> byte_level_byte(char32_t c) {
    const auto& rev = byte_alphabet().reverse;
    auto it = rev.find(c);
    if (it == rev.end()) return std::nullopt;
    return it->second;
}

std::string to_byte_level(std::string_view text) {
    const auto& chars = byte_alphabet().chars;
    std::string out;
    out.reserve(text.size() * 2);
    for (char c : text) out += chars[static_cast<unsigned char>(c)];
    return out;
}

// ------------------------------------------------------------------------------------------
// Added vocabulary (tokenizer/added_vocabulary.rs).

void AddedVocabulary::LiteralSet::add(std::string_view literal, std::size_t token_index) {
    if (literal.empty()) return;
    std::size_t node = 0;
    for (char c : literal) {
        auto b = static_cast<unsigned char>(c);
        std::uint64_t key = (static_cast<std::uint64_t>(node) << 8) | b;
        auto it = edges_.find(key);
        if (it == edges_.end()) {
            nodes_.push_back(Node{});
            it = edges_.emplace(key, nodes_.size() - 1).first;
        }
        node = it->second;
    }
    // First token with this content wins, as with duplicate patterns in aho-corasick.
    if (nodes_[node].token_index == SIZE_MAX) nodes_[node].token_index = token_index;
    first_byte_[static_cast<unsigned char>(literal[0])] = true;
}

std::pair<std::size_t, std::size_t> AddedVocabulary::LiteralSet::longest_at(
    std::string_view text, std::size_t pos) const {
    std::pair<std::size_t, std::size_t> best{0, SIZE_MAX};
    std::size_t node = 0;
    for (std::size_t i = pos; i < text.size(); ++i) {
        std::uint64_t key = (static_cast<std::uint64_t>(node) << 8) |
                            static_cast<unsigned char>(text[i]);
        auto it = edges_.find(key);
        if (it == edges_.end()) break;
        node = it->second;
        if (nodes_[node].token_index != SIZE_MAX) best = {i + 1 - pos, nodes_[node].token_index};
    }
    return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
    for (AddedToken& t : tokens) {
        if (t.content.empty()) continue;  // tokenizers ignores empty added tokens
        tokens_.push_back(std::move(t));
    }
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
        const AddedToken& t = tokens_[i];
        by_id_.emplace(t.id, i);
        by_content_.emplace(t.content, i);
    }
    // Special tokens are matched first in tokenizers' pattern list; with leftmost-longest
    // matching the order only matters for identical contents.
    for (int pass = 0; pass < 2; ++pass) {
        for (std::size_t i = 0; i < tokens_.size(); ++i) {
            const AddedToken& t = tokens_[i];
            if (t.special != (pass == 0)) continue;
            if (!t.normalized) {
                raw_.add(t.content, i);
            } else {
                std::string content = t.content;
                if (normalizer != nullptr) normalizer->normalize(content);
                normalized_.add(content, i);
            }
        }
    }
}

const AddedToken* AddedVocabulary::by_id(std::int32_t id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view content) const {
    auto it = by_content_.find(std::string(content));
    return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::split_raw(std::vector<Piece>& pieces) const { split_with(raw_, pieces); }

void AddedVocabulary::split_normalized(std::vector<Piece>& pieces) const {
    split_with(normalized_, pieces);
}

void AddedVocabulary::split_with(const LiteralSet& set, std::vector<Piece>& pieces) const {
    if (set.empty()) return;
    split_each(pieces, [&](Piece&& p, std::vector<Piece>& out) {
        const std::string& text = p.text;
        const std::size_t len = text.size();
        struct Range {
            std::size_t start, end, token;
        };
        std::vector<Range> splits;
        std::size_t start_offset = 0;
        std::size_t pos = 0;
        while (pos < len) {
            if (!set.may_start(static_cast<unsigned char>(text[pos]))) {
                ++pos;
                continue;
            }
            auto [match_len, index] = set.longest_at(text, pos);
            if (match_len == 0) {
                ++pos;
                continue;
            }
            std::size_t start = pos;
            std::size_t stop = pos + match_len;
            pos = stop;  // the search resumes after the match as found, before any rstrip
            const AddedToken& token = tokens_[index];
            if (token.single_word) {
                bool start_space = start == 0 || !is_word_char(code_point_before(text, start));
                std::size_t after = stop;
                bool stop_space = stop == len || !is_word_char(utf8::decode(text, after));
                if (!start_space || !stop_space) continue;
            }
            if (token.lstrip) {
                std::size_t new_start = start;
                while (new_start > 0 && is_white_space(code_point_before(text, new_start))) {
                    new_start = code_point_start_before(text, new_start);
                }
                // Whitespace already taken by the previous match stays with it.
                start = std::max(new_start, start_offset);
            }
            if (token.rstrip) {
                while (stop < len) {
                    std::size_t next = stop;
                    if (!is_white_space(utf8::decode(text, next))) break;
                    stop = next;
                }
            }
            if (start_offset < start) splits.push_back({start_offset, start, SIZE_MAX});
            splits.push_back({start, stop, index});
            start_offset = stop;
        }
        if (start_offset < len) splits.push_back({start_offset, len, SIZE_MAX});

        for (const Range& r : splits) {
            if (r.token == SIZE_MAX && r.start >= r.end) continue;
            Piece piece;
            if (r.start < r.end) piece.text = text.substr(r.start, r.end - r.start);
            piece.token_id = r.token == SIZE_MAX ? -1 : tokens_[r.token].id;
            piece.at_origin = p.at_origin && r.start == 0;
            out.push_back(std::move(piece));
        }
    });
}

}  // namespace attnscope::text::detail
