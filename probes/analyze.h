// Analyze: attention metrics of prompts (methods.md §1 and §5) from one of two sources that feed
// the same streaming accumulators (analysis/stream.h) through the same code:
//   - live: a model forward per prompt, with observers on blocks.{l}.attn.hook_pattern of the
//     needed layers only (and blocks.{l}.hook_resid_post for massive activations), so memory
//     stays O(one layer's pattern);
//   - stored: a capture file (core/store), each prompt's maps read per layer as float32.
// Results go to an HDF5 run (per-prompt metrics and dataset aggregates), a CSV of per-head
// summaries, a JSON object, or a human-readable table. This is the library behind
// `attnscope analyze`; it holds no argv parsing. Docs: docs/analyze.md.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "analysis/aggregate.h"
#include "analysis/massive.h"
#include "analysis/preplan.h"
#include "analysis/sinks.h"
#include "analysis/summary.h"
#include "core/format/prompts.h"

namespace attnscope::model {
class Model;
}
namespace attnscope::store {
class Reader;
class Writer;
}  // namespace attnscope::store

namespace attnscope::probes {

/// What --metrics selects. waad, fai and roles share one preplan pass (§5).
enum class AnalyzeMetric { kSink, kEntropy, kDistance, kWaad, kFai, kRoles, kMassive };

/// "sink", "entropy", "distance", "waad", "fai", "roles", "massive".
const char* to_string(AnalyzeMetric m);
/// Writes to_string(m).
std::ostream& operator<<(std::ostream& os, AnalyzeMetric m);
/// Every metric name, in the order above.
const std::vector<std::string>& analyze_metric_names();
/// Parses a comma-separated list of metric names ("all" = every metric). Throws ConfigError
/// naming the unknown name and listing the valid ones (the CLI turns it into a usage error).
std::set<AnalyzeMetric> parse_metrics(const std::string& list);
/// Parses --horizon: "analysis" (1, inf), "rl" (10, 100) or "lo,hi" with hi a number or "inf".
/// Throws ConfigError.
analysis::FaiHorizon parse_horizon(const std::string& text);
/// "lo,hi" with "inf" for an unbounded hi.
std::string horizon_string(const analysis::FaiHorizon& h);

struct AnalyzeOptions {
    /// Metrics to compute; empty = all the source supports (massive only in live runs).
    std::set<AnalyzeMetric> metrics;
    /// Analysed layers (rows of every [layer, ...] output); empty = all. The preplan metrics use
    /// their own layers (five evenly spaced in the middle third, §5.1) whatever this says.
    std::vector<int> layers;
    std::int64_t window = 10;                                      ///< WAAD clip window W
    analysis::FaiHorizon horizon = analysis::FaiHorizon::analysis();  ///< FAI [H_lo, H_hi]
    double epsilon = 0.3;                                          ///< sink threshold ε
    /// Sink protocol length T: 0 = the whole prompt; T > 0 = the first T tokens (Gu et al.'s
    /// truncation, computed from rows/keys [0, T) of the same causal forward). Prompts shorter
    /// than T keep their own length and are left out of the dataset sink aggregates.
    std::int64_t sink_T = 0;
    /// Query rows of interest R = [rows_begin, T) for the per-head means (entropy, distance) and
    /// WAAD / FAI / roles. Default 1: the first token (BOS, the sink) is a key like any other but
    /// not a row of interest (its row attends only to itself), so it never ranks as an anchor.
    std::int64_t rows_begin = 1;
    /// Stored prompts with generated tokens: R = the generated rows [n_prompt_tokens, T) (the
    /// paper's response rows). Prompts without generated tokens keep rows_begin.
    bool response_only = false;
    /// Sliding-window attention (Mistral-style, key s visible from t iff t - s < window), so
    /// that visible-key counts (α denominators, ln n_i) are right past the window. run_analyze
    /// sets it from the model's config.json when every layer uses the window.
    std::int64_t attention_window = analysis::kUnbounded;
    analysis::MassiveParams massive;                               ///< |x| > 100, >= 1000 × median
    std::int64_t hist_bins = 20;                                   ///< bins of the Ĥ histograms
    bool add_special_tokens = true;                                ///< live: tokenizer adds BOS
};

/// One massive activation with its layer (blocks.{layer}.hook_resid_post).
struct LayerMassive {
    std::int64_t layer = 0;
    analysis::MassiveActivation act;
};

/// Everything computed for one prompt. Tensors are float64 on the CPU; [layer, ...] axes follow
/// `layers`. Fields of metrics that were not requested stay undefined / empty.
struct PromptAnalysis {
    std::int64_t id = 0;
    std::string text, source;
    std::vector<std::int32_t> tokens;      ///< the analysed tokens (n_tokens of them)
    std::vector<std::string> token_str;    ///< display strings of `tokens`
    std::int64_t n_tokens = 0;
    std::int64_t rows_begin = 0;           ///< R = [rows_begin, n_tokens)
    std::vector<std::int64_t> layers;      ///< analysed layers
    /// One row per (layer in `layers`, head): analysis/summary.h. With sink_T > 0, alpha and
    /// sink are those of the first sink_T tokens.
    std::vector<analysis::HeadSummary> heads;

