// Tests for core/store: float16 conversion, schema round trip, causal chunk allocation, crash
// and disk-full behaviour, versioning, --force rules, validation of damaged or foreign files,
// the AsyncWriter, and read-back of the archived sample of each released schema major.
// Files are made by the store itself, or with raw HDF5 calls where a test needs a file the
// store would never write.
#include "tests/catch.h"
#include "tests/remove_tree.h"

#include <algorithm>
#include <hdf5.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/base/error.h"
#include "core/store/async_writer.h"
#include "core/store/half.h"
#include "core/store/reader.h"
#include "core/store/schema.h"
#include "core/store/writer.h"
#include "tests/store/store_sample.h"

// The message of the exception `expr` throws, which must be of type `type`.
#define MESSAGE_OF(type, expr)                  \
    [&]() -> std::string {                      \
        try {                                   \
            expr;                               \
        } catch (const type& e) {               \
            return e.what();                    \
        }                                       \
        FAIL("expected " #type " from " #expr); \
        return "";                              \
    }()

namespace fs = std::filesystem;
using namespace attnscope;
using namespace attnscope::store;

namespace {

using attnscope::test::TempDir;

ModelInfo test_model() {
    ModelInfo m;
    m.arch = "llama";
    m.n_layers = 4;
    m.n_heads = 4;
    m.n_kv_heads = 2;
    m.d_model = 16;
    m.d_head = 4;
    m.vocab_size = 1000;
    m.source = "/models/tiny";
    m.weights_sha256 = "ab12";
    m.config_json = R"({"model_type": "llama", "hidden_size": 16})";
    return m;
}

RunInfo test_run(const std::string& name = "main", DType dtype = DType::kF16) {
    RunInfo r;
    r.name = name;
    r.hooks = {"blocks.*.attn.hook_pattern"};
    r.seed = 1234;
    r.argv = {"attnscope", "capture", "--run", name};
    r.version = "0.1.0-test";
    r.map_dtype = dtype;
    return r;
}

Prompt test_prompt(std::int64_t id, int t, int salt = 0) {
    Prompt p;
    p.id = id;
    p.text = "prompt " + std::to_string(id);
    p.source = "prompts.txt:" + std::to_string(id + 1);
    for (int i = 0; i < t; ++i) {
        p.tokens.push_back(static_cast<std::int32_t>((i * 7 + salt + id) % 1000));
        p.token_str.push_back("t" + std::to_string(i));
    }
    return p;
}

// Causal map [heads, t, t]: row q is uniform over k <= q, scaled per head.
std::vector<float> causal_map(int heads, int t, float jitter = 0.0f) {
    std::vector<float> a(static_cast<std::size_t>(heads) * t * t, 0.0f);
    for (int h = 0; h < heads; ++h)
        for (int q = 0; q < t; ++q)
            for (int k = 0; k <= q; ++k)
                a[(static_cast<std::size_t>(h) * t + q) * t + k] =
                    1.0f / static_cast<float>(q + 1) + jitter * static_cast<float>(h + k % 5);
    return a;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Rewrites a root string attribute with raw HDF5 calls (what another version would write).
void set_root_attr(const fs::path& path, const char* name, const char* value) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    if (H5Aexists(f, name) > 0) H5Adelete(f, name);
    if (value != nullptr) {
        const hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        const hid_t s = H5Screate(H5S_SCALAR);
        const hid_t a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, &value);
        H5Aclose(a);
        H5Sclose(s);
        H5Tclose(t);
    }
    REQUIRE(H5Fclose(f) >= 0);
}

// A small complete file: run `run` with `n` prompts of t tokens, f16 maps of layer 0.
void make_file(const fs::path& path, const std::string& run = "main", int n = 2, int t = 5,
               const WriterOptions& opts = {}) {
    Writer w(path, test_model(), test_run(run), opts);
    for (int i = 0; i < n; ++i) {
        w.begin_prompt(test_prompt(i, t));
        const auto a = causal_map(4, t);
        w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, t, t}));
        w.end_prompt();
    }
    w.close();
}

// Reference binary32 -> binary16: nearest of all finite halves by exact double arithmetic,
// ties to the even bit pattern; beyond the largest half's rounding boundary, infinity.
std::uint16_t reference_half(float f) {
    static const std::vector<std::pair<double, std::uint16_t>> table = [] {
        std::vector<std::pair<double, std::uint16_t>> t;
        for (std::uint32_t b = 0; b < 0x7c00; ++b) {
            const std::uint32_t e = b >> 10, m = b & 0x3ff;
            const double v = e == 0 ? std::ldexp(static_cast<double>(m), -24)
                                    : std::ldexp(1.0 + m / 1024.0, static_cast<int>(e) - 15);
            t.emplace_back(v, static_cast<std::uint16_t>(b));
        }
        return t;
    }();
    const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    if (std::isnan(f)) return 0x7e00;  // callers compare NaN separately
    const double a = std::fabs(static_cast<double>(f));
    if (a >= 65520.0) return sign | 0x7c00;
    auto it = std::lower_bound(table.begin(), table.end(), std::make_pair(a, std::uint16_t{0}));
    if (it == table.end()) return sign | 0x7c00;
    if (it->first == a || it == table.begin()) return sign | it->second;
    const auto lo = *(it - 1), hi = *it;
    const double dl = a - lo.first, dh = hi.first - a;
    if (dl < dh) return sign | lo.second;
    if (dh < dl) return sign | hi.second;
    return sign | ((lo.second & 1) ? hi.second : lo.second);
}

MetricInfo dims_only(const std::string& dims) {
    MetricInfo mi;
    mi.dims = dims;
    return mi;
}

float bits_to_float(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

}  // namespace

// --- float16 -------------------------------------------------------------------------------------

TEST_CASE("float16: special values convert exactly", "[unit]") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(float_to_half(0.0f) == 0x0000);
    CHECK(float_to_half(-0.0f) == 0x8000);
    CHECK(float_to_half(1.0f) == 0x3c00);
    CHECK(float_to_half(-2.0f) == 0xc000);
    CHECK(float_to_half(inf) == 0x7c00);
    CHECK(float_to_half(-inf) == 0xfc00);
    CHECK(float_to_half(65504.0f) == 0x7bff);   // largest finite
    CHECK(float_to_half(65519.99f) == 0x7bff);  // below the rounding boundary
    CHECK(float_to_half(65520.0f) == 0x7c00);   // tie: rounds to even = inf
    CHECK(float_to_half(1e10f) == 0x7c00);
    CHECK(float_to_half(std::ldexp(1.0f, -14)) == 0x0400);  // smallest normal
    CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
    CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);  // tie with 0: even
    CHECK(float_to_half(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
    CHECK(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);         // 1.5 units: tie, to even 2
    CHECK(float_to_half(std::ldexp(5.0f, -25)) == 0x0002);         // 2.5 units: tie, to even 2
    CHECK(float_to_half(std::ldexp(1023.0f, -24)) == 0x03ff);      // largest subnormal
    CHECK(float_to_half(std::ldexp(2047.0f, -25)) == 0x0400);      // rounds up into normals
    CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie: even
    CHECK(float_to_half(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);  // tie: even (up)
    CHECK(float_to_half(bits_to_float(0x00000001u)) == 0x0000);    // float32 subnormal
    const std::uint16_t qnan = float_to_half(std::numeric_limits<float>::quiet_NaN());
    CHECK((qnan & 0x7c00) == 0x7c00);
    CHECK((qnan & 0x03ff) != 0);
    const std::uint16_t snan = float_to_half(bits_to_float(0xff800001u));  // signalling, tiny
    CHECK(snan == 0xfe00);  // sign kept, made quiet, never turned into inf
    CHECK(std::isnan(half_to_float(0x7e00)));
    CHECK(std::isnan(half_to_float(0x7c01)));
    CHECK(half_to_float(0x7c00) == inf);
    CHECK(half_to_float(0xfc00) == -inf);
    CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));
    CHECK(half_to_float(0x7bff) == 65504.0f);
    CHECK(std::signbit(half_to_float(0x8000)));
}

