// Tests for core/format/safetensors: every file is built byte by byte in the test (header JSON
// written by hand), so each malformation is visible in the code that produces it.
#include "tests/catch.h"
#include "tests/remove_tree.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/format/safetensors.h"

namespace fs = std::filesystem;
using namespace attnscope;
using namespace attnscope::format;

namespace {

// A fresh directory under the system temp dir, removed with its contents at scope exit.
using attnscope::test::TempDir;

// The 8-byte little-endian length prefix.
std::string le64(std::uint64_t n) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out;
}

// A safetensors byte image: prefix (the header's real length unless overridden), header, data.
std::string image(const std::string& header, const std::string& data,
                  std::uint64_t length_override = UINT64_MAX) {
    const std::uint64_t n = length_override == UINT64_MAX ? header.size() : length_override;
    return le64(n) + header + data;
}

std::string f32_bytes(const std::vector<float>& values) {
    std::string out(values.size() * 4, '\0');
    std::memcpy(out.data(), values.data(), out.size());
    return out;
}

void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

std::vector<TensorView> parse(const std::string& bytes, const std::string& source = "t.st") {
    return SafetensorsFile::parse_buffer(reinterpret_cast<const std::byte*>(bytes.data()),
                                         bytes.size(), source);
}

// Message of the WeightsError that `fn` throws; fails the test if it throws nothing or another
// type.
template <typename Error = WeightsError, typename Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("wrong exception type: " << e.what());
    }
    FAIL("no exception thrown");
    return {};
}

std::string parse_error(const std::string& bytes) {
    CHECK_THROWS_AS(parse(bytes, "bad.safetensors"), WeightsError);
    return error_of([&] { parse(bytes, "bad.safetensors"); });
}

// A file with two F32 tensors "a" [2] and "b" [1], used to build checkpoints.
std::string two_tensor_file(const std::string& a, const std::string& b) {
    const std::string header = "{\"" + a + "\":{\"dtype\":\"F32\",\"shape\":[2],"
                               "\"data_offsets\":[0,8]},\"" + b +
                               "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    return image(header, f32_bytes({1.f, 2.f, 3.f}));
}

std::string one_tensor_file(const std::string& name, float value) {
    return image("{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
                 f32_bytes({value}));
}

}  // namespace

TEST_CASE("safetensors: valid file with F32, F16, BF16 and metadata", "[unit]") {
    // F16 1.0 = 0x3C00, BF16 1.0 = 0x3F80; both little-endian.
    const std::string header =
        R"({"__metadata__":{"format":"pt","note":"hi"},)"
        R"("w.f32":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
        R"("w.f16":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},)"
        R"("w.bf16":{"dtype":"BF16","shape":[1,1],"data_offsets":[28,30]},)"
        R"("scalar":{"dtype":"I64","shape":[],"data_offsets":[30,38]},)"
        R"("empty":{"dtype":"F32","shape":[0,5],"data_offsets":[38,38]}})";
    std::string data = f32_bytes({0.f, 1.f, 2.f, 3.f, 4.f, 5.f});
    data += std::string("\x00\x3c\x00\x3c", 4);
    data += std::string("\x80\x3f", 2);
    data += std::string("\x07\x00\x00\x00\x00\x00\x00\x00", 8);
    // Spec: the header may be padded with spaces (writers align the data section to 8 bytes).
    const std::string padded = header + "   ";

    TempDir dir;
    write_file(dir / "model.safetensors", image(padded, data));
    const SafetensorsFile file = SafetensorsFile::open(dir / "model.safetensors");

    CHECK(file.path() == dir / "model.safetensors");
    CHECK(file.metadata().size() == 2);
    CHECK(file.metadata().at("format") == "pt");
    REQUIRE(file.tensors().size() == 5);
    // Name order.
    CHECK(file.tensors()[0].name == "empty");
    CHECK(file.tensors()[1].name == "scalar");

    const TensorView& f32 = file.tensors()[4];
    CHECK(f32.name == "w.f32");
    CHECK(f32.dtype == DType::kF32);
    CHECK(f32.shape == std::vector<std::int64_t>{2, 3});
    CHECK(f32.numel() == 6);
    CHECK(f32.nbytes == 24);
    CHECK(f32.file != nullptr);
    float values[6];
    std::memcpy(values, f32.data, sizeof values);
    CHECK(values[0] == 0.f);
    CHECK(values[5] == 5.f);

    const TensorView& f16 = file.tensors()[3];
    CHECK(f16.dtype == DType::kF16);
    CHECK(f16.nbytes == 4);
    CHECK(static_cast<unsigned char>(f16.data[1]) == 0x3c);

    const TensorView& bf16 = file.tensors()[2];
    CHECK(bf16.dtype == DType::kBF16);
    CHECK(bf16.numel() == 1);
    CHECK(static_cast<unsigned char>(bf16.data[1]) == 0x3f);

    const TensorView& scalar = file.tensors()[1];
    CHECK(scalar.shape.empty());
    CHECK(scalar.numel() == 1);
    CHECK(static_cast<unsigned char>(scalar.data[0]) == 7);

    const TensorView& empty = file.tensors()[0];
    CHECK(empty.numel() == 0);
    CHECK(empty.nbytes == 0);
}

