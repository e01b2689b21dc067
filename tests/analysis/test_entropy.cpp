// Attention entropy: methods.md §1.5, T1 of §1.6 (1e-6), CARVE's renormalised sub-row (§4.8),
// closed forms on uniform and one-hot rows, padding, dtypes, errors.
#include "analysis/entropy.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/base/error.h"
#include "tests/analysis/helpers.h"
#include "tests/catch.h"

using namespace attnscope;
using namespace attnscope::analysis;
using namespace attnscope::analysis::testing;

TEST_CASE("entropy of T1 in nats, bits and normalised", "[unit][analysis]") {
    RowEntropy e = row_entropy(t1());
    REQUIRE(e.nats.sizes() == at::IntArrayRef({1, 4}));
    const double nats[] = {0.0, 0.673012, 0.897946, 1.102218};
    const double bits[] = {0.0, 0.970951, 1.295462, 1.590164};
    const double norm[] = {0.0, 0.970951, 0.817345, 0.795082};
    for (int i = 0; i < 4; ++i) {
        CHECK(e.nats[0][i].item<double>() == Approx(nats[i]).margin(1e-6));
        CHECK(e.bits[0][i].item<double>() == Approx(bits[i]).margin(1e-6));
        CHECK(e.n_visible[i].item<std::int64_t>() == i + 1);
        if (i == 0)
            CHECK(std::isnan(e.normalized[0][0].item<double>()));  // n = 1: undefined, NaN
        else
            CHECK(e.normalized[0][i].item<double>() == Approx(norm[i]).margin(1e-6));
    }
    SECTION("per-head mean of the normalised entropy skips the NaN row") {
        at::Tensor m = mean_normalized_entropy(e);
        CHECK(m[0].item<double>() == Approx((0.970951 + 0.817345 + 0.795082) / 3).margin(1e-6));
        at::Tensor r = mean_normalized_entropy(e, TokenMask::response(2));  // rows 2, 3
        CHECK(r[0].item<double>() == Approx((0.817345 + 0.795082) / 2).margin(1e-6));
        at::Tensor none = mean_normalized_entropy(e, TokenMask::response(0, 1));  // row 0 only
        CHECK(std::isnan(none[0].item<double>()));
    }
    SECTION("float32 / float16 / bfloat16 inputs are upcast") {
        CHECK(max_diff(row_entropy(t1().to(at::kFloat)).nats, e.nats) < 1e-6);
        CHECK(max_diff(row_entropy(t1().to(at::kHalf)).nats, e.nats) < 2e-3);
        CHECK(max_diff(row_entropy(t1().to(at::kBFloat16)).nats, e.nats) < 1e-2);
        CHECK(row_entropy(t1().to(at::kHalf)).nats.scalar_type() == at::kDouble);
    }
}

TEST_CASE("entropy closed forms: uniform rows ln n, one-hot rows 0", "[unit][analysis]") {
    const std::int64_t n = 12;
    at::Tensor u = at::ones({n, n}, at::kDouble).tril();
    u = (u / u.sum(-1, true)).unsqueeze(0).to(at::kFloat);
    RowEntropy e = row_entropy(u);
    for (std::int64_t t = 0; t < n; ++t) {
        CHECK(e.nats[0][t].item<double>() == Approx(std::log(double(t + 1))).margin(1e-6));
        if (t > 0) CHECK(e.normalized[0][t].item<double>() == Approx(1.0).margin(1e-6));
    }
    at::Tensor onehot = at::zeros({2, n, n}, at::kDouble);
    onehot.select(2, 0).fill_(1.0);
    RowEntropy z = row_entropy(onehot);
    CHECK(z.nats.abs().max().item<double>() == 0.0);  // 0·ln 0 = 0, 1·ln 1 = 0
    CHECK(z.normalized.narrow(1, 1, n - 1).abs().max().item<double>() == 0.0);
}

TEST_CASE("subset entropy renormalises the sub-row (CARVE §4.8)", "[unit][analysis]") {
    // Row 5 puts [0.02, 0.10, 0.03, 0.06] on keys 1..4 (the "image tokens") and the rest on
    // keys 0 and 5; renormalised: [0.095238, 0.476190, 0.142857, 0.285714].
    at::Tensor p = at::zeros({1, 6, 6}, at::kDouble);
    for (int t = 0; t < 5; ++t) p[0][t][0] = 1.0;
    p[0][5][0] = 0.5;
    p[0][5][1] = 0.02;
    p[0][5][2] = 0.10;
    p[0][5][3] = 0.03;
    p[0][5][4] = 0.06;
    p[0][5][5] = 0.29;
    at::Tensor subset = at::tensor({0, 1, 1, 1, 1, 0}, at::kLong).to(at::kBool);
    RowEntropy e = subset_entropy(p, subset);
    CHECK(e.nats[0][5].item<double>() == Approx(1.213163).margin(1e-6));
    CHECK(e.normalized[0][5].item<double>() == Approx(0.875112).margin(1e-6));
    CHECK(e.n_visible[5].item<std::int64_t>() == 4);
    CHECK(std::isnan(e.nats[0][0].item<double>()));  // row 0 sees no subset key: undefined
    CHECK(std::isnan(e.nats[0][3].item<double>()));  // rows 1..4 put no mass on the subset
    CHECK_THROWS_AS(subset_entropy(p, at::ones({5}, at::kBool)), ShapeError);
}

TEST_CASE("entropy with padding equals entropy of the unpadded sequence", "[unit][analysis]") {
    at::Tensor real = random_pattern(3, 7, 11);
    at::Tensor valid;
    at::Tensor padded = left_pad(real, 2, valid);
    TokenMask m;
    m.valid = valid;
    RowEntropy ep = row_entropy(padded, m), er = row_entropy(real);
    CHECK(ep.nats.narrow(1, 0, 2).isnan().all().item<bool>());
    CHECK(max_diff(ep.nats.narrow(1, 2, 7), er.nats) < 1e-12);
    CHECK(max_diff(ep.normalized.narrow(1, 2, 7), er.normalized) < 1e-12);
    CHECK(max_diff(ep.n_visible.narrow(0, 2, 7), er.n_visible) == 0);
    CHECK(max_diff(mean_normalized_entropy(ep, m), mean_normalized_entropy(er)) < 1e-12);
}

TEST_CASE("entropy rejects bad input", "[unit][analysis]") {
    CHECK_THROWS_AS(row_entropy(at::zeros({4})), ShapeError);
    CHECK_THROWS_AS(row_entropy(at::zeros({1, 0, 4})), ShapeError);
    CHECK_THROWS_AS(mean_over_rows(at::zeros({4})), ShapeError);
    CHECK_THROWS_AS(row_entropy(t1(), TokenMask::response(-1)), ConfigError);
}