TEST_CASE("float16: every half round-trips, random floats match the reference", "[unit]") {
    for (std::uint32_t b = 0; b < 0x10000; ++b) {
        const auto h = static_cast<std::uint16_t>(b);
        const float f = half_to_float(h);
        if (std::isnan(f)) {
            CHECK(((float_to_half(f) & 0x7c00) == 0x7c00 && (float_to_half(f) & 0x3ff) != 0));
            continue;
        }
        if (float_to_half(f) != h) FAIL("half " << b << " does not round-trip");
    }
    std::mt19937 rng(42);
    std::uniform_int_distribution<std::uint32_t> bits;
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    int mismatches = 0;
    for (int i = 0; i < 300000; ++i) {
        // Half of the inputs: any bit pattern; half: attention-like values in [0, 1].
        const float f = (i % 2) ? bits_to_float(bits(rng)) : unit(rng) * unit(rng);
        if (std::isnan(f)) continue;
        if (float_to_half(f) != reference_half(f) && ++mismatches < 5)
            FAIL_CHECK("float " << f << " -> " << float_to_half(f) << " reference "
                                << reference_half(f));
    }
    CHECK(mismatches == 0);
    // Midpoints between neighbouring halves and their neighbours: the rounding edge cases.
    for (std::uint32_t b = 0; b < 0x7bff; b += 13) {
        const double lo = half_to_float(static_cast<std::uint16_t>(b));
        const double hi = half_to_float(static_cast<std::uint16_t>(b + 1));
        const float mid = static_cast<float>((lo + hi) / 2);
        for (const float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)})
            if (float_to_half(f) != reference_half(f)) FAIL("midpoint case " << f);
    }
}

