// UTF-8 validation, decoding and lossy rendering. The byte-range table follows the Unicode
// standard's "Well-Formed UTF-8 Byte Sequences" (Table 3-7), which is also exactly what Rust's
// str::from_utf8 accepts, so that our "invalid at offset N" agrees with what `tokenizers` would
// refuse. Not a general Unicode library (see utf8.h).
#include "core/base/utf8.h"

namespace attnscope::utf8 {

namespace {

// Allowed range of the second byte for a given lead byte; later continuation bytes are always
// 0x80..0xBF. Returns the total sequence length (0 for a byte that cannot start a sequence).
std::size_t lead_info(unsigned char lead, unsigned char& lo, unsigned char& hi) {
    lo = 0x80;
    hi = 0xBF;
    if (lead < 0x80) return 1;
    if (lead < 0xC2) return 0;  // continuation byte, or overlong 2-byte lead C0/C1
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) {
        if (lead == 0xE0) lo = 0xA0;       // no overlongs
        else if (lead == 0xED) hi = 0x9F;  // no surrogates
        return 3;
    }
    if (lead < 0xF5) {
        if (lead == 0xF0) lo = 0x90;       // no overlongs
        else if (lead == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
        return 4;
    }
    return 0;
}

// Length of the longest prefix at `pos` that is the start of some well-formed sequence (at least
// 1, so callers always advance). Equal to the full length when the sequence is complete.
std::size_t maximal_prefix(std::string_view bytes, std::size_t pos, bool& complete) {
    complete = false;
    unsigned char lo = 0, hi = 0;
    auto lead = static_cast<unsigned char>(bytes[pos]);
    std::size_t need = lead_info(lead, lo, hi);
    if (need == 0) return 1;
    std::size_t have = 1;
    while (have < need) {
        if (pos + have >= bytes.size()) return have;
        auto b = static_cast<unsigned char>(bytes[pos + have]);
        if (have == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return have;
        ++have;
    }
    complete = true;
    return have;
}

}  // namespace

std::size_t valid_sequence_length(std::string_view bytes, std::size_t pos) {
    if (pos >= bytes.size()) return 0;
    bool complete = false;
    std::size_t n = maximal_prefix(bytes, pos, complete);
    return complete ? n : 0;
}

std::size_t find_invalid(std::string_view bytes) {
    std::size_t pos = 0;
    const std::size_t size = bytes.size();
    while (pos < size) {
        // ASCII fast path: most text is ASCII and this keeps validation of large inputs cheap.
        if (static_cast<unsigned char>(bytes[pos]) < 0x80) {
            ++pos;
            continue;
        }
        std::size_t n = valid_sequence_length(bytes, pos);
        if (n == 0) return pos;
        pos += n;
    }
    return npos;
}

char32_t decode(std::string_view text, std::size_t& pos) {
    if (pos >= text.size()) {
        ++pos;  // past the end: still advance, so that a careless loop terminates
        return replacement_char;
    }
    auto b0 = static_cast<unsigned char>(text[pos]);
    if (b0 < 0x80) {
        ++pos;
        return b0;
    }
    bool complete = false;
    std::size_t n = maximal_prefix(text, pos, complete);
    if (!complete) {
        pos += n;
        return replacement_char;
    }
    char32_t cp = 0;
    if (n == 2) cp = b0 & 0x1F;
    else if (n == 3) cp = b0 & 0x0F;
    else cp = b0 & 0x07;
    for (std::size_t i = 1; i < n; ++i) {
        cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
    }
    pos += n;
    return cp;
}

std::size_t encoded_length(char32_t cp) {
    if (cp < 0x80) return 1;
    if (cp < 0x800) return 2;
    if (cp < 0x10000) return 3;
    if (cp <= 0x10FFFF) return 4;
    return 3;  // encoded as U+FFFD
}

void append(std::string& out, char32_t cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = replacement_char;
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string encode(char32_t cp) {
    std::string out;
    append(out, cp);
    return out;
}

std::size_t count_code_points(std::string_view text) {
    std::size_t n = 0;
    for (char c : text) {
        // Every code point has exactly one byte that is not a continuation byte.
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    }
    return n;
}

std::string to_valid_lossy(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        bool complete = false;
        std::size_t n = maximal_prefix(bytes, pos, complete);
        if (complete) out.append(bytes.substr(pos, n));
        else append(out, replacement_char);
        pos += n;
    }
    return out;
}

std::string escape_invalid(std::string_view bytes) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(bytes.size());
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        bool complete = false;
        std::size_t n = maximal_prefix(bytes, pos, complete);
        if (complete) {
            out.append(bytes.substr(pos, n));
        } else {
            for (std::size_t i = 0; i < n; ++i) {
                auto b = static_cast<unsigned char>(bytes[pos + i]);
                out += "\\x";
                out.push_back(hex[b >> 4]);
                out.push_back(hex[b & 0xF]);
            }
        }
        pos += n;
    }
    return out;
}

}  // namespace attnscope::utf8
