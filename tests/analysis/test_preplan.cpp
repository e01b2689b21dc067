// WAAD / FAI / head classes / token roles: every number of methods.md §5.8, the layer-selection
// rule of §5.1, TopQ ties, peaks, closed forms on uniform rows, errors.
#include "analysis/preplan.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/base/error.h"
#include "tests/analysis/helpers.h"
#include "tests/catch.h"

using namespace attnscope;
using namespace attnscope::analysis;
using namespace attnscope::analysis::testing;

namespace {

at::Tensor a_loc() {
    return causal({{1}, {.5, .5}, {.2, .3, .5}, {.1, .1, .6, .2}, {0, 0, .1, .1, .8},
                   {.3, .2, .1, .1, .1, .2}});
}
at::Tensor a_glob() {
    return causal({{1}, {.6, .4}, {.5, .2, .3}, {.4, .1, .4, .1}, {.3, .1, .4, .1, .1},
                   {.2, .05, .1, .05, .5, .1}});
}
// N = 6, prompt = {0, 1}, response R = {2, 3, 4, 5}.
TokenMask r58() { return TokenMask::response(2); }

PreplanParams p58() {
    PreplanParams p;
    p.window = 2;
    p.horizon = {1, 2};
    p.tau_waad = 0.5;
    p.tau_delta = 0.5;
    p.k = 1;
    p.alpha = 0.5;
    p.gamma_amp = 1.5;
    return p;
}

double at_(const at::Tensor& t, std::int64_t i) { return t[i].item<double>(); }

}  // namespace

TEST_CASE("methods.md 5.8: head distances and classes", "[unit][analysis]") {
    at::Tensor dl = backward_distance(a_loc(), r58());
    at::Tensor dg = backward_distance(a_glob(), r58());
    CHECK(dl.item<double>() == Approx(1.25).margin(1e-12));
    CHECK(dg.item<double>() == Approx(1.875).margin(1e-12));
    at::Tensor both = backward_distance(at::stack({a_loc(), a_glob()}), r58());  // [head = 2]
    CHECK(max_diff(both, at::stack({dl, dg})) < 1e-15);
    HeadGroups g = classify_heads(both);
    CHECK(g.local == std::vector<std::int64_t>{0});
    CHECK(g.global == std::vector<std::int64_t>{1});
    CHECK(g.classes[0].item<std::int8_t>() == static_cast<std::int8_t>(HeadClass::kLocal));
    CHECK(g.classes[1].item<std::int8_t>() == static_cast<std::int8_t>(HeadClass::kGlobal));
    CHECK(std::isnan(backward_distance(a_loc(), TokenMask::response(6)).item<double>()));
}

TEST_CASE("methods.md 5.8: WAAD, delta, FAI", "[unit][analysis]") {
    at::Tensor w = waad(a_loc(), r58(), 2);
    REQUIRE(w.sizes() == at::IntArrayRef({6}));
    CHECK(std::isnan(at_(w, 0)));
    CHECK(std::isnan(at_(w, 1)));
    CHECK(at_(w, 2) == Approx(0.7).margin(1e-12));
    CHECK(at_(w, 3) == Approx(1.0).margin(1e-12));
    CHECK(at_(w, 4) == Approx(0.3).margin(1e-12));
    CHECK(at_(w, 5) == Approx(1.5).margin(1e-12));

    at::Tensor d = waad_delta(w, r58());
    CHECK(at_(d, 2) == Approx(0.3).margin(1e-12));
    CHECK(at_(d, 3) == Approx(0.7).margin(1e-12));
    CHECK(at_(d, 4) == Approx(1.2).margin(1e-12));
    CHECK(std::isnan(at_(d, 5)));  // Δ5 needs t = 6
    CHECK(std::isnan(at_(d, 1)));  // 1 is a prompt slot

    at::Tensor f = fai(a_glob(), r58(), {1, 2});
    CHECK(at_(f, 2) == Approx(0.4).margin(1e-12));
    CHECK(at_(f, 3) == Approx(0.075).margin(1e-12));
    CHECK(at_(f, 4) == Approx(0.5).margin(1e-12));   // T(4) = {5}
    CHECK(std::isnan(at_(f, 5)));                      // T(5) empty: undefined
    CHECK(at_(f, 1) == Approx(0.15).margin(1e-12));  // prompt slot: defined, never ranked
    at::Tensor fi = fai(a_glob(), r58(), FaiHorizon::analysis());
    CHECK(at_(fi, 2) == Approx(0.3).margin(1e-12));
    CHECK(at_(fi, 4) == Approx(0.5).margin(1e-12));
    CHECK(std::isnan(at_(fi, 5)));
    at::Tensor frl = fai(a_glob(), r58(), FaiHorizon::rl());  // H_lo = 10 > N: all undefined
    CHECK(frl.isnan().all().item<bool>());
}

