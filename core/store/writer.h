// Writes one run of captures into an attnscope HDF5 file (layout: docs/hdf5-schema.md, names:
// schema.h). Creates the file, or adds the run to an existing file of the same model. Attention
// maps are stored causally: only chunks on or below the diagonal are allocated. Each prompt is
// a unit of work that ends with a flush, so a crash loses at most the prompt in progress, and the
// run says `complete = true` only after close(). Not thread-safe: one Writer is used by one
// thread at a time (AsyncWriter puts it behind a queue); all HDF5 calls of the process are
// serialised by one lock, so a Reader may work on another thread meanwhile.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/store/types.h"

namespace attnscope::store {

/// How the writer treats what is already at the output path (see the table in
/// docs/hdf5-schema.md, "Opening for writing").
struct WriterOptions {
    /// The CLI's --force. Replaces a run of the same name; rewrites a stored prompt whose tokens
    /// differ (removing that prompt's results from the other runs, which described the old
    /// tokens); overwrites a file that is not an attnscope file or holds another model. Never
    /// overwrites a file of a newer (or older) schema major: that needs `truncate`.
    bool force = false;
    /// Starts a new file whatever is at the path, including files this build cannot read. Only
    /// for callers that asked for exactly that; --force alone never sets it.
    bool truncate = false;
    /// Shuffle + deflate(1) on every array: about 3-5x smaller maps, slower writes.
    bool compress = false;
    /// fsync() after each prompt's flush, so finished prompts also survive power loss (the
    /// default flush survives a crash of the process).
    bool fsync = false;
    /// Root attribute `created_by` for new files, e.g. "attnscope 0.1.0".
    std::string created_by = "attnscope";
};

/// One run being written. Call order: constructor, then per prompt begin_prompt, any number of
/// write_hook / write_metric, end_prompt; write_run_metric at any time outside a prompt; close.
class Writer {
public:
    /// Opens or creates `path` for writing run `run.name` of `model`, and writes the run group
    /// (complete = false) and, for a new file, the root, /model and /prompts.
    /// Preconditions: model sizes > 0, arch non-empty, run name valid (schema.h).
    /// Throws ConfigError for invalid model/run descriptions (naming the field), IoError when the
    /// path exists and is not an attnscope file (pass --force or choose another name), when the
    /// run exists (pass --force or choose another --run), when another process is writing the
    /// file, or when the file cannot be created; SchemaError when the file holds another model
    /// (naming the differing fields) or is of another schema major (even with force).
    Writer(const std::filesystem::path& path, const ModelInfo& model, const RunInfo& run,
           const WriterOptions& options = {});
    /// Without close(): as abandon() (the run stays complete = false). Never throws.
    ~Writer() noexcept;
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    Writer(Writer&&) noexcept;
    Writer& operator=(Writer&&) noexcept;

    /// Starts prompt `prompt.id` of this run: stores /prompts/<id> when the file has no such
    /// prompt, else checks that its tokens are identical. Token strings are stored as UTF-8 for
    /// display: invalid bytes become "\xNN" escapes and NUL becomes "\x00".
    /// Preconditions: no prompt open; tokens non-empty; token_str.size() == tokens.size();
    /// 0 < n_prompt_tokens <= n_tokens (or -1).
    /// Throws ShapeError for inconsistent lengths, SchemaError when the stored prompt has other
    /// tokens (without force) or this run already has the prompt, IoError on write failure,
    /// std::logic_error when a prompt is already open.
    void begin_prompt(const Prompt& prompt);

    /// Stores hook tensor `hook` (TransformerLens name, e.g. "blocks.7.attn.hook_pattern") of the
    /// open prompt at /runs/<run>/prompts/<id>/<hook with '.' -> '/'>, with attributes dims,
    /// layer (block hooks) and heads (arrays with a head axis).
    /// Attention maps (attn.hook_pattern, attn.hook_attn_scores): shape [head, T, T] with T the
    /// prompt's n_tokens or n_prompt_tokens, stored as the run's map_dtype unless options say
    /// otherwise, chunked (1, min(T,256), min(T,256)); chunk tiles strictly above the diagonal
    /// are not allocated when they hold only the fill value (0 for patterns, -inf for scores), so
    /// they read back as that value. Other hooks: leading axis "pos" of length n_tokens or
    /// n_prompt_tokens when dims start with "pos".
    /// Throws HookError for an unknown hook name, ShapeError when the shape does not match the
    /// dims / heads / token count (both shapes in the message), SchemaError when the hook is
    /// already stored for this prompt, IoError on write failure, std::logic_error when no prompt
    /// is open.
    void write_hook(std::string_view hook, const FloatRef& data, const HookOptions& options = {});

    /// Stores metric `name` ([A-Za-z0-9_]+) of the open prompt at .../<id>/metrics/<name> as
    /// float32 with dims, params, units and metric_version. Throws as write_hook.
    void write_metric(std::string_view name, const FloatRef& data, const MetricInfo& info);

    /// Finishes the open prompt: marks it complete, updates the run's n_prompts_done, flushes
    /// (and fsyncs with options.fsync). Throws IoError on failure, std::logic_error when no
    /// prompt is open.
    void end_prompt();

    /// Stores (or replaces) a dataset-level metric at /runs/<run>/metrics/<name>. Throws as
    /// write_metric; std::logic_error when a prompt is open.
    void write_run_metric(std::string_view name, const FloatRef& data, const MetricInfo& info);

    /// Marks the run complete, flushes and closes the file. Throws IoError on failure (the run
    /// then stays incomplete), std::logic_error when a prompt is still open (the writer is then
    /// abandoned).
    void close();

    /// Closes the file without marking the run complete: what a crash would leave, minus the
    /// risk. A prompt begun and not ended stays `complete = false` and is not counted. After a
    /// failed write nothing more is written to the file, so it keeps the last flushed state.
    void abandon() noexcept;

    /// Prompts finished (end_prompt) in this run so far.
    std::int64_t prompts_done() const noexcept;
    /// True after close() or abandon().
    bool closed() const noexcept;
    const std::filesystem::path& path() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace attnscope::store
