// Interventions: the spec's test vectors (methods.md §2.9, §3.8, §6) for the pure functions; on
// the sample model: strength 0 is the identity (bit-identical logits), rows still sum to 1 after
// every method, ACT in the model equals an independent float64 loop over the spec's steps, decode
// steps reuse the prefill sink set, padding does not change what ACT does to a sequence, VAR's
// automatic sink dimensions, mean ablation, guidance, parameter errors.
#include "probes/intervention.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/model/generate.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"
#include "probes/attention_edit.h"
#include "tests/catch.h"

using namespace attnscope;
namespace fs = std::filesystem;
using probes::InterventionSet;

namespace {

const fs::path kRoot(ATTNSCOPE_SOURCE_DIR);

model::Model& sample() {
    static auto m = model::Model::load(kRoot / "samples/models/tinydeb-llama", {"cpu", "float32", true});
    return *m;
}

at::Tensor t2(std::vector<std::vector<double>> rows) {
    std::vector<float> flat;
    for (auto& r : rows)
        for (double v : r) flat.push_back(static_cast<float>(v));
    return at::tensor(flat, at::kFloat).view({static_cast<std::int64_t>(rows.size()), -1});
}

at::Tensor bools(std::vector<std::int64_t> v) { return at::tensor(v, at::kLong).to(at::kBool); }

std::vector<std::int64_t> to_vec(const at::Tensor& t) {
    at::Tensor c = t.to(at::kLong).contiguous();
    return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}

double max_abs(const at::Tensor& a, const at::Tensor& b) { return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>(); }

model::ForwardContext prefill_ctx(std::int64_t n) {
    model::ForwardContext c;
    c.key_mask = at::ones({1, n}, at::kLong);
    c.past = 0;
    c.new_positions = n;
    return c;
}

const char* kPrompt = "In the beginning God created the heaven and the earth. And the earth was without form, and void.";

std::vector<std::int64_t> ids_of(const std::string& text) {
    auto v = sample().require_tokenizer().encode(text);
    return {v.begin(), v.end()};
}

at::Tensor ids_tensor(const std::string& text) { return at::tensor(ids_of(text), at::kLong).view({1, -1}); }

// Patterns of every layer seen by observers registered after the interventions.
struct PatternTap {
    std::map<int, at::Tensor> p;
    std::vector<model::HookHandle> h;
    explicit PatternTap(model::Model& m) {
        for (int l = 0; l < m.config().n_layers; ++l)
            h.push_back(m.hooks().add_observer(HookName{l, Site::kPattern},
                                               [this, l](const HookName&, const at::Tensor& x) { p[l] = x.clone(); }));
    }
};

}  // namespace

