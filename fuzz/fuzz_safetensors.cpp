// libFuzzer target: the safetensors header parser (length prefix, JSON header, dtype/shape/
// offset validation, overlap check) on an in-memory file. Every accepted tensor view is then
// read end to end, so ASan catches a view that points outside the buffer.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/base/error.h"
#include "core/format/safetensors.h"

using namespace attnscope;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // A heap copy of exactly `size` bytes, so reads past the end are ASan reports (libFuzzer's
    // own buffer is also exact, but this keeps the target correct if called differently).
    std::vector<std::byte> buf(size);
    for (std::size_t i = 0; i < size; ++i) buf[i] = static_cast<std::byte>(data[i]);
    try {
        const auto tensors =
            format::SafetensorsFile::parse_buffer(buf.data(), buf.size(), "fuzz.safetensors");
        unsigned sum = 0;
        for (const auto& t : tensors) {
            if (t.nbytes != static_cast<std::size_t>(t.numel()) * format::dtype_size(t.dtype))
                __builtin_trap();  // the parser promised nbytes == numel x dtype size
            for (std::size_t i = 0; i < t.nbytes; ++i) sum += static_cast<unsigned>(t.data[i]);
        }
        volatile unsigned sink = sum;
        (void)sink;
    } catch (const Error&) {
    }
    return 0;
}
