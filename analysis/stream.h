// Streaming accumulators: attention metrics from one layer's pattern handed over in query chunks
// [head, q_chunk, key_pos] with their absolute query offset, so that long contexts never hold
// [N, N] (memory O(head · q_chunk · key_pos) per call plus O(head · pos) state) and decode steps
// (single rows) extend the same state. Chunks may come in any size and any order; each query row
// must come exactly once. Results equal the whole-tensor functions of sinks.h, entropy.h and
// preplan.h up to summation order (tests: within 1e-6).
//
// Why per-head WAAD rows and FAI sums: head classes need d of every sampled head before Ā_loc /
// Ā_glob exist. WAAD and FAI are linear in A and Ā is a plain mean over heads, so keeping them
// per head (O(head · pos)) and averaging over the groups after classification is exact; no second
// pass over the pattern is needed.
//
// Not thread-safe. add() does no host synchronisation (GPU-friendly); result() copies to host
// only what it returns as std:: values.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "analysis/entropy.h"
#include "analysis/mask.h"
#include "analysis/preplan.h"
#include "analysis/sinks.h"
#include "analysis/summary.h"
#include "core/base/hook_name.h"

namespace attnscope::analysis {

/// What a LayerAccumulator computes (each costs one masked multiply-reduce per chunk).
struct LayerStatsOptions {
    bool sinks = true;     ///< column sums -> sink scores α (methods.md §1.1)
    bool entropy = true;   ///< per-row entropy (§1.5)
    bool distance = true;  ///< per-head mean backward distance d over R (§5.2)
    bool preplan = false;  ///< per-head WAAD rows and FAI column sums (§5.3)
    /// Per-query sink mass for this set S (§1.3); empty = off. Slots not yet seen count 0.
    std::vector<std::int64_t> sink_set;
    std::int64_t window = 10;                     ///< WAAD W
    FaiHorizon horizon = FaiHorizon::analysis();  ///< FAI [H_lo, H_hi]
};

/// Results of one layer of one sequence, float64 on the chunks' device. Slots never added as a
/// query row are NaN in row statistics and simply absent from column statistics.
struct LayerStats {
    std::int64_t n_pos = 0;      ///< slots covered (largest key_pos seen)
    std::int64_t rows_seen = 0;  ///< query rows added
    std::int64_t window = 10;    ///< W and horizon used (checked by preplan_from_stats)
    FaiHorizon horizon;
    at::Tensor sink_scores;    ///< [head, pos] α_k; NaN where no query saw the key
    at::Tensor column_sums;    ///< [head, pos] Σ_t A[t][k] (raw, e.g. for ACT's running score)
    at::Tensor column_counts;  ///< [pos] queries that saw the key
    RowEntropy entropy;        ///< rows [head, pos], n_visible [pos] (0 for unseen rows)
    at::Tensor mean_entropy;       ///< [head] mean normalised entropy over R (NaN skipped)
    at::Tensor mean_entropy_nats;  ///< [head] mean entropy over R, nats
    at::Tensor sink_mass;      ///< [head, pos] Σ_{j∈S} A[t][j]
    at::Tensor distance;       ///< [head] d over R, tokens; NaN when no row of R was seen
    at::Tensor waad;           ///< [head, pos] per-head WAAD_t (tokens), NaN outside R
    at::Tensor fai_sums;       ///< [head, pos] Σ_{t∈T(s)} A[t][s]
    at::Tensor fai_counts;     ///< [pos] |T(s)|
    /// Per-head FAI_s = fai_sums / fai_counts, NaN where T(s) is empty. [head, pos].
    at::Tensor fai() const;
};

/// Accumulates one layer of one sequence.
class LayerAccumulator {
public:
    /// `mask`: as analysis/mask.h; its `valid` may be shorter than the sequence (later slots are
    /// real tokens, as in decoding). Throws ConfigError (n_heads < 1, bad mask or options).
    LayerAccumulator(std::int64_t n_heads, LayerStatsOptions options = {}, TokenMask mask = {});

