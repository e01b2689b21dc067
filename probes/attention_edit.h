// The arithmetic of the attention interventions, as pure tensor functions (no hooks, no state),
// so each formula of ../shared/specs/methods.md is testable against the spec's test vectors on
// its own. Shapes: patterns are [batch, head, query, key] float32 (the runner's materialised
// path hands hooks float32 whatever the compute dtype); masks are bool. Every function leaves
// rows it does not select bit-identical, and keeps selected rows summing to what they summed to.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace attnscope::model {
struct ForwardContext;
}

namespace attnscope::probes::edit {

/// Keys each query may see in the forward described by `ctx`: [batch, 1, q, K] bool, causal in
/// cache-slot coordinates, padding keys excluded, the sliding window applied when `windowed`.
/// Padding query rows see nothing.
at::Tensor visible_keys(const model::ForwardContext& ctx, bool windowed);
/// Real (non-padding) query rows of the forward: [batch, 1, q, 1] bool.
at::Tensor real_queries(const model::ForwardContext& ctx);

// --- ACT (spec §2) ---------------------------------------------------------------------------

/// Sink score of every key (spec §1.1): column sum over the queries that see it divided by their
/// number; 0 for keys no query sees. pattern [b, H, q, K], visible [b, 1, q, K] -> [b, H, K].
at::Tensor sink_scores(const at::Tensor& pattern, const at::Tensor& visible);

/// ACT's calibrated sink set (spec §2.2 steps 2-3): keys with score > threshold, minus the
/// lowest-position detected key. scores [b, H, K]; threshold [b] (per sequence, e.g. alpha/N) or
/// a 0-dim tensor; `last_real` [b] int64 position of each sequence's last real token, excluded
/// from detection when `exclude_last` (spec §2.2 quirk). Returns [b, H, K] bool.
at::Tensor act_sinks(const at::Tensor& scores, const at::Tensor& threshold, const at::Tensor& key_real,
                     const at::Tensor& last_real, bool exclude_last);

/// ACT's row calibration (spec §2.2 step 4, §2.7 for decode rows): on each selected row, keep
/// beta of the attention on `sinks` and give the rest to the other keys in proportion to their
/// attention. A row whose mass is all on sinks is left unchanged (nothing to redistribute to).
/// pattern [b, H, q, K]; sinks [b, H, K] bool; rows [b, 1, q, 1] bool.
at::Tensor act_calibrate(const at::Tensor& pattern, const at::Tensor& sinks, double beta,
                         const at::Tensor& rows);

// --- VAR (spec §3) ---------------------------------------------------------------------------

/// phi(x) = max over `dims` of |x[d] / RMS(x)|, RMS = sqrt(mean x^2 + 1e-6), in float32.
/// x [..., D] -> [...]. Throws ConfigError when a dim is outside [0, D).
at::Tensor var_phi(const at::Tensor& x, const std::vector<std::int64_t>& dims);

struct VarParams {
    double moved = 0.4;    ///< f: fraction of sink attention moved
    double vis_min = 0.2;  ///< minimum attention mass on the target set
    double rho = 0.5;      ///< minimum non-sink share of the target-set mass (paper semantics)
};

/// VAR's per-row selection and redistribution (spec §3.3-3.4). pattern [b, H, q, K]; sinks
/// [b, K] bool (all sinks of the layer, target and text); target [b, K] bool (the "image"
/// tokens); rows [b, 1, q, 1] candidate query rows. A sequence with no sink inside the target
/// set is left unchanged. `selected` (optional) receives [b, H, q] bool.
at::Tensor var_redistribute(const at::Tensor& pattern, const at::Tensor& sinks, const at::Tensor& target,
                            const at::Tensor& rows, const VarParams& p, at::Tensor* selected = nullptr);

// --- SoftPAG (spec §6), ablation ------------------------------------------------------------

/// A_u = (1 - u) A + u I on selected rows, I the identity in cache-slot coordinates (query row i
/// is slot past + i). pattern [b, H, q, K]; rows [b, 1, q, 1].
at::Tensor softpag(const at::Tensor& pattern, std::int64_t past, double u, const at::Tensor& rows);

/// Uniform attention over the visible keys: visible [b, 1, q, K] -> [b, 1, q, K] float32 rows
/// (all-zero rows stay zero).
at::Tensor uniform_rows(const at::Tensor& visible);

}  // namespace attnscope::probes::edit
