// Fused attention statistics (analysis/cuda/fused_stats.h) against the CPU reference: the
// streaming LayerAccumulator fed with the materialised float64 pattern. The ATen path runs
// everywhere; the CUDA kernel ([gpu]) on fresh random inputs (fp32: 1e-5, bf16/fp16: 1e-3,
// norm-relative) and on a real model's q / k through the runner's attention tap.
#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "analysis/cuda/fused_stats.h"
#include "analysis/stream.h"
#include "core/base/error.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"
#include "tests/analysis/helpers.h"
#include "tests/catch.h"

using namespace attnscope;
using namespace attnscope::analysis;
using attnscope::analysis::testing::max_diff;
namespace fs = std::filesystem;

namespace {

// Pattern [b, H, n, n] float64 of causal softmax(scale·q·kᵀ) (keys repeated to the query heads).
at::Tensor pattern_of(const at::Tensor& q, const at::Tensor& k, double scale) {
    const std::int64_t rep = q.size(1) / k.size(1);
    at::Tensor kk = k.to(at::kCPU, at::kDouble).repeat_interleave(rep, 1);
    at::Tensor s = at::matmul(q.to(at::kCPU, at::kDouble), kk.transpose(-1, -2)) * scale;
    const std::int64_t n = q.size(2);
    at::Tensor allowed = at::ones({n, n}, at::kBool).tril();
    s = s.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
    return at::softmax(s, -1);
}

LayerStats reference_stats(const at::Tensor& pattern_bhnn, std::int64_t b, const FusedStatsOptions& o) {
    LayerStatsOptions lo;
    lo.preplan = true;
    lo.window = o.window;
    lo.horizon = o.horizon;
    for (std::int64_t s = 0; s < o.sink_k; ++s) lo.sink_set.push_back(s);
    const at::Tensor p = pattern_bhnn.select(0, b);
    LayerAccumulator acc(p.size(0), lo, TokenMask::response(o.rows_begin, o.rows_end));
    acc.add(p);
    return acc.result();
}

// ‖a − b‖ / ‖b‖ over entries finite in both (NaN positions must agree; -1 otherwise).
double rel_err(const at::Tensor& a, const at::Tensor& b) {
    at::Tensor x = a.to(at::kCPU, at::kDouble), y = b.to(at::kCPU, at::kDouble);
    if (x.sizes() != y.sizes()) return -2;
    if (!at::equal(x.isnan(), y.isnan())) return -1;
    at::Tensor keep = x.isnan().logical_not();
    x = x.masked_select(keep);
    y = y.masked_select(keep);
    const double den = y.norm().item<double>();
    const double num = (x - y).norm().item<double>();
    return den > 0 ? num / den : num;
}

void compare(const LayerStats& got, const LayerStats& want, double tol) {
    const std::vector<std::pair<const char*, std::pair<at::Tensor, at::Tensor>>> fields = {
        {"column_sums", {got.column_sums, want.column_sums}},
        {"column_counts", {got.column_counts, want.column_counts}},
        {"sink_scores", {got.sink_scores, want.sink_scores}},
        {"entropy nats", {got.entropy.nats, want.entropy.nats}},
        {"entropy normalized", {got.entropy.normalized, want.entropy.normalized}},
        {"mean_entropy", {got.mean_entropy, want.mean_entropy}},
        {"sink_mass", {got.sink_mass, want.sink_mass}},
        {"distance", {got.distance, want.distance}},
        {"waad", {got.waad, want.waad}},
        {"fai_sums", {got.fai_sums, want.fai_sums}},
        {"fai_counts", {got.fai_counts, want.fai_counts}},
        {"fai", {got.fai(), want.fai()}},
    };
    for (const auto& [name, ab] : fields) {
        INFO(name);
        const double e = rel_err(ab.first, ab.second);
        CHECK(e >= 0);
        CHECK(e <= tol);
    }
    CHECK(at::equal(got.entropy.n_visible.cpu(), want.entropy.n_visible.cpu().to(at::kLong)));
}

std::uint64_t fresh_seed() { return std::random_device{}(); }

}  // namespace