TEST_CASE("float16: vector path gives the scalar path's bits", "[unit]") {
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::uint32_t> bits;
    std::vector<float> in(100003);
    for (auto& f : in) f = bits_to_float(bits(rng));
    std::vector<std::uint16_t> fast(in.size()), slow(in.size());
    floats_to_halves(in.data(), fast.data(), in.size());
    detail::floats_to_halves_scalar(in.data(), slow.data(), in.size());
    CHECK(fast == slow);
    std::vector<std::uint16_t> all(0x10000);
    for (std::uint32_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
    std::vector<float> ff(all.size()), fs(all.size());
    halves_to_floats(all.data(), ff.data(), all.size());
    detail::halves_to_floats_scalar(all.data(), fs.data(), all.size());
    CHECK(std::memcmp(ff.data(), fs.data(), ff.size() * 4) == 0);
    INFO("F16C in use: " << detail::has_f16c());
}

// --- schema names --------------------------------------------------------------------------------

TEST_CASE("schema: ids, paths and names", "[unit]") {
    CHECK(schema::prompt_id(42) == "000042");
    CHECK(schema::prompt_id(1234567) == "1234567");
    CHECK(schema::parse_prompt_id("000042") == 42);
    CHECK(schema::parse_prompt_id("4x") == -1);
    CHECK(schema::run_prompt_path("main", 3) == "/runs/main/prompts/000003");
    CHECK(schema::hook_to_path("blocks.7.attn.hook_pattern") == "blocks/7/attn/hook_pattern");
    CHECK(schema::path_to_hook("blocks/7/hook_resid_post") == "blocks.7.hook_resid_post");
    CHECK(schema::is_valid_run_name("run-1.b_2"));
    CHECK_FALSE(schema::is_valid_run_name("a/b"));
    CHECK_FALSE(schema::is_valid_run_name(".hidden"));
    CHECK_FALSE(schema::is_valid_run_name(""));
    CHECK(schema::is_valid_metric_name("sink_score"));
    CHECK_FALSE(schema::is_valid_metric_name("a.b"));
    CHECK(parse_dtype("f16") == DType::kF16);
    CHECK_THROWS_AS(parse_dtype("bf16"), ConfigError);
}

// --- round trip ----------------------------------------------------------------------------------

TEST_CASE("store: round trip of model, prompts, runs, maps, arrays and metrics", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "capture.h5";
    const ModelInfo model = test_model();
    Prompt p0 = test_prompt(0, 300);
    p0.token_str[1] = "東京";
    p0.token_str[2] = "🍣 emoji";
    p0.token_str[3] = std::string("\xe6\x97", 2);  // half a CJK character (byte-level BPE)
    p0.token_str[4] = std::string("a\0b", 3);      // NUL inside
    p0.text = "東京は🍣 — UTF-8";
    Prompt p1 = test_prompt(7, 1);
    Prompt p2 = test_prompt(9, 12);
    p2.n_prompt_tokens = 8;  // 4 generated tokens

    const auto map300 = causal_map(4, 300, 1e-4f);
    std::vector<float> subset(map300.begin() + 300 * 300, map300.begin() + 3 * 300 * 300);
    std::vector<float> resid(300 * 16);
    for (std::size_t i = 0; i < resid.size(); ++i) resid[i] = std::sin(0.01f * i) * 100.0f;
    std::vector<std::uint16_t> resid16(resid.size());
    floats_to_halves(resid.data(), resid16.data(), resid.size());
    std::vector<float> entropy(4 * 4 * 300);
    for (std::size_t i = 0; i < entropy.size(); ++i) entropy[i] = 0.001f * i;
    const float sink = 0.75f;
    const float ninf = -std::numeric_limits<float>::infinity();
    std::vector<float> scores(4 * 12 * 12, ninf);
    for (int h = 0; h < 4; ++h)
        for (int q = 0; q < 12; ++q)
            for (int k = 0; k <= q; ++k) scores[(h * 12 + q) * 12 + k] = 0.5f * (q - k) - h;
    const float one = 1.0f;
    std::vector<float> mean(16);
    for (int i = 0; i < 16; ++i) mean[i] = 0.1f * i;

    {
        WriterOptions o;
        o.created_by = "attnscope test";
        Writer w(file, model, test_run("main"), o);
        w.begin_prompt(p0);
        w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(map300.data(), {4, 300, 300}));
        HookOptions heads12;
        heads12.heads = {1, 2};
        w.write_hook("blocks.2.attn.hook_pattern", FloatRef::f32(subset.data(), {2, 300, 300}),
                     heads12);
        HookOptions as_f32;
        as_f32.dtype = DType::kF32;
        w.write_hook("blocks.3.attn.hook_pattern", FloatRef::f32(map300.data(), {4, 300, 300}),
                     as_f32);
        w.write_hook("blocks.1.hook_resid_post", FloatRef::f32(resid.data(), {300, 16}));
        w.write_hook("blocks.0.hook_resid_post", FloatRef::f16_bits(resid16.data(), {300, 16}));
        MetricInfo mi;
        mi.dims = "layer,head,query_pos";
        mi.params_json = R"({"base":"e"})";
        mi.units = "nats";
        mi.metric_version = 2;
        w.write_metric("entropy", FloatRef::f32(entropy.data(), {4, 4, 300}), mi);
        MetricInfo scalar;
        scalar.units = "fraction";
        w.write_metric("sink_score", FloatRef::f32(&sink, {}), scalar);
        w.end_prompt();

        w.begin_prompt(p1);  // T = 1
        w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(&one, {1, 1, 1}),
                     HookOptions{"", {3}, std::nullopt});
        w.end_prompt();

        w.begin_prompt(p2);
        w.write_hook("blocks.1.attn.hook_attn_scores", FloatRef::f32(scores.data(), {4, 12, 12}));
        const auto map8 = causal_map(4, 8);
        w.write_hook("blocks.1.attn.hook_pattern", FloatRef::f32(map8.data(), {4, 8, 8}));
        w.end_prompt();

        MetricInfo agg;
        agg.dims = "layer,head";
        agg.units = "nats";
        w.write_run_metric("mean_entropy", FloatRef::f32(mean.data(), {4, 4}), agg);
        CHECK(w.prompts_done() == 3);
        w.close();
        CHECK(w.closed());
    }

    Reader r(file);
    CHECK(r.file_info().schema_version == "1.0");
    CHECK(r.file_info().major == 1);
    CHECK(r.file_info().created_by == "attnscope test");
    CHECK(r.file_info().created_utc.size() == 20);
    const ModelInfo& m = r.model();
    CHECK(m.arch == "llama");
    CHECK(m.n_layers == 4);
    CHECK(m.n_heads == 4);
    CHECK(m.n_kv_heads == 2);
    CHECK(m.d_model == 16);
    CHECK(m.d_head == 4);
    CHECK(m.vocab_size == 1000);
    CHECK(m.source == "/models/tiny");
    CHECK(m.weights_sha256 == "ab12");
    CHECK(m.config_json == model.config_json);

    const auto prompts = r.prompts();
    REQUIRE(prompts.size() == 3);
    CHECK(prompts[0].id == 0);
    CHECK(prompts[0].text == p0.text);
    CHECK(prompts[0].source == "prompts.txt:1");
    CHECK(prompts[0].n_tokens == 300);
    CHECK(prompts[0].n_prompt_tokens == 300);
    CHECK(prompts[1].id == 7);
    CHECK(prompts[2].id == 9);
    CHECK(prompts[2].n_tokens == 12);
    CHECK(prompts[2].n_prompt_tokens == 8);
    CHECK(r.tokens(0) == p0.tokens);
    CHECK(r.tokens(9) == p2.tokens);
    const auto strs = r.token_strings(0);
    REQUIRE(strs.size() == 300);
    CHECK(strs[0] == "t0");
    CHECK(strs[1] == "東京");
    CHECK(strs[2] == "🍣 emoji");
    CHECK(strs[3] == "\\xE6\\x97");  // invalid bytes escaped, still readable
    CHECK(strs[4] == "a\\x00b");
    CHECK(r.token_strings(7) == p1.token_str);

    const auto runs = r.runs();
    REQUIRE(runs.size() == 1);
    const RunSummary& run = runs[0];
    CHECK(run.info.name == "main");
    CHECK(run.info.intervention_json == "{}");
    CHECK(run.info.hooks == std::vector<std::string>{"blocks.*.attn.hook_pattern"});
    CHECK(run.info.seed == 1234);
    CHECK(run.info.argv == test_run().argv);
    CHECK(run.info.version == "0.1.0-test");
    CHECK(run.info.map_dtype == DType::kF16);
    CHECK(run.complete);
    CHECK(run.n_prompts_done == 3);
    CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0, 7, 9});

    const auto hooks = r.hooks("main", 0);
    CHECK(hooks == std::vector<std::string>{"blocks.0.attn.hook_pattern",
                                            "blocks.0.hook_resid_post", "blocks.1.hook_resid_post",
                                            "blocks.2.attn.hook_pattern",
                                            "blocks.3.attn.hook_pattern"});

    // f16 map: shape, dims, heads, layer; values within half precision.
    const ArrayInfo a0 = r.array_info("main", 0, "blocks.0.attn.hook_pattern");
    CHECK(a0.dtype == DType::kF16);
    CHECK(a0.shape == std::vector<std::int64_t>{4, 300, 300});
    CHECK(a0.dims == "head,query_pos,key_pos");
    CHECK(a0.heads == std::vector<std::int64_t>{0, 1, 2, 3});
    CHECK(a0.layer == 0);
    const auto head2 = r.read_map_head("main", 0, "blocks.0.attn.hook_pattern", 2);
    REQUIRE(head2.size() == 300u * 300u);
    for (std::size_t i = 0; i < head2.size(); ++i) {
        const float want = half_to_float(float_to_half(map300[2 * 300 * 300 + i]));
        if (head2[i] != want) FAIL("f16 map element " << i << ": " << head2[i] << " vs " << want);
    }
    // Tiles across the chunk border at 256 equal the same region of the whole head.
    const auto tile =
        r.read_map_tile("main", 0, "blocks.0.attn.hook_pattern", 2, 250, 270, 240, 262);
    REQUIRE(tile.size() == 20u * 22u);
    for (int q = 0; q < 20; ++q)
        for (int k = 0; k < 22; ++k) CHECK(tile[q * 22 + k] == head2[(250 + q) * 300 + (240 + k)]);
    const auto upper =
        r.read_map_tile("main", 0, "blocks.0.attn.hook_pattern", 1, 0, 256, 256, 300);
    CHECK(std::all_of(upper.begin(), upper.end(), [](float v) { return v == 0.0f; }));

    // Head subset: model head numbers map to stored positions.
    const ArrayInfo a2 = r.array_info("main", 0, "blocks.2.attn.hook_pattern");
    CHECK(a2.heads == std::vector<std::int64_t>{1, 2});
    const auto h2 = r.read_map_head("main", 0, "blocks.2.attn.hook_pattern", 2);
    CHECK(h2[299 * 300 + 5] == half_to_float(float_to_half(map300[(2 * 300 + 299) * 300 + 5])));
    CHECK_THROWS_AS(r.read_map_head("main", 0, "blocks.2.attn.hook_pattern", 0), ShapeError);
    CHECK_THROWS_AS(r.read_map_tile("main", 0, "blocks.0.attn.hook_pattern", 0, 0, 301, 0, 1),
                    ShapeError);
    CHECK_THROWS_AS(r.read_map_tile("main", 0, "blocks.0.attn.hook_pattern", 0, 5, 5, 0, 1),
                    ShapeError);

    // f32 map: exact.
    const ArrayInfo a3 = r.array_info("main", 0, "blocks.3.attn.hook_pattern");
    CHECK(a3.dtype == DType::kF32);
    CHECK(r.read_array("main", 0, "blocks.3.attn.hook_pattern") == map300);

    // resid: f32 exact, f16 input stays f16.
    CHECK(r.read_array("main", 0, "blocks.1.hook_resid_post") == resid);
    const ArrayInfo rr = r.array_info("main", 0, "blocks.0.hook_resid_post");
    CHECK(rr.dtype == DType::kF16);
    CHECK(rr.dims == "pos,d_model");
    CHECK(rr.layer == 0);
    const auto r16 = r.read_array("main", 0, "blocks.0.hook_resid_post");
    for (std::size_t i = 0; i < r16.size(); ++i) REQUIRE(r16[i] == half_to_float(resid16[i]));

    // T = 1.
    CHECK(r.read_map_head("main", 7, "blocks.0.attn.hook_pattern", 3) == std::vector<float>{1.0f});

    // Scores: unallocated upper tiles read as -inf (fill), lower exact in f16.
    const auto sc = r.read_map_head("main", 9, "blocks.1.attn.hook_attn_scores", 1);
    CHECK(sc[0 * 12 + 11] == ninf);
    CHECK(sc[11 * 12 + 0] == half_to_float(float_to_half(scores[(12 + 11) * 12])));
    CHECK(r.array_info("main", 9, "blocks.1.attn.hook_pattern").shape[1] == 8);

    // Metrics.
    CHECK(r.metrics("main", 0) == std::vector<std::string>{"entropy", "sink_score"});
    const MetricData e = r.read_metric("main", 0, "entropy");
    CHECK(e.shape == std::vector<std::int64_t>{4, 4, 300});
    CHECK(e.data == entropy);
    CHECK(e.info.dims == "layer,head,query_pos");
    CHECK(e.info.params_json == R"({"base":"e"})");
    CHECK(e.info.units == "nats");
    CHECK(e.info.metric_version == 2);
    const MetricData s = r.read_metric("main", 0, "sink_score");
    CHECK(s.shape.empty());
    CHECK(s.data == std::vector<float>{0.75f});
    CHECK(r.metrics("main", 7).empty());
    CHECK(r.run_metrics("main") == std::vector<std::string>{"mean_entropy"});
    CHECK(r.read_run_metric("main", "mean_entropy").data == mean);

    // Lookups of absent things name what is there.
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, r.run("nope")), "runs in the file: main");
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, r.array_info("main", 0, "blocks.9.hook_z")),
                   "stored: blocks.0.attn.hook_pattern");
    CHECK_THROWS_AS(r.read_metric("main", 0, "nope"), SchemaError);
    CHECK_THROWS_AS(r.hooks("main", 1), SchemaError);
    CHECK_THROWS_AS(r.tokens(1), SchemaError);
}

