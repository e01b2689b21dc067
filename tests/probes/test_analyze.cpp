// probes/analyze: live run vs stored capture (float32 maps: 1e-6; float16 maps: 1e-3 relative),
// both vs a direct recompute with the analysis free functions on the full patterns, the HDF5 /
// CSV outputs of run_analyze, response rows, and the errors (missing layers in a capture file,
// unknown metric names, --in = --out). Captures are written here with store::Writer from
// patterns taken through a model observer, so the test does not depend on `attnscope capture`.
#include "probes/analyze.h"
#include "probes/capture.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "analysis/entropy.h"
#include "analysis/preplan.h"
#include "analysis/sinks.h"
#include "core/base/error.h"
#include "core/model/model.h"
#include "core/store/reader.h"
#include "core/store/writer.h"
#include "core/text/tokenizer.h"
#include "tests/analysis/helpers.h"
#include "tests/catch.h"
#include "tests/remove_tree.h"

#if __has_include(<catch2/catch_test_macros.hpp>)
using Catch::Approx;
#endif

using namespace attnscope;
using namespace attnscope::probes;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot(ATTNSCOPE_SOURCE_DIR);

const std::vector<std::string> kTexts = {
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife.",
    "In the beginning God created the heaven and the earth. And the earth was without form, and "
    "void; and darkness was upon the face of the deep.",
    "The kernel command line option can be used to configure the device driver.",
};

using attnscope::test::TempDir;

std::unique_ptr<model::Model> sample_model() {
    return model::Model::load(kRoot / "samples/models/tinydeb-llama", {"cpu", "float32", true});
}

// One forward with an observer on every layer's pattern.
struct Captured {
    format::PromptInput input;
    std::vector<std::int32_t> ids;
    std::vector<std::string> strs;
    std::vector<at::Tensor> patterns;  // per layer [head, T, T] float32
};

Captured run_model(model::Model& m, const format::PromptInput& in) {
    Captured c;
    c.input = in;
    const auto& tok = m.require_tokenizer();
    c.ids = tok.encode(in.text);
    for (auto id : c.ids) c.strs.push_back(tok.token_display(id));
    c.patterns.resize(static_cast<size_t>(m.config().n_layers));
    auto h = m.hooks().add_observer("blocks.*.attn.hook_pattern", [&](const HookName& n, const at::Tensor& p) {
        c.patterns[static_cast<size_t>(n.layer)] = p[0].to(at::kFloat).clone();
    });
    c10::InferenceMode guard;
    std::vector<std::int64_t> v(c.ids.begin(), c.ids.end());
    m.forward(at::tensor(v, at::TensorOptions().dtype(at::kLong)).view({1, -1}));
    return c;
}

std::vector<format::PromptInput> inputs() {
    std::vector<format::PromptInput> v;
    for (size_t i = 0; i < kTexts.size(); ++i)
        v.push_back({static_cast<std::int64_t>(i), kTexts[i], "test:" + std::to_string(i + 1)});
    return v;
}

store::ModelInfo model_info(const model::Model& m) {
    store::ModelInfo info = probes::model_info(m);
    info.source = m.dir().string();
    return info;
}

// Capture file with the given layers' maps of every prompt. `n_prompt_tokens` < T marks the
// tail of each prompt as "generated".
void write_capture(const fs::path& path, const model::Model& m, const std::vector<Captured>& caps,
                   store::DType dtype, const std::string& run, std::vector<int> layers = {},
                   std::int64_t n_prompt_tokens = -1) {
    if (layers.empty())
        for (int l = 0; l < m.config().n_layers; ++l) layers.push_back(l);
    store::RunInfo ri;
    ri.name = run;
    ri.hooks = {"blocks.*.attn.hook_pattern"};
    ri.map_dtype = dtype;
    ri.version = "test";
    store::Writer w(path, model_info(m), ri);
    for (const auto& c : caps) {
        store::Prompt p;
        p.id = c.input.id;
        p.text = c.input.text;
        p.source = c.input.source;
        p.tokens = c.ids;
        p.token_str = c.strs;
        p.n_prompt_tokens = n_prompt_tokens;
        w.begin_prompt(p);
        for (int l : layers) {
            at::Tensor t = c.patterns[static_cast<size_t>(l)].contiguous();
            std::vector<std::int64_t> shape(t.sizes().begin(), t.sizes().end());
            w.write_hook("blocks." + std::to_string(l) + ".attn.hook_pattern",
                         store::FloatRef::f32(t.data_ptr<float>(), shape));
        }
        w.end_prompt();
    }
    w.close();
}

