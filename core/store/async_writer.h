// A Writer on its own thread behind a bounded queue, so that the forward pass never waits for
// the disk unless the queue is full. The producer (the capture probe's forward thread) pushes
// finished per-prompt records; the writer thread alone touches HDF5 (opening, writing,
// flushing, closing). The first error on the writer thread stops it and is rethrown, as the
// same exception type, by the producer's next push() or by close(). This is plumbing only:
// what goes into a record is the capture probe's business (probes/capture).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/store/types.h"
#include "core/store/writer.h"

namespace attnscope::store {

/// One hook tensor of a record (owned, so it can cross threads).
struct HookArray {
    std::string hook;  ///< TransformerLens name, e.g. "blocks.7.attn.hook_pattern"
    FloatArray data;   ///< [head, T, T] for maps; see Writer::write_hook
    HookOptions options;
};

/// One metric of a record.
struct MetricArray {
    std::string name;
    FloatArray data;  ///< float32 (binary16 input is widened)
    MetricInfo info;
};

/// What one prompt produced. A prompt may be split over several records (e.g. one per layer, to
/// bound memory at long contexts): all but the last have `last_part = false` and the same
/// prompt id; only the first one's `prompt` fields are used.
struct PromptRecord {
    Prompt prompt;
    std::vector<HookArray> hooks;
    std::vector<MetricArray> metrics;
    bool last_part = true;

    /// Bytes of array data held (what the queue bound counts).
    std::size_t nbytes() const;
};

/// Queue bounds: push() blocks while either would be exceeded. A record larger than max_bytes
/// is still accepted when the queue is empty.
struct AsyncOptions {
    std::size_t max_records = 4;
    std::size_t max_bytes = std::size_t{1} << 30;
};

class AsyncWriter {
public:
    /// Starts the writer thread, which opens the file exactly as Writer's constructor does; waits
    /// for that and rethrows its exception (ConfigError, IoError, SchemaError) here.
    AsyncWriter(const std::filesystem::path& path, const ModelInfo& model, const RunInfo& run,
                const WriterOptions& options = {}, const AsyncOptions& async = {});
    /// Without close(): as abandon(). Never throws.
    ~AsyncWriter() noexcept;
    AsyncWriter(const AsyncWriter&) = delete;
    AsyncWriter& operator=(const AsyncWriter&) = delete;

    /// Queues a record; blocks while the queue is full. Throws the writer thread's first error
    /// (e.g. IoError on a full disk, ShapeError for a bad array, SchemaError for a token
    /// mismatch), after which nothing more is written; std::logic_error after close/abandon.
    void push(PromptRecord record);
    /// Queues a dataset-level metric (written between prompts, in queue order).
    void push_run_metric(MetricArray metric);
    /// Writes everything queued, marks the run complete and closes the file; joins the thread.
    /// Throws the writer thread's first error (the run then stays incomplete).
    void close();
    /// Drops what is queued, closes the file without marking the run complete, joins the thread.
    void abandon() noexcept;

    /// Prompts fully written and flushed so far (safe to call from any thread).
    std::int64_t prompts_done() const noexcept;
    /// True once the writer thread has failed.
    bool failed() const noexcept;

private:
    struct State;
    std::shared_ptr<State> state_;
};

}  // namespace attnscope::store