TEST_CASE("store: writer checks shapes, names and call order", "[unit]") {
    TempDir dir;
    Writer w(dir / "c.h5", test_model(), test_run());
    const auto a = causal_map(4, 5);
    CHECK_THROWS_AS(w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 5, 5})),
                    std::logic_error);
    Prompt bad = test_prompt(0, 5);
    bad.token_str.pop_back();
    CHECK_THROWS_AS(w.begin_prompt(bad), ShapeError);
    w.begin_prompt(test_prompt(0, 5));
    CHECK_THROWS_AS(w.begin_prompt(test_prompt(1, 5)), std::logic_error);
    CHECK_THROWS_AS(w.write_hook("blocks.0.attn.hook_banana", FloatRef::f32(a.data(), {4, 5, 5})),
                    HookError);
    CHECK_THROWS_AS(w.write_hook("blocks.9.attn.hook_pattern", FloatRef::f32(a.data(), {4, 5, 5})),
                    HookError);
    const std::string msg = MESSAGE_OF(
        ShapeError, w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 4, 4})));
    CHECK_CONTAINS(msg, "[4, 4, 4]");
    CHECK_CONTAINS(msg, "T = 5");
    CHECK_THROWS_AS(w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {20, 5})),
                    ShapeError);
    CHECK_THROWS_AS(w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 5, 5}),
                                 HookOptions{"", {0, 1, 2}, std::nullopt}),
                    ShapeError);
    CHECK_THROWS_AS(w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 5, 5}),
                                 HookOptions{"", {0, 1, 2, 9}, std::nullopt}),
                    ShapeError);
    CHECK_THROWS_AS(w.write_hook("blocks.0.hook_resid_post", FloatRef::f32(a.data(), {6, 16})),
                    ShapeError);
    w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 5, 5}));
    CHECK_THROWS_AS(w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 5, 5})),
                    SchemaError);
    CHECK_THROWS_AS(w.write_metric("bad.name", FloatRef::f32(a.data(), {4}), dims_only("x")),
                    ConfigError);
    CHECK_THROWS_AS(w.write_metric("m", FloatRef::f32(a.data(), {4}), dims_only("x,y")),
                    ShapeError);
    CHECK_THROWS_AS(w.write_run_metric("m", FloatRef::f32(a.data(), {4}), dims_only("x")),
                    std::logic_error);
    w.end_prompt();
    CHECK_THROWS_AS(w.end_prompt(), std::logic_error);
    w.begin_prompt(test_prompt(1, 5));
    CHECK_THROWS_AS(w.close(), std::logic_error);  // prompt open: run left incomplete
    CHECK(w.closed());
    Reader r(dir / "c.h5");
    CHECK_FALSE(r.run("main").complete);
    CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0});
    CHECK(r.run_prompts("main", true) == std::vector<std::int64_t>{0, 1});

    CHECK_THROWS_AS(Writer(dir / "d.h5", test_model(), test_run("bad/name")), ConfigError);
    ModelInfo zero = test_model();
    zero.n_layers = 0;
    CHECK_THROWS_AS(Writer(dir / "d.h5", zero, test_run()), ConfigError);
    RunInfo bad_json = test_run();
    bad_json.intervention_json = "{oops";
    CHECK_THROWS_AS(Writer(dir / "d.h5", test_model(), bad_json), ConfigError);
    CHECK_FALSE(fs::exists(dir / "d.h5"));
}

// --- causal allocation ---------------------------------------------------------------------------

TEST_CASE("store: upper-triangle chunks are never allocated and read as zeros", "[unit]") {
    TempDir dir;
    const int t = 1024, heads = 2;
    const auto a = causal_map(heads, t);
    for (const bool compress : {false, true}) {
        const fs::path file = dir / (compress ? "z.h5" : "c.h5");
        WriterOptions o;
        o.compress = compress;
        {
            Writer w(file, test_model(), test_run(), o);
            w.begin_prompt(test_prompt(0, t));
            w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {heads, t, t}));
            w.end_prompt();
            w.close();
        }
        const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
        REQUIRE(f >= 0);
        const hid_t ds =
            H5Dopen2(f, "/runs/main/prompts/000000/blocks/0/attn/hook_pattern", H5P_DEFAULT);
        const hsize_t stored = H5Dget_storage_size(ds);
        const hsize_t full = static_cast<hsize_t>(heads) * t * t * 2;
        // 4x4 chunk grid per head: 10 of 16 chunks on or below the diagonal.
        if (!compress)
            CHECK(stored == full * 10 / 16);
        else
            CHECK(stored < full / 4);
        hsize_t n_chunks = 0;
#if H5_VERSION_GE(1, 10, 5)
        const hid_t space = H5Dget_space(ds);
        H5Dget_num_chunks(ds, space, &n_chunks);
        H5Sclose(space);
        CHECK(n_chunks == 2 * 10);
#endif
        H5Dclose(ds);
        H5Fclose(f);
        INFO("compress " << compress << ": stored " << stored << " of " << full << " bytes, "
                         << n_chunks << " chunks; file " << fs::file_size(file));
        Reader r(file);
        const auto head = r.read_map_head("main", 0, "blocks.0.attn.hook_pattern", 1);
        for (int q = 0; q < t; ++q)
            for (int k = q + 1; k < t; ++k)
                if (head[q * t + k] != 0.0f) FAIL("upper triangle not zero at " << q << "," << k);
        CHECK(head[1023 * t + 0] == half_to_float(float_to_half(1.0f / 1024)));
        CHECK(fs::file_size(file) < full * 7 / 10);
    }
}

TEST_CASE("store: non-zero data above the diagonal is kept, not dropped", "[unit]") {
    TempDir dir;
    const int t = 300;
    std::vector<float> a(static_cast<std::size_t>(t) * t, 0.01f);  // not causal
    {
        Writer w(dir / "c.h5", test_model(), test_run("main", DType::kF32));
        w.begin_prompt(test_prompt(0, t));
        w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {1, t, t}));
        w.end_prompt();
        w.close();
    }
    Reader r(dir / "c.h5");
    CHECK(r.read_array("main", 0, "blocks.0.attn.hook_pattern") == a);
}

// --- crash safety --------------------------------------------------------------------------------

TEST_CASE("store: a crashed writer leaves a readable, visibly incomplete run", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "crash.h5";
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Child: two prompts finished, a third half written, then die without any cleanup.
        try {
            Writer w(file, test_model(), test_run());
            for (int i = 0; i < 2; ++i) {
                w.begin_prompt(test_prompt(i, 40));
                const auto a = causal_map(4, 40);
                w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 40, 40}));
                w.end_prompt();
            }
            w.begin_prompt(test_prompt(2, 600));
            const auto big = causal_map(4, 600);
            w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(big.data(), {4, 600, 600}));
            w.write_hook("blocks.1.attn.hook_pattern", FloatRef::f32(big.data(), {4, 600, 600}));
            ::_exit(0);
        } catch (...) {
            ::_exit(3);
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    Reader r(file);
    const RunSummary run = r.run("main");
    CHECK_FALSE(run.complete);
    CHECK(run.n_prompts_done == 2);
    CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0, 1});
    for (const std::int64_t id : {0, 1}) {
        const auto head = r.read_map_head("main", id, "blocks.0.attn.hook_pattern", 3);
        CHECK(head[39 * 40 + 0] == half_to_float(float_to_half(1.0f / 40)));
    }
}

