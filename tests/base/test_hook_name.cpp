#include "core/base/error.h"
#include "core/base/hook_name.h"
#include "tests/catch.h"

using namespace attnscope;

TEST_CASE("hook names round-trip through their TransformerLens strings", "[unit]") {
    const auto all = all_hook_names(3, true, true, true);
    for (const auto& h : all) {
        const std::string s = h.to_string();
        CHECK(HookName::parse(s) == h);
    }
    CHECK(HookName{7, Site::kPattern}.to_string() == "blocks.7.attn.hook_pattern");
    CHECK(HookName{0, Site::kLn1Normalized}.to_string() == "blocks.0.ln1.hook_normalized");
    CHECK(HookName{-1, Site::kEmbed}.to_string() == "hook_embed");
    CHECK(HookName{-1, Site::kUnembedOut}.to_string() == "unembed.hook_out");
}

TEST_CASE("hook-name parsing rejects malformed names with a helpful message", "[unit]") {
    for (const char* bad : {"blocks.x.attn.hook_pattern", "blocks.-1.attn.hook_pattern",
                            "blocks.01.attn.hook_pattern", "blocks..attn.hook_pattern",
                            "blocks.1.attn.hook_nope", "hook_pattern", "", "blocks.1"}) {
        CHECK_FALSE(HookName::try_parse(bad).has_value());
        CHECK_THROWS_AS(HookName::parse(bad), HookError);
    }
    try {
        HookName::parse("blocks.1.attn.hook_nope");
        FAIL("no throw");
    } catch (const HookError& e) {
        const std::string m = e.what();
        CHECK(m.find("blocks.1.attn.hook_nope") != std::string::npos);
        CHECK(m.find("blocks.<layer>.attn.hook_pattern") != std::string::npos);
    }
}

TEST_CASE("glob matching of hook names", "[unit]") {
    CHECK(glob_match("blocks.*.attn.hook_pattern", "blocks.12.attn.hook_pattern"));
    CHECK_FALSE(glob_match("blocks.*.attn.hook_pattern", "blocks.12.attn.hook_attn_scores"));
    CHECK(glob_match("*", "hook_embed"));
    CHECK(glob_match("blocks.?.hook_resid_post", "blocks.3.hook_resid_post"));
    CHECK_FALSE(glob_match("blocks.?.hook_resid_post", "blocks.13.hook_resid_post"));
    CHECK(glob_match("*hook_resid_*", "blocks.0.hook_resid_mid"));
    CHECK_FALSE(glob_match("", "x"));
    CHECK(glob_match("", ""));
}

TEST_CASE("the hook-point list per architecture is frozen", "[unit]") {
    // GPT-2: embed, pos_embed, 15 block sites (no rot_q/rot_k, no pre_linear), ln_final, unembed.
    const auto gpt2 = all_hook_names(2, false, true, false);
    CHECK(gpt2.size() == 2 + 2 * 15 + 2);
    // Llama: embed, 18 block sites (with rot_q, rot_k, pre_linear), ln_final, unembed.
    const auto llama = all_hook_names(2, true, false, true);
    CHECK(llama.size() == 1 + 2 * 18 + 2);
    std::vector<std::string> l0;
    for (const auto& h : llama)
        if (h.layer == 0) l0.push_back(h.to_string());
    const std::vector<std::string> expected = {
        "blocks.0.hook_resid_pre",        "blocks.0.ln1.hook_normalized",
        "blocks.0.attn.hook_q",           "blocks.0.attn.hook_k",
        "blocks.0.attn.hook_v",           "blocks.0.attn.hook_rot_q",
        "blocks.0.attn.hook_rot_k",       "blocks.0.attn.hook_attn_scores",
        "blocks.0.attn.hook_pattern",     "blocks.0.attn.hook_z",
        "blocks.0.hook_attn_out",         "blocks.0.hook_resid_mid",
        "blocks.0.ln2.hook_normalized",   "blocks.0.mlp.hook_pre",
        "blocks.0.mlp.hook_pre_linear",   "blocks.0.mlp.hook_post",
        "blocks.0.hook_mlp_out",          "blocks.0.hook_resid_post"};
    CHECK(l0 == expected);
}