TEST_CASE("safetensors: dtype names and sizes", "[unit]") {
    CHECK(to_string(DType::kBF16) == "BF16");
    CHECK(to_string(DType::kF8E4M3) == "F8_E4M3");
    CHECK(to_string(DType::kBool) == "BOOL");
    CHECK(dtype_size(DType::kF64) == 8);
    CHECK(dtype_size(DType::kF32) == 4);
    CHECK(dtype_size(DType::kBF16) == 2);
    CHECK(dtype_size(DType::kF8E5M2) == 1);
    // Every dtype is accepted by the parser under its own name.
    for (DType d : {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64, DType::kI32,
                    DType::kI16, DType::kI8, DType::kU8, DType::kBool, DType::kF8E4M3,
                    DType::kF8E5M2}) {
        const std::string n = std::to_string(dtype_size(d));
        const auto views = parse(image("{\"x\":{\"dtype\":\"" + to_string(d) +
                                           "\",\"shape\":[1],\"data_offsets\":[0," + n + "]}}",
                                       std::string(dtype_size(d), '\0')));
        REQUIRE(views.size() == 1);
        CHECK(views[0].dtype == d);
        CHECK(views[0].file == nullptr);
    }
}

TEST_CASE("safetensors: gaps between tensors are tolerated, header-only file is valid", "[unit]") {
    // 4 unused bytes between a and b, and 4 trailing bytes.
    const auto views = parse(image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                   R"("b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})",
                                   std::string(16, 'x')));
    CHECK(views.size() == 2);
    CHECK(parse(image("{}", "")).empty());
    CHECK(parse(image(R"({"__metadata__":{}})", "")).empty());
}

TEST_CASE("safetensors: truncated and empty files", "[unit]") {
    std::string msg = parse_error(std::string("\x05\x00\x00", 3));
    CHECK_CONTAINS(msg, "bad.safetensors");
    CHECK_CONTAINS(msg, "shorter than the 8-byte header length");

    // A zero-length file: nothing to map, still a clean WeightsError.
    TempDir dir;
    write_file(dir / "empty.safetensors", "");
    CHECK_THROWS_AS(SafetensorsFile::open(dir / "empty.safetensors"), WeightsError);
    msg = error_of([&] { SafetensorsFile::open(dir / "empty.safetensors"); });
    CHECK_CONTAINS(msg, "empty.safetensors");
    CHECK_CONTAINS(msg, "0 bytes");

    // parse_buffer of nothing at all.
    CHECK_THROWS_AS(SafetensorsFile::parse_buffer(nullptr, 0, "null"), WeightsError);
}

TEST_CASE("safetensors: header length past the end of the file", "[unit]") {
    const std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
    const std::string msg = parse_error(image(header, "x", header.size() + 100));
    CHECK_CONTAINS(msg, "bad.safetensors");
    CHECK_CONTAINS(msg, "runs past the end of the file");
    CHECK_CONTAINS(msg, "truncated");
}