TEST_CASE("fused stats ATen path == LayerAccumulator on the materialised pattern", "[analysis]") {
    at::manual_seed(11);
    const std::int64_t b = 2, H = 4, G = 2, n = 37, d = 16;
    const at::Tensor q = at::randn({b, H, n, d}, at::kDouble), k = at::randn({b, G, n, d}, at::kDouble);
    const double scale = 0.4;
    FusedStatsOptions o;
    o.sink_k = 2;
    o.window = 3;
    o.horizon = {2, 9};
    o.rows_begin = 5;
    o.rows_end = 30;
    const FusedStats f = fused_attention_stats(q, k, at::Tensor(), scale, o);  // CPU: ATen path
    const at::Tensor pat = pattern_of(q, k, scale);
    for (std::int64_t i = 0; i < b; ++i) compare(to_layer_stats(f, i), reference_stats(pat, i, o), 1e-12);

    // Row log-sum-exp matches log Σ exp over the visible keys.
    const at::Tensor lse = attention_row_lse(q, k, scale);
    CHECK(lse.sizes() == at::IntArrayRef({b, H, n}));
    const at::Tensor row0 = (q.select(2, 0) * k.repeat_interleave(2, 1).select(2, 0)).sum(-1) * scale;
    CHECK(max_diff(lse.select(2, 0), row0.to(at::kFloat)) < 1e-5);
    CHECK_THROWS_AS(fused_attention_stats(q, k.narrow(1, 0, 1).expand({b, 3, n, d}), at::Tensor(), scale, o), ShapeError);
}

TEST_CASE("attention tap: lse-based statistics of every layer == hook_pattern accumulators (CPU)",
          "[analysis][model]") {
    const fs::path dir = fs::path(ATTNSCOPE_SOURCE_DIR) / "tests/fixtures/hf/tiny-llama";
    auto m = model::Model::load(dir, {"cpu", "float32", false});
    const auto& cfg = m->config();
    at::manual_seed(3);
    const at::Tensor ids = at::randint(0, cfg.vocab_size, {1, 40}, at::kLong);
    FusedStatsOptions o;
    o.rows_begin = 10;
    std::vector<LayerStats> tapped(cfg.n_layers);
    m->set_attention_tap([&](int l, const at::Tensor& q, const at::Tensor& k, const at::Tensor& lse,
                             double scale) {
        tapped[l] = to_layer_stats(fused_attention_stats(q, k, lse, scale, o), 0);
    });
    const at::Tensor with_tap = m->forward(ids);
    m->set_attention_tap({});
    const at::Tensor plain = m->forward(ids);
    CHECK(max_diff(with_tap, plain) < 1e-4);

    std::vector<at::Tensor> patterns(cfg.n_layers);
    auto h = m->hooks().add_observer("blocks.*.attn.hook_pattern",
                                     [&](const HookName& nm, const at::Tensor& p) { patterns[nm.layer] = p.clone(); });
    m->forward(ids);
    for (int l = 0; l < cfg.n_layers; ++l) {
        INFO("layer " << l);
        REQUIRE(tapped[l].column_sums.defined());
        compare(tapped[l], reference_stats(patterns[l].to(at::kDouble), 0, o), 1e-5);
    }
}

