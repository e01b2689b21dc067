// Hook registry contracts and attention invariants seen through the hooks.
#include <ATen/ATen.h>

#include <cmath>

#include "core/base/error.h"
#include "core/model/model.h"
#include "tests/catch.h"
#include "tests/model/tiny_checkpoint.h"

using namespace attnscope;
using attnscope::test::make_tiny_checkpoint;
using attnscope::test::temp_dir;
using attnscope::test::TinySpec;

namespace {
std::unique_ptr<model::Model> tiny_llama() {
    TinySpec s;  // 4 query heads, 2 KV heads: GQA
    auto dir = make_tiny_checkpoint(temp_dir("hooks"), s);
    return model::Model::load(dir, {"cpu", "float32", false});
}
at::Tensor ids(std::vector<std::int64_t> v) { return at::tensor(v, at::kLong).view({1, -1}); }
}  // namespace

TEST_CASE("pattern rows sum to 1 and the causal upper triangle is 0", "[model]") {
    auto m = tiny_llama();
    std::vector<at::Tensor> pats;
    auto h = m->hooks().add_observer("blocks.*.attn.hook_pattern",
                                     [&](const HookName&, const at::Tensor& p) { pats.push_back(p.clone()); });
    m->forward(ids({5, 3, 8, 1, 9, 2, 7}));
    REQUIRE(pats.size() == 2);
    for (const auto& p : pats) {
        REQUIRE(p.sizes() == at::IntArrayRef({1, 4, 7, 7}));
        CHECK(p.scalar_type() == at::kFloat);
        CHECK((p.sum(-1) - 1).abs().max().item<double>() < 1e-6);
        CHECK(p.triu(1).abs().max().item<double>() == 0.0);
    }
}

TEST_CASE("GQA: each query head's pattern matches a per-head recompute from rot_q and rot_k",
          "[model]") {
    auto m = tiny_llama();
    at::Tensor q, k, pat;
    auto h1 = m->hooks().add_observer("blocks.1.attn.hook_rot_q",
                                      [&](const HookName&, const at::Tensor& t) { q = t.clone(); });
    auto h2 = m->hooks().add_observer("blocks.1.attn.hook_rot_k",
                                      [&](const HookName&, const at::Tensor& t) { k = t.clone(); });
    auto h3 = m->hooks().add_observer("blocks.1.attn.hook_pattern",
                                      [&](const HookName&, const at::Tensor& t) { pat = t.clone(); });
    m->forward(ids({4, 8, 15, 16, 23, 42}));
    REQUIRE(q.sizes() == at::IntArrayRef({1, 6, 4, 8}));
    REQUIRE(k.sizes() == at::IntArrayRef({1, 6, 2, 8}));
    const auto T = q.size(1);
    for (int head = 0; head < 4; ++head) {
        at::Tensor qh = q[0].select(1, head).to(at::kDouble);      // [T, dh]
        at::Tensor kh = k[0].select(1, head / 2).to(at::kDouble);  // KV head = head / n_rep
        at::Tensor s = qh.matmul(kh.t()) / std::sqrt(8.0);
        s = s.masked_fill(at::ones({T, T}, at::kBool).triu(1), -INFINITY);
        CHECK((s.softmax(-1) - pat[0][head].to(at::kDouble)).abs().max().item<double>() < 1e-6);
    }
}

TEST_CASE("an identity editor changes nothing; a real edit changes the logits", "[model]") {
    auto m = tiny_llama();
    at::Tensor x = ids({1, 2, 3, 4, 5});
    at::Tensor base = m->forward(x);
    {
        auto h = m->hooks().add_editor("blocks.*.attn.hook_pattern",
                                       [](const HookName&, const at::Tensor& p) { return p.clone(); });
        // The hooked layers take the materialised path and the baseline the fused SDPA kernel
        // (LibTorch 2.x), so agreement is to rounding (3e-6 seen on CPU), not bitwise.
        CHECK((m->forward(x) - base).abs().max().item<double>() < 1e-5);
    }
    {
        // Uniform attention over visible keys (an ablation) must change the output.
        auto h = m->hooks().add_editor("blocks.0.attn.hook_pattern", [](const HookName&, const at::Tensor& p) {
            at::Tensor vis = (p > 0).to(p.scalar_type());
            return vis / vis.sum(-1, true);
        });
        CHECK((m->forward(x) - base).abs().max().item<double>() > 1e-4);
    }
    CHECK(m->hooks().size() == 0);  // handles removed their hooks on scope exit
    CHECK((m->forward(x) - base).abs().max().item<double>() < 1e-6);
}