TEST_CASE("store: abandon() leaves the run incomplete; destructor without close too", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "a.h5";
    {
        Writer w(file, test_model(), test_run());
        for (int i = 0; i < 2; ++i) {
            w.begin_prompt(test_prompt(i, 5));
            const auto a = causal_map(4, 5);
            w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 5, 5}));
            w.end_prompt();
        }
        w.begin_prompt(test_prompt(2, 5));
        w.abandon();
        CHECK(w.closed());
        w.abandon();  // idempotent
    }
    {
        Writer w(file, test_model(), test_run("second"));
        w.begin_prompt(test_prompt(0, 5));
        w.end_prompt();
    }  // no close()
    Reader r(file);
    CHECK_FALSE(r.run("main").complete);
    CHECK(r.run("main").n_prompts_done == 2);
    CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0, 1});
    CHECK(r.run_prompts("main", true) == std::vector<std::int64_t>{0, 1, 2});
    CHECK_FALSE(r.run("second").complete);
    CHECK(r.run("second").n_prompts_done == 1);
}

// What `kill -9` during a capture can leave (seen in the CLI crash test): the link of a prompt
// whose group never reached the disk. Modelled by dangling soft links.
TEST_CASE("store: unflushed prompt groups of a killed writer are skipped, not fatal", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "k.h5";
    {
        Writer w(file, test_model(), test_run());
        for (int i = 0; i < 2; ++i) {
            w.begin_prompt(test_prompt(i, 5));
            const auto a = causal_map(4, 5);
            w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 5, 5}));
            w.end_prompt();
        }
    }  // no close(): the run stays incomplete
    auto dangle = [&](const char* group) {
        const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        REQUIRE(f >= 0);
        REQUIRE(H5Lcreate_soft("/nowhere", f, (std::string(group) + "/000073").c_str(), H5P_DEFAULT, H5P_DEFAULT) >= 0);
        REQUIRE(H5Fclose(f) >= 0);
    };
    dangle("/runs/main/prompts");
    dangle("/prompts");
    {
        Reader r(file);
        CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0, 1});
        CHECK(r.run_prompts("main", true) == std::vector<std::int64_t>{0, 1});
        CHECK(r.prompts().size() == 2);
    }
    // In a run marked complete the same link is damage and says so.
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hid_t g = H5Gopen2(f, "/runs/main", H5P_DEFAULT);
    const hid_t a = H5Aopen(g, "complete", H5P_DEFAULT);
    REQUIRE(a >= 0);
    const hid_t t = H5Aget_type(a);
    std::vector<char> one(H5Tget_size(t), 0);
    one[0] = 1;  // little-endian true in whatever integer/enum width the writer used
    REQUIRE(H5Awrite(a, t, one.data()) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    H5Gclose(g);
    REQUIRE(H5Fclose(f) >= 0);
    Reader r(file);
    CHECK_THROWS_AS(r.run_prompts("main"), SchemaError);
}

TEST_CASE("store: a reader follows a writer in another process after refresh", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "live.h5";
    int to_parent[2], to_child[2];
    REQUIRE(::pipe(to_parent) == 0);
    REQUIRE(::pipe(to_child) == 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char c = 0;
        int rc = 0;
        try {
            Writer w(file, test_model(), test_run());
            for (int i = 0; i < 3; ++i) {
                if (i == 2) {
                    (void)!::write(to_parent[1], "x", 1);  // two prompts flushed
                    (void)!::read(to_child[0], &c, 1);     // wait for the reader
                }
                w.begin_prompt(test_prompt(i, 8));
                const auto a = causal_map(4, 8);
                w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, 8, 8}));
                w.end_prompt();
            }
            w.close();
        } catch (...) {
            rc = 3;
        }
        (void)!::write(to_parent[1], "y", 1);
        ::_exit(rc);
    }
    char c = 0;
    REQUIRE(::read(to_parent[0], &c, 1) == 1);
    {
        Reader r(file);  // the writer still has the file open for writing
        CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0, 1});
        // A second writer is refused (HDF5's file lock), with or without force.
        WriterOptions force;
        force.force = true;
        CHECK_CONTAINS(MESSAGE_OF(IoError, Writer(file, test_model(), test_run("other"), force)),
                       "another process is writing it");
        CHECK_FALSE(r.run("main").complete);
        REQUIRE(::write(to_child[1], "g", 1) == 1);
        REQUIRE(::read(to_parent[0], &c, 1) == 1);
        int status = 0;
        ::waitpid(pid, &status, 0);
        CHECK(WEXITSTATUS(status) == 0);
        r.refresh();
        CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0, 1, 2});
        CHECK(r.run("main").complete);
    }
    for (int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) ::close(fd);
}

TEST_CASE("store: a reader in the writer's own process sees the writer's state", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "same.h5";
    Writer w(file, test_model(), test_run());
    w.begin_prompt(test_prompt(0, 5));
    w.end_prompt();
    {
        Reader r(file);
        CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0});
        CHECK_FALSE(r.run("main").complete);
    }
    w.close();
    CHECK(Reader(file).run("main").complete);
}

// --- full disk -----------------------------------------------------------------------------------

