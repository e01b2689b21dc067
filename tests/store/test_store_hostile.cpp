// The reader on damaged or hostile capture files whose HDF5 structure is valid but whose shapes
// lie (issue #11, docs/fuzzing.md "Reader validation"): a few-KiB file can declare datasets of
// 2^36+ elements (chunked, nothing allocated), and before these checks the reader sized its
// buffers from them. Each case writes a valid capture, rewrites one item with the HDF5 C API,
// and expects a SchemaError naming the item, raised before any large allocation.
#include "tests/catch.h"
#include "tests/remove_tree.h"

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/store/reader.h"
#include "core/store/writer.h"

using namespace attnscope;
using namespace attnscope::store;

namespace {

// A capture with one prompt of 3 tokens and one f32 map of heads {0, 1} at layer 0.
void write_capture(const std::filesystem::path& path) {
    ModelInfo m;
    m.arch = "gpt2";
    m.n_layers = 1;
    m.n_heads = 2;
    m.n_kv_heads = 2;
    m.d_model = 4;
    m.d_head = 2;
    m.vocab_size = 16;
    m.config_json = "{}";
    RunInfo r;
    r.name = "main";
    r.map_dtype = DType::kF32;
    Writer w(path, m, r, {});
    Prompt p;
    p.id = 0;
    p.text = "abc";
    p.tokens = {1, 2, 3};
    p.token_str = {"a", "b", "c"};
    w.begin_prompt(p);
    std::vector<float> a(2 * 3 * 3, 0.25f);
    HookOptions o;
    o.heads = {0, 1};
    w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {2, 3, 3}), o);
    w.end_prompt();
    w.close();
}

// Replaces the dataset at `path` by an unallocated chunked one of `dims` (type `type`), copying
// no data, and writes the given string attribute `dims` and int64 list `heads` when non-empty.
void replace_dataset(const std::filesystem::path& file, const std::string& path, hid_t type,
                     const std::vector<hsize_t>& dims, const std::string& dims_attr = "",
                     const std::vector<std::int64_t>& heads = {}) {
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    REQUIRE(H5Ldelete(f, path.c_str(), H5P_DEFAULT) >= 0);
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    std::vector<hsize_t> chunk(dims.size(), 1);
    REQUIRE(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()) >= 0);
    const hid_t ds = H5Dcreate2(f, path.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    REQUIRE(ds >= 0);
    if (!dims_attr.empty()) {
        const hid_t st = H5Tcopy(H5T_C_S1);
        H5Tset_size(st, H5T_VARIABLE);
        H5Tset_cset(st, H5T_CSET_UTF8);
        const hid_t sc = H5Screate(H5S_SCALAR);
        const hid_t at = H5Acreate2(ds, "dims", st, sc, H5P_DEFAULT, H5P_DEFAULT);
        const char* v = dims_attr.c_str();
        REQUIRE(H5Awrite(at, st, &v) >= 0);
        H5Aclose(at);
        H5Sclose(sc);
        H5Tclose(st);
    }
    if (!heads.empty()) {
        const hsize_t n = heads.size();
        const hid_t hs = H5Screate_simple(1, &n, nullptr);
        const hid_t at = H5Acreate2(ds, "heads", H5T_STD_I64LE, hs, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(H5Awrite(at, H5T_NATIVE_INT64, heads.data()) >= 0);
        H5Aclose(at);
        H5Sclose(hs);
    }
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    REQUIRE(H5Fclose(f) >= 0);
}

void set_int_attr(const std::filesystem::path& file, const std::string& obj, const char* name,
                  std::int64_t value) {
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hid_t o = H5Oopen(f, obj.c_str(), H5P_DEFAULT);
    REQUIRE(o >= 0);
    const hid_t a = H5Aopen(o, name, H5P_DEFAULT);
    REQUIRE(a >= 0);
    REQUIRE(H5Awrite(a, H5T_NATIVE_INT64, &value) >= 0);
    H5Aclose(a);
    H5Oclose(o);
    REQUIRE(H5Fclose(f) >= 0);
}

template <class F>
std::string schema_error_of(F&& f) {
    try {
        f();
    } catch (const SchemaError& e) {
        return e.what();
    }
    FAIL("no SchemaError");
    return {};
}

const char* const kMap = "/runs/main/prompts/000000/blocks/0/attn/hook_pattern";

}  // namespace

