// UTF-8 helpers shared by the tokenizer, the CLI and the viewer: strict validation that reports
// the first bad byte, code point decode/encode, and lossy / escaped renderings of arbitrary bytes.
// std only (no ICU here: Unicode properties and normalization live in core/text). Not a Unicode
// library: nothing here knows about categories, case or normalization forms.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace attnscope::utf8 {

inline constexpr std::size_t npos = std::string_view::npos;

/// The replacement character U+FFFD, which lossy conversions put in place of invalid sequences.
inline constexpr char32_t replacement_char = 0xFFFD;

/// Offset of the first byte of the first invalid sequence in `bytes`, or npos when `bytes` is
/// valid UTF-8. Validation is strict, as Rust's std::str::from_utf8: no overlong forms, no
/// surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence at the end.
std::size_t find_invalid(std::string_view bytes);

inline bool is_valid(std::string_view bytes) { return find_invalid(bytes) == npos; }

/// Length in bytes of the well-formed sequence that starts at `pos`, or 0 when the bytes there
/// do not start one (also 0 when pos >= size).
std::size_t valid_sequence_length(std::string_view bytes, std::size_t pos);

/// Decodes the code point at `pos` and advances `pos` past it. `text` must be valid UTF-8 from
/// `pos` on (callers validate first); on a malformed sequence it returns U+FFFD and advances by
/// at least one byte, so that a loop over hostile input still terminates.
char32_t decode(std::string_view text, std::size_t& pos);

/// Byte length of the UTF-8 encoding of `cp` (1..4); 3 for surrogates / out of range, which are
/// encoded as U+FFFD.
std::size_t encoded_length(char32_t cp);

/// Appends the UTF-8 encoding of `cp`; surrogates and values above U+10FFFF append U+FFFD.
void append(std::string& out, char32_t cp);

std::string encode(char32_t cp);

/// Number of code points of valid UTF-8 `text`.
std::size_t count_code_points(std::string_view text);

/// `bytes` as valid UTF-8, with every maximal invalid subpart replaced by one U+FFFD (the
/// Unicode "best practice" that Rust's String::from_utf8_lossy follows, which `tokenizers` uses).
std::string to_valid_lossy(std::string_view bytes);

/// `bytes` with valid UTF-8 kept as is and every byte of an invalid sequence written as the four
/// characters "\xNN" (upper-case hex). For showing raw token bytes to people.
std::string escape_invalid(std::string_view bytes);

}  // namespace attnscope::utf8