TEST_CASE("editors run in registration order, then observers see the result", "[model]") {
    auto m = tiny_llama();
    std::vector<std::string> order;
    at::Tensor seen;
    auto o = m->hooks().add_observer("blocks.0.hook_resid_post", [&](const HookName&, const at::Tensor& t) {
        order.push_back("observer");
        seen = t.clone();
    });
    auto e1 = m->hooks().add_editor("blocks.0.hook_resid_post", [&](const HookName&, const at::Tensor& t) {
        order.push_back("e1");
        return t * 0 + 1;
    });
    auto e2 = m->hooks().add_editor("blocks.0.hook_resid_post", [&](const HookName&, const at::Tensor& t) {
        order.push_back("e2");
        return t * 2;
    });
    m->forward(ids({1, 2}));
    CHECK(order == std::vector<std::string>{"e1", "e2", "observer"});
    CHECK((seen - 2).abs().max().item<double>() == 0.0);
}

TEST_CASE("hook misuse is a HookError naming the hook", "[model]") {
    auto m = tiny_llama();
    CHECK_THROWS_AS(m->hooks().add_observer("blocks.9.attn.hook_pattern", [](auto&, auto&) {}), HookError);
    CHECK_THROWS_AS(m->hooks().add_observer("hook_pos_embed", [](auto&, auto&) {}), HookError);
    CHECK_THROWS_AS(m->hooks().add_observer("not.a.hook", [](auto&, auto&) {}), HookError);
    auto h = m->hooks().add_editor("blocks.0.attn.hook_z",
                                   [](const HookName&, const at::Tensor& t) { return t.sum(-1); });
    try {
        m->forward(ids({1, 2, 3}));
        FAIL("no throw");
    } catch (const HookError& e) {
        CHECK(std::string(e.what()).find("blocks.0.attn.hook_z") != std::string::npos);
    }
}

TEST_CASE("every listed hook point fires exactly once per forward with its documented rank",
          "[model]") {
    for (const char* arch : {"gpt2", "llama"}) {
        TinySpec s;
        s.arch = arch;
        if (s.arch == "gpt2") s.n_kv_heads = s.n_heads;
        auto m = model::Model::load(make_tiny_checkpoint(temp_dir("all"), s), {"cpu", "float32", false});
        std::map<std::string, int> fired;
        std::map<std::string, std::int64_t> rank;
        auto h = m->hooks().add_observer("*", [&](const HookName& n, const at::Tensor& t) {
            ++fired[n.to_string()];
            rank[n.to_string()] = t.dim();
        });
        m->forward(ids({1, 2, 3}));
        for (const auto& p : m->hook_points()) {
            INFO(p.to_string());
            CHECK(fired[p.to_string()] == 1);
            // Ranks follow the dims glossary of the site.
            const std::string dims(site_dims(p.site));
            CHECK(rank[p.to_string()] == std::count(dims.begin(), dims.end(), ',') + 1);
        }
        CHECK(fired.size() == m->hook_points().size());
    }
}

TEST_CASE("chunked pattern observation streams exactly the full pattern, in query order", "[model]") {
    auto m = tiny_llama();
    at::Tensor x = ids({5, 3, 8, 1, 9, 2, 7, 4, 6, 1, 2});
    at::Tensor full;
    at::Tensor base;
    {
        auto h = m->hooks().add_observer("blocks.1.attn.hook_pattern",
                                         [&](const HookName&, const at::Tensor& p) { full = p.clone(); });
        base = m->forward(x);
    }
    m->hooks().set_chunk_elements(3 * 4 * 11);  // 3 query rows per chunk: 4 chunks
    std::vector<std::pair<std::int64_t, at::Tensor>> chunks;
    {
        auto h = m->hooks().add_chunk_observer(HookName{1, Site::kPattern},
                                               [&](const HookName&, const at::Tensor& rows, std::int64_t q0) {
                                                   chunks.emplace_back(q0, rows.clone());
                                               });
        CHECK(m->hooks().pattern_chunked(1));
        CHECK((m->forward(x) - base).abs().max().item<double>() < 1e-5);
    }
    REQUIRE(chunks.size() == 4);
    std::vector<at::Tensor> parts;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        CHECK(chunks[i].first == static_cast<std::int64_t>(3 * i));
        parts.push_back(chunks[i].second);
    }
    CHECK((at::cat(parts, 2) - full).abs().max().item<double>() < 1e-6);
    // With a plain observer on the same layer the full map is built and chunk observers get it
    // once, at offset K - p.
    chunks.clear();
    auto h1 = m->hooks().add_chunk_observer(HookName{1, Site::kPattern},
                                            [&](const HookName&, const at::Tensor& rows, std::int64_t q0) {
                                                chunks.emplace_back(q0, rows.clone());
                                            });
    auto h2 = m->hooks().add_observer("blocks.1.attn.hook_pattern", [](auto&, auto&) {});
    CHECK_FALSE(m->hooks().pattern_chunked(1));
    m->forward(x);
    REQUIRE(chunks.size() == 1);
    CHECK(chunks[0].first == 0);
    CHECK_THROWS_AS(m->hooks().add_chunk_observer(HookName{1, Site::kZ}, [](auto&, auto&, auto) {}), HookError);
}
