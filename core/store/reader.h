// Reads attnscope HDF5 capture files for the analysis and the viewer: model info, prompts and
// their tokens, runs, which hooks were stored, and attention maps as float32, whole or as lazy
// tiles (only the chunks a tile touches are read). Everything is validated against the schema
// before it is trusted (ranks, types, dims, lengths), and a file of an unsupported schema major
// is refused. Read-only: opens without HDF5 file locking, so it also works while `attnscope
// capture` is writing the file; it then sees the state of the writer's last per-prompt flush as
// of open() or refresh(). Not a writer, and not a general HDF5 browser.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/store/types.h"

namespace attnscope::store {

/// An open capture file. Methods are const and may be called from several threads (all HDF5
/// calls of the process are serialised by one lock). Hook names are TransformerLens strings
/// ("blocks.3.attn.hook_pattern"); heads are model head indices (the map's `heads` attribute
/// maps them to positions along the stored head axis).
class Reader {
public:
    /// Opens `path` read-only and checks the root version attributes and /model.
    /// Throws IoError when the file is missing, unreadable or damaged (e.g. truncated: the
    /// message says so and to capture again), SchemaError when it is not an attnscope file or
    /// has an unsupported schema major (naming the version found and the ones supported).
    explicit Reader(const std::filesystem::path& path);
    ~Reader() noexcept;
    Reader(Reader&&) noexcept;
    Reader& operator=(Reader&&) noexcept;
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    /// Closes and reopens the file, to see prompts a writer has flushed since. Throws as the
    /// constructor.
    void refresh();

    const std::filesystem::path& path() const noexcept;
    const FileInfo& file_info() const noexcept;
    /// /model, including config_json.
    const ModelInfo& model() const noexcept;

    /// All prompts of the file, by id. Throws SchemaError on malformed prompt attributes.
    std::vector<PromptSummary> prompts() const;
    /// One prompt; SchemaError when absent.
    PromptSummary prompt(std::int64_t id) const;
    /// [pos] token ids. SchemaError when missing, not rank-1 int32, or not n_tokens long.
    std::vector<std::int32_t> tokens(std::int64_t id) const;
    /// [pos] token display strings (UTF-8). SchemaError when missing, not strings, or not as
    /// long as the tokens.
    std::vector<std::string> token_strings(std::int64_t id) const;

    /// All runs, by name.
    std::vector<RunSummary> runs() const;
    /// One run; SchemaError when absent (listing the runs there are) or malformed.
    RunSummary run(const std::string& name) const;
    /// Prompt ids stored in the run, ascending. Prompts a crash interrupted (complete = false)
    /// are left out unless `include_incomplete`.
    std::vector<std::int64_t> run_prompts(const std::string& run,
                                          bool include_incomplete = false) const;
    /// Hook names stored for the prompt in the run, in natural order (blocks.2 before
    /// blocks.10). SchemaError when the run or prompt is absent.
    std::vector<std::string> hooks(const std::string& run, std::int64_t prompt) const;

    /// Shape, dims, dtype, heads and layer of a stored hook array, validated: float16/float32,
    /// `dims` naming every axis; maps rank 3 [head, T, T] with `heads` as long as the head axis.
    /// SchemaError when absent (listing what is there) or malformed.
    ArrayInfo array_info(const std::string& run, std::int64_t prompt,
                         const std::string& hook) const;
    /// The whole array as float32, row-major. Throws as array_info; IoError on read failure.
    std::vector<float> read_array(const std::string& run, std::int64_t prompt,
                                  const std::string& hook) const;
    /// One head of a map, [query_pos, key_pos] float32. ShapeError when `head` is not stored
    /// (naming the stored heads); otherwise throws as array_info.
    std::vector<float> read_map_head(const std::string& run, std::int64_t prompt,
                                     const std::string& hook, std::int64_t head) const;
    /// The tile [q0, q1) x [k0, k1) of one head of a map, [q1-q0, k1-k0] float32, reading only
    /// the chunks it touches (the upper triangle reads as the fill value without I/O).
    /// ShapeError when the ranges are empty or outside [0, T], or `head` is not stored.
    std::vector<float> read_map_tile(const std::string& run, std::int64_t prompt,
                                     const std::string& hook, std::int64_t head, std::int64_t q0,
                                     std::int64_t q1, std::int64_t k0, std::int64_t k1) const;

    /// Names of the prompt's metrics (empty when none).
    std::vector<std::string> metrics(const std::string& run, std::int64_t prompt) const;
    /// Names of the run's dataset-level metrics.
    std::vector<std::string> run_metrics(const std::string& run) const;
    /// A prompt metric with its dims, params, units and version. SchemaError when absent or
    /// malformed.
    MetricData read_metric(const std::string& run, std::int64_t prompt,
                           const std::string& name) const;
    /// A dataset-level metric of the run.
    MetricData read_run_metric(const std::string& run, const std::string& name) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace attnscope::store
