// Sink scores, sink ratio, sink mass and ACT hidden-sink detection: methods.md §1.1–1.3, §1.6
// (T1), §2.2 steps 1–3, closed forms on uniform and one-hot patterns, padding, errors.
#include "analysis/sinks.h"

#include <ATen/ATen.h>

#include "core/base/error.h"
#include "tests/analysis/helpers.h"
#include "tests/catch.h"

using namespace attnscope;
using namespace attnscope::analysis;
using namespace attnscope::analysis::testing;

TEST_CASE("sink scores of T1", "[unit][analysis]") {
    at::Tensor a = sink_scores(t1());
    REQUIRE(a.sizes() == at::IntArrayRef({1, 4}));
    CHECK(a.scalar_type() == at::kDouble);
    CHECK(a[0][0].item<double>() == Approx(0.675).margin(1e-12));
    CHECK(a[0][1].item<double>() == Approx(0.350).margin(1e-12));
    CHECK(a[0][2].item<double>() == Approx(0.085).margin(1e-12));
    CHECK(a[0][3].item<double>() == Approx(0.080).margin(1e-12));

    SECTION("same in float32, float16 and bfloat16 (upcast inside)") {
        CHECK(max_diff(sink_scores(t1().to(at::kFloat)), a) < 1e-6);
        CHECK(max_diff(sink_scores(t1().to(at::kHalf)), a) < 1e-3);
        CHECK(max_diff(sink_scores(t1().to(at::kBFloat16)), a) < 5e-3);
    }
    SECTION("head sink flag at token 0 with epsilon 0.3") {
        at::Tensor flags = head_sink_flags(a.unsqueeze(0));  // [layer=1, head=1, key_pos]
        CHECK(flags[0][0].item<bool>());
        SinkParams p;
        p.k = 1;
        CHECK(head_sink_flags(a.unsqueeze(0), p)[0][0].item<bool>());  // 0.35 > 0.3
        p.k = 2;
        CHECK_FALSE(head_sink_flags(a.unsqueeze(0), p)[0][0].item<bool>());
    }
}

TEST_CASE("model-level sink ratio: the 2x2 example is 75%", "[unit][analysis]") {
    // α_0 = {0.675, 0.25, 0.90, 0.31} over [layer = 2, head = 2], key_pos = 1.
    at::Tensor scores = at::tensor({0.675, 0.25, 0.90, 0.31}, at::kDouble).view({2, 2, 1});
    SinkRatio r = sink_ratio(scores);
    CHECK(r.percent == Approx(75.0));
    CHECK(r.percent_outside_layer0 == Approx(100.0));
    CHECK(r.n_sequences == 1);
    CHECK(r.head_rate[0][1].item<double>() == 0.0);

    SECTION("strict >: a score equal to epsilon is not a sink") {
        at::Tensor s = at::tensor({0.3, 0.3, 0.3, 0.31}, at::kDouble).view({2, 2, 1});
        CHECK(sink_ratio(s).percent == Approx(25.0));
    }
    SECTION("averaged over sequences, mergeable") {
        SinkRatioAccumulator a, b;
        a.add(scores);                                              // 75 %
        b.add(at::full({2, 2, 1}, 0.1, at::kDouble));              // 0 %
        b.add(at::full({2, 2, 1}, 0.9, at::kDouble));              // 100 %
        a.merge(b);
        SinkRatio m = a.result();
        CHECK(m.n_sequences == 3);
        CHECK(m.percent == Approx((75.0 + 0.0 + 100.0) / 3));
        CHECK(m.head_rate[1][0].item<double>() == Approx(2.0 / 3));
        CHECK_THROWS_AS(a.add(at::zeros({3, 2, 1}, at::kDouble)), ShapeError);
        SinkParams other;
        other.epsilon = 0.5;
        CHECK_THROWS_AS(a.merge(SinkRatioAccumulator(other)), ConfigError);
    }
}

