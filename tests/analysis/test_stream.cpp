// Streaming accumulators: streamed == whole-tensor for chunk sizes 1, 3, 7, L (L = 50, 8 heads,
// random causal patterns) within 1e-6; both == a float64 loop recompute; padding, decode rows,
// out-of-order chunks, batch observer, per-head preplan statistics, summary; errors.
#include "analysis/stream.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/base/error.h"
#include "tests/analysis/helpers.h"
#include "tests/catch.h"

using namespace attnscope;
using namespace attnscope::analysis;
using namespace attnscope::analysis::testing;

namespace {

constexpr std::int64_t kHeads = 8, kLen = 50;
constexpr double kTol = 1e-6;

LayerStatsOptions all_stats() {
    LayerStatsOptions o;
    o.preplan = true;
    o.window = 10;
    o.horizon = FaiHorizon::rl();
    o.sink_set = {0, 1, 2, 3};
    return o;
}

// The whole-tensor functions on one layer, in LayerStats form.
LayerStats full(const at::Tensor& p, const TokenMask& m, const LayerStatsOptions& o) {
    LayerStats r;
    r.sink_scores = sink_scores(p, m);
    r.entropy = row_entropy(p, m);
    r.mean_entropy = mean_normalized_entropy(r.entropy, m);
    r.sink_mass = sink_mass(p, o.sink_set, m);
    r.distance = backward_distance(p, m);
    r.waad = waad(p, m, o.window);
    r.fai_sums = fai(p, m, o.horizon);  // per-head FAI (stored here for comparison)
    return r;
}

void check_same(const LayerStats& s, const LayerStats& f, double tol) {
    CHECK(max_diff(s.sink_scores, f.sink_scores) >= 0);
    CHECK(max_diff(s.sink_scores, f.sink_scores) < tol);
    CHECK(max_diff(s.entropy.nats, f.entropy.nats) >= 0);
    CHECK(max_diff(s.entropy.nats, f.entropy.nats) < tol);
    CHECK(max_diff(s.entropy.normalized, f.entropy.normalized) >= 0);
    CHECK(max_diff(s.entropy.normalized, f.entropy.normalized) < tol);
    CHECK(max_diff(s.entropy.n_visible, f.entropy.n_visible) == 0);
    CHECK(max_diff(s.mean_entropy, f.mean_entropy) >= 0);
    CHECK(max_diff(s.mean_entropy, f.mean_entropy) < tol);
    CHECK(max_diff(s.sink_mass, f.sink_mass) >= 0);
    CHECK(max_diff(s.sink_mass, f.sink_mass) < tol);
    CHECK(max_diff(s.distance, f.distance) >= 0);
    CHECK(max_diff(s.distance, f.distance) < tol);
    CHECK(max_diff(s.waad, f.waad) >= 0);
    CHECK(max_diff(s.waad, f.waad) < tol);
    CHECK(max_diff(s.fai(), f.fai_sums) >= 0);
    CHECK(max_diff(s.fai(), f.fai_sums) < tol);
}

LayerStats streamed(const at::Tensor& p, const TokenMask& m, const LayerStatsOptions& o,
                    std::int64_t cs, bool truncate_keys, bool reverse = false) {
    LayerAccumulator acc(p.size(0), o, m);
    const std::int64_t n = p.size(1);
    std::vector<std::int64_t> starts;
    for (std::int64_t q0 = 0; q0 < n; q0 += cs) starts.push_back(q0);
    if (reverse) std::reverse(starts.begin(), starts.end());
    for (auto q0 : starts) {
        const std::int64_t qc = std::min(cs, n - q0);
        at::Tensor c = p.narrow(1, q0, qc);                 // [head, q_chunk, key_pos]
        if (truncate_keys) c = c.narrow(2, 0, q0 + qc);      // keys up to the last row only
        acc.add(c, q0);
    }
    CHECK(acc.complete());
    return acc.result();
}

}  // namespace