    // sink (§1.1, §1.2)
    std::int64_t sink_T = 0;               ///< tokens the sink metric used (min(T, n) or n)
    bool sink_counted = false;             ///< in the dataset sink aggregates (n >= T)
    at::Tensor sink_scores;                ///< [layer, head, key_pos < sink_T] α_k
    at::Tensor alpha0;                     ///< [layer, head] α_0
    at::Tensor sink_flags;                 ///< bool [layer, head] α_0 > ε
    double sink_percent = 0;               ///< Sink_1^ε of this prompt over `layers`, percent

    // entropy (§1.5)
    at::Tensor entropy_nats;               ///< [layer, head, query_pos] H_i, nats
    at::Tensor entropy_norm;               ///< [layer, head, query_pos] Ĥ_i (NaN at row 0)
    at::Tensor entropy_norm_mean;          ///< [layer, head] mean Ĥ_i over rows
    at::Tensor entropy_nats_mean;          ///< [layer, head] mean H_i over rows, nats

    // distance (§5.2)
    at::Tensor distance;                   ///< [layer, head] d, tokens

    // waad / fai / roles (§5.2–5.4)
    std::vector<std::int64_t> preplan_layers;
    std::optional<analysis::PreplanResult> preplan;

    // massive (§1.4), live only
    std::vector<LayerMassive> massive;

    /// Drops the [layer, head, pos] tensors (entropy rows, sink scores) and γ, keeping what the
    /// CSV, JSON and table need (O(layer · head + pos) per prompt).
    void compact();
};

/// Dataset aggregates over the analysed prompts.
struct DatasetAnalysis {
    std::int64_t n_prompts = 0;
    std::int64_t n_tokens = 0;
    std::int64_t n_heads = 0;
    std::vector<std::int64_t> layers;
    std::vector<std::int64_t> preplan_layers;
    // sink
    std::int64_t sink_T = 0;
    double epsilon = 0.3;
    std::int64_t n_sink_short = 0;                 ///< prompts shorter than sink_T (left out)
    analysis::SinkRatioAccumulator sink_ratio;     ///< over counted prompts and `layers`
    analysis::TensorRunningStats alpha0;           ///< [layer, head] α_0 over counted prompts
    // entropy
    analysis::TensorRunningStats entropy_norm;     ///< [layer, head] per-prompt mean Ĥ
    analysis::TensorRunningStats entropy_nats;     ///< [layer, head] per-prompt mean H, nats
    std::vector<analysis::Histogram> entropy_hist; ///< per layer: per-query Ĥ_i, [0, 1]
    // distance
    analysis::TensorRunningStats distance;         ///< [layer, head]
    // roles
    at::Tensor local_count, global_count;          ///< float64 [preplan layer, head] prompts
    std::map<std::string, std::int64_t> preplan_token_counts, anchor_token_counts;
    // massive
    analysis::SinkDimensionCounter sink_dims;
    std::int64_t n_massive = 0;
};

/// Per-dataset analysis state: which layers to observe, the per-prompt accumulators and the
/// aggregates. Use begin_prompt, add_pattern for every layer of pattern_layers() (and add_resid
/// for resid_layers()), end_prompt; or the helpers analyze_live / analyze_stored.
class Analyzer {
public:
    /// `live`: the source can provide residual streams (massive). Throws ConfigError for layers
    /// outside the model, explicit massive without `live`, W < 1, sink_T < 0, bad horizon.
    Analyzer(std::int64_t n_layers, std::int64_t n_heads, AnalyzeOptions options, bool live);
    ~Analyzer();
    Analyzer(const Analyzer&) = delete;
    Analyzer& operator=(const Analyzer&) = delete;

