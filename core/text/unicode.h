// Internal Unicode services of the tokenizer, backed by ICU: regex search reported in UTF-8 byte
// offsets, normalization forms, the character classes `tokenizers` tests (Rust's char methods and
// regex classes), and per-character lowercasing. Keeps ICU headers out of the rest of core/text.
// Not a public API and not a general ICU wrapper: only what tokenizer.json components need.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attnscope::text::detail {

/// A match as byte offsets into the searched UTF-8 text; may be empty (start == end).
struct Match {
    std::size_t start = 0;
    std::size_t end = 0;
};

/// A compiled regular expression. `tokenizers` runs its patterns with Oniguruma; ICU agrees with
/// it on the syntax tokenizer.json files use (\p{L}, \p{N}, \s, (?i:...), (?!...), {1,3}), and
/// both treat \s as the Unicode White_Space property. Known differences, none of which the
/// supported model families' patterns touch: ^ and $ (line anchors in Oniguruma's default
/// syntax, input anchors in ICU), Oniguruma-only escapes such as \h, and characters assigned
/// in a Unicode version one library has and the other lacks. Thread-safe for concurrent
/// searches.
class Regex {
public:
    /// Compiles `pattern` (UTF-8). Throws TokenizerError naming `where` when ICU rejects it.
    Regex(const std::string& pattern, const std::string& where);
    Regex(Regex&&) noexcept;
    Regex& operator=(Regex&&) noexcept;
    ~Regex();

    /// All matches in valid UTF-8 `text`, left to right, non-overlapping, as Oniguruma's
    /// find_iter yields them: an empty match right where the previous match ended is dropped.
    /// Throws TokenizerError if ICU gives up (it is configured without a stack limit).
    std::vector<Match> find_all(std::string_view text) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Matches of a literal, as `tokenizers` finds them (it compiles regex::escape(literal)): the
/// non-overlapping occurrences left to right; an empty literal matches the empty string at every
/// character boundary. No matches in an empty text.
std::vector<Match> find_literal(std::string_view text, std::string_view literal);

enum class NormalForm { nfc, nfd, nfkc, nfkd };

/// `text` (valid UTF-8) in the given normalization form. ICU 72 implements Unicode 15; the Rust
/// crate `tokenizers` uses may be on another Unicode version, which only matters for characters
/// assigned in between.
std::string normalize(std::string_view text, NormalForm form);

/// Per-character full lowercase mapping (Rust's char::to_lowercase, which `tokenizers`'
/// Lowercase normalizer applies one character at a time, so no final-sigma context).
std::string to_lower(std::string_view text);

/// Unicode White_Space (Rust's char::is_whitespace and regex \s).
bool is_white_space(char32_t c);
/// General category N* (Rust's char::is_numeric): Nd, Nl, No.
bool is_numeric(char32_t c);
/// Rust regex \w: Alphabetic, M*, Nd, Pc, Join_Control.
bool is_word_char(char32_t c);

}  // namespace attnscope::text::detail