TEST_CASE("sink scores: closed forms on uniform and one-hot rows", "[unit][analysis]") {
    const std::int64_t n = 9;
    SECTION("uniform causal rows: alpha_k = mean of 1/(t+1) over t >= k") {
        at::Tensor u = at::ones({n, n}, at::kDouble).tril();
        u = (u / u.sum(-1, true)).unsqueeze(0);
        at::Tensor a = sink_scores(u);
        for (std::int64_t k = 0; k < n; ++k) {
            double s = 0;
            for (std::int64_t t = k; t < n; ++t) s += 1.0 / static_cast<double>(t + 1);
            CHECK(a[0][k].item<double>() == Approx(s / static_cast<double>(n - k)).margin(1e-12));
        }
    }
    SECTION("all mass on token 0: alpha_0 = 1, other keys 0, sink ratio 100%") {
        at::Tensor p = at::zeros({3, n, n}, at::kDouble);
        p.select(2, 0).fill_(1.0);
        at::Tensor a = sink_scores(p);
        CHECK(max_diff(a.select(1, 0), at::ones({3}, at::kDouble)) < 1e-12);
        CHECK(a.narrow(1, 1, n - 1).abs().max().item<double>() == 0.0);
        CHECK(sink_ratio(at::stack({a, a})).percent == Approx(100.0));
    }
    SECTION("one-hot on the diagonal: alpha_k = 1 / (n - k)") {
        at::Tensor p = at::eye(n, at::kDouble).unsqueeze(0);
        at::Tensor a = sink_scores(p);
        for (std::int64_t k = 0; k < n; ++k)
            CHECK(a[0][k].item<double>() == Approx(1.0 / static_cast<double>(n - k)));
    }
}

TEST_CASE("sink scores with padding and with the last rows only", "[unit][analysis]") {
    at::Tensor real = random_pattern(2, 6, 7);
    at::Tensor valid;
    at::Tensor padded = left_pad(real, 3, valid);
    TokenMask m;
    m.valid = valid;
    at::Tensor a = sink_scores(padded, m);
    CHECK(a.narrow(1, 0, 3).isnan().all().item<bool>());  // no query sees a padded key
    CHECK(max_diff(a.narrow(1, 3, 6), sink_scores(real)) < 1e-12);

    SECTION("integer 0/1 masks (the model's attention_mask) work the same") {
        TokenMask mi;
        mi.valid = valid.to(at::kLong);
        CHECK(max_diff(sink_scores(padded, mi), a) < 1e-15);
    }
    SECTION("Q < K: only the given rows count (decode step)") {
        at::Tensor row = real.narrow(1, 5, 1);  // [2, 1, 6]
        at::Tensor s = sink_scores(row);
        CHECK(max_diff(s, row.squeeze(1)) < 1e-15);  // s_j is just the row (methods.md §2.7)
    }
}

TEST_CASE("per-query sink mass", "[unit][analysis]") {
    at::Tensor m = sink_mass(t1(), {0});
    CHECK(max_diff(m, at::tensor({1.0, 0.6, 0.6, 0.5}, at::kDouble).view({1, 4})) < 1e-12);
    at::Tensor m4 = sink_mass(t1(), {3, 1, 0, 1});  // duplicates ignored
    CHECK(max_diff(m4, at::tensor({1.0, 1.0, 0.9, 0.93}, at::kDouble).view({1, 4})) < 1e-12);
    CHECK_THROWS_AS(sink_mass(t1(), {4}), ConfigError);
    CHECK_THROWS_AS(sink_mass(t1(), {-1}), ConfigError);
}

