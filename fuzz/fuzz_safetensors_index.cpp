// libFuzzer target: a checkpoint folder with a sharded index (model.safetensors.index.json).
// The input is the index text; the folder beside it holds two small valid shards (shard-a and
// shard-b, tensors "a.x", "a.y" and "b.x") and a file "other.bin", so the fuzzer can reach the
// consistency checks (missing shard, tensor listed for the wrong shard, unlisted tensor, path
// traversal) as well as the JSON parse. Written once; only the index changes per execution.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/format/safetensors.h"
#include "fuzz/fuzz_util.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

std::vector<std::uint8_t> safetensors_bytes(const std::string& header, std::size_t data_bytes) {
    std::vector<std::uint8_t> out(8 + header.size() + data_bytes, 0);
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
    std::memcpy(out.data() + 8, header.data(), header.size());
    return out;
}

fs::path g_ckpt;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    g_ckpt = fuzz::scratch_dir() / "ckpt";
    fs::create_directories(g_ckpt);
    const auto a = safetensors_bytes(
        R"({"a.x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("a.y":{"dtype":"F16","shape":[1,2],"data_offsets":[8,12]}})",
        12);
    const auto b = safetensors_bytes(
        R"({"__metadata__":{"format":"pt"},"b.x":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}})",
        6);
    fuzz::write_file(g_ckpt / "shard-a.safetensors", a.data(), a.size());
    fuzz::write_file(g_ckpt / "shard-b.safetensors", b.data(), b.size());
    const std::uint8_t pickle[] = {0x80, 0x02, '.'};
    fuzz::write_file(g_ckpt / "other.bin", pickle, sizeof pickle);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::write_file(g_ckpt / "model.safetensors.index.json", data, size);
    try {
        const format::Checkpoint ck = format::Checkpoint::open(g_ckpt);
        for (const auto& name : ck.names()) {
            const format::TensorView& t = ck.at(name);
            if (!t.file || t.data < t.file->data() ||
                t.data + t.nbytes > t.file->data() + t.file->size())
                __builtin_trap();  // a view outside its mapping
        }
        (void)ck.total_bytes();
    } catch (const Error&) {
    }
    return 0;
}