// max over finite entries of |a - b| / (|b| + floor); -1 when shapes or NaN positions differ.
double rel_diff(const at::Tensor& a, const at::Tensor& b, double floor = 1e-3) {
    if (!a.defined() || !b.defined()) return -3;
    at::Tensor x = a.to(at::kCPU, at::kDouble), y = b.to(at::kCPU, at::kDouble);
    if (x.sizes() != y.sizes()) return -2;
    if (!at::equal(x.isnan(), y.isnan())) return -1;
    at::Tensor keep = x.isnan().logical_not();
    if (keep.sum().item<std::int64_t>() == 0) return 0;
    return ((x - y).abs() / (y.abs() + floor)).masked_select(keep).max().item<double>();
}

double abs_diff(const at::Tensor& a, const at::Tensor& b) {
    if (!a.defined() || !b.defined()) return -3;
    return analysis::testing::max_diff(a, b);
}

at::Tensor summary_column(const PromptAnalysis& p, double analysis::HeadSummary::*field) {
    std::vector<double> v;
    for (const auto& h : p.heads) v.push_back(h.*field);
    return at::tensor(v, at::TensorOptions().dtype(at::kDouble));
}

// Every number of two analyses of the same prompt, with `check(name, a, b)`.
template <class F>
void compare(const PromptAnalysis& a, const PromptAnalysis& b, F check) {
    REQUIRE(a.id == b.id);
    REQUIRE(a.n_tokens == b.n_tokens);
    REQUIRE(a.tokens == b.tokens);
    REQUIRE(a.heads.size() == b.heads.size());
    check("sink_scores", a.sink_scores, b.sink_scores);
    check("alpha0", a.alpha0, b.alpha0);
    check("entropy_nats", a.entropy_nats, b.entropy_nats);
    check("entropy_norm", a.entropy_norm, b.entropy_norm);
    check("entropy_norm_mean", a.entropy_norm_mean, b.entropy_norm_mean);
    check("entropy_nats_mean", a.entropy_nats_mean, b.entropy_nats_mean);
    check("distance", a.distance, b.distance);
    REQUIRE(a.preplan);
    REQUIRE(b.preplan);
    check("preplan distance", a.preplan->distance, b.preplan->distance);
    check("waad", a.preplan->roles.waad, b.preplan->roles.waad);
    check("fai", a.preplan->roles.fai, b.preplan->roles.fai);
    check("summary alpha", summary_column(a, &analysis::HeadSummary::alpha),
          summary_column(b, &analysis::HeadSummary::alpha));
    check("summary entropy", summary_column(a, &analysis::HeadSummary::entropy_norm),
          summary_column(b, &analysis::HeadSummary::entropy_norm));
    check("summary distance", summary_column(a, &analysis::HeadSummary::distance),
          summary_column(b, &analysis::HeadSummary::distance));
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("analyze: live run and stored capture give the same metrics", "[model]") {
    auto m = sample_model();
    const auto L = m->config().n_layers, H = m->config().n_heads;
    TempDir tmp;
    std::vector<Captured> caps;
    for (const auto& in : inputs()) caps.push_back(run_model(*m, in));
    write_capture(tmp / "f32.h5", *m, caps, store::DType::kF32, "cap");
    write_capture(tmp / "f16.h5", *m, caps, store::DType::kF16, "cap");

    AnalyzeOptions o;
    o.sink_T = 16;  // exercises the truncated sink path (prompts are 20-40 tokens)
    Analyzer live(L, H, o, true);
    std::vector<PromptAnalysis> lp;
    for (const auto& in : inputs()) lp.push_back(analyze_live(live, *m, in));
    REQUIRE(lp.front().sink_T == 16);
    REQUIRE(lp.front().sink_scores.size(2) == 16);

    SECTION("float32 maps: equal within 1e-6, same token roles") {
        store::Reader r(tmp / "f32.h5");
        Analyzer st(L, H, o, false);
        check_stored(st, r, "cap", r.run_prompts("cap"));
        for (size_t i = 0; i < lp.size(); ++i) {
            const auto sp = analyze_stored(st, r, "cap", static_cast<std::int64_t>(i));
            compare(lp[i], sp, [](const std::string& what, const at::Tensor& a, const at::Tensor& b) {
                INFO(what << ": max |diff| = " << abs_diff(a, b));
                CHECK(abs_diff(a, b) >= 0);
                CHECK(abs_diff(a, b) < 1e-6);
            });
            CHECK(lp[i].preplan->roles.t_loc == sp.preplan->roles.t_loc);
            CHECK(lp[i].preplan->roles.t_glob == sp.preplan->roles.t_glob);
            CHECK(lp[i].sink_percent == sp.sink_percent);
            CHECK(lp[i].token_str == sp.token_str);
        }
        CHECK(st.dataset().sink_ratio.result().percent == live.dataset().sink_ratio.result().percent);
        CHECK(abs_diff(st.dataset().entropy_norm.mean(), live.dataset().entropy_norm.mean()) < 1e-6);
    }
    SECTION("float16 maps: equal within 1e-3 relative") {
        // float16 keeps ~3 significant digits of every weight. Sums of weights (α, d, WAAD, FAI)
        // stay within 1e-3 relative; entropy weighs tiny weights by -ln a, so rows that are
        // nearly one-hot (H ~ 0.005 nats) lose relative precision: entropies are held to 1e-3 of
        // their scale (1 nat, or the [0, 1] range of Ĥ) instead (measured: <= 3.6e-4).
        store::Reader r(tmp / "f16.h5");
        Analyzer st(L, H, o, false);
        for (size_t i = 0; i < lp.size(); ++i) {
            const auto sp = analyze_stored(st, r, "cap", static_cast<std::int64_t>(i));
            compare(lp[i], sp, [](const std::string& what, const at::Tensor& a, const at::Tensor& b) {
                const double floor = what.find("entropy") != std::string::npos ? 1.0 : 1e-3;
                INFO(what << ": max |diff| / (|x| + " << floor << ") = " << rel_diff(b, a, floor)
                          << ", max |diff| = " << abs_diff(a, b));
                CHECK(rel_diff(b, a, floor) >= 0);
                CHECK(rel_diff(b, a, floor) < 1e-3);
            });
        }
    }
}

TEST_CASE("analyze: metrics equal a direct recompute on the full patterns", "[model]") {
    auto m = sample_model();
    const auto L = m->config().n_layers, H = m->config().n_heads;
    const auto in = inputs()[1];
    const Captured c = run_model(*m, in);
    const auto T = static_cast<std::int64_t>(c.ids.size());
    REQUIRE(T > 20);

    for (std::int64_t sink_T : {std::int64_t{0}, std::int64_t{12}}) {
        INFO("sink_T = " << sink_T);
        AnalyzeOptions o;
        o.sink_T = sink_T;
        o.window = 5;
        o.horizon = analysis::FaiHorizon{2, 20};
        Analyzer a(L, H, o, true);
        const PromptAnalysis p = analyze_live(a, *m, in);
        REQUIRE(p.layers.size() == static_cast<size_t>(L));
        REQUIRE(p.heads.size() == static_cast<size_t>(L * H));
        const analysis::TokenMask mask = analysis::TokenMask::response(1);  // rows_begin = 1

        std::vector<at::Tensor> sc, nats, norm, mean, dist;
        const std::int64_t st = sink_T > 0 ? sink_T : T;
        for (const auto& pat : c.patterns) {
            sc.push_back(analysis::sink_scores(pat.narrow(1, 0, st).narrow(2, 0, st)));
            const auto e = analysis::row_entropy(pat, mask);
            nats.push_back(e.nats);
            norm.push_back(e.normalized);
            mean.push_back(analysis::mean_normalized_entropy(e, mask));
            dist.push_back(analysis::backward_distance(pat, mask));
        }
        const at::Tensor scores = at::stack(sc);
        CHECK(abs_diff(p.sink_scores, scores) < 1e-6);
        CHECK(abs_diff(p.alpha0, scores.select(2, 0)) < 1e-6);
        CHECK(at::equal(p.sink_flags, analysis::head_sink_flags(scores, {0.3, 0})));
        CHECK(p.sink_percent == Approx(analysis::sink_ratio(scores, {0.3, 0}).percent));
        CHECK(abs_diff(p.entropy_nats, at::stack(nats)) < 1e-6);
        CHECK(abs_diff(p.entropy_norm, at::stack(norm)) < 1e-6);
        CHECK(abs_diff(p.entropy_norm_mean, at::stack(mean)) < 1e-6);
        CHECK(abs_diff(p.distance, at::stack(dist)) < 1e-6);
        for (const auto& row : p.heads) {
            const auto l = row.layer, h = row.head;
            CHECK(row.alpha == Approx(scores[l][h][0].item<double>()).margin(1e-9));
            CHECK(row.entropy_norm == Approx(at::stack(mean)[l][h].item<double>()).margin(1e-6));
        }

        // Preplan on the five middle-third layers (8 layers -> 2, 3, 4, 5).
        REQUIRE(p.preplan_layers == std::vector<std::int64_t>({2, 3, 4, 5}));
        std::vector<at::Tensor> sampled;
        for (auto l : p.preplan_layers) sampled.push_back(c.patterns[static_cast<size_t>(l)]);
        analysis::PreplanParams pp;
        pp.window = 5;
        pp.horizon = {2, 20};
        const auto ref = analysis::preplan(sampled, mask, pp);
        REQUIRE(p.preplan);
        CHECK(abs_diff(p.preplan->distance, ref.distance) < 1e-6);
        CHECK(p.preplan->groups.local == ref.groups.local);
        CHECK(p.preplan->groups.global == ref.groups.global);
        CHECK(abs_diff(p.preplan->roles.waad, ref.roles.waad) < 1e-6);
        CHECK(abs_diff(p.preplan->roles.fai, ref.roles.fai) < 1e-6);
        CHECK(p.preplan->roles.t_loc == ref.roles.t_loc);
        CHECK(p.preplan->roles.t_glob == ref.roles.t_glob);
        // Row 0 (BOS) is not a row of interest, so never ranked.
        for (auto t : p.preplan->roles.t_glob) CHECK(t >= 1);
    }
}

TEST_CASE("analyze: run_analyze writes HDF5 and CSV, reads captures, response rows", "[model]") {
    TempDir tmp;
    AnalyzeRequest rq;
    rq.model_dir = kRoot / "samples/models/tinydeb-llama";
    rq.dtype = "float32";
    rq.prompts = kTexts;
    rq.options.sink_T = 16;
    rq.out_file = tmp / "live.h5";
    rq.csv_file = tmp / "live.csv";
    rq.version = "test";
    std::ostringstream out;
    const auto rep = run_analyze(rq, out);
    CHECK(rep.prompts == 3);
    CHECK(out.str().empty());  // outputs went to files

    // CSV: header + one row per (prompt, layer, head), every field parses.
    std::ifstream f(rq.csv_file);
    std::string line;
    REQUIRE(std::getline(f, line));
    CHECK(line == "prompt,layer,head,entropy_norm,entropy_nats,sink_slot,alpha,sink,distance,class");
    std::set<std::tuple<int, int, int>> keys;
    int rows = 0;
    while (std::getline(f, line)) {
        ++rows;
        std::vector<std::string> cells;
        std::stringstream ss(line);
        std::string cell;
        while (std::getline(ss, cell, ',')) cells.push_back(cell);
        REQUIRE(cells.size() == 10);
        keys.emplace(std::stoi(cells[0]), std::stoi(cells[1]), std::stoi(cells[2]));
        for (int k : {3, 4, 6, 8}) {
            char* end = nullptr;
            std::strtod(cells[static_cast<size_t>(k)].c_str(), &end);
            CHECK(*end == '\0');
        }
        CHECK((cells[7] == "0" || cells[7] == "1"));
        CHECK(std::set<std::string>{"local", "global", "middle", "unranked"}.count(cells[9]) == 1);
    }
    CHECK(rows == 3 * 8 * 8);
    CHECK(keys.size() == static_cast<size_t>(rows));

    // HDF5: per-prompt metrics with dims/units/version, dataset aggregates.
    {
        store::Reader r(rq.out_file);
        REQUIRE(r.run_prompts("analysis").size() == 3);
        const auto ms = r.metrics("analysis", 0);
        for (const char* name : {"sink_scores", "sink_alpha0", "sink_flags", "sink_ratio", "entropy_nats",
                                 "entropy_norm_mean", "distance", "waad", "fai", "preplan_tokens",
                                 "anchor_tokens", "head_class", "massive_count"})
            CHECK(std::find(ms.begin(), ms.end(), name) != ms.end());
        const auto e = r.read_metric("analysis", 0, "entropy_nats");
        CHECK(e.info.dims == "layer,head,query_pos");
        CHECK(e.info.units == "nats");
        CHECK(e.info.metric_version == 1);
        CHECK(r.read_metric("analysis", 0, "sink_scores").shape == std::vector<std::int64_t>({8, 8, 16}));
        const auto rm = r.run_metrics("analysis");
        for (const char* name : {"sink_ratio", "alpha0_mean", "alpha0_std", "entropy_norm_mean",
                                 "entropy_norm_std", "entropy_norm_hist", "head_local_rate"})
            CHECK(std::find(rm.begin(), rm.end(), name) != rm.end());
        const auto sr = r.read_run_metric("analysis", "sink_ratio");
        CHECK(sr.info.units == "percent");
        CHECK(sr.data.size() == 1);
        CHECK(sr.data[0] >= 0);
        CHECK(sr.data[0] <= 100);
    }

    // --in: a capture (with the last 5 tokens marked generated) -> a separate output file.
    auto m = sample_model();
    std::vector<Captured> caps;
    for (const auto& in : inputs()) caps.push_back(run_model(*m, in));
    write_capture(tmp / "cap.h5", *m, {caps[0]}, store::DType::kF32, "cap", {},
                  static_cast<std::int64_t>(caps[0].ids.size()) - 5);
    AnalyzeRequest sq;
    sq.in_file = tmp / "cap.h5";
    sq.out_file = tmp / "from_file.h5";
    sq.options.sink_T = 16;
    std::ostringstream out2;
    run_analyze(sq, out2);
    {
        store::Reader a(rq.out_file), b(sq.out_file);
        const auto x = a.read_metric("analysis", 0, "distance"), y = b.read_metric("analysis", 0, "distance");
        REQUIRE(x.data.size() == y.data.size());
        for (size_t i = 0; i < x.data.size(); ++i) CHECK(x.data[i] == Approx(y.data[i]).epsilon(1e-5));
        CHECK(b.prompt(0).n_prompt_tokens == static_cast<std::int64_t>(caps[0].ids.size()) - 5);
    }
    CHECK_THROWS_AS(([&] {
                        AnalyzeRequest bad = sq;
                        bad.out_file = sq.in_file;
                        run_analyze(bad, out2);
                    }()),
                    ConfigError);

    // Response rows: R = the 5 "generated" tokens.
    {
        store::Reader r(tmp / "cap.h5");
        AnalyzeOptions o;
        o.response_only = true;
        Analyzer an(8, 8, o, false);
        const auto p = analyze_stored(an, r, "cap", 0);
        const auto T = p.n_tokens;
        CHECK(p.rows_begin == T - 5);
        const analysis::TokenMask mask = analysis::TokenMask::response(T - 5);
        std::vector<at::Tensor> d;
        for (auto l : p.layers) d.push_back(analysis::backward_distance(caps[0].patterns[static_cast<size_t>(l)], mask));
        CHECK(abs_diff(p.distance, at::stack(d)) < 1e-6);
        REQUIRE(p.preplan);
        for (auto t : p.preplan->roles.t_loc) CHECK(t >= T - 5);
        for (auto t : p.preplan->roles.t_glob) CHECK(t >= T - 5);
    }

    // Table and JSON render.
    AnalyzeRequest tq = sq;
    tq.out_file.clear();
    std::ostringstream table;
    run_analyze(tq, table);
    CHECK(table.str().find("sink ratio") != std::string::npos);
    tq.json = true;
    std::ostringstream js;
    run_analyze(tq, js);
    CHECK(js.str().find("\"dataset\"") != std::string::npos);
}

TEST_CASE("analyze: sliding-window models count only the keys inside the window", "[model]") {
    // tiny-mistral: sliding_window = 8 on every layer; a 30-token prompt crosses it.
    const fs::path dir = kRoot / "tests/fixtures/hf/tiny-mistral";
    auto m = model::Model::load(dir, {"cpu", "float32", true});
    const format::PromptInput in{0, "the quick brown fox jumps over the lazy dog and then runs far away into the woods", "t"};
    const Captured c = run_model(*m, in);
    const auto T = static_cast<std::int64_t>(c.ids.size());
    REQUIRE(T > 12);
    TempDir tmp;
    AnalyzeRequest rq;
    rq.model_dir = dir;
    rq.dtype = "float32";
    rq.prompts = {in.text};
    rq.options.metrics = {AnalyzeMetric::kSink, AnalyzeMetric::kEntropy};
    rq.out_file = tmp / "w.h5";
    std::ostringstream out;
    run_analyze(rq, out);
    store::Reader r(rq.out_file);
    const auto sc = r.read_metric("analysis", 0, "sink_scores");
    const auto en = r.read_metric("analysis", 0, "entropy_norm_mean");
    analysis::TokenMask win = analysis::TokenMask::response(1);
    win.attention_window = 8;
    for (std::int64_t l = 0; l < m->config().n_layers; ++l) {
        const at::Tensor ref = analysis::sink_scores(c.patterns[static_cast<size_t>(l)], win);
        const at::Tensor full = analysis::sink_scores(c.patterns[static_cast<size_t>(l)]);
        const at::Tensor ent = analysis::mean_normalized_entropy(
            analysis::row_entropy(c.patterns[static_cast<size_t>(l)], win), win);
        const auto H = ref.size(0);
        at::Tensor got = at::from_blob(const_cast<float*>(sc.data.data()) + l * H * T, {H, T}, at::kFloat);
        at::Tensor got_e = at::from_blob(const_cast<float*>(en.data.data()) + l * H, {H}, at::kFloat);
        CHECK(rel_diff(got, ref, 1e-6) < 1e-5);
        CHECK(rel_diff(got_e, ent, 1e-6) < 1e-5);
        CHECK(abs_diff(ref, full) > 1e-3);  // the window matters for this prompt
    }
}

TEST_CASE("analyze: errors", "[model]") {
    SECTION("unknown metric names list the valid ones") {
        const auto msg = message_of([] { parse_metrics("sink,bogus"); });
        CHECK(msg.find("bogus") != std::string::npos);
        for (const auto& n : analyze_metric_names()) CHECK(msg.find(n) != std::string::npos);
        CHECK_THROWS_AS(parse_metrics("sink,bogus"), ConfigError);
        CHECK(parse_metrics("all").size() == analyze_metric_names().size());
        CHECK(parse_metrics("waad, fai") == std::set<AnalyzeMetric>{AnalyzeMetric::kWaad, AnalyzeMetric::kFai});
        CHECK_THROWS_AS(parse_horizon("5"), ConfigError);
        CHECK(parse_horizon("1,inf").hi == analysis::kUnbounded);
        CHECK(parse_horizon("rl").lo == 10);
    }
    SECTION("massive needs a live run; layers must exist") {
        AnalyzeOptions o;
        o.metrics = {AnalyzeMetric::kMassive};
        CHECK_THROWS_AS(Analyzer(8, 8, o, false), ConfigError);
        AnalyzeOptions o2;
        o2.layers = {8};
        CHECK_THROWS_AS(Analyzer(8, 8, o2, true), ConfigError);
    }
    SECTION("a capture without the needed layers names file, run, prompt and layers") {
        auto m = sample_model();
        TempDir tmp;
        const auto c = run_model(*m, inputs()[2]);
        write_capture(tmp / "partial.h5", *m, {c}, store::DType::kF16, "cap", {0, 1});
        store::Reader r(tmp / "partial.h5");
        Analyzer a(8, 8, {}, false);
        const auto msg = message_of([&] { check_stored(a, r, "cap", r.run_prompts("cap")); });
        INFO(msg);
        CHECK(msg.find((tmp / "partial.h5").string()) != std::string::npos);
        CHECK(msg.find("run 'cap'") != std::string::npos);
        CHECK(msg.find("prompt 2") != std::string::npos);
        CHECK(msg.find("layers 2,3,4,5,6,7") != std::string::npos);
        CHECK(msg.find("Re-capture") != std::string::npos);
        CHECK_THROWS_AS(analyze_stored(a, r, "cap", 2), SchemaError);
        AnalyzeRequest rq;
        rq.in_file = tmp / "partial.h5";
        std::ostringstream out;
        CHECK_THROWS_AS(run_analyze(rq, out), SchemaError);
        // Restricted to the stored layers and to metrics that need no other layer, it works.
        AnalyzeOptions o;
        o.layers = {0, 1};
        o.metrics = {AnalyzeMetric::kSink, AnalyzeMetric::kEntropy};
        Analyzer ok(8, 8, o, false);
        CHECK_NOTHROW(check_stored(ok, r, "cap", {2}));
        CHECK(analyze_stored(ok, r, "cap", 2).heads.size() == 16);
    }
}