TEST_CASE("safetensors: absurd header length", "[unit]") {
    const std::string msg = parse_error(image("{}", "", std::uint64_t{1} << 40));
    CHECK_CONTAINS(msg, "exceeds the limit of 100000000 bytes");
    // All-ones length (e.g. a text file's first 8 bytes would be similar garbage).
    CHECK_THROWS_AS(parse(std::string(8, '\xff') + "{}"), WeightsError);
}

TEST_CASE("safetensors: header that is not JSON / not an object", "[unit]") {
    std::string msg = parse_error(image(R"({"a": {"dtype": "F32",)", ""));
    CHECK_CONTAINS(msg, "bad.safetensors");
    CHECK_CONTAINS(msg, "not valid JSON");
    CHECK_CONTAINS(msg, "at byte");

    msg = parse_error(image(R"([1, 2, 3])", ""));
    CHECK_CONTAINS(msg, "header must be a JSON object");

    // Invalid UTF-8 inside a JSON string.
    msg = parse_error(image("{\"\xff\xfe\":{}}", ""));
    CHECK_CONTAINS(msg, "not valid JSON");

    // Entry that is not an object, and __metadata__ that is not an object of strings.
    msg = parse_error(image(R"({"w": [1, 2]})", ""));
    CHECK_CONTAINS(msg, "tensor 'w'");
    CHECK_CONTAINS(msg, "must be an object");
    msg = parse_error(image(R"({"__metadata__": {"k": 3}})", ""));
    CHECK_CONTAINS(msg, "__metadata__ entry 'k' must be a string");
    msg = parse_error(image(R"({"__metadata__": "x"})", ""));
    CHECK_CONTAINS(msg, "__metadata__ must be an object");
}

TEST_CASE("safetensors: missing keys and unknown dtype", "[unit]") {
    std::string msg = parse_error(image(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"));
    CHECK_CONTAINS(msg, "tensor 'w'");
    CHECK_CONTAINS(msg, "'dtype' is missing");

    msg = parse_error(image(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"));
    CHECK_CONTAINS(msg, "'shape' is missing");

    msg = parse_error(image(R"({"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", "abcd"));
    CHECK_CONTAINS(msg, "bad.safetensors");
    CHECK_CONTAINS(msg, "tensor 'w'");
    CHECK_CONTAINS(msg, "unknown dtype 'F33'");
    CHECK_CONTAINS(msg, "F32, F16, BF16");

    msg = parse_error(image(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "abcd"));
    CHECK_CONTAINS(msg, "dtype must be a string, found number 4");
}

TEST_CASE("safetensors: bad shapes", "[unit]") {
    std::string msg =
        parse_error(image(R"({"w":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}})",
                          std::string(8, '\0')));
    CHECK_CONTAINS(msg, "tensor 'w'");
    CHECK_CONTAINS(msg, "not a non-negative integer: number -1");

    msg = parse_error(
        image(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "abcd"));
    CHECK_CONTAINS(msg, "number 1.5");

    msg = parse_error(image(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})",
                            std::string(8, '\0')));
    CHECK_CONTAINS(msg, "shape must be an array");

    // 2^32 * 2^32 * 2^32 elements: the element count overflows 64 bits.
    msg = parse_error(image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],)"
                            R"("data_offsets":[0,4]}})",
                            "abcd"));
    CHECK_CONTAINS(msg, "more elements than fit in 64 bits");

    // Element count fits, byte count does not.
    msg = parse_error(image(R"({"w":{"dtype":"F64","shape":[4611686018427387904],)"
                            R"("data_offsets":[0,4]}})",
                            "abcd"));
    CHECK_CONTAINS(msg, "too large");

    // A zero dimension makes huge siblings harmless.
    const auto views =
        parse(image(R"({"w":{"dtype":"F32","shape":[4294967296,0,4294967296],)"
                    R"("data_offsets":[0,0]}})",
                    ""));
    CHECK(views.at(0).numel() == 0);
}

TEST_CASE("safetensors: bad data_offsets", "[unit]") {
    // Past the data section (4 bytes of data, tensor claims 0..8).
    std::string msg = parse_error(
        image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"));
    CHECK_CONTAINS(msg, "bad.safetensors");
    CHECK_CONTAINS(msg, "tensor 'w'");
    CHECK_CONTAINS(msg, "run past the end of the data section (4 bytes)");

    // Reversed.
    msg = parse_error(
        image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", std::string(8, '\0')));
    CHECK_CONTAINS(msg, "tensor 'w'");
    CHECK_CONTAINS(msg, "reversed");

    // Not two unsigned integers.
    for (const char* offsets : {"[0]", "[0,4,8]", "[-4,0]", "[0,4.0]", "\"0,4\"",
                                "[0,18446744073709551616]"}) {
        msg = parse_error(image(std::string(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":)") +
                                    offsets + "}}",
                                "abcd"));
        CHECK_CONTAINS(msg, "data_offsets must be [begin, end]");
    }

    // Size mismatch: F32 [3] needs 12 bytes, range holds 8.
    msg = parse_error(image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                            std::string(12, '\0')));
    CHECK_CONTAINS(msg, "tensor 'w'");
    CHECK_CONTAINS(msg, "holds 8 bytes");
    CHECK_CONTAINS(msg, "needs 12 bytes");
}

TEST_CASE("safetensors: overlapping tensors", "[unit]") {
    std::string msg = parse_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                        std::string(12, '\0')));
    CHECK_CONTAINS(msg, "bad.safetensors");
    CHECK_CONTAINS(msg, "tensor 'b'");
    CHECK_CONTAINS(msg, "overlaps tensor 'a'");

    // Identical ranges (an aliasing writer).
    msg = parse_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                            "abcd"));
    CHECK_CONTAINS(msg, "overlaps");

    // A small tensor nested inside a large one that started earlier.
    msg = parse_error(image(R"({"big":{"dtype":"U8","shape":[12],"data_offsets":[0,12]},)"
                            R"("mid":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                            R"("z":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
                            std::string(12, '\0')));
    CHECK_CONTAINS(msg, "overlaps tensor 'big'");

    // Adjacent ranges and empty tensors inside others are fine.
    CHECK(parse(image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                      R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},)"
                      R"("e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}})",
                      std::string(8, '\0')))
              .size() == 3);
}