TEST_CASE("ACT hidden-sink detection on T1 (methods.md §2.2, §2.9)", "[unit][analysis]") {
    at::Tensor s = sink_scores(t1());  // [0.675, 0.350, 0.085, 0.080]
    auto r = detect_hidden_sinks(s);
    REQUIRE(r.size() == 1);
    CHECK(r[0].detected == std::vector<std::int64_t>{0, 1});
    CHECK(r[0].calibrated == std::vector<std::int64_t>{1});
    CHECK(r[0].exempt == 0);
    CHECK(r[0].threshold == 0.1);

    SECTION("relative threshold alpha / N") {
        HiddenSinkParams p;
        p.mode = ThresholdMode::kRelative;  // default alpha = 5: 5/4 = 1.25, nothing detected
        auto none = detect_hidden_sinks(s, p);
        CHECK(none[0].detected.empty());
        CHECK(none[0].exempt == -1);
        CHECK(none[0].threshold == Approx(1.25));
        p.alpha = 0.3;  // 0.075: every token
        CHECK(detect_hidden_sinks(s, p)[0].detected == std::vector<std::int64_t>{0, 1, 2, 3});
    }
    SECTION("exclude_last_position drops the self-attention quirk of the last slot") {
        HiddenSinkParams p;
        p.tau = 0.07;
        CHECK(detect_hidden_sinks(s, p)[0].detected == std::vector<std::int64_t>{0, 1, 2, 3});
        p.exclude_last_position = true;
        auto r2 = detect_hidden_sinks(s, p);
        CHECK(r2[0].detected == std::vector<std::int64_t>{0, 1, 2});
        CHECK(r2[0].calibrated == std::vector<std::int64_t>{1, 2});
    }
    SECTION("padding: N counts real tokens, padded keys are never sinks") {
        at::Tensor valid;
        at::Tensor padded = left_pad(t1(), 2, valid);
        TokenMask m;
        m.valid = valid;
        auto rp = detect_hidden_sinks(sink_scores(padded, m), {}, m);
        CHECK(rp[0].detected == std::vector<std::int64_t>{2, 3});
        CHECK(rp[0].exempt == 2);  // first real token, not slot 0
        HiddenSinkParams rel;
        rel.mode = ThresholdMode::kRelative;
        rel.alpha = 0.4;  // 0.4 / 4 real tokens = 0.1
        CHECK(detect_hidden_sinks(sink_scores(padded, m), rel, m)[0].threshold == Approx(0.1));
    }
    SECTION("bad parameters") {
        HiddenSinkParams p;
        p.tau = 0;
        CHECK_THROWS_AS(detect_hidden_sinks(s, p), ConfigError);
        p = {};
        p.mode = ThresholdMode::kRelative;
        p.alpha = -1;
        CHECK_THROWS_AS(detect_hidden_sinks(s, p), ConfigError);
        CHECK_THROWS_AS(detect_hidden_sinks(s.view({-1})), ShapeError);
    }
}

TEST_CASE("sink functions reject bad shapes and parameters", "[unit][analysis]") {
    const std::string msg = message_of([] { sink_scores(at::zeros({4, 4})); });
    CHECK(msg.find("[head, query_pos, key_pos]") != std::string::npos);
    CHECK(msg.find("[4, 4]") != std::string::npos);
    CHECK_THROWS_AS(sink_scores(at::zeros({4, 4})), ShapeError);
    CHECK_THROWS_AS(sink_scores(at::zeros({1, 5, 4})), ShapeError);          // Q > K
    CHECK_THROWS_AS(sink_scores(at::zeros({1, 4, 4}, at::kLong)), ShapeError);  // not probabilities

    TokenMask m;
    m.valid = at::ones({5}, at::kBool);
    const std::string mm = message_of([&] { sink_scores(t1(), m); });
    CHECK(mm.find("[5]") != std::string::npos);
    CHECK(mm.find("[1, 4, 4]") != std::string::npos);
    CHECK_THROWS_AS(sink_scores(t1(), m), ShapeError);

    TokenMask bad = TokenMask::response(3, 2);
    CHECK_THROWS_AS(sink_scores(t1(), bad), ConfigError);
    TokenMask win;
    win.attention_window = 0;
    CHECK_THROWS_AS(sink_scores(t1(), win), ConfigError);

    at::Tensor scores = at::zeros({2, 2, 4}, at::kDouble);
    SinkParams p;
    p.k = 4;
    CHECK_THROWS_AS(head_sink_flags(scores, p), ConfigError);
    p.k = 0;
    p.epsilon = std::nan("");
    CHECK_THROWS_AS(sink_ratio(scores, p), ConfigError);
    CHECK_THROWS_AS(sink_ratio(at::zeros({2, 4}, at::kDouble)), ShapeError);
}

TEST_CASE("sliding-window attention limits visibility", "[unit][analysis]") {
    // Window 2: each query sees itself and the previous token only.
    at::Tensor p = causal({{1.0}, {0.5, 0.5}, {0, 0.5, 0.5}, {0, 0, 0.25, 0.75}}).unsqueeze(0);
    TokenMask m;
    m.attention_window = 2;
    at::Tensor a = sink_scores(p, m);
    CHECK(a[0][0].item<double>() == Approx(0.75));  // seen by rows 0, 1 only
    CHECK(a[0][1].item<double>() == Approx(0.5));   // rows 1, 2
}
