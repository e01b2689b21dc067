// libFuzzer target: config.json parsing (parse_model_config) on arbitrary text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base/error.h"
#include "core/format/model_config.h"

using namespace attnscope;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const format::ModelConfig c = format::parse_model_config(text, "fuzz/config.json");
        // Invariants the runners rely on once parsing succeeded.
        if (c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.d_model <= 0 ||
            c.d_head <= 0 || c.vocab_size <= 0 || c.n_heads % c.n_kv_heads != 0)
            __builtin_trap();
        (void)format::to_string(c.arch);
        (void)format::to_string(c.rope.type);
        (void)format::to_string(c.activation);
    } catch (const Error&) {
    }
    return 0;
}
