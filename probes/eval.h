// Evaluation harness behind `attnscope eval` and `attnscope head-search`: task files (JSON lines)
// of multiple-choice items (option log-likelihood), classification items (label-word
// log-likelihood) and perplexity texts; scoring with and without an InterventionSet; paired
// bootstrap confidence intervals; ACT-style offline head search. Task format: docs/eval.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "probes/intervention.h"

namespace attnscope::model {
class Model;
}

namespace attnscope::probes {

enum class TaskType { kMultipleChoice, kClassification, kPerplexity };
std::string to_string(TaskType t);

struct TaskItem {
    std::string id;
    TaskType type = TaskType::kMultipleChoice;
    std::string context;               ///< mc: the context; cls: the text; ppl: the text
    std::vector<std::string> options;  ///< mc: the options; cls: the label words
    int answer = -1;                   ///< index into options (mc, cls)
    std::string split;                 ///< "dev", "test", ... ("" = none)
    /// Byte range of `context` that is the target set of VAR (e.g. the passage a question is
    /// about); {0, 0} = none.
    std::pair<std::size_t, std::size_t> focus{0, 0};
    std::string source;                ///< "file:line"
};

struct Task {
    std::filesystem::path path;
    TaskType type = TaskType::kMultipleChoice;
    std::vector<TaskItem> items;
};

/// Reads a task file (.jsonl). Every line is one item; its type follows from its fields
/// ("options" -> mc, "labels" -> cls, only "text" -> ppl) and must be the same on every line.
/// Throws IoError when the file cannot be read, ConfigError naming file:line and field for
/// malformed JSON, missing or mistyped fields, an answer outside the options, invalid UTF-8, or
/// mixed types.
Task load_task(const std::filesystem::path& path);

/// The items of `split` ("" or "all" = every item), then the first `limit` of a seeded shuffle
/// (limit 0 = all, in file order). Throws ConfigError when the split has no items.
std::vector<TaskItem> select_items(const Task& task, const std::string& split, std::size_t limit,
                                   std::uint64_t seed);

struct EvalConfig {
    int batch = 16;             ///< sequences per forward (right-padded)
    bool length_norm = false;   ///< mc/cls: compare mean per-token log-likelihood instead of sum
    /// Called after each batch: (sequences done, sequences total).
    std::function<void(std::size_t, std::size_t)> progress;
};

struct ItemScore {
    int chosen = -1;                  ///< mc/cls: arg-max option
    bool correct = false;
    std::vector<double> option_ll;    ///< mc/cls: log-likelihood per option (nats)
    double nll = 0;                   ///< ppl: summed negative log-likelihood (nats)
    std::int64_t tokens = 0;          ///< ppl: scored tokens; mc/cls: context tokens
    bool truncated = false;           ///< context cut from the left to fit the model
};

/// Token sequences of the items as the model sees them (for calibrating interventions).
std::vector<std::vector<std::int32_t>> item_sequences(const model::Model& m, const std::vector<TaskItem>& items,
                                                      std::size_t max_items);

/// Scores `items`. With `set` (attached to `m` by the caller, or not), its target spans are set
/// per sequence from the items' focus, and a guidance scale > 0 runs a second, perturbed pass.
std::vector<ItemScore> score_items(model::Model& m, const std::vector<TaskItem>& items,
                                   InterventionSet* set, const EvalConfig& config);

struct Estimate {
    double value = 0, lo = 0, hi = 0;  ///< point estimate and 95% percentile interval
};
/// Accuracy (mc, cls) or perplexity (ppl) of the items indexed by `idx` (all when empty).
double task_metric(TaskType type, const std::vector<ItemScore>& s, const std::vector<std::size_t>& idx = {});
/// Bootstrap interval of one metric.
Estimate bootstrap(TaskType type, const std::vector<ItemScore>& s, int resamples, std::uint64_t seed);

struct Comparison {
    Estimate base, method, delta;  ///< delta = method - base, paired over the same resampled items
    double p_not_better = 0;       ///< share of resamples where the method is not better
};
Comparison compare(TaskType type, const std::vector<ItemScore>& base, const std::vector<ItemScore>& method,
                   int resamples, std::uint64_t seed);

// --- head search -------------------------------------------------------------------------------

struct HeadSearchOptions {
    MethodSpec method;            ///< e.g. act:beta=0.4,tau=0.1 (its heads= is set per candidate)
    std::vector<int> layers;      ///< candidate layers (empty: 2 .. L-2)
    std::vector<int> heads;       ///< candidate heads (empty: all)
    double delta = 0;             ///< keep heads whose gain exceeds this
    EvalConfig eval;
    /// (candidates done, candidates total, last candidate's metric).
    std::function<void(std::size_t, std::size_t, double)> progress;
};

struct HeadCandidate {
    HeadRef head;
    double metric = 0;
    double gain = 0;  ///< improvement over the baseline (accuracy up, perplexity down)
    bool kept = false;
};

struct HeadSearchResult {
    TaskType type = TaskType::kMultipleChoice;
    double baseline = 0;
    std::vector<HeadCandidate> candidates;
    std::vector<HeadRef> selected;
    double seconds = 0;
};

/// Evaluates the method on each candidate head alone and keeps the heads that help (spec §2.4).
/// Deterministic for fixed items. Throws as make_intervention.
HeadSearchResult head_search(model::Model& m, const std::vector<TaskItem>& items, const HeadSearchOptions& o);

}  // namespace attnscope::probes