TEST_CASE("methods.md 5.8: TopQ, dominated anchors, gamma", "[unit][analysis]") {
    at::Tensor w = waad(a_loc(), r58(), 2);
    at::Tensor d = waad_delta(w, r58());
    at::Tensor f = fai(a_glob(), r58(), {1, 2});
    auto t_loc = top_q(d, 0.4, r58());
    auto t_glob = top_q(f, 0.4, r58());
    CHECK(t_loc == std::vector<std::int64_t>{4, 3});
    CHECK(t_glob == std::vector<std::int64_t>{4, 2});

    DominatedAnchors dom = dominated_anchors(w, d, t_glob, t_loc, r58(), p58());
    CHECK(dom.anchors == std::vector<std::int64_t>{4});
    CHECK(dom.intro == std::vector<std::int64_t>{3});

    at::Tensor coupled = advantage_weights(6, t_loc, t_glob, dom, p58());
    const double gc[] = {1, 1, 1.5, 1.25, 1.25, 1.0};
    for (int t = 0; t < 6; ++t) CHECK(at_(coupled, t) == Approx(gc[t]).margin(1e-12));
    PreplanParams lp = p58();
    lp.scheme = CreditScheme::kLocalChunk;
    at::Tensor local = advantage_weights(6, t_loc, t_glob, dom, lp);
    const double gl[] = {1, 1, 1.0, 1.5, 1.5, 1.0};
    for (int t = 0; t < 6; ++t) CHECK(at_(local, t) == Approx(gl[t]).margin(1e-12));
    lp.scheme = CreditScheme::kGlobalAnchor;
    at::Tensor global = advantage_weights(6, t_loc, t_glob, dom, lp);
    const double gg[] = {1, 1, 1.5, 1.0, 1.5, 1.0};
    for (int t = 0; t < 6; ++t) CHECK(at_(global, t) == Approx(gg[t]).margin(1e-12));

    SECTION("default thresholds: median WAAD over R (0.85) and smallest delta in T_loc (0.7)") {
        PreplanParams p = p58();
        p.tau_waad = p.tau_delta = std::nan("");
        DominatedAnchors dd = dominated_anchors(w, d, t_glob, t_loc, r58(), p);
        CHECK(dd.tau_waad == Approx(0.85));
        CHECK(dd.tau_delta == Approx(0.7));
        CHECK(dd.anchors == std::vector<std::int64_t>{4});  // token 2: no delta before it in R
    }
    SECTION("token_roles bundles the same numbers") {
        TokenRoles r = token_roles(w, f, r58(), p58());
        CHECK(r.t_loc == t_loc);
        CHECK(r.t_glob == t_glob);
        CHECK(r.dominated.anchors == dom.anchors);
        CHECK(max_diff(r.gamma, coupled) < 1e-15);
        CHECK(r.waad_peaks == std::vector<std::int64_t>{3});
    }
    SECTION("end to end: two heads of one layer (local = head 0, global = head 1)") {
        PreplanResult res = preplan({at::stack({a_loc(), a_glob()})}, r58(), p58());
        CHECK(res.groups.local == std::vector<std::int64_t>{0});
        CHECK(res.roles.t_glob == t_glob);
        CHECK(max_diff(res.roles.waad, w) < 1e-12);
        CHECK(max_diff(res.roles.fai, f) < 1e-12);
        CHECK(max_diff(res.roles.gamma, coupled) < 1e-12);
        PreplanParams fixed = p58();
        fixed.grouping = Grouping::kFixed;
        PreplanResult rf = preplan({at::stack({a_loc(), a_glob()})}, r58(), fixed, res.groups);
        CHECK(max_diff(rf.roles.gamma, coupled) < 1e-12);
        CHECK_THROWS_AS(preplan({at::stack({a_loc(), a_glob()})}, r58(), fixed), ConfigError);
        CHECK_THROWS_AS(preplan({at::stack({a_loc(), a_glob()})}, r58(), p58(), res.groups),
                        ConfigError);
    }
}

TEST_CASE("layer selection: 5 evenly spaced in the middle third, halves up", "[unit][analysis]") {
    CHECK(middle_third_layers(36) == std::vector<std::int64_t>{12, 15, 18, 21, 24});
    CHECK(middle_third_layers(32) == std::vector<std::int64_t>{10, 13, 16, 18, 21});
    CHECK(middle_third_layers(28) == std::vector<std::int64_t>{9, 11, 14, 16, 18});  // 13.5 -> 14
    CHECK(middle_third_layers(4) == std::vector<std::int64_t>{1, 2});                // duplicates go
    CHECK(middle_third_layers(1) == std::vector<std::int64_t>{0});
    CHECK(middle_third_layers(36, 1) == std::vector<std::int64_t>{18});
    CHECK_THROWS_AS(middle_third_layers(0), ConfigError);
    CHECK_THROWS_AS(middle_third_layers(12, 0), ConfigError);
}