TEST_CASE("store hostile: tokens declared far beyond their storage are refused before reading",
          "[store][fuzz]") {
    test::TempDir dir("hostile");
    const auto file = dir / "c.h5";
    write_capture(file);
    const hsize_t huge = hsize_t{1} << 36;  // 256 GiB of int32, none of it stored
    replace_dataset(file, "/prompts/000000/tokens", H5T_STD_I32LE, {huge}, "pos");
    set_int_attr(file, "/prompts/000000", "n_tokens", static_cast<std::int64_t>(huge));
    set_int_attr(file, "/prompts/000000", "n_prompt_tokens", static_cast<std::int64_t>(huge));
    Reader r(file);
    CHECK_CONTAINS(schema_error_of([&] { r.tokens(0); }), "stores only");
}

TEST_CASE("store hostile: a tokens length other than n_tokens is refused", "[store][fuzz]") {
    test::TempDir dir("hostile");
    const auto file = dir / "c.h5";
    write_capture(file);
    replace_dataset(file, "/prompts/000000/tokens", H5T_STD_I32LE, {hsize_t{1} << 30}, "pos");
    Reader r(file);
    CHECK_CONTAINS(schema_error_of([&] { r.tokens(0); }), "n_tokens is 3");
    CHECK_CONTAINS(schema_error_of([&] { r.token_strings(0); }), "n_tokens is 3");
}

TEST_CASE("store hostile: a map whose T is not the prompt's is refused", "[store][fuzz]") {
    test::TempDir dir("hostile");
    const auto file = dir / "c.h5";
    write_capture(file);
    // 2 x 2^16 x 2^16 float32 = 32 GiB declared by a file of a few KiB.
    const hsize_t t = hsize_t{1} << 16;
    replace_dataset(file, kMap, H5T_IEEE_F32LE, {2, t, t}, "head,query_pos,key_pos", {0, 1});
    Reader r(file);
    const std::string hook = "blocks.0.attn.hook_pattern";
    CHECK_CONTAINS(schema_error_of([&] { r.array_info("main", 0, hook); }),
                   "but the prompt has 3 tokens");
    CHECK_CONTAINS(schema_error_of([&] { r.read_array("main", 0, hook); }),
                   "but the prompt has 3 tokens");
    CHECK_CONTAINS(schema_error_of([&] { r.read_map_head("main", 0, hook, 0); }),
                   "but the prompt has 3 tokens");
    CHECK_CONTAINS(schema_error_of([&] { r.read_map_tile("main", 0, hook, 1, 0, 1, 0, 1); }),
                   "but the prompt has 3 tokens");
}

TEST_CASE("store hostile: impossible shapes and bad head lists are refused", "[store][fuzz]") {
    test::TempDir dir("hostile");
    const auto file = dir / "c.h5";
    const std::string hook = "blocks.0.attn.hook_pattern";
    SECTION("more than 2^40 elements") {
        write_capture(file);
        const hsize_t big = hsize_t{1} << 30;
        replace_dataset(file, kMap, H5T_IEEE_F32LE, {2, big, big}, "head,query_pos,key_pos",
                        {0, 1});
        Reader r(file);
        CHECK_CONTAINS(schema_error_of([&] { r.read_array("main", 0, hook); }),
                       "impossible shape");
    }
    SECTION("a head index outside the model") {
        write_capture(file);
        replace_dataset(file, kMap, H5T_IEEE_F32LE, {2, 3, 3}, "head,query_pos,key_pos", {0, 7});
        Reader r(file);
        CHECK_CONTAINS(schema_error_of([&] { r.read_map_head("main", 0, hook, 7); }),
                       "distinct heads in [0, 2)");
    }
    SECTION("a head listed twice") {
        write_capture(file);
        replace_dataset(file, kMap, H5T_IEEE_F32LE, {2, 3, 3}, "head,query_pos,key_pos", {1, 1});
        Reader r(file);
        CHECK_CONTAINS(schema_error_of([&] { r.array_info("main", 0, hook); }),
                       "distinct heads");
    }
}