TEST_CASE("safetensors: duplicate names are rejected", "[unit]") {
    std::string msg = parse_error(image(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                        R"("w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                        "ab"));
    CHECK_CONTAINS(msg, "bad.safetensors");
    CHECK_CONTAINS(msg, "key 'w' appears more than once in the header");

    // A key repeated inside one entry.
    msg = parse_error(image(R"({"w":{"dtype":"U8","dtype":"F32","shape":[1],)"
                            R"("data_offsets":[0,1]}})",
                            "a"));
    CHECK_CONTAINS(msg, "'dtype' appears more than once");

    // The same key in two different objects is not a duplicate.
    CHECK(parse(image(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                      R"("b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                      "ab"))
              .size() == 2);
}

TEST_CASE("safetensors: MappedFile errors", "[unit]") {
    TempDir dir;
    CHECK_THROWS_AS(MappedFile(dir / "nope.safetensors"), IoError);
    const std::string msg = error_of<IoError>([&] { MappedFile f(dir / "nope.safetensors"); });
    CHECK_CONTAINS(msg, "nope.safetensors");
    CHECK_THROWS_AS(MappedFile(dir.path()), IoError);  // a directory
    CHECK_THROWS_AS(SafetensorsFile::open(dir / "nope.safetensors"), IoError);

    write_file(dir / "x.bin", "12345");
    const MappedFile f(dir / "x.bin");
    CHECK(f.size() == 5);
    CHECK(static_cast<char>(f.data()[4]) == '5');
}