    const AnalyzeOptions& options() const { return options_; }
    bool wants(AnalyzeMetric m) const { return metrics_.count(m) > 0; }
    const std::set<AnalyzeMetric>& metrics() const { return metrics_; }
    bool wants_preplan() const;
    std::int64_t n_layers() const { return n_layers_; }
    std::int64_t n_heads() const { return n_heads_; }
    /// Analysed layers (increasing).
    const std::vector<std::int64_t>& layers() const { return layers_; }
    /// Layers whose hook_pattern is needed: layers() plus the preplan layers when preplan metrics
    /// are on. Increasing.
    const std::vector<std::int64_t>& pattern_layers() const { return pattern_layers_; }
    /// Layers whose hook_resid_post is needed (empty unless massive).
    const std::vector<std::int64_t>& resid_layers() const { return resid_layers_; }
    const std::vector<std::int64_t>& preplan_layers() const { return preplan_layers_; }

    /// Starts a prompt of `tokens.size()` tokens (metadata only; the maps come by add_pattern).
    /// `n_prompt_tokens` (< tokens.size() when generated tokens follow) matters only with
    /// options().response_only.
    void begin_prompt(std::int64_t id, std::string text, std::string source,
                      std::vector<std::int32_t> tokens, std::vector<std::string> token_str,
                      std::int64_t n_prompt_tokens = -1);
    /// One layer's whole pattern [head, T, T] (any floating dtype, any device). Layers not in
    /// pattern_layers() are ignored. Throws ShapeError for a shape other than [n_heads, T, T].
    void add_pattern(std::int64_t layer, const at::Tensor& pattern);
    /// Query rows [q_offset, q_offset + q) of one layer's pattern, `rows` [head, q, T]; every row
    /// of the layer must arrive exactly once (the model's chunked attention path). Same results
    /// as add_pattern with the whole map.
    void add_pattern_chunk(std::int64_t layer, const at::Tensor& rows, std::int64_t q_offset);
    /// One layer's residual stream [T, d_model] (hook_resid_post). Ignored unless massive.
    void add_resid(std::int64_t layer, const at::Tensor& resid);
    /// Computes the prompt's metrics and adds them to the dataset. Throws ConfigError when a
    /// needed layer was never added.
    PromptAnalysis end_prompt();