TEST_CASE("ACT on the spec's test vector T1", "[interventions][act]") {
    c10::InferenceMode g;
    at::Tensor A = t2({{1, 0, 0, 0}, {0.6, 0.4, 0, 0}, {0.6, 0.3, 0.1, 0}, {0.5, 0.35, 0.07, 0.08}}).view({1, 1, 4, 4});
    auto ctx = prefill_ctx(4);
    at::Tensor vis = probes::edit::visible_keys(ctx, false);
    at::Tensor s = probes::edit::sink_scores(A, vis);
    CHECK(max_abs(s.view({4}), at::tensor({0.675f, 0.35f, 0.085f, 0.08f})) < 1e-6);
    at::Tensor sinks = probes::edit::act_sinks(s, at::full({1}, 0.1), ctx.key_mask, at::full({1}, 3, at::kLong), false);
    CHECK(to_vec(sinks.view({4})) == std::vector<std::int64_t>{0, 1, 0, 0});
    at::Tensor out = probes::edit::act_calibrate(A, sinks, 0.4, probes::edit::real_queries(ctx));
    at::Tensor want = t2({{1, 0, 0, 0},
                          {0.84, 0.16, 0, 0},
                          {0.754286, 0.12, 0.125714, 0},
                          {0.661538, 0.14, 0.092615, 0.105846}});
    CHECK(max_abs(out.view({4, 4}), want) < 1e-6);
    CHECK(max_abs(out.sum(-1).view({4}), at::ones({4})) < 1e-6);

    SECTION("relative threshold alpha/N, exclude_last") {
        // alpha = 0.32 -> threshold 0.08: keys 0-2 detected (0.085 > 0.08), key 3 not (0.08).
        at::Tensor k = probes::edit::act_sinks(s, at::full({1}, 0.32 / 4), ctx.key_mask, at::full({1}, 3, at::kLong), false);
        CHECK(to_vec(k.view({4})) == std::vector<std::int64_t>{0, 1, 1, 0});
        // tau = 0.05 detects all four; exclude_last drops position 3.
        at::Tensor e = probes::edit::act_sinks(s, at::full({1}, 0.05), ctx.key_mask, at::full({1}, 3, at::kLong), true);
        CHECK(to_vec(e.view({4})) == std::vector<std::int64_t>{0, 1, 1, 0});
    }
    SECTION("decode row with the prefill sink set (spec 2.9)") {
        at::Tensor row = t2({{0.45, 0.30, 0.05, 0.10, 0.10}}).view({1, 1, 1, 5});
        at::Tensor S = bools({0, 1, 0, 0, 0}).view({1, 1, 5});
        at::Tensor r = probes::edit::act_calibrate(row, S, 0.4, at::ones({1, 1, 1, 1}, at::kBool));
        CHECK(max_abs(r.view({5}), at::tensor({0.565714f, 0.12f, 0.062857f, 0.125714f, 0.125714f})) < 1e-6);
    }
    SECTION("efficient output form (spec 2.6) agrees") {
        at::Tensor V = t2({{1, 0}, {0, 1}, {2, 2}, {3, -1}});
        at::Tensor o = at::matmul(out.view({4, 4}), V);
        CHECK(max_abs(o[3], at::tensor({1.164308f, 0.219385f})) < 1e-5);
    }
    SECTION("beta = 1 is the identity") {
        CHECK(at::equal(probes::edit::act_calibrate(A, sinks, 1.0, probes::edit::real_queries(ctx)), A));
    }
}

TEST_CASE("VAR on the spec's test vectors", "[interventions][var]") {
    c10::InferenceMode g;
    at::Tensor x = t2({{0, 0, 4, 0}, {1, 1, 1, 1}, {3, 0, 4, 0}});
    CHECK(max_abs(probes::edit::var_phi(x, {2}), at::tensor({2.0f, 1.0f, 1.6f})) < 1e-5);
    CHECK(max_abs(probes::edit::var_phi(x, {0, 2}).narrow(0, 2, 1), at::tensor({1.6f})) < 1e-5);
    CHECK_THROWS_AS(probes::edit::var_phi(x, {4}), ConfigError);

    at::Tensor sinks = bools({1, 0, 1, 0, 0, 0}).view({1, 6});
    at::Tensor target = bools({0, 1, 1, 1, 0, 0}).view({1, 6});
    at::Tensor rows = t2({{0.30, 0.15, 0.10, 0.15, 0.10, 0.20},
                          {0.30, 0.05, 0.25, 0.10, 0.10, 0.20},
                          {0.70, 0.05, 0.02, 0.03, 0.10, 0.10}}).view({1, 1, 3, 6});
    at::Tensor all = at::ones({1, 1, 3, 1}, at::kBool);
    probes::edit::VarParams p;  // f = 0.4, vis_min = 0.2, rho = 0.5
    at::Tensor sel;
    at::Tensor out = probes::edit::var_redistribute(rows, sinks, target, all, p, &sel);
    CHECK(to_vec(sel.view({3})) == std::vector<std::int64_t>{1, 0, 0});
    CHECK(max_abs(out[0][0][0], at::tensor({0.18f, 0.23f, 0.06f, 0.23f, 0.10f, 0.20f})) < 1e-6);
    CHECK(at::equal(out.narrow(2, 1, 2), rows.narrow(2, 1, 2)));
    p.moved = 0.6;
    out = probes::edit::var_redistribute(rows, sinks, target, all, p);
    CHECK(max_abs(out[0][0][0], at::tensor({0.12f, 0.27f, 0.04f, 0.27f, 0.10f, 0.20f})) < 1e-6);
    CHECK(max_abs(out.sum(-1).view({3}), at::ones({3})) < 1e-6);
    // No sink inside the target: the layer is skipped even with a text sink.
    at::Tensor text_only = bools({1, 0, 0, 0, 0, 0}).view({1, 6});
    CHECK(at::equal(probes::edit::var_redistribute(rows, text_only, target, all, p), rows));
    p.moved = 0;
    CHECK(at::equal(probes::edit::var_redistribute(rows, sinks, target, all, p), rows));
}