TEST_CASE("checkpoint: single model.safetensors", "[unit]") {
    TempDir dir;
    write_file(dir / "model.safetensors", two_tensor_file("h.0.w", "h.0.b"));
    // A stray file next to model.safetensors is not loaded.
    write_file(dir / "other.safetensors", "garbage");

    TensorView copy;
    {
        const Checkpoint ckpt = Checkpoint::open(dir.path());
        CHECK(ckpt.dir() == dir.path());
        CHECK(ckpt.files() == std::vector<fs::path>{dir / "model.safetensors"});
        CHECK(ckpt.names() == std::vector<std::string>{"h.0.b", "h.0.w"});
        CHECK(ckpt.total_bytes() == 12);
        REQUIRE(ckpt.find("h.0.w") != nullptr);
        CHECK(ckpt.find("missing") == nullptr);
        CHECK(ckpt.at("h.0.b").nbytes == 4);
        CHECK_THROWS_AS(ckpt.at("lm_head.weight"), WeightsError);
        const std::string msg = error_of([&] { ckpt.at("lm_head.weight"); });
        CHECK_CONTAINS(msg, "lm_head.weight");
        CHECK_CONTAINS(msg, dir.path().string());
        copy = ckpt.at("h.0.w");
    }
    // The view keeps its mapping alive after the checkpoint is gone.
    float v[2];
    std::memcpy(v, copy.data, sizeof v);
    CHECK(v[0] == 1.f);
    CHECK(v[1] == 2.f);
}

TEST_CASE("checkpoint: errors inside the file name the file", "[unit]") {
    TempDir dir;
    write_file(dir / "model.safetensors", image(R"({"w":{"dtype":"F32","shape":[2],)"
                                                R"("data_offsets":[0,8]}})",
                                                "abcd"));
    const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
    CHECK_CONTAINS(msg, "model.safetensors");
    CHECK_CONTAINS(msg, "tensor 'w'");
}

namespace {

// Two shards plus an index; `index_map` is the weight_map's JSON body.
void write_sharded(const TempDir& dir, const std::string& index_map) {
    write_file(dir / "model-00001-of-00002.safetensors", two_tensor_file("a", "b"));
    write_file(dir / "model-00002-of-00002.safetensors", one_tensor_file("c", 5.f));
    write_file(dir / "model.safetensors.index.json",
               R"({"metadata":{"total_size":16},"weight_map":{)" + index_map + "}}");
}

const char* const kGoodMap = R"("a":"model-00001-of-00002.safetensors",)"
                             R"("b":"model-00001-of-00002.safetensors",)"
                             R"("c":"model-00002-of-00002.safetensors")";

}  // namespace

TEST_CASE("checkpoint: sharded with index", "[unit]") {
    TempDir dir;
    write_sharded(dir, kGoodMap);
    // An index wins over a model.safetensors that happens to be there too.
    write_file(dir / "model.safetensors", "garbage");
    const Checkpoint ckpt = Checkpoint::open(dir.path());
    CHECK(ckpt.names() == std::vector<std::string>{"a", "b", "c"});
    CHECK(ckpt.files() == std::vector<fs::path>{dir / "model-00001-of-00002.safetensors",
                                                dir / "model-00002-of-00002.safetensors"});
    CHECK(ckpt.total_bytes() == 16);
    float c = 0;
    std::memcpy(&c, ckpt.at("c").data, 4);
    CHECK(c == 5.f);
    CHECK(ckpt.at("c").file->path() == dir / "model-00002-of-00002.safetensors");
}