namespace {

// Writes 5-token... prompts of 256 tokens until an IoError; returns prompts finished and message.
std::pair<int, std::string> fill_until_error(Writer& w, int from) {
    const int t = 256;
    const auto a = causal_map(4, t);
    int done = from;
    try {
        for (int i = from; i < from + 400; ++i) {
            w.begin_prompt(test_prompt(i, t));
            w.write_hook("blocks.0.attn.hook_pattern", FloatRef::f32(a.data(), {4, t, t}));
            w.end_prompt();
            done = i + 1;
        }
    } catch (const IoError& e) {
        return {done, e.what()};
    }
    return {done, ""};
}

// RLIMIT_FSIZE makes writes past `limit` fail (EFBIG), in this process only, until restored.
class FileSizeLimit {
public:
    explicit FileSizeLimit(rlim_t limit) {
        ::getrlimit(RLIMIT_FSIZE, &old_);
        old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
        rlimit lim{limit, old_.rlim_max};
        ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    ~FileSizeLimit() { restore(); }
    void restore() {
        if (restored_) return;
        ::setrlimit(RLIMIT_FSIZE, &old_);
        ::signal(SIGXFSZ, old_handler_);
        restored_ = true;
    }

private:
    rlimit old_{};
    void (*old_handler_)(int) = nullptr;
    bool restored_ = false;
};

void check_readable_after_failure(const fs::path& file, int done) {
    Reader r(file);
    const RunSummary run = r.run("main");
    CHECK_FALSE(run.complete);
    CHECK(run.n_prompts_done == done);
    const auto ids = r.run_prompts("main");
    CHECK(static_cast<int>(ids.size()) == done);
    for (const auto id : ids) {
        const auto head = r.read_map_head("main", id, "blocks.0.attn.hook_pattern", 0);
        REQUIRE(head[255 * 256] == half_to_float(float_to_half(1.0f / 256)));
    }
}

}  // namespace

TEST_CASE("store: a full disk is an IoError and keeps the finished prompts", "[unit]") {
    TempDir dir;
    SECTION("space reservation fails before HDF5 writes (file size limit)") {
        const fs::path file = dir / "full.h5";
        Writer w(file, test_model(), test_run());
        std::pair<int, std::string> result;
        {
            FileSizeLimit limit(fs::file_size(file) + 3 * 1024 * 1024);
            result = fill_until_error(w, 0);
            limit.restore();
            w.abandon();
        }
        CHECK(result.first > 0);
        CHECK_CONTAINS(result.second, file.string());
        CHECK_CONTAINS(result.second, "File too large");
        CHECK_CONTAINS(result.second, "free disk space");
        // Later calls say the writer has failed.
        CHECK_THROWS_AS(w.begin_prompt(test_prompt(999, 5)), std::logic_error);
        check_readable_after_failure(file, result.first);
    }
    SECTION("a write fails inside HDF5 (limit below the reserved area)") {
        const fs::path file = dir / "full2.h5";
        Writer w(file, test_model(), test_run());
        const auto first = fill_until_error(w, 0);  // no limit: nothing fails
        REQUIRE(first.second.empty());
        std::pair<int, std::string> result;
        {
            FileSizeLimit limit(fs::file_size(file) / 2);
            result = fill_until_error(w, 400);
            CHECK_THROWS_AS(w.begin_prompt(test_prompt(9999, 5)), IoError);
            limit.restore();
            w.abandon();
        }
        CHECK(result.first == 400);
        CHECK_CONTAINS(result.second, file.string());
        CHECK_CONTAINS(result.second, "File too large");
        check_readable_after_failure(file, 400);
    }
    SECTION("a real full filesystem (ATTNSCOPE_TEST_TINY_FS: a directory on a ~4 MiB tmpfs)") {
        const char* tiny = std::getenv("ATTNSCOPE_TEST_TINY_FS");
        if (tiny == nullptr || *tiny == '\0') {
            WARN("ATTNSCOPE_TEST_TINY_FS not set; ENOSPC case skipped");
            return;
        }
        const fs::path file = fs::path(tiny) / "full.h5";
        std::error_code ec;
        fs::remove(file, ec);
        std::pair<int, std::string> result;
        {
            Writer w(file, test_model(), test_run());
            result = fill_until_error(w, 0);
        }
        CHECK(result.first > 0);
        CHECK_CONTAINS(result.second, "No space left on device");
        check_readable_after_failure(file, result.first);
        fs::remove(file, ec);
    }
}

// --- versions ------------------------------------------------------------------------------------

TEST_CASE("store: readers take any 1.x and refuse other majors", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "v.h5";
    make_file(file);
    set_root_attr(file, "schema_version", "1.7");
    CHECK(Reader(file).file_info().minor == 7);
    CHECK(Reader(file).run_prompts("main").size() == 2);

    set_root_attr(file, "schema_version", "2.0");
    const std::string msg = MESSAGE_OF(SchemaError, Reader{file});
    CHECK_CONTAINS(msg, file.string());
    CHECK_CONTAINS(msg, "2.0");
    CHECK_CONTAINS(msg, "newer attnscope");
    CHECK_CONTAINS(msg, "1.x");
    CHECK_CONTAINS(msg, "upgrade");
    set_root_attr(file, "schema_version", "0.3");
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, Reader{file}), "older attnscope");

    set_root_attr(file, "schema_version", "one.zero");
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, Reader{file}), "not an attnscope file");
    set_root_attr(file, "schema_version", nullptr);
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, Reader{file}), "not an attnscope file");
    set_root_attr(file, "schema_version", "1.0");
    set_root_attr(file, "schema", "something-else");
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, Reader{file}), "not an attnscope file");
    set_root_attr(file, "schema", nullptr);
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, Reader{file}), "not an attnscope file");
}

TEST_CASE("store: writers never modify a file of another major, even with force", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "v2.h5";
    make_file(file);
    set_root_attr(file, "schema_version", "2.0");
    const std::string before = read_bytes(file);
    for (const bool force : {false, true}) {
        WriterOptions o;
        o.force = force;
        const std::string msg =
            MESSAGE_OF(SchemaError, Writer(file, test_model(), test_run("new"), o));
        CHECK_CONTAINS(msg, "2.0");
        CHECK_CONTAINS(msg, "even with --force");
        CHECK(read_bytes(file) == before);
    }
    WriterOptions trunc;
    trunc.truncate = true;
    Writer(file, test_model(), test_run("new"), trunc).close();
    Reader r(file);
    CHECK(r.file_info().schema_version == "1.0");
    CHECK(r.runs().size() == 1);
}

// --- existing files, --force, runs ---------------------------------------------------------------

TEST_CASE("store: existing files: append runs, collisions, --force", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "c.h5";
    make_file(file, "main", 2);

    SECTION("a new run of the same model is appended and shares the prompts") {
        make_file(file, "second", 3);
        Reader r(file);
        CHECK(r.runs().size() == 2);
        CHECK(r.prompts().size() == 3);
        CHECK(r.run("main").n_prompts_done == 2);
        CHECK(r.run("second").complete);
    }
    SECTION("an existing run name is an error without force, replaced with force") {
        const std::string msg = MESSAGE_OF(IoError, make_file(file, "main", 1));
        CHECK_CONTAINS(msg, "run 'main' already exists");
        CHECK_CONTAINS(msg, "--force");
        WriterOptions force;
        force.force = true;
        make_file(file, "main", 1, 5, force);
        Reader r(file);
        CHECK(r.run("main").n_prompts_done == 1);
        CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0});
    }
    SECTION("another model is refused, naming the difference; force overwrites") {
        ModelInfo other = test_model();
        other.n_layers = 12;
        other.arch = "gpt2";
        const std::string msg = MESSAGE_OF(SchemaError, Writer(file, other, test_run("x")));
        CHECK_CONTAINS(msg, "n_layers 4 in the file vs 12 here");
        CHECK_CONTAINS(msg, "arch 'llama'");
        CHECK_CONTAINS(msg, "--force");
        ModelInfo other_weights = test_model();
        other_weights.weights_sha256 = "ffff";
        CHECK_THROWS_AS(Writer(file, other_weights, test_run("x")), SchemaError);
        WriterOptions force;
        force.force = true;
        Writer(file, other, test_run("x"), force).close();
        Reader r(file);
        CHECK(r.model().n_layers == 12);
        CHECK(r.runs().size() == 1);
        CHECK(r.prompts().empty());
    }
    SECTION("a prompt with other tokens is refused; force rewrites it and drops stale results") {
        make_file(file, "second", 2);
        Writer w(file, test_model(), test_run("third"));
        const std::string msg = MESSAGE_OF(SchemaError, w.begin_prompt(test_prompt(1, 6)));
        CHECK(msg == "prompt 000001 in " + file.string() +
                         " has other tokens than this run; use a new file or --force");
        w.begin_prompt(test_prompt(0, 5));  // same tokens: accepted
        w.end_prompt();
        w.close();
        WriterOptions force;
        force.force = true;
        Writer f(file, test_model(), test_run("fourth"), force);
        f.begin_prompt(test_prompt(1, 6, 99));
        f.end_prompt();
        f.close();
        Reader r(file);
        CHECK(r.tokens(1) == test_prompt(1, 6, 99).tokens);
        CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0});
        CHECK(r.run("main").n_prompts_done == 1);
        CHECK(r.run_prompts("second") == std::vector<std::int64_t>{0});
        CHECK(r.run_prompts("fourth") == std::vector<std::int64_t>{1});
    }
    SECTION("a prompt id is written once per run") {
        Writer w(file, test_model(), test_run("again"));
        w.begin_prompt(test_prompt(0, 5));
        w.end_prompt();
        CHECK_THROWS_AS(w.begin_prompt(test_prompt(0, 5)), SchemaError);
    }
    SECTION("a file that is not an attnscope file needs force") {
        const fs::path junk = dir / "junk.h5";
        write_bytes(junk, "not hdf5 at all");
        const std::string msg = MESSAGE_OF(IoError, make_file(junk));
        CHECK_CONTAINS(msg, junk.string());
        CHECK_CONTAINS(msg, "pass --force to overwrite it or choose another name");
        CHECK(read_bytes(junk) == "not hdf5 at all");
        const fs::path plain = dir / "plain.h5";
        H5Fclose(H5Fcreate(plain.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
        CHECK_CONTAINS(MESSAGE_OF(IoError, make_file(plain)), "not an attnscope file");
        WriterOptions force;
        force.force = true;
        make_file(junk, "main", 1, 5, force);
        CHECK(Reader(junk).run("main").complete);
    }
    SECTION("a directory is not a file") { CHECK_THROWS_AS(make_file(dir / ""), IoError); }
}

// --- damaged and foreign files -------------------------------------------------------------------

TEST_CASE("store: garbage, truncated and missing files give clear errors", "[unit]") {
    TempDir dir;
    CHECK_CONTAINS(MESSAGE_OF(IoError, Reader(dir / "missing.h5")), "no such file");

    const fs::path junk = dir / "random.h5";
    std::mt19937 rng(1);
    std::string bytes(100000, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    write_bytes(junk, bytes);
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, Reader{junk}), "not an HDF5 file");
    write_bytes(junk, "");
    CHECK_THROWS_AS(Reader{junk}, SchemaError);

    const fs::path good = dir / "good.h5";
    make_file(good, "main", 3, 300);
    const std::string full = read_bytes(good);
    const fs::path cut = dir / "cut.h5";
    for (const std::size_t size :
         {full.size() / 2, std::size_t{4096}, std::size_t{100}, std::size_t{9}}) {
        write_bytes(cut, full.substr(0, size));
        INFO("truncated to " << size << " bytes");
        try {
            Reader r(cut);
            // Whatever opens must still fail cleanly when the missing part is read.
            for (const auto id : r.run_prompts("main"))
                r.read_array("main", id, "blocks.0.attn.hook_pattern");
            FAIL("a truncated file read without error");
        } catch (const IoError& e) {
            if (size == full.size() / 2) CHECK_CONTAINS(e.what(), "truncated");
        } catch (const SchemaError&) {
        }
    }
    // Random bytes over the middle of a valid file: errors, never a crash.
    std::string damaged = full;
    for (std::size_t i = full.size() / 3; i < full.size() / 3 + 2000; ++i)
        damaged[i] = static_cast<char>(rng());
    write_bytes(cut, damaged);
    try {
        Reader r(cut);
        for (const auto id : r.run_prompts("main", true)) {
            for (const auto& h : r.hooks("main", id)) r.read_array("main", id, h);
            r.token_strings(id);
        }
    } catch (const Error&) {
    }
}