    /// Adds query rows q_offset … q_offset + q_chunk − 1. `chunk` [head, q_chunk, key_pos], any
    /// floating dtype, key_pos >= q_offset + q_chunk (keys beyond a row's own slot are ignored,
    /// so key_pos may be the full length or just q_offset + q_chunk). Every chunk must be on the
    /// first chunk's device. Throws ShapeError (rank, heads, key_pos) and ConfigError (negative
    /// offset, a row added twice, another device).
    void add(const at::Tensor& chunk, std::int64_t q_offset);
    /// A whole layer, or the newest rows of a KV-cached step: `pattern` [head, query_pos,
    /// key_pos] whose rows are the last query_pos slots (q_offset = key_pos − query_pos).
    void add(const at::Tensor& pattern);

    std::int64_t n_heads() const { return n_heads_; }
    std::int64_t n_pos() const { return n_pos_; }
    std::int64_t rows_seen() const { return rows_seen_; }
    /// True when every slot below n_pos() has been added as a query row.
    bool complete() const { return rows_seen_ == n_pos_ && n_pos_ > 0; }
    const LayerStatsOptions& options() const { return options_; }
    const TokenMask& mask() const { return mask_; }
    /// Current results (may be called at any time, e.g. after prefill and again after decode).
    /// Throws ConfigError when nothing was added.
    LayerStats result() const;

    /// Chunks larger than this many elements (head · q_chunk · key_pos) are processed in row
    /// pieces, bounding temporary memory to a few times this (float64 reductions).
    static constexpr std::int64_t kPieceElements = std::int64_t{1} << 22;

private:
    void grow(std::int64_t need);
    void accumulate(const at::Tensor& piece, std::int64_t q0, const at::Tensor& valid);

    std::int64_t n_heads_;
    LayerStatsOptions options_;
    TokenMask mask_;
    std::vector<std::int64_t> sinks_;
    std::optional<at::Device> device_;
    std::int64_t cap_ = 0, n_pos_ = 0, rows_seen_ = 0;
    std::vector<char> seen_;
    at::Tensor col_sum_, col_cnt_;      // [head, cap], [cap]
    at::Tensor ent_, nvis_, mass_;      // [head, cap], [cap] int64, [head, cap]
    at::Tensor dist_sum_, dist_rows_;   // [head], [] (rows of R seen)
    at::Tensor waad_, fai_sum_, fai_cnt_;  // [head, cap], [head, cap], [cap]
};

/// Combines the per-head statistics of the sampled layers (each with options.preplan and
/// distance) into the preplan analysis: d -> head groups -> WAAD of Ā_loc, FAI of Ā_glob (as
/// means of per-head values) -> token roles. Same contract and result as preplan() on the
/// materialised patterns. `mask.valid` may be shorter than n_pos (later slots are real).
/// Throws ConfigError (missing statistics, W or horizon differing from params, groups) and
/// ShapeError (layers of different shapes).
PreplanResult preplan_from_stats(const std::vector<LayerStats>& layers, const TokenMask& mask = {},
                                 const PreplanParams& params = {},
                                 const std::optional<HeadGroups>& fixed_groups = std::nullopt);

/// What a SequenceAccumulator computes.
struct SequenceOptions {
    /// Statistics for every accumulated layer. For the preplan layers `preplan` and `distance`
    /// are switched on and W / horizon taken from preplan_params.
    LayerStatsOptions stats;
    /// Layers to accumulate; empty = all. Other layers are ignored by add().
    std::vector<std::int64_t> layers;
    /// Compute WAAD / FAI on the preplan layers.
    bool preplan = false;
    /// Sampled layers for head classes and WAAD / FAI; empty = middle_third_layers(n_layers).
    std::vector<std::int64_t> preplan_layers;
    PreplanParams preplan_params;
    /// ε and k of the sink flag. Here k counts real tokens (k = 0: first non-padding token).
    SinkParams sink;
};

/// All layers of one sequence.
class SequenceAccumulator {
public:
    /// Throws ConfigError (sizes, layer lists out of range, params).
    SequenceAccumulator(std::int64_t n_layers, std::int64_t n_heads, SequenceOptions options = {},
                        TokenMask mask = {});

