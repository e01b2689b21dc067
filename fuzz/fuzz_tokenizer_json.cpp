// libFuzzer target: loading tokenizer.json (Tokenizer::from_json). When the input loads, a fixed
// set of texts is encoded and decoded with it, so a tokenizer that loads but breaks on use is
// found too. An input may carry a tokenizer_config.json after a NUL byte.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base/error.h"
#include "core/text/tokenizer.h"

using namespace attnscope;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string all(reinterpret_cast<const char*>(data), size);
    const std::size_t nul = all.find('\0');
    const std::string tok = all.substr(0, nul);
    const std::string cfg = nul == std::string::npos ? std::string() : all.substr(nul + 1);
    try {
        const text::Tokenizer t = text::Tokenizer::from_json(tok, cfg, "fuzz/tokenizer.json");
        for (const char* s : {"", "Hello world", " \t\n  x", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
                              "<|endoftext|><s></s>", "\xf0\x9f\x98\x80 12345"}) {
            const auto ids = t.encode(s, true);
            (void)t.decode(ids, false);
            (void)t.decode(ids, true);
            for (const auto id : ids) {
                (void)t.id_to_token(id);
                (void)t.token_display(id);
                (void)t.is_special(id);
            }
        }
        (void)t.vocab_size();
        (void)t.kind();
    } catch (const Error&) {
    }
    return 0;
}