TEST_CASE("store: reader validates ranks, types and lengths", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "v.h5";
    make_file(file, "main", 1, 5);
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const std::string base = "/runs/main/prompts/000000/blocks/";
    auto make = [&](const std::string& path, hid_t type, std::vector<hsize_t> dims,
                    const char* dims_attr) {
        const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        const hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
        const hid_t d = H5Dcreate2(f, path.c_str(), type, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (dims_attr != nullptr) {
            const hid_t t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, H5T_VARIABLE);
            const hid_t as = H5Screate(H5S_SCALAR);
            const hid_t a = H5Acreate2(d, "dims", t, as, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, t, &dims_attr);
            H5Aclose(a);
            H5Sclose(as);
            H5Tclose(t);
        }
        H5Dclose(d);
        H5Sclose(s);
        H5Pclose(lcpl);
    };
    make(base + "1/attn/hook_pattern", H5T_STD_I32LE, {4, 5, 5}, "head,query_pos,key_pos");
    const hid_t bf16 = H5Tcopy(H5T_IEEE_F32LE);  // bfloat16 as a custom float: refused
    H5Tset_fields(bf16, 15, 7, 8, 0, 7);
    H5Tset_size(bf16, 2);
    H5Tset_ebias(bf16, 127);
    make(base + "2/attn/hook_pattern", bf16, {4, 5, 5}, "head,query_pos,key_pos");
    H5Tclose(bf16);
    make(base + "3/attn/hook_pattern", H5T_IEEE_F32LE, {4, 5}, "head,query_pos,key_pos");
    make(base + "1/hook_resid_post", H5T_IEEE_F32LE, {5, 16}, nullptr);
    make(base + "2/hook_resid_post", H5T_IEEE_F32LE, {4, 5, 5}, "head,query_pos,key_pos");
    H5Ldelete(f, "/prompts/000000/token_str", H5P_DEFAULT);
    {
        const hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 4);
        const hsize_t n = 3;
        const hid_t s = H5Screate_simple(1, &n, nullptr);
        const hid_t d =
            H5Dcreate2(f, "/prompts/000000/token_str", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, "ab\0\0cd\0\0ef\0\0");
        H5Dclose(d);
        H5Sclose(s);
        H5Tclose(t);
    }
    H5Fclose(f);

    Reader r(file);
    const std::string p = "/runs/main/prompts/000000/blocks/";
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, r.array_info("main", 0, "blocks.1.attn.hook_pattern")),
                   p + "1/attn/hook_pattern: is not float16 or float32");
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, r.read_array("main", 0, "blocks.2.attn.hook_pattern")),
                   "bfloat16");
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, r.array_info("main", 0, "blocks.3.attn.hook_pattern")),
                   "names 3 axes but the shape is [4, 5]");
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, r.array_info("main", 0, "blocks.1.hook_resid_post")),
                   "attribute 'dims' is missing");
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, r.array_info("main", 0, "blocks.2.hook_resid_post")),
                   "'heads' is missing");
    CHECK_CONTAINS(MESSAGE_OF(SchemaError, r.token_strings(0)),
                   "/prompts/000000/token_str: has 3 strings for 5 tokens");
    CHECK(r.read_array("main", 0, "blocks.0.attn.hook_pattern").size() == 100u);
}

// --- AsyncWriter ---------------------------------------------------------------------------------

namespace {

PromptRecord record(std::int64_t id, int t, bool last = true) {
    PromptRecord rec;
    rec.prompt = test_prompt(id, t);
    rec.hooks.push_back(
        {"blocks.0.attn.hook_pattern", FloatArray::from_f32(causal_map(4, t), {4, t, t}), {}});
    std::vector<std::uint16_t> bits(static_cast<std::size_t>(t) * 16, 0x3c00);
    rec.hooks.push_back({"blocks.1.hook_resid_post", FloatArray::from_f16_bits(bits, {t, 16}), {}});
    MetricInfo mi;
    mi.dims = "query_pos";
    mi.units = "nats";
    rec.metrics.push_back({"entropy", FloatArray::from_f32(std::vector<float>(t, 0.5f), {t}), mi});
    rec.last_part = last;
    return rec;
}

}  // namespace

