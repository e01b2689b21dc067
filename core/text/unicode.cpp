// ICU-backed Unicode services for the tokenizer (see unicode.h). The one subtle part is offsets:
// ICU searches UTF-16, the tokenizer works in UTF-8 bytes, so every search builds a UTF-16 copy
// with a map from UTF-16 index back to byte offset (supplementary-plane characters such as emoji
// take two UTF-16 units but must map to one 4-byte UTF-8 character). Not a general ICU wrapper.
#include "core/text/unicode.h"

#include "core/base/error.h"
#include "core/base/utf8.h"

#include <unicode/bytestream.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utypes.h>

#include <cstdint>
#include <limits>

namespace attnscope::text::detail {

struct Regex::Impl {
    std::unique_ptr<icu::RegexPattern> pattern;
    std::string source;  // the pattern as written, for error messages
    std::string where;
};

Regex::Regex(const std::string& pattern, const std::string& where)
    : impl_(std::make_unique<Impl>()) {
    if (!utf8::is_valid(pattern)) {
        throw TokenizerError(where + ": the regex pattern is not valid UTF-8");
    }
    UErrorCode status = U_ZERO_ERROR;
    UParseError parse_error{};
    icu::UnicodeString upattern = icu::UnicodeString::fromUTF8(pattern);
    impl_->pattern.reset(icu::RegexPattern::compile(upattern, 0, parse_error, status));
    if (U_FAILURE(status) || !impl_->pattern) {
        throw TokenizerError(where + ": cannot compile regex '" + pattern + "' (ICU: " +
                             u_errorName(status) + " near offset " +
                             std::to_string(parse_error.offset) +
                             "); the pattern must be valid for both Oniguruma and ICU");
    }
    impl_->source = pattern;
    impl_->where = where;
}

Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

std::vector<Match> Regex::find_all(std::string_view text) const {
    std::vector<Match> out;
    if (text.empty()) return out;
    // UnicodeString indexes with int32_t; a UTF-8 byte gives at most one UTF-16 unit.
    if (text.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
        throw TokenizerError(impl_->where + ": text of " + std::to_string(text.size()) +
                             " bytes is too long for one regex search (limit 2 GiB)");
    }
    // UTF-16 copy plus, for each UTF-16 index, the byte offset of the character it belongs to.
    icu::UnicodeString utext;
    std::vector<std::uint32_t> to_byte;
    to_byte.reserve(text.size() + 1);
    {
        std::u16string units;
        units.reserve(text.size());
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t start = pos;
            char32_t cp = utf8::decode(text, pos);
            if (cp >= 0x10000) {
                units.push_back(static_cast<char16_t>(0xD800 + ((cp - 0x10000) >> 10)));
                units.push_back(static_cast<char16_t>(0xDC00 + ((cp - 0x10000) & 0x3FF)));
                to_byte.push_back(static_cast<std::uint32_t>(start));
                to_byte.push_back(static_cast<std::uint32_t>(start));
            } else {
                units.push_back(static_cast<char16_t>(cp));
                to_byte.push_back(static_cast<std::uint32_t>(start));
            }
        }
        to_byte.push_back(static_cast<std::uint32_t>(text.size()));
        utext = icu::UnicodeString(units.data(), static_cast<std::int32_t>(units.size()));
    }

    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::RegexMatcher> matcher(impl_->pattern->matcher(utext, status));
    if (U_FAILURE(status) || !matcher) {
        throw TokenizerError(impl_->where + ": cannot start a regex search (ICU: " +
                             std::string(u_errorName(status)) + ")");
    }
    // Oniguruma has no backtracking stack limit; ICU's default (8 MB) would fail on long runs of
    // whitespace matched by \s+, so lift it and let memory be the limit, as with onig.
    matcher->setStackLimit(0, status);
    bool have_previous = false;
    std::size_t previous_end = 0;
    while (matcher->find(status)) {
        std::int32_t s16 = matcher->start(status);
        std::int32_t e16 = matcher->end(status);
        if (U_FAILURE(status)) break;
        Match m{to_byte[static_cast<std::size_t>(s16)], to_byte[static_cast<std::size_t>(e16)]};
        // onig's FindMatches drops an empty match that starts where the last match ended; ICU
        // reports it. Both then resume one character further, so nothing else differs.
        if (m.start == m.end && have_previous && m.start == previous_end) continue;
        have_previous = true;
        previous_end = m.end;
        out.push_back(m);
    }
    if (U_FAILURE(status)) {
        throw TokenizerError(impl_->where + ": regex search with '" + impl_->source +
                             "' failed (ICU: " + u_errorName(status) + ")");
    }
    return out;
}

std::vector<Match> find_literal(std::string_view text, std::string_view literal) {
    std::vector<Match> out;
    if (text.empty()) return out;
    if (literal.empty()) {
        // An empty regex matches at every character boundary, including both ends.
        for (std::size_t pos = 0; pos <= text.size();) {
            out.push_back({pos, pos});
            if (pos == text.size()) break;
            utf8::decode(text, pos);
        }
        return out;
    }
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t found = text.find(literal, pos);
        if (found == std::string_view::npos) break;
        out.push_back({found, found + literal.size()});
        pos = found + literal.size();
    }
    return out;
}

std::string normalize(std::string_view text, NormalForm form) {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* normalizer = nullptr;
    switch (form) {
    case NormalForm::nfc: normalizer = icu::Normalizer2::getNFCInstance(status); break;
    case NormalForm::nfd: normalizer = icu::Normalizer2::getNFDInstance(status); break;
    case NormalForm::nfkc: normalizer = icu::Normalizer2::getNFKCInstance(status); break;
    case NormalForm::nfkd: normalizer = icu::Normalizer2::getNFKDInstance(status); break;
    }
    if (U_FAILURE(status) || normalizer == nullptr) {
        throw TokenizerError(std::string("Unicode normalizer unavailable (ICU: ") +
                             u_errorName(status) + "); check the ICU data installation");
    }
    icu::StringPiece piece(text.data(), static_cast<std::int32_t>(text.size()));
    // Most text is already normalized; the quick check avoids a copy.
    if (normalizer->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) {
        return std::string(text);
    }
    status = U_ZERO_ERROR;
    std::string out;
    icu::StringByteSink<std::string> sink(&out);
    normalizer->normalizeUTF8(0, piece, sink, nullptr, status);
    if (U_FAILURE(status)) {
        throw TokenizerError(std::string("Unicode normalization failed (ICU: ") +
                             u_errorName(status) + ")");
    }
    return out;
}

std::string to_lower(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t pos = 0;
    while (pos < text.size()) {
        char32_t cp = utf8::decode(text, pos);
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
            continue;
        }
        icu::UnicodeString one(static_cast<UChar32>(cp));
        one.toLower(icu::Locale::getRoot());
        one.toUTF8String(out);
    }
    return out;
}

bool is_white_space(char32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
    return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE) != 0;
}

bool is_numeric(char32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0;
}

bool is_word_char(char32_t c) {
    if (c < 0x80) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    }
    auto uc = static_cast<UChar32>(c);
    return u_hasBinaryProperty(uc, UCHAR_ALPHABETIC) ||
           (U_GET_GC_MASK(uc) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0 ||
           u_hasBinaryProperty(uc, UCHAR_JOIN_CONTROL);
}

}  // namespace attnscope::text::detail
