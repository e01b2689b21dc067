// Preplan-and-anchor metrics (arXiv 2510.13554; methods.md §5): mean backward distance per head,
// local/global head classes, Windowed Average Attention Distance (WAAD), Future Attention
// Influence (FAI), token roles (preplan set T_loc, anchor set T_glob, locally dominated anchors,
// peaks) and the advantage weights γ of the three credit schemes. Pure functions on one
// sequence (prompt ⊕ response); the streaming path that never materialises [N, N] is in
// analysis/stream.h and produces the same numbers. Positions are slots (analysis/mask.h); R is
// the mask's rows range (the response).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "analysis/mask.h"

namespace attnscope::analysis {

/// FAI horizon [H_lo, H_hi] in tokens (methods.md §5.3, §7 row 14).
struct FaiHorizon {
    std::int64_t lo = 1;
    std::int64_t hi = kUnbounded;
    /// Analysis mode: from the next token to the end of the response (H_lo = 1, H_hi = ∞).
    static FaiHorizon analysis() { return {1, kUnbounded}; }
    /// RL experiments of the paper: H_lo = 10, H_hi = 100.
    static FaiHorizon rl() { return {10, 100}; }
};

/// Head class by mean backward distance (methods.md §5.2).
enum class HeadClass : std::int8_t {
    kUnranked = -1,  ///< not classified (layer not sampled, or d undefined)
    kMiddle = 0,     ///< ranked, in neither group
    kLocal = 1,      ///< lowest-d fraction: H_loc
    kGlobal = 2,     ///< highest-d fraction: H_glob
};

/// "local", "global", "middle", "unranked".
const char* to_string(HeadClass c);

/// Where the head groups come from (methods.md §5.2).
enum class Grouping {
    kPerSequence,  ///< classify on the analysed sequence's own d (paper)
    kFixed,        ///< caller-supplied groups, e.g. from d averaged over a calibration set
};

/// Credit-assignment scheme of the advantage weights (methods.md §5.5).
enum class CreditScheme { kLocalChunk, kGlobalAnchor, kCoupled };

/// All WAAD / FAI parameters with the spec's defaults (methods.md §5.6). NaN thresholds mean
/// "use the data-derived default".
struct PreplanParams {
    std::int64_t window = 10;                  ///< W, clip window of WAAD (tokens)
    FaiHorizon horizon = FaiHorizon::analysis();
    double local_fraction = 0.3;               ///< bottom share of heads by d -> H_loc
    double global_fraction = 0.3;              ///< top share of heads by d -> H_glob
    Grouping grouping = Grouping::kPerSequence;
    double q = 0.4;                            ///< TopQ fraction for T_loc and T_glob
    double tau_waad = std::numeric_limits<double>::quiet_NaN();   ///< NaN: median WAAD over R
    double tau_delta = std::numeric_limits<double>::quiet_NaN();  ///< NaN: smallest Δ in T_loc
    std::int64_t k = 1;                        ///< look-back for dominated anchors, 1–3
    CreditScheme scheme = CreditScheme::kCoupled;
    double gamma_amp = 1.5;                    ///< γ_amp
    double alpha = 0.5;                        ///< coupled split between anchor and introducer
    double peak_percentile = 60.0;             ///< peaks must reach this percentile of y over R
};

/// Throws ConfigError naming the first invalid field.
void validate(const PreplanParams& p);

/// The paper's layer sample: `count` evenly spaced layers in [⌊L/3⌋, ⌊2L/3⌋], rounded to the
/// nearest integer with halves upward, duplicates removed (L = 36 -> 12, 15, 18, 21, 24).
/// Throws ConfigError for n_layers < 1 or count < 1.
std::vector<std::int64_t> middle_third_layers(std::int64_t n_layers, std::int64_t count = 5);

/// Mean backward distance d = (1/|R|) Σ_{t∈R} Σ_{s≤t} A[t][s]·(t − s), tokens (methods.md §5.2).
/// `pattern` [head, pos, pos] (square: prompt ⊕ response in one pass) or one map [pos, pos].
/// Returns float64 [head] (or a 0-dim tensor); NaN when R is empty.
/// Throws ShapeError (rank, non-square, mask length) and ConfigError (mask).
at::Tensor backward_distance(const at::Tensor& pattern, const TokenMask& mask = {});

/// Local / global head groups over a set of heads.
struct HeadGroups {
    /// Flat indices (row-major over the shape of the distance tensor, e.g. [layer, head]) of
    /// H_loc, in increasing d.
    std::vector<std::int64_t> local;
    /// Flat indices of H_glob, in decreasing d.
    std::vector<std::int64_t> global;
    /// int8 HeadClass per head, same shape as the distance tensor (CPU).
    at::Tensor classes;
};

/// Sorts heads by d (ties: lower flat index first) and takes the lowest ceil(local_fraction·n)
/// as H_loc and the highest ceil(global_fraction·n) as H_glob, n = heads with finite d (NaN
/// heads are kUnranked). When the two would overlap (tiny n) the global group gets only the
/// heads left over. `distance` any shape, e.g. [layer, head]. Throws ConfigError (fractions
/// outside [0, 1]).
HeadGroups classify_heads(const at::Tensor& distance, const PreplanParams& params = {});

/// Plain mean of the member heads: Ā = mean_{h∈members} A^h (methods.md §5.2). `patterns`
/// [head, query_pos, key_pos] (heads of all sampled layers stacked); returns float64
/// [query_pos, key_pos]. Throws ShapeError (rank) and ConfigError (empty or out-of-range member).
at::Tensor group_mean(const at::Tensor& patterns, const std::vector<std::int64_t>& members);

/// WAAD_t = Σ_{s≤t} A[t][s]·min(t − s, W) for t ∈ R, in tokens, range [0, W] (methods.md §5.3).
/// `pattern` [pos, pos] (Ā_loc) -> float64 [pos], or [head, pos, pos] -> [head, pos] (per-head
/// WAAD; the mean over H_loc equals WAAD of Ā_loc). NaN outside R.
/// Throws ShapeError and ConfigError (W < 1, mask).
at::Tensor waad(const at::Tensor& pattern, const TokenMask& mask = {}, std::int64_t window = 10);

/// FAI_s = (1/|T(s)|) Σ_{t∈T(s)} A[t][s], T(s) = {t ∈ R : s + H_lo <= t <= min(N−1, s + H_hi)}
/// (methods.md §5.3). `pattern` [pos, pos] (Ā_glob) -> float64 [pos], or [head, pos, pos] ->
/// [head, pos]. Defined for every real s with non-empty T(s) (also prompt slots, which rankings
/// skip); NaN otherwise. Throws ShapeError and ConfigError (H_lo < 0, H_hi < H_lo, mask).
at::Tensor fai(const at::Tensor& pattern, const TokenMask& mask = {},
               FaiHorizon horizon = FaiHorizon::analysis());

/// Δ_t = |WAAD_t − WAAD_{t+1}| for t, t+1 ∈ R (methods.md §5.4); NaN elsewhere. `waad_t`
/// float64 [pos]. Throws ShapeError (rank) and ConfigError (mask).
at::Tensor waad_delta(const at::Tensor& waad_t, const TokenMask& mask = {});

/// TopQ: the ceil(q·n) slots with the largest values, n = slots in R with a finite value;
/// ties -> lower slot. Returned in ranking order (largest first). `values` [pos].
/// Throws ShapeError (rank) and ConfigError (q outside (0, 1], mask).
std::vector<std::int64_t> top_q(const at::Tensor& values, double q, const TokenMask& mask = {});

/// Toolkit peak convention (methods.md §5.4): t ∈ R is a peak of y iff t−1, t+1 ∈ R have finite
/// values, y_t > y_{t−1}, y_t >= y_{t+1} and y_t >= the `percentile`-th percentile of the finite
/// y over R (linear interpolation, as NumPy). Increasing slots.
std::vector<std::int64_t> find_peaks(const at::Tensor& y, const TokenMask& mask = {},
                                     double percentile = 60.0);

/// Fraction of FAI peaks t with a WAAD peak at t or t−1 ("FAI peak follows or coincides with
/// a WAAD peak"); NaN without FAI peaks.
double peak_follow_rate(const std::vector<std::int64_t>& fai_peaks,
                        const std::vector<std::int64_t>& waad_peaks);

/// Locally dominated anchors (methods.md §5.4).
struct DominatedAnchors {
    std::vector<std::int64_t> anchors;  ///< D, increasing slots
    std::vector<std::int64_t> intro;    ///< intro(t) for each anchor (parallel to anchors)
    double tau_waad = 0;                ///< thresholds actually used
    double tau_delta = 0;
};

/// D = {t ∈ T_glob : WAAD_t <= τ_waad and max_{u ∈ {t−k..t−1} ∩ R, Δ_u defined} Δ_u >= τ_Δ};
/// intro(t) = the u attaining the max (ties -> closest to t). NaN τ in `params` use the
/// defaults: τ_waad = median WAAD over R, τ_Δ = smallest Δ in T_loc.
/// `waad_t`, `delta` float64 [pos]. Throws ShapeError and ConfigError (k < 1).
DominatedAnchors dominated_anchors(const at::Tensor& waad_t, const at::Tensor& delta,
                                   const std::vector<std::int64_t>& t_glob,
                                   const std::vector<std::int64_t>& t_loc,
                                   const TokenMask& mask = {}, const PreplanParams& params = {});

/// Advantage weights γ_t of params.scheme (methods.md §5.5): float64 [n_pos] (CPU), 1 where no
/// set applies. Indicator terms add when a token is in several sets.
at::Tensor advantage_weights(std::int64_t n_pos, const std::vector<std::int64_t>& t_loc,
                             const std::vector<std::int64_t>& t_glob, const DominatedAnchors& d,
                             const PreplanParams& params = {});

/// Everything derived from the WAAD and FAI series of one sequence.
struct TokenRoles {
    at::Tensor waad;    ///< float64 [pos] WAAD_t (tokens), NaN outside R
    at::Tensor delta;   ///< float64 [pos] Δ_t, NaN where undefined
    at::Tensor fai;     ///< float64 [pos] FAI_s (attention weight), NaN where undefined
    std::vector<std::int64_t> t_loc;   ///< TopQ(Δ, q), ranking order
    std::vector<std::int64_t> t_glob;  ///< TopQ(FAI, q), ranking order
    DominatedAnchors dominated;
    at::Tensor gamma;   ///< float64 [pos] γ_t of params.scheme
    std::vector<std::int64_t> waad_peaks, fai_peaks;
};

/// Token roles from WAAD_t and FAI_s (both float64 [pos], e.g. from waad(Ā_loc), fai(Ā_glob)).
/// Throws ShapeError (ranks, lengths) and ConfigError (params, mask).
TokenRoles token_roles(const at::Tensor& waad_t, const at::Tensor& fai_s,
                       const TokenMask& mask = {}, const PreplanParams& params = {});

/// Full analysis of one sequence.
struct PreplanResult {
    at::Tensor distance;  ///< float64 [layer, head] d of the sampled layers (tokens)
    HeadGroups groups;    ///< flat indices into distance
    TokenRoles roles;
};

/// End to end from materialised patterns: `layer_patterns` one [head, pos, pos] per sampled
/// layer (same shape). Forms Ā_loc / Ā_glob explicitly. With params.grouping = kFixed the
/// groups come from `fixed_groups` (required), otherwise from this sequence's d (then
/// `fixed_groups` must be empty). Throws ShapeError and ConfigError (params, empty group).
PreplanResult preplan(const std::vector<at::Tensor>& layer_patterns, const TokenMask& mask = {},
                      const PreplanParams& params = {},
                      const std::optional<HeadGroups>& fixed_groups = std::nullopt);

}  // namespace attnscope::analysis
