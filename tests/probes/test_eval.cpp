// Evaluation harness: task-file validation (file:line in every message), split selection, scoring
// (batched = one at a time; multiple choice = an independent recompute of the option
// log-likelihoods; perplexity = exp(mean NLL) from the logits), bootstrap intervals, and the
// head search (deterministic; selection rule gain > delta).
#include "probes/eval.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"
#include "tests/catch.h"
#include "tests/remove_tree.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot(ATTNSCOPE_SOURCE_DIR);

model::Model& sample() {
    static auto m = model::Model::load(kRoot / "samples/models/tinydeb-llama", {"cpu", "float32", true});
    return *m;
}

fs::path write(const test::TempDir& d, const std::string& name, const std::string& text) {
    fs::path p = d / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
}

std::string load_error(const test::TempDir& d, const std::string& text) {
    try {
        probes::load_task(write(d, "t.jsonl", text));
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

const char* kMc =
    R"({"id": "a", "context": "And God said, Let there be", "options": [" light", " dog", " seven"], "answer": 0, "split": "dev", "focus": [0, 12]})"
    "\n"
    R"({"id": "b", "context": "In the beginning God created the heaven and the", "options": [" earth", " spoon"], "answer": " earth", "split": "test"})"
    "\n"
    R"({"id": "c", "context": "It is a truth universally", "options": [" acknowledged", " purple"], "answer": 0, "split": "test"})"
    "\n";

}  // namespace

TEST_CASE("task files are validated with file:line", "[eval]") {
    test::TempDir d;
    auto t = probes::load_task(write(d, "mc.jsonl", kMc));
    CHECK(t.type == probes::TaskType::kMultipleChoice);
    REQUIRE(t.items.size() == 3);
    CHECK(t.items[1].answer == 0);
    CHECK(t.items[0].focus == std::pair<std::size_t, std::size_t>{0, 12});
    CHECK(probes::select_items(t, "test", 0, 0).size() == 2);
    CHECK(probes::select_items(t, "all", 2, 7).size() == 2);
    CHECK(probes::select_items(t, "all", 2, 7)[0].id == probes::select_items(t, "all", 2, 7)[0].id);
    CHECK_THROWS_AS(probes::select_items(t, "train", 0, 0), ConfigError);

    CHECK_CONTAINS(load_error(d, "{\"text\": \"a b c\"}\n{nope\n"), "t.jsonl:2");
    CHECK_CONTAINS(load_error(d, "{\"context\": \"x\", \"options\": [\"a\", \"b\"], \"answer\": 2}\n"), "outside the 2 options");
    CHECK_CONTAINS(load_error(d, "{\"context\": \"x\", \"options\": [\"a\"], \"answer\": 0}\n"), "at least 2");
    CHECK_CONTAINS(load_error(d, "{\"text\": \"a\"}\n{\"text\": \"b\", \"labels\": [\"x\", \"y\"], \"answer\": 0}\n"),
                   "one type per file");
    CHECK_CONTAINS(load_error(d, "{\"text\": \"\xff\xfe\"}\n"), "UTF-8");
    CHECK_CONTAINS(load_error(d, "{\"id\": 1, \"text\": \"a\"}\n{\"id\": 1, \"text\": \"b\"}\n"), "duplicate id");
    CHECK_CONTAINS(load_error(d, "{\"context\": \"abc\", \"options\": [\"a\", \"b\"], \"answer\": 0, \"focus\": [2, 9]}\n"),
                   "outside the context");
    CHECK_CONTAINS(load_error(d, "{\"foo\": 1}\n"), "no \"options\"");
    CHECK_CONTAINS(load_error(d, "\n\n"), "no items");
    CHECK_THROWS_AS(probes::load_task(d / "missing.jsonl"), IoError);
}

TEST_CASE("scores: option log-likelihoods and perplexity match a recompute; batching changes nothing", "[eval]") {
    c10::InferenceMode g;
    test::TempDir d;
    auto& m = sample();
    const auto& tok = m.require_tokenizer();
    auto items = probes::load_task(write(d, "mc.jsonl", kMc)).items;
    probes::EvalConfig one, many;
    one.batch = 1;
    many.batch = 7;
    auto s1 = probes::score_items(m, items, nullptr, one);
    auto s7 = probes::score_items(m, items, nullptr, many);
    for (std::size_t i = 0; i < items.size(); ++i)
        for (std::size_t o = 0; o < items[i].options.size(); ++o) {
            CHECK(std::abs(s1[i].option_ll[o] - s7[i].option_ll[o]) < 1e-4);
            // Recompute: log p(option tokens | context) from one unbatched forward.
            auto ctx = tok.encode(items[i].context);
            auto full = tok.encode(items[i].context + items[i].options[o]);
            at::Tensor lp = at::log_softmax(m.forward(at::tensor(std::vector<std::int64_t>(full.begin(), full.end()), at::kLong).view({1, -1}))[0], -1);
            double ll = 0;
            for (std::size_t t = ctx.size(); t < full.size(); ++t) ll += lp.index({static_cast<std::int64_t>(t) - 1, static_cast<std::int64_t>(full[t])}).item().toDouble();
            CHECK(std::abs(ll - s1[i].option_ll[o]) < 1e-4);
        }
    double correct = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& ll = s1[i].option_ll;
        CHECK(s1[i].chosen == std::max_element(ll.begin(), ll.end()) - ll.begin());
        CHECK(s1[i].correct == (s1[i].chosen == items[i].answer));
        correct += s1[i].correct;
    }
    CHECK(probes::task_metric(probes::TaskType::kMultipleChoice, s1) == Approx(correct / 3));

    auto ppl = probes::load_task(write(d, "p.jsonl", "{\"text\": \"And God saw the light, that it was good.\"}\n"
                                                     "{\"text\": \"The kernel schedules the task.\"}\n")).items;
    auto sp = probes::score_items(m, ppl, nullptr, many);
    double nll = 0, n = 0;
    for (const auto& it : ppl) {
        auto ids = tok.encode(it.context);
        at::Tensor lp = at::log_softmax(m.forward(at::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()), at::kLong).view({1, -1}))[0], -1);
        for (std::size_t t = 1; t < ids.size(); ++t) nll -= lp.index({static_cast<std::int64_t>(t) - 1, static_cast<std::int64_t>(ids[t])}).item().toDouble();
        n += double(ids.size() - 1);
    }
    CHECK(probes::task_metric(probes::TaskType::kPerplexity, sp) == Approx(std::exp(nll / n)).epsilon(1e-5));
}