TEST_CASE("SoftPAG on the spec's test vector", "[interventions][softpag]") {
    c10::InferenceMode g;
    at::Tensor A = t2({{1, 0, 0}, {0.3, 0.7, 0}, {0.2, 0.5, 0.3}}).view({1, 1, 3, 3});
    at::Tensor all = at::ones({1, 1, 3, 1}, at::kBool);
    at::Tensor Au = probes::edit::softpag(A, 0, 0.5, all);
    CHECK(max_abs(Au.view({3, 3}), t2({{1, 0, 0}, {0.15, 0.85, 0}, {0.10, 0.25, 0.65}})) < 1e-6);
    at::Tensor V = t2({{1, 0}, {0, 2}, {4, 1}});
    at::Tensor O = at::matmul(A.view({3, 3}), V), Ou = at::matmul(Au.view({3, 3}), V);
    CHECK(max_abs(O, t2({{1, 0}, {0.3, 1.4}, {1.4, 1.3}})) < 1e-6);
    CHECK(max_abs(Ou, t2({{1, 0}, {0.15, 1.7}, {2.7, 1.15}})) < 1e-6);
    CHECK(max_abs(Ou, O * 0.5 + V * 0.5) < 1e-6);  // the output-space identity
    CHECK(at::equal(probes::edit::softpag(A, 0, 0.0, all), A));
    // Decode row: the identity entry is the query's own slot (past + i).
    at::Tensor row = t2({{0.5, 0.3, 0.2}}).view({1, 1, 1, 3});
    CHECK(max_abs(probes::edit::softpag(row, 2, 1.0, at::ones({1, 1, 1, 1}, at::kBool)).view({3}), at::tensor({0.f, 0.f, 1.f})) < 1e-7);
}

TEST_CASE("head lists and method specs parse strictly", "[interventions]") {
    auto h = probes::parse_heads("2.3,4.*+1-2.0-1", 8, 8);
    CHECK(h.size() == 1 + 8 + 4);
    CHECK(h.front() == probes::HeadRef{1, 0});
    CHECK(probes::format_heads(probes::parse_heads("3.1,3.1", 8, 8)) == "3.1");
    CHECK_THROWS_AS(probes::parse_heads("8.0", 8, 8), ConfigError);
    CHECK_THROWS_AS(probes::parse_heads("3", 8, 8), ConfigError);
    CHECK_THROWS_AS(probes::parse_heads("3.x", 8, 8), ConfigError);
    CHECK_THROWS_AS(probes::parse_heads("5-3.0", 8, 8), ConfigError);
    auto spec = probes::parse_method_spec("act:beta=0.5, tau=0.2");
    CHECK(spec.name == "act");
    REQUIRE(spec.params.size() == 2);
    CHECK(spec.params[1].second == "0.2");
    CHECK_THROWS_AS(probes::parse_method_spec("act:beta"), ConfigError);

    auto& m = sample();
    CHECK_THROWS_AS(probes::make_intervention(probes::parse_method_spec("nope"), m), ConfigError);
    try {
        probes::make_intervention(probes::parse_method_spec("act:betta=0.3"), m);
        FAIL("no error");
    } catch (const ConfigError& e) {
        CHECK_CONTAINS(e.what(), "unknown parameter 'betta'");
        CHECK_CONTAINS(e.what(), "beta");
    }
    CHECK_THROWS_AS(probes::make_intervention(probes::parse_method_spec("act:beta=1.5"), m), ConfigError);
    CHECK_THROWS_AS(probes::make_intervention(probes::parse_method_spec("softpag:u=0.5"), m), ConfigError);
    CHECK_THROWS_AS(probes::make_intervention(probes::parse_method_spec("ablate:heads=2.1,mode=half"), m), ConfigError);
    CHECK_THROWS_AS(InterventionSet::from_cli({"act", "softpag:heads=1.1"}, {"beta=0.3"}, m), ConfigError);
    auto set = InterventionSet::from_cli({"act", "softpag:heads=1.1"}, {"act.beta=0.3"}, m);
    CHECK_CONTAINS(set.to_json(), "\"beta\":0.3");
    CHECK_CONTAINS(set.describe(), "act(");
}

