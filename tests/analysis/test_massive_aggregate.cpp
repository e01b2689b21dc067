// Massive activations (methods.md §1.4) and the mergeable dataset aggregates.
#include <ATen/ATen.h>

#include <cmath>

#include "analysis/aggregate.h"
#include "analysis/massive.h"
#include "core/base/error.h"
#include "tests/analysis/helpers.h"
#include "tests/catch.h"

using namespace attnscope;
using namespace attnscope::analysis;
using namespace attnscope::analysis::testing;

TEST_CASE("massive activations: both criteria, per-token median", "[unit][analysis]") {
    at::Tensor x = at::full({4, 8}, 0.1, at::kFloat);
    x[0][3] = 2000.0;   // > 100 and >= 1000 · 0.1
    x[2][5] = -500.0;   // sign does not matter
    x.select(0, 1).fill_(1.0);
    x[1][1] = 150.0;    // > 100 but < 1000 · median 1.0
    x[3][2] = 90.0;     // >= 1000 · 0.1 but not > 100
    auto found = massive_activations(x);
    REQUIRE(found.size() == 2);
    CHECK(found[0].pos == 0);
    CHECK(found[0].dim == 3);
    CHECK(found[0].value == 2000.0);
    CHECK(found[0].median_abs == Approx(0.1));
    CHECK(found[1].pos == 2);
    CHECK(found[1].dim == 5);
    CHECK(found[1].value == -500.0);

    SECTION("parameters and padding") {
        MassiveParams loose;
        loose.abs_threshold = 50;
        loose.factor = 100;
        CHECK(massive_activations(x, loose).size() == 4);  // (1,1): 150 >= 100 · 1; (3,2): 90 > 50
        TokenMask m;
        m.valid = at::tensor({0, 1, 1, 1}, at::kLong);
        CHECK(massive_activations(x, {}, m).size() == 1);  // position 0 is padding
        CHECK(massive_activations(x.to(at::kHalf)).size() == 2);
    }
    SECTION("sink dimensions counted over layers and positions") {
        SinkDimensionCounter c, other;
        c.add(0, found);
        c.add(1, found);
        other.add(2, {{0, 7, 300.0, 0.1}, {1, 3, -3000.0, 0.1}});
        c.merge(other);
        auto dims = c.sorted();
        REQUIRE(dims.size() == 3);
        CHECK(dims[0].dim == 3);
        CHECK(dims[0].count == 3);
        CHECK(dims[0].n_layers == 3);
        CHECK(dims[0].max_abs == 3000.0);
        CHECK(dims[1].dim == 5);  // count 2, before dim 7 (count 1)
        CHECK(dims[2].dim == 7);
    }
    SECTION("errors") {
        CHECK_THROWS_AS(massive_activations(at::zeros({2, 3, 4})), ShapeError);
        MassiveParams bad;
        bad.factor = -1;
        CHECK_THROWS_AS(massive_activations(x, bad), ConfigError);
    }
}

TEST_CASE("RunningStats: Welford, merge, NaN skipping", "[unit][analysis]") {
    RunningStats all, a, b;
    for (int i = 1; i <= 10; ++i) {
        all.add(double(i));
        (i <= 4 ? a : b).add(double(i));
    }
    a.merge(b);
    CHECK(a.count() == 10);
    CHECK(a.mean() == Approx(5.5));
    CHECK(a.variance() == Approx(8.25));
    CHECK(a.sample_variance() == Approx(82.5 / 9));
    CHECK(a.variance() == Approx(all.variance()));
    CHECK(a.min() == 1.0);
    CHECK(a.max() == 10.0);

    RunningStats t;
    t.add(at::tensor({1.0, 2.0, std::nan(""), 3.0}, at::kDouble));
    t.add(at::arange(4, 11, at::kFloat));
    CHECK(t.count() == 10);
    CHECK(t.n_nan() == 1);
    CHECK(t.mean() == Approx(5.5));
    CHECK(t.variance() == Approx(8.25));
    RunningStats copy(t.state());  // the state is all a reduction needs
    CHECK(copy.stddev() == Approx(std::sqrt(8.25)));
    CHECK(std::isnan(RunningStats().mean()));
    CHECK(std::isnan(RunningStats().sample_variance()));
}

TEST_CASE("TensorRunningStats: elementwise, per-element NaN counts, merge", "[unit][analysis]") {
    TensorRunningStats s, a, b;
    at::Tensor x1 = at::tensor({1.0, std::nan(""), 3.0}, at::kDouble);
    at::Tensor x2 = at::tensor({3.0, 4.0, 5.0}, at::kDouble);
    at::Tensor x3 = at::tensor({5.0, 6.0, std::nan("")}, at::kDouble);
    s.add(x1);
    s.add(x2);
    s.add(x3);
    a.add(x1);
    b.add(x2);
    b.add(x3);
    a.merge(b);
    CHECK(max_diff(s.count(), at::tensor({3.0, 2.0, 2.0}, at::kDouble)) == 0);
    CHECK(max_diff(s.mean(), at::tensor({3.0, 5.0, 4.0}, at::kDouble)) < 1e-12);
    CHECK(max_diff(s.variance(), at::tensor({8.0 / 3, 1.0, 1.0}, at::kDouble)) < 1e-12);
    CHECK(max_diff(a.mean(), s.mean()) < 1e-12);
    CHECK(max_diff(a.m2(), s.m2()) < 1e-12);
    TensorRunningStats r = TensorRunningStats::from_state(s.count(), s.mean(), s.m2());
    CHECK(max_diff(r.sample_variance(), at::tensor({4.0, 2.0, 2.0}, at::kDouble)) < 1e-12);
    CHECK_THROWS_AS(s.add(at::zeros({2}, at::kDouble)), ShapeError);
}

TEST_CASE("Histogram: fixed bins, edges, overflow, merge", "[unit][analysis]") {
    Histogram h(0.0, 1.0, 4);
    for (double v : {0.0, 0.1, 0.25, 0.5, 0.99, 1.0, -0.1, 1.5}) h.add(v);
    h.add(std::nan(""));
    CHECK(h.counts() == std::vector<std::int64_t>{2, 1, 1, 2});  // 1.0 goes to the last bin
    CHECK(h.underflow() == 1);
    CHECK(h.overflow() == 1);
    CHECK(h.n_nan() == 1);
    CHECK(h.total() == 8);
    CHECK(h.edges() == std::vector<double>{0.0, 0.25, 0.5, 0.75, 1.0});

    Histogram t(0.0, 1.0, 4);
    t.add(at::tensor({0.0, 0.1, 0.25, 0.5, 0.99, 1.0, -0.1, 1.5, std::nan("")}, at::kDouble));
    CHECK(t.counts() == h.counts());
    CHECK(t.underflow() == 1);
    CHECK(t.n_nan() == 1);
    t.merge(h);
    CHECK(t.counts() == std::vector<std::int64_t>{4, 2, 2, 4});
    CHECK_THROWS_AS(t.merge(Histogram(0.0, 2.0, 4)), ConfigError);
    CHECK_THROWS_AS(Histogram(1.0, 1.0, 4), ConfigError);
    CHECK_THROWS_AS(Histogram(0.0, 1.0, 0), ConfigError);
}