TEST_CASE("bootstrap intervals", "[eval]") {
    std::vector<probes::ItemScore> a(200), b(200);
    for (int i = 0; i < 200; ++i) {
        a[i].correct = i % 2 == 0;        // 0.5
        b[i].correct = i % 2 == 0 || i % 4 == 1;  // 0.5 + 0.25
    }
    auto e = probes::bootstrap(probes::TaskType::kMultipleChoice, a, 1000, 1);
    CHECK(e.value == 0.5);
    CHECK(e.lo < 0.5);
    CHECK(e.hi > 0.5);
    CHECK(e.hi - e.lo == Approx(2 * 1.96 * std::sqrt(0.25 / 200)).epsilon(0.15));
    auto c = probes::compare(probes::TaskType::kMultipleChoice, a, b, 1000, 1);
    CHECK(c.delta.value == Approx(0.25));
    CHECK(c.delta.lo > 0.15);
    CHECK(c.p_not_better == 0.0);
    auto same = probes::compare(probes::TaskType::kMultipleChoice, a, a, 500, 1);
    CHECK(same.delta.lo == 0.0);
    CHECK(same.delta.hi == 0.0);
    CHECK(same.p_not_better == 1.0);
}

TEST_CASE("head search is deterministic and keeps the heads that help", "[eval][head-search]") {
    c10::InferenceMode g;
    test::TempDir d;
    auto& m = sample();
    auto items = probes::load_task(write(d, "mc.jsonl", kMc)).items;
    probes::HeadSearchOptions o;
    o.method = probes::parse_method_spec("act:beta=0.0,tau=0.02");
    o.layers = {2, 3};
    o.heads = {0, 5};
    auto r1 = probes::head_search(m, items, o);
    auto r2 = probes::head_search(m, items, o);
    REQUIRE(r1.candidates.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(r1.candidates[i].metric == r2.candidates[i].metric);
        CHECK(r1.candidates[i].kept == (r1.candidates[i].gain > 0));
    }
    CHECK(r1.selected.size() == r2.selected.size());
    o.method.params.emplace_back("heads", "1.1");
    CHECK_THROWS_AS(probes::head_search(m, items, o), ConfigError);
}