TEST_CASE("strength 0 is the identity, rows sum to 1 after every method", "[interventions]") {
    c10::InferenceMode g;
    auto& m = sample();
    const at::Tensor ids = ids_tensor(kPrompt);
    // Reference: the same materialised attention path (an observer on every layer), no edits.
    at::Tensor ref;
    {
        PatternTap tap(m);
        ref = m.forward(ids);
    }
    const std::vector<std::string> identity = {"act:beta=1", "var:dims=154,tau=3,f=0,span=1:10",
                                               "softpag:heads=*.*,u=0", "temperature:t=1"};
    for (const auto& spec : identity) {
        INFO(spec);
        auto set = InterventionSet::from_cli({spec}, {}, m);
        set.attach(m);
        PatternTap tap(m);
        CHECK(at::equal(m.forward(ids), ref));
    }
    const std::vector<std::string> active = {"act", "act:threshold=relative,alpha=3", "var:dims=154,tau=3,span=0:10,rho=0,vis_min=0",
                                             "softpag:heads=2-5.*,u=0.7", "ablate:heads=3.*,mode=uniform",
                                             "temperature:t=0.5,heads=1-6.0-3", "act+temperature"};
    for (const auto& spec : active) {
        INFO(spec);
        InterventionSet set = spec == "act+temperature"
                                  ? InterventionSet::from_cli({"act", "temperature:t=2"}, {}, m)
                                  : InterventionSet::from_cli({spec}, {}, m);
        set.attach(m);
        PatternTap tap(m);
        at::Tensor out = m.forward(ids);
        CHECK_FALSE(at::equal(out, ref));  // it did something
        for (const auto& [l, p] : tap.p) {
            INFO("layer " << l);
            CHECK(max_abs(p.sum(-1), at::ones_like(p.sum(-1))) < 1e-5);
            CHECK(p.min().item<float>() >= 0.f);
            CHECK(p.triu(1).abs().max().item<float>() == 0.f);  // still causal
        }
    }
}