TEST_CASE("streamed == whole tensor == float64 loops, chunk sizes 1, 3, 7, L", "[unit][analysis]") {
    const LayerStatsOptions o = all_stats();
    for (bool padded : {false, true}) {
        at::Tensor p64 = random_pattern(kHeads, kLen, padded ? 21 : 20);  // float64
        TokenMask m = TokenMask::response(17);
        if (padded) {
            at::Tensor valid;
            p64 = left_pad(p64.narrow(1, 0, kLen - 4).narrow(2, 0, kLen - 4), 4, valid);
            m.valid = valid;
        }
        const at::Tensor p32 = p64.to(at::kFloat);  // what the model hands over
        INFO("padded = " << padded);

        // Whole-tensor functions against the literal float64 loops.
        const Reference ref = reference(p64, m, o.window, o.horizon.lo, o.horizon.hi, o.sink_set);
        for (const auto& [p, tol] : {std::pair{p64, 1e-12}, std::pair{p32, 2e-5}}) {
            INFO("dtype " << p.scalar_type() << ", tolerance " << tol);
            const LayerStats f = full(p, m, o);
            CHECK(max_diff(f.sink_scores, ref.alpha) >= 0);  // same NaN pattern
            CHECK(max_diff(f.sink_scores, ref.alpha) < tol);
            CHECK(max_diff(f.entropy.nats, ref.nats) < tol);
            CHECK(max_diff(f.entropy.normalized, ref.norm) < tol);
            CHECK(max_diff(f.distance, ref.distance) < tol);
            CHECK(max_diff(f.waad, ref.waad) < tol);
            CHECK(max_diff(f.fai_sums, ref.fai) >= 0);
            CHECK(max_diff(f.fai_sums, ref.fai) < tol);
            CHECK(max_diff(f.sink_mass, ref.mass) < tol);
        }

        // Streamed against whole-tensor, in float64 and in float32.
        for (const auto& p : {p64, p32}) {
            const LayerStats f = full(p, m, o);
            for (std::int64_t cs : {std::int64_t{1}, std::int64_t{3}, std::int64_t{7}, kLen}) {
                INFO("dtype " << p.scalar_type() << ", chunk size " << cs);
                check_same(streamed(p, m, o, cs, /*truncate_keys=*/false), f, kTol);
                check_same(streamed(p, m, o, cs, /*truncate_keys=*/true), f, kTol);
            }
            INFO("reverse order");
            check_same(streamed(p, m, o, 7, false, /*reverse=*/true), f, kTol);
        }
    }
}

TEST_CASE("float64 recompute with the analysis horizon and a sliding window", "[unit][analysis]") {
    at::Tensor p = random_pattern(4, 30, 5);
    TokenMask m = TokenMask::response(3, 27);
    m.attention_window = 8;
    // The model zeroes keys outside the window; do the same so rows still sum to 1.
    at::Tensor t = at::arange(30, at::kLong);
    at::Tensor inside = (t.unsqueeze(1) - t.unsqueeze(0)).lt(8);
    p = p.masked_fill(inside.logical_not().unsqueeze(0), 0.0);
    p = p / p.sum(-1, true);
    LayerStatsOptions o = all_stats();
    o.horizon = FaiHorizon::analysis();
    o.window = 5;
    const Reference ref = reference(p, m, o.window, o.horizon.lo, o.horizon.hi, o.sink_set);
    const LayerStats s = streamed(p, m, o, 4, true);
    CHECK(max_diff(s.sink_scores, ref.alpha) >= 0);
    CHECK(max_diff(s.sink_scores, ref.alpha) < 1e-12);
    CHECK(max_diff(s.entropy.normalized, ref.norm) < 1e-12);
    CHECK(max_diff(s.distance, ref.distance) < 1e-12);
    CHECK(max_diff(s.waad, ref.waad) < 1e-12);
    CHECK(max_diff(s.fai(), ref.fai) >= 0);
    CHECK(max_diff(s.fai(), ref.fai) < 1e-12);
}

TEST_CASE("decode: prefill then single rows extends the same state", "[unit][analysis]") {
    at::Tensor p = random_pattern(3, 20, 9);
    TokenMask m;
    m.valid = at::tensor({0, 1, 1, 1, 1}, at::kLong);  // shorter than the sequence: rest is real
    p.select(1, 0).zero_();
    p[0][0][0] = p[1][0][0] = p[2][0][0] = 1.0;          // the padded row attends to itself
    p.select(2, 0).narrow(1, 1, 19).zero_();             // nobody attends to the pad
    p = p / p.sum(-1, true);
    LayerAccumulator acc(3, all_stats(), m);
    acc.add(p.narrow(1, 0, 12).narrow(2, 0, 12));        // prefill [head, 12, 12]
    const LayerStats after_prefill = acc.result();
    CHECK(after_prefill.n_pos == 12);
    for (std::int64_t t = 12; t < 20; ++t) acc.add(p.narrow(1, t, 1).narrow(2, 0, t + 1));  // [head, 1, t+1]
    TokenMask mf;
    mf.valid = at::cat({at::zeros({1}, at::kBool), at::ones({19}, at::kBool)});
    check_same(acc.result(), full(p, mf, all_stats()), 1e-12);
    CHECK(std::isnan(acc.result().sink_scores[0][0].item<double>()));
}

