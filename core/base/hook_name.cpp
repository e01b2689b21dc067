#include "core/base/hook_name.h"

#include <array>
#include <charconv>

#include "core/base/error.h"

namespace attnscope {
namespace {

struct SiteInfo {
    Site site;
    bool block;
    std::string_view suffix;
    std::string_view dims;
};

constexpr std::array<SiteInfo, kNumSites> kSites{{
    {Site::kEmbed, false, "hook_embed", "batch,pos,d_model"},
    {Site::kPosEmbed, false, "hook_pos_embed", "batch,pos,d_model"},
    {Site::kResidPre, true, "hook_resid_pre", "batch,pos,d_model"},
    {Site::kLn1Normalized, true, "ln1.hook_normalized", "batch,pos,d_model"},
    {Site::kQ, true, "attn.hook_q", "batch,pos,head,d_head"},
    {Site::kK, true, "attn.hook_k", "batch,pos,kv_head,d_head"},
    {Site::kV, true, "attn.hook_v", "batch,pos,kv_head,d_head"},
    {Site::kRotQ, true, "attn.hook_rot_q", "batch,pos,head,d_head"},
    {Site::kRotK, true, "attn.hook_rot_k", "batch,pos,kv_head,d_head"},
    {Site::kAttnScores, true, "attn.hook_attn_scores", "batch,head,query_pos,key_pos"},
    {Site::kPattern, true, "attn.hook_pattern", "batch,head,query_pos,key_pos"},
    {Site::kZ, true, "attn.hook_z", "batch,pos,head,d_head"},
    {Site::kAttnOut, true, "hook_attn_out", "batch,pos,d_model"},
    {Site::kResidMid, true, "hook_resid_mid", "batch,pos,d_model"},
    {Site::kLn2Normalized, true, "ln2.hook_normalized", "batch,pos,d_model"},
    {Site::kMlpPre, true, "mlp.hook_pre", "batch,pos,d_mlp"},
    {Site::kMlpPreLinear, true, "mlp.hook_pre_linear", "batch,pos,d_mlp"},
    {Site::kMlpPost, true, "mlp.hook_post", "batch,pos,d_mlp"},
    {Site::kMlpOut, true, "hook_mlp_out", "batch,pos,d_model"},
    {Site::kResidPost, true, "hook_resid_post", "batch,pos,d_model"},
    {Site::kLnFinalNormalized, false, "ln_final.hook_normalized", "batch,pos,d_model"},
    {Site::kUnembedOut, false, "unembed.hook_out", "batch,pos,d_vocab"},
}};

const SiteInfo& info(Site site) { return kSites[static_cast<std::size_t>(site)]; }

}  // namespace

bool is_block_site(Site site) { return info(site).block; }
std::string_view site_suffix(Site site) { return info(site).suffix; }
std::string_view site_dims(Site site) { return info(site).dims; }

std::string HookName::to_string() const {
    const SiteInfo& i = info(site);
    if (!i.block) return std::string(i.suffix);
    return "blocks." + std::to_string(layer) + "." + std::string(i.suffix);
}

std::optional<HookName> HookName::try_parse(std::string_view name) {
    constexpr std::string_view kBlocks = "blocks.";
    if (name.substr(0, kBlocks.size()) == kBlocks) {
        std::string_view rest = name.substr(kBlocks.size());
        const auto dot = rest.find('.');
        if (dot == std::string_view::npos || dot == 0) return std::nullopt;
        int layer = -1;
        const auto* first = rest.data();
        const auto* last = rest.data() + dot;
        auto [ptr, ec] = std::from_chars(first, last, layer);
        if (ec != std::errc() || ptr != last || layer < 0) return std::nullopt;
        // Reject leading zeros ("blocks.01.") so each hook has exactly one spelling.
        if (dot > 1 && rest[0] == '0') return std::nullopt;
        const std::string_view suffix = rest.substr(dot + 1);
        for (const SiteInfo& i : kSites)
            if (i.block && i.suffix == suffix) return HookName{layer, i.site};
        return std::nullopt;
    }
    for (const SiteInfo& i : kSites)
        if (!i.block && i.suffix == name) return HookName{-1, i.site};
    return std::nullopt;
}

HookName HookName::parse(std::string_view name) {
    if (auto h = try_parse(name)) return *h;
    std::string msg = "unknown hook point '" + std::string(name) +
                      "'; hook names are TransformerLens names: ";
    bool first = true;
    for (const SiteInfo& i : kSites) {
        if (!first) msg += ", ";
        first = false;
        msg += i.block ? "blocks.<layer>." + std::string(i.suffix) : std::string(i.suffix);
    }
    msg += " (run `attnscope info --model DIR` for a model's list)";
    throw HookError(msg);
}

bool glob_match(std::string_view pattern, std::string_view name) {
    // Iterative wildcard match with single backtrack point: O(|p|*|n|) worst case, no recursion.
    std::size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
    while (n < name.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
            ++p;
            ++n;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = n;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            n = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

std::vector<HookName> all_hook_names(int n_layers, bool rope, bool pos_embed, bool gated_mlp) {
    std::vector<HookName> out;
    out.push_back({-1, Site::kEmbed});
    if (pos_embed) out.push_back({-1, Site::kPosEmbed});
    for (int l = 0; l < n_layers; ++l) {
        for (const SiteInfo& i : kSites) {
            if (!i.block) continue;
            if (!rope && (i.site == Site::kRotQ || i.site == Site::kRotK)) continue;
            if (!gated_mlp && i.site == Site::kMlpPreLinear) continue;
            out.push_back({l, i.site});
        }
    }
    out.push_back({-1, Site::kLnFinalNormalized});
    out.push_back({-1, Site::kUnembedOut});
    return out;
}

}  // namespace attnscope
