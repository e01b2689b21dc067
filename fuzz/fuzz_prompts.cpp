// libFuzzer target: the prompts-file reader (parse_prompts, the whole of read_prompts but the
// file read). The first byte picks the format (.txt or .jsonl); the rest is the file content.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "core/base/error.h"
#include "core/base/utf8.h"
#include "core/format/prompts.h"

using namespace attnscope;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string name = (data[0] & 1) ? "fuzz/prompts.jsonl" : "fuzz/prompts.txt";
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        const auto prompts = format::parse_prompts(text, name);
        std::set<std::int64_t> ids;
        for (const auto& p : prompts) {
            // Documented: ids unique and >= 0, text valid UTF-8.
            if (p.id < 0 || !ids.insert(p.id).second) __builtin_trap();
            if (utf8::find_invalid(p.text) != utf8::npos) __builtin_trap();
        }
    } catch (const Error&) {
    }
    return 0;
}