TEST_CASE("per-head WAAD / FAI combined after classification == materialised group means",
          "[unit][analysis]") {
    const std::int64_t n_layers = 9;
    std::vector<at::Tensor> layers;
    for (std::int64_t l = 0; l < n_layers; ++l) layers.push_back(random_pattern(kHeads, 40, 100 + l));
    PreplanParams pp;
    pp.horizon = FaiHorizon::rl();
    pp.horizon.lo = 2;
    pp.horizon.hi = 15;
    pp.window = 6;
    const TokenMask m = TokenMask::response(12);

    SequenceOptions so;
    so.preplan = true;
    so.preplan_params = pp;
    SequenceAccumulator seq(n_layers, kHeads, so, m);
    CHECK(seq.preplan_layers() == std::vector<std::int64_t>{3, 4, 5, 6});
    for (std::int64_t l = 0; l < n_layers; ++l)
        for (std::int64_t q0 = 0; q0 < 40; q0 += 9)
            seq.add(l, layers[l].narrow(1, q0, std::min<std::int64_t>(9, 40 - q0)), q0);

    std::vector<at::Tensor> sampled;
    for (auto l : seq.preplan_layers()) sampled.push_back(layers[l]);
    const PreplanResult f = preplan(sampled, m, pp);
    const PreplanResult s = seq.preplan();
    CHECK(max_diff(s.distance, f.distance) < kTol);
    CHECK(s.groups.local == f.groups.local);
    CHECK(s.groups.global == f.groups.global);
    CHECK(max_diff(s.roles.waad, f.roles.waad) >= 0);
    CHECK(max_diff(s.roles.waad, f.roles.waad) < kTol);
    CHECK(max_diff(s.roles.fai, f.roles.fai) >= 0);
    CHECK(max_diff(s.roles.fai, f.roles.fai) < kTol);
    CHECK(s.roles.t_loc == f.roles.t_loc);
    CHECK(s.roles.t_glob == f.roles.t_glob);
    CHECK(s.roles.dominated.anchors == f.roles.dominated.anchors);
    CHECK(max_diff(s.roles.gamma, f.roles.gamma) < 1e-12);

    SECTION("fixed grouping reuses groups from another sequence") {
        PreplanParams fixed = pp;
        fixed.grouping = Grouping::kFixed;
        SequenceOptions fo = so;
        fo.preplan_params = fixed;
        SequenceAccumulator again(n_layers, kHeads, fo, m);
        for (std::int64_t l = 0; l < n_layers; ++l) again.add(l, layers[l]);
        CHECK(again.preplan(f.groups).roles.t_glob == f.roles.t_glob);
        CHECK_THROWS_AS(again.preplan(), ConfigError);
    }
    SECTION("sink ratio and per-head summary") {
        const at::Tensor scores = seq.sink_scores();  // [layer, head, pos]
        REQUIRE(scores.sizes() == at::IntArrayRef({n_layers, kHeads, 40}));
        CHECK(seq.sink_ratio().percent == Approx(sink_ratio(scores).percent));
        auto rows = seq.summary();
        REQUIRE(rows.size() == static_cast<size_t>(n_layers * kHeads));
        std::int64_t local = 0, unranked = 0;
        for (const auto& r : rows) {
            local += r.head_class == HeadClass::kLocal;
            unranked += r.head_class == HeadClass::kUnranked;
        }
        CHECK(local == static_cast<std::int64_t>(f.groups.local.size()));
        CHECK(unranked == (n_layers - 4) * kHeads);
        const HeadSummary& r = rows[static_cast<size_t>(4 * kHeads + 2)];  // layer 4, head 2
        CHECK(r.layer == 4);
        CHECK(r.alpha == Approx(scores[4][2][0].item<double>()));
        CHECK(r.sink == (r.alpha > 0.3));
        CHECK(r.distance == Approx(f.distance[1][2].item<double>()));
        const std::string csv = to_csv(rows);
        CHECK(csv.rfind("layer,head,entropy_norm,entropy_nats,sink_slot,alpha,sink,distance,class\n", 0) == 0);
        CHECK(std::count(csv.begin(), csv.end(), '\n') == n_layers * kHeads + 1);
    }
}