TEST_CASE("ACT in the model equals a float64 loop over the spec's steps", "[interventions][act]") {
    c10::InferenceMode g;
    auto& m = sample();
    const at::Tensor ids = ids_tensor(kPrompt);
    // Layer 2 is the first calibrated layer, so its input is untouched: its pattern before ACT
    // is the baseline's.
    at::Tensor before;
    {
        PatternTap tap(m);
        m.forward(ids);
        before = tap.p[2][0].to(at::kDouble);  // [H, N, N]
    }
    auto set = InterventionSet::from_cli({"act:beta=0.4,tau=0.1,heads=2.*"}, {}, m);
    set.attach(m);
    PatternTap tap(m);
    m.forward(ids);
    at::Tensor after = tap.p[2][0].to(at::kDouble);
    const std::int64_t H = before.size(0), N = before.size(1);
    int heads_with_calibrated_sinks = 0;
    for (std::int64_t h = 0; h < H; ++h) {
        const at::Tensor bh = before[h].contiguous();
        auto A = bh.accessor<double, 2>();
        std::vector<double> s(N, 0);
        for (std::int64_t j = 0; j < N; ++j) {
            for (std::int64_t i = j; i < N; ++i) s[j] += A[i][j];
            s[j] /= double(N - j);
        }
        std::vector<std::int64_t> S;
        for (std::int64_t j = 0; j < N; ++j)
            if (s[j] > 0.1) S.push_back(j);
        if (!S.empty()) S.erase(S.begin());
        if (!S.empty()) ++heads_with_calibrated_sinks;
        std::vector<bool> in(N, false);
        for (auto j : S) in[j] = true;
        double worst = 0;
        for (std::int64_t i = 0; i < N; ++i) {
            double mass = 0, rest = 0;
            for (std::int64_t j = 0; j <= i; ++j) (in[j] ? mass : rest) += A[i][j];
            for (std::int64_t j = 0; j < N; ++j) {
                double want = A[i][j];
                if (mass > 0 && rest > 0) want = in[j] ? 0.4 * A[i][j] : A[i][j] + 0.6 * mass * A[i][j] / rest;
                worst = std::max(worst, std::abs(want - after[h][i][j].item<double>()));
            }
        }
        INFO("head " << h);
        CHECK(worst < 1e-5);
    }
    CHECK(heads_with_calibrated_sinks > 0);  // the test exercised real calibration
}

TEST_CASE("ACT decode steps reuse the prefill sink set and keep rows stochastic", "[interventions][act]") {
    c10::InferenceMode g;
    auto& m = sample();
    auto set = InterventionSet::from_cli({"act:tau=0.05"}, {}, m);
    set.attach(m);
    std::vector<at::Tensor> rows;
    auto h = m.hooks().add_observer(HookName{3, Site::kPattern}, [&](const HookName&, const at::Tensor& x) {
        if (x.size(2) == 1) rows.push_back(x.clone());
    });
    model::GenerateOptions o;
    o.max_new_tokens = 6;
    o.stop_at_eos = false;
    auto prompt = m.require_tokenizer().encode(kPrompt);
    auto r = model::generate(m, prompt, o);
    REQUIRE(rows.size() == 5);
    for (const auto& x : rows) CHECK(max_abs(x.sum(-1), at::ones_like(x.sum(-1))) < 1e-5);
    const std::string stats = set.stats_json();
    CHECK_CONTAINS(stats, "rows_calibrated");
    // The result differs from plain greedy decoding only through the intervention.
    set.set_enabled(false);
    auto plain = model::generate(m, prompt, o);
    set.set_enabled(true);
    auto again = model::generate(m, prompt, o);
    CHECK(again.new_ids == r.new_ids);  // deterministic
    INFO("plain and ACT may coincide on a tiny model; only determinism is asserted");
    (void)plain;
}

TEST_CASE("padding does not change what interventions do to a sequence", "[interventions]") {
    c10::InferenceMode g;
    auto& m = sample();
    const auto a = ids_of(kPrompt), b = ids_of("My son, if you have become collateral for your neighbor,");
    for (const std::string spec : {"act:tau=0.08", "ablate:heads=3.*,mode=uniform", "softpag:heads=2.*,u=0.5"}) {
        INFO(spec);
        auto set = InterventionSet::from_cli({spec}, {}, m);
        set.attach(m);
        at::Tensor alone = m.forward(at::tensor(b, at::kLong).view({1, -1}));
        // b right-padded in a batch with the longer a.
        std::vector<std::int64_t> ids(a), mask(a.size(), 1);
        std::vector<std::int64_t> bp(b), bm(b.size(), 1);
        bp.resize(a.size(), 0);
        bm.resize(a.size(), 0);
        ids.insert(ids.end(), bp.begin(), bp.end());
        mask.insert(mask.end(), bm.begin(), bm.end());
        const auto n = static_cast<std::int64_t>(a.size());
        at::Tensor batch = m.forward(at::tensor(ids, at::kLong).view({2, n}), at::tensor(mask, at::kLong).view({2, n}));
        CHECK(max_abs(batch[1].narrow(0, 0, static_cast<std::int64_t>(b.size())), alone[0]) < 2e-4);
    }
}