    /// True if `layer` is accumulated.
    bool wants(std::int64_t layer) const;
    /// LayerAccumulator::add for `layer`; ignored when !wants(layer). ConfigError when layer is
    /// outside [0, n_layers).
    void add(std::int64_t layer, const at::Tensor& chunk, std::int64_t q_offset);
    void add(std::int64_t layer, const at::Tensor& pattern);

    std::int64_t n_layers() const { return n_layers_; }
    std::int64_t n_heads() const { return n_heads_; }
    /// Accumulated layers, increasing.
    const std::vector<std::int64_t>& layers() const { return layers_; }
    /// The layers used for preplan (and head classes).
    const std::vector<std::int64_t>& preplan_layers() const { return preplan_layers_; }
    const LayerAccumulator& layer(std::int64_t layer) const;
    /// Slot of the k-th real token (k = options.sink.k); ConfigError if there is none.
    std::int64_t sink_slot() const;
    /// Sink scores of the accumulated layers, float64 [layer, head, pos] (layers() order).
    at::Tensor sink_scores() const;
    /// Sink_k^ε over the accumulated layers (all layers for the paper's number).
    SinkRatio sink_ratio() const;
    /// Preplan analysis over the preplan layers (options.preplan required).
    PreplanResult preplan(const std::optional<HeadGroups>& fixed_groups = std::nullopt) const;
    /// One row per accumulated (layer, head). Classes from classify_heads over the preplan
    /// layers' d (or `fixed_groups`, flat over [preplan layer, head]).
    std::vector<HeadSummary> summary(
        const std::optional<HeadGroups>& fixed_groups = std::nullopt) const;

private:
    std::int64_t n_layers_, n_heads_;
    SequenceOptions options_;
    TokenMask mask_;
    std::vector<std::int64_t> layers_, preplan_layers_;
    std::vector<std::optional<LayerAccumulator>> acc_;  // indexed by layer
};

/// Turns the model's attention_mask [batch, pos] (1 = real, 0 = padding) into one TokenMask per
/// sequence with R = [rows_begin, rows_end). Throws ShapeError (rank).
std::vector<TokenMask> masks_from_attention_mask(const at::Tensor& attention_mask,
                                                 std::int64_t rows_begin = 0,
                                                 std::int64_t rows_end = kUnbounded);

/// One SequenceAccumulator per batch element, fed straight from a hook observer:
///   auto h = registry.add_observer("blocks.*.attn.hook_pattern",
///       [&acc](const HookName& n, const at::Tensor& x) { acc.observe(n, x); });
class BatchAccumulator {
public:
    /// One sequence per mask (masks.size() = batch). Throws ConfigError (empty batch, ...).
    BatchAccumulator(std::int64_t n_layers, std::int64_t n_heads, std::vector<TokenMask> masks,
                     SequenceOptions options = {});

    /// Observer entry point: `pattern` [batch, head, query_pos, key_pos] of hook.layer whose
    /// rows are the last query_pos slots (prefill: all; KV-cached decode: the new ones).
    /// Throws HookError for a site other than hook_pattern, ShapeError for a wrong rank / batch.
    void observe(const HookName& hook, const at::Tensor& pattern);
    /// Explicit chunk of every sequence: [batch, head, q_chunk, key_pos] at q_offset.
    void add(std::int64_t layer, const at::Tensor& chunk, std::int64_t q_offset);

    std::int64_t batch_size() const { return static_cast<std::int64_t>(seqs_.size()); }
    const SequenceAccumulator& sequence(std::int64_t b) const;

private:
    void check_batch(const at::Tensor& x, const char* fn) const;
    std::vector<SequenceAccumulator> seqs_;
};

}  // namespace attnscope::analysis