TEST_CASE("batch observer: [batch, head, q, k] patterns per layer, padded sequence",
          "[unit][analysis]") {
    const std::int64_t n_layers = 3, heads = 2, n = 10;
    at::Tensor am = at::ones({2, n}, at::kLong);
    am[1][0] = am[1][1] = 0;  // sequence 1 is left-padded by 2
    SequenceOptions so;
    so.layers = {0, 2};
    BatchAccumulator batch(n_layers, heads, masks_from_attention_mask(am, 4), so);
    std::vector<at::Tensor> real1;
    for (std::int64_t l = 0; l < n_layers; ++l) {
        at::Tensor valid;
        at::Tensor seq0 = random_pattern(heads, n, 50 + l);
        at::Tensor seq1 = left_pad(random_pattern(heads, n - 2, 60 + l), 2, valid);
        real1.push_back(seq1.narrow(1, 2, n - 2).narrow(2, 2, n - 2));
        batch.observe(HookName{static_cast<int>(l), Site::kPattern}, at::stack({seq0, seq1}).to(at::kFloat));
    }
    const SequenceAccumulator& s1 = batch.sequence(1);
    CHECK_FALSE(s1.wants(1));
    CHECK(s1.sink_slot() == 2);  // k = 0 counts real tokens: slot 2
    LayerStats l2 = s1.layer(2).result();
    CHECK(max_diff(l2.sink_scores.narrow(1, 2, n - 2), sink_scores(real1[2])) < kTol);
    CHECK(max_diff(l2.distance, backward_distance(real1[2], TokenMask::response(2))) < kTol);
    const SinkRatio r = s1.sink_ratio();
    at::Tensor alpha0 = at::stack({sink_scores(real1[0]), sink_scores(real1[2])});
    CHECK(r.percent == Approx(sink_ratio(alpha0).percent));
    CHECK_THROWS_AS(batch.observe(HookName{0, Site::kAttnScores}, at::zeros({2, heads, n, n})), HookError);
    CHECK_THROWS_AS(batch.observe(HookName{0, Site::kPattern}, at::zeros({3, heads, n, n})), ShapeError);
    CHECK_THROWS_AS(batch.sequence(2), ConfigError);
}

TEST_CASE("accumulators reject bad chunks and parameters", "[unit][analysis]") {
    LayerAccumulator acc(2);
    at::Tensor p = random_pattern(2, 6, 1);
    const std::string msg = message_of([&] { acc.add(random_pattern(3, 6, 1), 0); });
    CHECK(msg.find("[3, 6, 6]") != std::string::npos);
    CHECK(msg.find("head = 2") != std::string::npos);
    CHECK_THROWS_AS(acc.add(random_pattern(3, 6, 1), 0), ShapeError);
    CHECK_THROWS_AS(acc.add(p.narrow(1, 2, 2).narrow(2, 0, 3), 2), ShapeError);  // key_pos < 4
    CHECK_THROWS_AS(acc.add(p, -1), ConfigError);
    CHECK_THROWS_AS(acc.result(), ConfigError);  // nothing added yet
    acc.add(p.narrow(1, 0, 3), 0);
    CHECK_FALSE(acc.complete());
    CHECK_THROWS_AS(acc.add(p.narrow(1, 2, 2), 2), ConfigError);  // row 2 twice
    CHECK_THROWS_AS(acc.add(p.to(at::kHalf).view({2, 6, 6}).narrow(1, 3, 1).squeeze(1)), ShapeError);
    CHECK_THROWS_AS(LayerAccumulator(0), ConfigError);
    LayerStatsOptions o;
    o.preplan = true;
    o.window = 0;
    CHECK_THROWS_AS(LayerAccumulator(2, o), ConfigError);
    o = {};
    o.sink_set = {-1};
    CHECK_THROWS_AS(LayerAccumulator(2, o), ConfigError);
    SequenceOptions so;
    so.layers = {5};
    CHECK_THROWS_AS(SequenceAccumulator(4, 2, so), ConfigError);
    SequenceAccumulator seq(4, 2);
    CHECK_THROWS_AS(seq.add(4, p), ConfigError);
    CHECK_THROWS_AS(seq.preplan(), ConfigError);  // options.preplan is off
    LayerStats no_preplan;
    CHECK_THROWS_AS(preplan_from_stats({no_preplan}), ConfigError);
}

TEST_CASE("accumulators work across InferenceMode (the forward pass runs in it)", "[unit][analysis]") {
    at::Tensor p = random_pattern(2, 8, 3).to(at::kFloat);
    LayerAccumulator acc(2, all_stats());
    {
        c10::InferenceMode guard;  // state is created from inference tensors here
        at::Tensor x = p.clone();
        acc.add(x.narrow(1, 0, 5), 0);
    }
    acc.add(p.narrow(1, 5, 3), 5);  // and updated outside it
    LayerStats r = acc.result();
    r.sink_scores.add_(0.0);  // results are ordinary tensors
    check_same(r, full(p, {}, all_stats()), kTol);
}
