// Hook-point names. A hook point is a named tensor inside the forward pass that probes can read
// or replace. Names are TransformerLens's, verbatim (e.g. "blocks.3.attn.hook_pattern"), because
// they are the public API: CLI options, HDF5 paths and tests all use the string form. In code a
// hook is the value HookName{layer, Site}. This header is torch-free; shapes are documented here
// and enforced by the runners.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnscope {

/// Where in the network a hook point sits. Shapes use the glossary of core/base/shapes.h.
enum class Site {
    kEmbed,              // hook_embed                      [batch, pos, d_model]
    kPosEmbed,           // hook_pos_embed                  [batch, pos, d_model]  (GPT-2 only)
    kResidPre,           // blocks.L.hook_resid_pre         [batch, pos, d_model]
    kLn1Normalized,      // blocks.L.ln1.hook_normalized    [batch, pos, d_model]
    kQ,                  // blocks.L.attn.hook_q            [batch, pos, n_heads, d_head]
    kK,                  // blocks.L.attn.hook_k            [batch, pos, n_kv_heads, d_head]
    kV,                  // blocks.L.attn.hook_v            [batch, pos, n_kv_heads, d_head]
    kRotQ,               // blocks.L.attn.hook_rot_q        [batch, pos, n_heads, d_head] (RoPE)
    kRotK,               // blocks.L.attn.hook_rot_k        [batch, pos, n_kv_heads, d_head]
    kAttnScores,         // blocks.L.attn.hook_attn_scores  [batch, head, query_pos, key_pos]
    kPattern,            // blocks.L.attn.hook_pattern      [batch, head, query_pos, key_pos]
    kZ,                  // blocks.L.attn.hook_z            [batch, pos, n_heads, d_head]
    kAttnOut,            // blocks.L.hook_attn_out          [batch, pos, d_model]
    kResidMid,           // blocks.L.hook_resid_mid         [batch, pos, d_model]
    kLn2Normalized,      // blocks.L.ln2.hook_normalized    [batch, pos, d_model]
    kMlpPre,             // blocks.L.mlp.hook_pre           [batch, pos, d_mlp] (gate for SwiGLU)
    kMlpPreLinear,       // blocks.L.mlp.hook_pre_linear    [batch, pos, d_mlp] (SwiGLU up only)
    kMlpPost,            // blocks.L.mlp.hook_post          [batch, pos, d_mlp]
    kMlpOut,             // blocks.L.hook_mlp_out           [batch, pos, d_model]
    kResidPost,          // blocks.L.hook_resid_post        [batch, pos, d_model]
    kLnFinalNormalized,  // ln_final.hook_normalized        [batch, pos, d_model]
    kUnembedOut,         // unembed.hook_out                [batch, pos, d_vocab]
};

inline constexpr int kNumSites = static_cast<int>(Site::kUnembedOut) + 1;

/// True for sites inside a block ("blocks.L....").
bool is_block_site(Site site);
/// The name of a site without the "blocks.L." prefix, e.g. "attn.hook_pattern".
std::string_view site_suffix(Site site);
/// Axis names of the tensor at `site`, comma separated, e.g. "batch,head,query_pos,key_pos".
std::string_view site_dims(Site site);

/// A hook point: a site and, for block sites, the zero-based layer (-1 otherwise).
struct HookName {
    int layer = -1;
    Site site = Site::kEmbed;

    /// TransformerLens string, e.g. "blocks.3.attn.hook_pattern" or "hook_embed".
    std::string to_string() const;
    /// Parses the string form. Throws HookError naming the string and listing the valid forms.
    static HookName parse(std::string_view name);
    /// As parse, but nullopt instead of throwing.
    static std::optional<HookName> try_parse(std::string_view name);

    friend bool operator==(const HookName& a, const HookName& b) {
        return a.layer == b.layer && a.site == b.site;
    }
    friend bool operator!=(const HookName& a, const HookName& b) { return !(a == b); }
};

/// Glob match of a hook-name string: '*' matches any run of characters (also '.'), '?' one
/// character. "blocks.*.attn.hook_pattern" matches every layer's pattern.
bool glob_match(std::string_view pattern, std::string_view name);

/// All hook points of a model with `n_layers` layers, in forward order. `rope` adds the
/// rot_q/rot_k points, `pos_embed` the learned-position point, `gated_mlp` mlp.hook_pre_linear.
std::vector<HookName> all_hook_names(int n_layers, bool rope, bool pos_embed, bool gated_mlp);

}  // namespace attnscope