TEST_CASE("VAR finds sink dimensions from the residual stream", "[interventions][var]") {
    c10::InferenceMode g;
    auto& m = sample();
    std::vector<std::vector<std::int32_t>> seqs;
    for (const char* t : {kPrompt, "It is a truth universally acknowledged, that a single man", "The quick brown fox.",
                          "def main():\n    return 0\n", "Proverbs 6\n\nMy son, if you have become collateral"})
        seqs.push_back(m.require_tokenizer().encode(t));
    {
        auto strict = InterventionSet::from_cli({"var:span=1:8"}, {}, m);  // paper thresholds: none on a tiny model
        CHECK(strict.needs_calibration());
        try {
            strict.calibrate(m, seqs);
            FAIL("no error");
        } catch (const ConfigError& e) {
            CHECK_CONTAINS(e.what(), "no sink dimension found");
            CHECK_CONTAINS(e.what(), "massive_factor");
        }
    }
    auto set = InterventionSet::from_cli({"var:span=1:8,massive_abs=10,massive_factor=20"}, {}, m);
    set.calibrate(m, seqs);
    const std::string js = set.to_json();
    INFO(js);
    CHECK_CONTAINS(js, "\"dims_auto\":true");
    CHECK(js.find("\"dims\":[]") == std::string::npos);
    set.attach(m);
    PatternTap tap(m);
    m.forward(ids_tensor(kPrompt));
    const std::string stats = set.stats_json();
    INFO(stats);
    CHECK(stats.find("\"sink_tokens\":0.0") == std::string::npos);
}

TEST_CASE("mean ablation replaces a head's output by its reference mean", "[interventions]") {
    c10::InferenceMode g;
    auto& m = sample();
    std::vector<std::vector<std::int32_t>> seqs = {m.require_tokenizer().encode(kPrompt),
                                                   m.require_tokenizer().encode("The quick brown fox jumps.")};
    at::Tensor want = at::zeros({m.config().d_head}, at::kDouble);
    std::int64_t n = 0;
    {
        auto h = m.hooks().add_observer(HookName{4, Site::kZ}, [&](const HookName&, const at::Tensor& z) {
            want += z[0].select(1, 5).to(at::kDouble).sum(0);
            n += z.size(1);
        });
        for (auto& s : seqs) m.forward(at::tensor(std::vector<std::int64_t>(s.begin(), s.end()), at::kLong).view({1, -1}));
    }
    want /= double(n);
    auto set = InterventionSet::from_cli({"ablate:heads=4.5,mode=mean"}, {}, m);
    set.calibrate(m, seqs);
    set.attach(m);
    at::Tensor seen, other;
    auto h = m.hooks().add_observer(HookName{4, Site::kZ}, [&](const HookName&, const at::Tensor& z) {
        seen = z[0].select(1, 5).clone();
        other = z[0].select(1, 4).clone();
    });
    m.forward(ids_tensor("A different text entirely."));
    for (std::int64_t p = 0; p < seen.size(0); ++p) CHECK(max_abs(seen[p], want) < 1e-5);
    CHECK(other.abs().max().item<float>() > 0);
    auto zero = InterventionSet::from_cli({"ablate:heads=4.5"}, {}, m);
    set.detach();
    zero.attach(m);
    m.forward(ids_tensor("A different text entirely."));
    CHECK(seen.abs().max().item<float>() == 0.f);
}