    const DatasetAnalysis& dataset() const { return dataset_; }

private:
    struct State;
    std::int64_t n_layers_, n_heads_;
    AnalyzeOptions options_;
    std::set<AnalyzeMetric> metrics_;
    std::vector<std::int64_t> layers_, pattern_layers_, resid_layers_, preplan_layers_;
    DatasetAnalysis dataset_;
    std::unique_ptr<State> st_;
};

/// Tokenizes `prompt` with the model's tokenizer and runs one forward with observers on the
/// analyzer's layers. Throws ConfigError (empty prompt, longer than the context, naming its
/// source) and the model's errors.
PromptAnalysis analyze_live(Analyzer& analyzer, model::Model& model,
                            const format::PromptInput& prompt);

/// Reads prompt `id` of `run` from a capture file and feeds its stored maps. Throws SchemaError
/// when maps of needed layers are missing or hold a subset of the heads (see check_stored).
PromptAnalysis analyze_stored(Analyzer& analyzer, const store::Reader& reader,
                              const std::string& run, std::int64_t id);

/// Checks that every prompt of `run` holds blocks.{l}.attn.hook_pattern with all heads for each
/// of analyzer.pattern_layers(). Throws SchemaError naming the file, run, prompt and missing
/// layers, and what to do (re-capture with --layers / --hooks, or narrow --layers / --metrics).
void check_stored(const Analyzer& analyzer, const store::Reader& reader, const std::string& run,
                  const std::vector<std::int64_t>& prompt_ids);

/// The run to read: `requested` if non-empty, else the file's only run. Throws SchemaError
/// listing the runs when there are several (or none).
std::string pick_run(const store::Reader& reader, const std::string& requested);

// ---- outputs --------------------------------------------------------------------------------

/// Writes the prompt's metrics (dims, params, units, metric_version) into the writer's open
/// prompt.
void write_prompt_metrics(store::Writer& writer, const Analyzer& analyzer,
                          const PromptAnalysis& p);
/// Writes the dataset aggregates as run metrics (no prompt may be open).
void write_dataset_metrics(store::Writer& writer, const Analyzer& analyzer);

/// CSV: column "prompt" then analysis::head_summary_columns(); one row per (prompt, layer,
/// head).
std::string to_csv(const std::vector<PromptAnalysis>& prompts);
/// JSON text (2-space indent): {"source", "model", "options", "layers", "prompts": [...],
/// "dataset": {...}}. NaN prints as null.
std::string to_json(const Analyzer& analyzer, const std::vector<PromptAnalysis>& prompts,
                    const std::string& source_description, const std::string& model_description);
/// The human-readable report: per layer mean Ĥ, sink heads, local/global heads; the sink ratio;
/// top preplan / anchor tokens.
void print_table(std::ostream& out, const Analyzer& analyzer,
                 const std::vector<PromptAnalysis>& prompts);

// ---- end to end -----------------------------------------------------------------------------

/// Everything `attnscope analyze` does, without argv.
struct AnalyzeRequest {
    // live source (used when in_file is empty)
    std::filesystem::path model_dir;
    std::string device = "cpu";
    std::string dtype = "auto";
    std::vector<std::string> prompts;      ///< --prompt (repeatable)
    std::filesystem::path prompts_file;    ///< --prompts (.txt / .jsonl)
    // stored source
    std::filesystem::path in_file;         ///< --in
    std::string in_run;                    ///< --run with --in; empty = the file's only run

    AnalyzeOptions options;

    // outputs; none of out_file / csv_file / json -> table on `out`
    std::filesystem::path out_file;        ///< --out (never the input file)
    std::string out_run = "analysis";      ///< run name written to out_file
    bool force = false;                    ///< replace an existing run of that name
    std::filesystem::path csv_file;        ///< --csv ("-" = `out`)
    bool json = false;                     ///< --json to `out`
    std::vector<std::string> argv;         ///< recorded in the output run
    std::string version;                   ///< recorded in the output run
};

struct AnalyzeReport {
    std::int64_t prompts = 0;
    std::int64_t tokens = 0;
    double seconds = 0;
};

/// Runs the request. Throws ConfigError for inconsistent sources (none, several, --in = --out,
/// no prompts), and the errors of Analyzer, the model and the store. Progress goes to `log`
/// when given.
AnalyzeReport run_analyze(const AnalyzeRequest& request, std::ostream& out,
                          std::ostream* log = nullptr);

}  // namespace attnscope::probes