TEST_CASE("gpu: fused statistics kernel == CPU reference on fresh random inputs", "[gpu]") {
    if (!at::hasCUDA() || !fused_stats_kernel_available()) {
        WARN("no CUDA device, CUDA LibTorch or CUDA kernel build: [gpu] test skipped");
        return;
    }
    const std::uint64_t seed = fresh_seed();
    INFO("seed " << seed);
    at::manual_seed(seed);
    struct Case { std::int64_t b, H, G, n, d; };
    const std::vector<Case> cases = {{2, 4, 2, 300, 64}, {1, 2, 1, 129, 128}, {1, 3, 3, 70, 32},
                                     {1, 2, 2, 200, 16}, {1, 2, 1, 100, 256}, {1, 4, 1, 1, 64}};
    for (int variant : {0, 1}) {
    set_fused_stats_variant(variant);
    for (const auto& c : cases) {
        for (const auto dt : {at::kFloat, at::kBFloat16, at::kHalf}) {
            INFO("variant " << variant << " b " << c.b << " H " << c.H << " G " << c.G << " n " << c.n << " d " << c.d
                      << " dtype " << at::toString(dt));
            const auto opts = at::TensorOptions().device(at::kCUDA).dtype(dt);
            // Random magnitudes with a sink-like first key so entropy and sinks vary.
            at::Tensor q = at::randn({c.b, c.H, c.n, c.d}, opts.dtype(at::kFloat)) * 1.5;
            at::Tensor k = at::randn({c.b, c.G, c.n, c.d}, opts.dtype(at::kFloat));
            k.select(2, 0).mul_(3.0);
            q = q.to(dt);
            k = k.to(dt);
            const double scale = 1.0 / std::sqrt(double(c.d));
            FusedStatsOptions o;
            o.sink_k = 4;
            o.window = 10;
            o.horizon = (c.n % 2) ? FaiHorizon{10, 100} : FaiHorizon::analysis();
            o.rows_begin = c.n / 5;
            o.rows_end = c.n - c.n / 7;
            const FusedStats f = fused_attention_stats(q, k, at::Tensor(), scale, o);
            CHECK(f.entropy.scalar_type() == at::kFloat);  // the kernel ran (ATen path is float64)
            const at::Tensor pat = pattern_of(q, k, scale);
            const double tol = dt == at::kFloat ? 1e-5 : 1e-3;
            for (std::int64_t i = 0; i < c.b; ++i)
                compare(to_layer_stats(f, i), reference_stats(pat, i, o), tol);
        }
    }
    }
}

TEST_CASE("gpu: fused statistics kernel on a real model's q / k (runner tap, bf16 and fp32)", "[gpu]") {
    if (!at::hasCUDA() || !fused_stats_kernel_available()) {
        WARN("no CUDA device, CUDA LibTorch or CUDA kernel build: [gpu] test skipped");
        return;
    }
    const fs::path dir = fs::path(ATTNSCOPE_SOURCE_DIR) / "samples/models/tinydeb-llama";
    for (const char* dt : {"float32", "bfloat16"}) {
        INFO(dt);
        auto m = model::Model::load(dir, {"cuda", dt, true});
        std::ifstream in(fs::path(ATTNSCOPE_SOURCE_DIR) / "README.md");
        std::stringstream ss;
        ss << in.rdbuf();
        auto tok = m->require_tokenizer().encode(ss.str());
        tok.resize(std::min<size_t>(tok.size(), 700));
        at::Tensor ids = at::tensor(std::vector<std::int64_t>(tok.begin(), tok.end())).view({1, -1});
        FusedStatsOptions o;
        o.rows_begin = 50;
        std::vector<LayerStats> got(m->config().n_layers), want(m->config().n_layers);
        std::vector<at::Tensor> lse_err(m->config().n_layers);
        m->set_attention_tap([&](int l, const at::Tensor& q, const at::Tensor& k, const at::Tensor& lse,
                                 double scale) {
            got[l] = to_layer_stats(fused_attention_stats(q, k, lse, scale, o), 0);
            want[l] = reference_stats(pattern_of(q, k, scale), 0, o);
            lse_err[l] = (lse.cpu().to(at::kDouble) - attention_row_lse(q.cpu().to(at::kDouble), k.cpu().to(at::kDouble), scale).to(at::kDouble)).abs().max();
        });
        const at::Tensor with_tap = m->forward(ids).cpu();
        m->set_attention_tap({});
        const at::Tensor plain = m->forward(ids).cpu();  // default SDPA backend
        CHECK(max_diff(with_tap, plain) <= 0.02 * (1.0 + plain.abs().max().item<double>()));
        for (int l = 0; l < m->config().n_layers; ++l) {
            INFO("layer " << l);
            CHECK(lse_err[l].item<double>() < 1e-3);
            compare(got[l], want[l], std::string(dt) == "float32" ? 1e-5 : 1e-3);
        }
    }
}