TEST_CASE("head classes: quantiles, ties, NaN, tiny groups", "[unit][analysis]") {
    at::Tensor d = at::tensor({5.0, 1.0, 3.0, 1.0, 9.0, 7.0, std::nan(""), 2.0, 4.0, 6.0, 8.0},
                              at::kDouble);
    HeadGroups g = classify_heads(d);  // n = 10 finite: 3 local, 3 global
    CHECK(g.local == std::vector<std::int64_t>{1, 3, 7});  // tie 1.0: lower index first
    CHECK(g.global == std::vector<std::int64_t>{4, 10, 5});
    CHECK(g.classes[6].item<std::int8_t>() == static_cast<std::int8_t>(HeadClass::kUnranked));
    CHECK(g.classes[0].item<std::int8_t>() == static_cast<std::int8_t>(HeadClass::kMiddle));
    HeadGroups one = classify_heads(at::tensor({1.0}, at::kDouble));
    CHECK(one.local.size() == 1);
    CHECK(one.global.empty());  // never in both groups
    at::Tensor d160 = at::arange(160, at::kDouble).view({5, 32});
    HeadGroups g160 = classify_heads(d160);
    CHECK(g160.local.size() == 48);  // 0.3 · 160 = 48 exactly, despite rounding of 0.3
    CHECK(g160.classes.sizes() == at::IntArrayRef({5, 32}));
    PreplanParams bad;
    bad.local_fraction = 1.5;
    CHECK_THROWS_AS(classify_heads(d, bad), ConfigError);
}

TEST_CASE("TopQ ties and peaks", "[unit][analysis]") {
    at::Tensor v = at::tensor({1.0, 3.0, 3.0, 2.0, std::nan(""), 3.0}, at::kDouble);
    // n = 5 finite values; ceil(0.4 · 5) = 2; the three 3.0 tie -> lower slots first.
    CHECK(top_q(v, 0.4) == std::vector<std::int64_t>{1, 2});
    CHECK(top_q(v, 0.5) == std::vector<std::int64_t>{1, 2, 5});
    CHECK(top_q(v, 1.0).size() == 5);
    CHECK_THROWS_AS(top_q(v, 0.0), ConfigError);

    at::Tensor y = at::tensor({0.0, 5.0, 1.0, 1.0, 4.0, 4.0, 0.5, 0.9, 0.0}, at::kDouble);
    // Rising interior maxima: 1 (5) and 4 (4 >= 4; 5 is not a rise); 7 (0.9) is a local maximum
    // below the 60th percentile (1.0).
    CHECK(find_peaks(y) == std::vector<std::int64_t>{1, 4});
    CHECK(find_peaks(y, TokenMask::response(2)) == std::vector<std::int64_t>{4});
    CHECK(peak_follow_rate({4, 5, 8}, {4}) == Approx(2.0 / 3));
    CHECK(std::isnan(peak_follow_rate({}, {1})));
}

TEST_CASE("WAAD and distance closed forms on uniform rows", "[unit][analysis]") {
    const std::int64_t n = 15, w = 4;
    at::Tensor u = at::ones({n, n}, at::kDouble).tril();
    u = u / u.sum(-1, true);
    at::Tensor wa = waad(u, {}, w);
    double dsum = 0;
    for (std::int64_t t = 0; t < n; ++t) {
        double e = 0;
        for (std::int64_t s = 0; s <= t; ++s) e += std::min<std::int64_t>(t - s, w);
        CHECK(at_(wa, t) == Approx(e / double(t + 1)).margin(1e-12));
        dsum += double(t) / 2;  // Σ_s (t − s)/(t + 1) = t/2
    }
    CHECK(backward_distance(u).item<double>() == Approx(dsum / n).margin(1e-12));
}

TEST_CASE("preplan functions reject bad input", "[unit][analysis]") {
    CHECK_THROWS_AS(waad(a_loc(), {}, 0), ConfigError);
    CHECK_THROWS_AS(fai(a_glob(), {}, {3, 2}), ConfigError);
    CHECK_THROWS_AS(fai(a_glob(), {}, {-1, 2}), ConfigError);
    CHECK_THROWS_AS(waad(at::zeros({2, 6, 5}, at::kDouble)), ShapeError);  // not square
    CHECK_THROWS_AS(backward_distance(at::zeros({6}, at::kDouble)), ShapeError);
    const std::string msg = message_of([] { waad(at::zeros({6, 5}, at::kDouble)); });
    CHECK(msg.find("[6, 5]") != std::string::npos);
    CHECK(msg.find("[pos, pos]") != std::string::npos);
    CHECK_THROWS_AS(waad_delta(at::zeros({2, 3}, at::kDouble)), ShapeError);
    CHECK_THROWS_AS(token_roles(at::zeros({5}, at::kDouble), at::zeros({6}, at::kDouble)), ShapeError);
    CHECK_THROWS_AS(group_mean(at::stack({a_loc()}), {}), ConfigError);
    CHECK_THROWS_AS(group_mean(at::stack({a_loc()}), {1}), ConfigError);
    PreplanParams p;
    p.q = 1.5;
    CHECK_THROWS_AS(validate(p), ConfigError);
    p = {};
    p.k = 0;
    CHECK_THROWS_AS(validate(p), ConfigError);
    p = {};
    p.alpha = 2;
    CHECK_THROWS_AS(validate(p), ConfigError);
    CHECK_THROWS_AS(advantage_weights(3, {5}, {}, {}, {}), ConfigError);
    CHECK_THROWS_AS(preplan({}, {}), ConfigError);
}