TEST_CASE("checkpoint: sharded index errors", "[unit]") {
    SECTION("missing shard") {
        TempDir dir;
        write_sharded(dir, std::string(kGoodMap) +
                               R"(,"d":"model-00003-of-00003.safetensors")");
        CHECK_THROWS_AS(Checkpoint::open(dir.path()), WeightsError);
        const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
        CHECK_CONTAINS(msg, "model.safetensors.index.json");
        CHECK_CONTAINS(msg, "model-00003-of-00003.safetensors");
        CHECK_CONTAINS(msg, "missing");
    }
    SECTION("tensor listed in the index but missing from its shard") {
        TempDir dir;
        write_sharded(dir, std::string(kGoodMap) + R"(,"z":"model-00002-of-00002.safetensors")");
        const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
        CHECK_CONTAINS(msg, "model-00002-of-00002.safetensors");
        CHECK_CONTAINS(msg, "tensor 'z'");
        CHECK_CONTAINS(msg, "missing from it");
    }
    SECTION("unexpected tensor not in the index") {
        TempDir dir;
        write_sharded(dir, R"("a":"model-00001-of-00002.safetensors",)"
                           R"("c":"model-00002-of-00002.safetensors")");
        const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
        CHECK_CONTAINS(msg, "model-00001-of-00002.safetensors");
        CHECK_CONTAINS(msg, "unexpected tensor 'b' not in index");
    }
    SECTION("tensor in a different shard than the index says") {
        TempDir dir;
        write_sharded(dir, R"("a":"model-00001-of-00002.safetensors",)"
                           R"("b":"model-00002-of-00002.safetensors",)"
                           R"("c":"model-00002-of-00002.safetensors")");
        const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
        CHECK_CONTAINS(msg, "tensor 'b'");
        CHECK_CONTAINS(msg, "assigned to shard model-00002-of-00002.safetensors");
    }
    SECTION("path traversal") {
        for (const char* shard : {"../model-00001-of-00002.safetensors",
                                  "sub/model-00001-of-00002.safetensors",
                                  "/etc/passwd", "..", ""}) {
            TempDir dir;
            write_sharded(dir, std::string(R"("a":")") + shard + "\"");
            const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
            CHECK_CONTAINS(msg, "model.safetensors.index.json");
            CHECK_CONTAINS(msg, "tensor 'a'");
            CHECK_CONTAINS(msg, "path traversal is refused");
        }
    }
    SECTION("malformed index") {
        for (const char* index : {"{", "[]", R"({"weight_map":[]})", R"({"metadata":{}})",
                                  R"({"weight_map":{"a":1}})", R"({"weight_map":{}})",
                                  R"({"weight_map":{"a":"x","a":"y"}})"}) {
            TempDir dir;
            write_sharded(dir, kGoodMap);
            write_file(dir / "model.safetensors.index.json", index);
            CHECK_THROWS_AS(Checkpoint::open(dir.path()), WeightsError);
            const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
            CHECK_CONTAINS(msg, "model.safetensors.index.json");
        }
    }
    SECTION("a corrupt shard names the shard") {
        TempDir dir;
        write_sharded(dir, kGoodMap);
        write_file(dir / "model-00002-of-00002.safetensors", "short");
        const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
        CHECK_CONTAINS(msg, "model-00002-of-00002.safetensors");
    }
}

TEST_CASE("checkpoint: loose *.safetensors files", "[unit]") {
    TempDir dir;
    write_file(dir / "b.safetensors", one_tensor_file("y", 2.f));
    write_file(dir / "a.safetensors", one_tensor_file("x", 1.f));
    write_file(dir / "notes.txt", "not weights");
    const Checkpoint ckpt = Checkpoint::open(dir.path());
    CHECK(ckpt.files() == std::vector<fs::path>{dir / "a.safetensors", dir / "b.safetensors"});
    CHECK(ckpt.names() == std::vector<std::string>{"x", "y"});

    // The same tensor in two files.
    write_file(dir / "c.safetensors", one_tensor_file("x", 3.f));
    const std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
    CHECK_CONTAINS(msg, "tensor 'x'");
    CHECK_CONTAINS(msg, "a.safetensors");
    CHECK_CONTAINS(msg, "c.safetensors");
}

TEST_CASE("checkpoint: pickle-only and empty folders", "[unit]") {
    TempDir dir;
    CHECK_THROWS_AS(Checkpoint::open(dir.path()), WeightsError);
    std::string msg = error_of([&] { Checkpoint::open(dir.path()); });
    CHECK_CONTAINS(msg, "no *.safetensors in " + dir.path().string());

    // The content is a pickle's magic; it must never be read, only named.
    write_file(dir / "pytorch_model.bin", "\x80\x02garbage");
    write_file(dir / "extra.pt", "x");
    CHECK_THROWS_AS(Checkpoint::open(dir.path()), WeightsError);
    msg = error_of([&] { Checkpoint::open(dir.path()); });
    CHECK_CONTAINS(msg, "pytorch_model.bin");
    CHECK_CONTAINS(msg, "extra.pt");
    CHECK_CONTAINS(msg, "pickle");
    CHECK_CONTAINS(msg, "execute");
    CHECK_CONTAINS(msg, "safe_serialization=True");
    CHECK_CONTAINS(msg, "from_pretrained('" + dir.path().string() + "')");

    // Not a directory at all.
    CHECK_THROWS_AS(Checkpoint::open(dir / "does-not-exist"), IoError);
}