TEST_CASE("store: AsyncWriter writes records on its thread", "[unit]") {
    TempDir dir;
    const fs::path file = dir / "async.h5";
    AsyncOptions ao;
    ao.max_records = 2;
    ao.max_bytes = 64 * 1024;  // smaller than one record: push waits for the writer
    AsyncWriter w(file, test_model(), test_run(), {}, ao);
    for (int i = 0; i < 6; ++i) w.push(record(i, 70));
    // Prompt 6 split over two records (e.g. one per layer).
    PromptRecord part1 = record(6, 20, false);
    PromptRecord part2;
    part2.prompt.id = 6;
    const auto m = causal_map(4, 20);
    part2.hooks.push_back({"blocks.3.attn.hook_pattern", FloatArray::from_f32(m, {4, 20, 20}), {}});
    w.push(std::move(part1));
    w.push(std::move(part2));
    MetricInfo agg;
    agg.dims = "layer";
    w.push_run_metric({"mean", FloatArray::from_f32({1, 2, 3, 4}, {4}), agg});
    w.close();
    CHECK(w.prompts_done() == 7);
    CHECK_FALSE(w.failed());
    CHECK_THROWS_AS(w.push(record(9, 5)), std::logic_error);

    Reader r(file);
    CHECK(r.run("main").complete);
    CHECK(r.run_prompts("main").size() == 7);
    CHECK(r.hooks("main", 6) == std::vector<std::string>{"blocks.0.attn.hook_pattern",
                                                         "blocks.1.hook_resid_post",
                                                         "blocks.3.attn.hook_pattern"});
    CHECK(r.read_array("main", 3, "blocks.1.hook_resid_post")[5] == 1.0f);
    CHECK(r.read_metric("main", 2, "entropy").data.size() == 70u);
    CHECK(r.read_run_metric("main", "mean").data == std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("store: AsyncWriter rethrows the writer thread's errors", "[unit]") {
    TempDir dir;
    SECTION("opening errors come from the constructor") {
        const fs::path file = dir / "a.h5";
        make_file(file);
        CHECK_THROWS_AS(AsyncWriter(file, test_model(), test_run()), IoError);  // run exists
    }
    SECTION("a bad record stops the writer; push and close rethrow it") {
        const fs::path file = dir / "b.h5";
        AsyncWriter w(file, test_model(), test_run());
        w.push(record(0, 10));
        PromptRecord bad = record(1, 10);
        bad.hooks[0].data.shape = {4, 9, 9};  // not the prompt's length
        bad.hooks[0].data.f32.resize(4 * 9 * 9);
        w.push(std::move(bad));
        bool thrown = false;
        try {
            for (int i = 2; i < 1000; ++i) w.push(record(i, 10));
        } catch (const ShapeError& e) {
            thrown = true;
            CHECK_CONTAINS(e.what(), "[4, 9, 9]");
        }
        CHECK(thrown);
        CHECK(w.failed());
        CHECK_THROWS_AS(w.close(), ShapeError);
        Reader r(file);
        CHECK_FALSE(r.run("main").complete);
        CHECK(r.run_prompts("main") == std::vector<std::int64_t>{0});
    }
    SECTION("abandon and the destructor leave the run incomplete") {
        const fs::path file = dir / "c.h5";
        {
            AsyncWriter w(file, test_model(), test_run());
            w.push(record(0, 10));
            w.push(record(1, 10));
        }
        Reader r(file);
        CHECK_FALSE(r.run("main").complete);
        CHECK(r.run_prompts("main").size() <= 2u);
    }
}

TEST_CASE("store: readers on other threads may work while an AsyncWriter writes", "[unit]") {
    TempDir dir;
    const fs::path done_file = dir / "done.h5";
    make_file(done_file, "main", 3, 64);
    AsyncWriter w(dir / "live.h5", test_model(), test_run());
    std::atomic<bool> stop{false};
    std::atomic<int> reads{0};
    std::thread reader([&] {
        Reader r(done_file);
        while (!stop) {
            for (std::int64_t id = 0; id < 3; ++id)
                r.read_map_tile("main", id, "blocks.0.attn.hook_pattern", 1, 0, 64, 0, 32);
            ++reads;
        }
    });
    for (int i = 0; i < 20; ++i) {
        w.push(record(i, 64));
        if (i == 10)  // make sure the reader runs while the writer thread works
            while (reads < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    w.close();
    stop = true;
    reader.join();
    CHECK(reads > 0);
    CHECK(Reader(dir / "live.h5").run_prompts("main").size() == 20u);
}

// --- compatibility ------------------------------------------------------------------------------

TEST_CASE("store: h5dump sees maps as IEEE 16-bit floats (what h5py reads as float16)", "[unit]") {
    if (std::system("command -v h5dump > /dev/null 2>&1") != 0) {
        WARN("h5dump not installed (hdf5-tools); check skipped");
        return;
    }
    TempDir dir;
    const fs::path file = dir / "d.h5";
    make_file(file, "main", 1, 300);
    const fs::path out = dir / "dump.txt";
    const std::string cmd =
        "h5dump -H -p -d /runs/main/prompts/000000/blocks/0/attn/hook_pattern " + file.string() +
        " > " + out.string() + " 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    const std::string dump = read_bytes(out);
    CHECK_CONTAINS(dump, "16-bit little-endian floating-point");
    CHECK_CONTAINS(dump, "CHUNKED ( 1, 256, 256 )");
    CHECK_CONTAINS(dump, "H5D_ALLOC_TIME_INCR");
    CHECK_CONTAINS(dump, "ATTRIBUTE \"dims\"");

    // With h5py at hand, read it as the schema document shows (no custom code).
    if (std::system("python3 -c 'import h5py' > /dev/null 2>&1") != 0) {
        WARN("h5py not installed; the Python check is skipped");
        return;
    }
    const std::string py =
        "python3 -c \"import h5py; f = h5py.File('" + file.string() +
        "', 'r'); "
        "A = f['runs/main/prompts/000000/blocks/0/attn/hook_pattern'][0]; "
        "t = [s.decode() for s in f['prompts/000000/token_str'][()]]; "
        "assert str(A.dtype) == 'float16', A.dtype; assert A.shape == (300, 300); "
        "assert abs(float(A[299].sum()) - 1) < 0.02; assert float(A[0, 1]) == 0; "
        "assert t[1] == 't1'; assert f['runs/main'].attrs['complete'] == True\"";
    CHECK(std::system(py.c_str()) == 0);
}

TEST_CASE("store: archived samples of every released major read back", "[unit]") {
    const fs::path file = fs::path(ATTNSCOPE_SOURCE_DIR) / "samples/store/capture-v1.h5";
    REQUIRE(fs::exists(file));
    CHECK(fs::file_size(file) < 200 * 1024);
    namespace s1 = sample_v1;
    Reader r(file);
    CHECK(r.file_info().major == 1);
    const ModelInfo m = s1::model();
    CHECK(r.model().arch == m.arch);
    CHECK(r.model().n_layers == m.n_layers);
    CHECK(r.model().n_heads == m.n_heads);
    CHECK(r.model().config_json == m.config_json);
    const auto prompts = s1::prompts();
    REQUIRE(r.prompts().size() == prompts.size());
    for (const auto& p : prompts) {
        CHECK(r.prompt(p.id).text == p.text);
        CHECK(r.tokens(p.id) == p.tokens);
        CHECK(r.token_strings(p.id) == p.token_str);
    }
    CHECK(r.prompt(2).n_prompt_tokens == 6);

    const auto runs = r.runs();
    REQUIRE(runs.size() == 3);
    CHECK(r.run("main").complete);
    CHECK(r.run("main").info.seed == 7);
    CHECK(r.run("ablate").info.map_dtype == DType::kF32);
    CHECK(r.run("ablate").info.intervention_json == s1::run_ablate().intervention_json);
    CHECK_FALSE(r.run("crashed").complete);
    CHECK(r.run("crashed").n_prompts_done == 1);
    CHECK(r.run_prompts("crashed") == std::vector<std::int64_t>{0});

    for (const auto& p : prompts) {
        const int t = static_cast<int>(p.tokens.size());
        for (int l = 0; l < 2; ++l) {
            const std::string hook = "blocks." + std::to_string(l) + ".attn.hook_pattern";
            for (int h = 0; h < 4; ++h) {
                const auto a = r.read_map_head("main", p.id, hook, h);
                for (int q = 0; q < t; ++q)
                    for (int k = 0; k < t; ++k)
                        REQUIRE(a[q * t + k] ==
                                half_to_float(float_to_half(s1::pattern(l, h, q, k, t))));
            }
        }
        const auto ab = r.read_map_head("ablate", p.id, "blocks.0.attn.hook_pattern", 3);
        CHECK(ab[(t - 1) * t] == s1::pattern(0, 3, t - 1, 0, t));
        CHECK_THROWS_AS(r.read_map_head("ablate", p.id, "blocks.0.attn.hook_pattern", 0),
                        ShapeError);
        const auto res = r.read_array("main", p.id, "blocks.1.hook_resid_post");
        CHECK(res[3 * 8 + 5] == s1::resid(3, 5));
        const auto e = r.read_metric("main", p.id, "entropy");
        CHECK(e.data[(1 * 4 + 2) * t + 1] == s1::entropy(1, 2, 1));
        CHECK(e.info.units == "nats");
    }
    CHECK(r.read_run_metric("main", "mean_entropy").data[7] == 1.75f);
}
