// Value types shared by the store's writer and reader: what a model, a prompt and a run are
// described by, float arrays handed to the writer (borrowed or owned), and what the reader
// returns. Plain structs, no HDF5 and no Torch: the capture probe fills them from tensors, the
// viewer and the analysis read them back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace attnscope::store {

/// Storage type of a float array on disk. Never bfloat16.
enum class DType {
    kF16,  ///< IEEE binary16, "<f2" (numpy float16)
    kF32,  ///< IEEE binary32, "<f4"
};

/// "f16" or "f32" (the run attribute `map_dtype` and the CLI's --map-dtype values).
const char* to_string(DType dtype);
/// Parses "f16" / "f32" (also "float16" / "float32"). Throws ConfigError naming the value and the
/// accepted ones.
DType parse_dtype(const std::string& text);

/// The model a file belongs to (/model). One file = one model: a run is added to an existing
/// file only if arch and all sizes match (and weights_sha256, when both sides have one).
struct ModelInfo {
    std::string arch;  ///< architecture name, e.g. "gpt2", "llama"
    std::int64_t n_layers = 0;
    std::int64_t n_heads = 0;     ///< query heads
    std::int64_t n_kv_heads = 0;  ///< key/value heads (GQA: <= n_heads)
    std::int64_t d_model = 0;
    std::int64_t d_head = 0;
    std::int64_t vocab_size = 0;
    std::string source;          ///< model directory the capture read
    std::string weights_sha256;  ///< hex digest of the weights, or empty when not computed
    std::string config_json;     ///< the checkpoint's config.json, verbatim
};

/// One prompt (/prompts/<id>), shared by all runs of a file.
struct Prompt {
    std::int64_t id = 0;                 ///< >= 0; stored zero-padded ("000042")
    std::string text;                    ///< the prompt as given (before generation)
    std::string source;                  ///< where it came from, e.g. "prompts.txt:43"
    std::vector<std::int32_t> tokens;    ///< [pos] token ids, prompt then generated ones
    std::vector<std::string> token_str;  ///< [pos] display string of each token
    std::int64_t n_prompt_tokens = -1;   ///< tokens from the prompt; -1 means all of them
};

/// Listing entry of a prompt (what Reader::prompts returns; tokens are read separately).
struct PromptSummary {
    std::int64_t id = 0;
    std::string text;
    std::string source;
    std::int64_t n_tokens = 0;
    std::int64_t n_prompt_tokens = 0;
};

/// A run: one pass of a model over (some of) the file's prompts, with one configuration.
struct RunInfo {
    std::string name = "main";             ///< 1-64 chars of [A-Za-z0-9_.-]
    std::string intervention_json = "{}";  ///< JSON object describing the intervention, "{}" none
    std::vector<std::string> hooks;        ///< hook names or globs the run captured
    std::int64_t seed = 0;
    std::vector<std::string> argv;  ///< command line that produced the run
    std::string version;            ///< attnscope version that wrote the run
    DType map_dtype = DType::kF16;  ///< storage type of attention maps
};

/// A run as read back: its description plus its state.
struct RunSummary {
    RunInfo info;
    std::string created_utc;
    bool complete = false;            ///< true only after a clean close
    std::int64_t n_prompts_done = 0;  ///< prompts finished and flushed
};

/// Where a float array handed to the writer points: float32 values or binary16 bit patterns.
enum class Element { kF32, kF16Bits };

/// A borrowed dense row-major float array. Valid only while the caller's buffer lives.
struct FloatRef {
    Element element = Element::kF32;
    const void* data = nullptr;
    std::vector<std::int64_t> shape;  ///< empty for a scalar

    static FloatRef f32(const float* data, std::vector<std::int64_t> shape) {
        return {Element::kF32, data, std::move(shape)};
    }
    static FloatRef f16_bits(const std::uint16_t* data, std::vector<std::int64_t> shape) {
        return {Element::kF16Bits, data, std::move(shape)};
    }
    /// Product of the shape (1 for a scalar).
    std::int64_t numel() const;
};

/// An owned dense row-major float array (for records that cross threads). Exactly one of `f32`
/// and `f16` holds numel() values, as `element` says.
struct FloatArray {
    Element element = Element::kF32;
    std::vector<std::int64_t> shape;
    std::vector<float> f32;
    std::vector<std::uint16_t> f16;

    static FloatArray from_f32(std::vector<float> values, std::vector<std::int64_t> shape);
    static FloatArray from_f16_bits(std::vector<std::uint16_t> bits,
                                    std::vector<std::int64_t> shape);
    /// Borrows `data` (row-major, `shape`) without copying; `owner` keeps it alive (e.g. a
    /// shared_ptr holding the tensor it belongs to), so the array can cross threads.
    static FloatArray borrow(Element element, const void* data, std::vector<std::int64_t> shape,
                             std::shared_ptr<const void> owner);
    FloatRef ref() const;
    std::size_t nbytes() const;

    const void* external = nullptr;       ///< borrowed data (see borrow), else null
    std::shared_ptr<const void> owner;    ///< keeps `external` alive
};

/// How a hook tensor is stored.
struct HookOptions {
    /// Axis names; empty means the hook's own dims without the batch axis (core/base
    /// hook_name.h), e.g. "head,query_pos,key_pos" for maps, "pos,d_model" for resid.
    std::string dims;
    /// For arrays with a "head" axis: the model head index of each entry along that axis.
    /// Empty means 0..size-1.
    std::vector<std::int64_t> heads;
    /// Storage type. Unset: maps use the run's map_dtype, other float32 input stays float32 and
    /// binary16 input stays binary16.
    std::optional<DType> dtype;
};

/// Description of a metric array (always float32 on disk).
struct MetricInfo {
    std::string dims;                 ///< axis names, "" for a scalar
    std::string params_json = "{}";   ///< parameters the metric was computed with
    std::string units;                ///< e.g. "nats", "positions"
    std::int64_t metric_version = 1;  ///< bumped when the definition changes
};

/// A metric as read back.
struct MetricData {
    std::vector<float> data;  ///< row-major
    std::vector<std::int64_t> shape;
    MetricInfo info;
};

/// What the reader knows about a stored array before reading it.
struct ArrayInfo {
    std::string path;  ///< absolute path in the file
    DType dtype = DType::kF32;
    std::vector<std::int64_t> shape;
    std::string dims;
    std::vector<std::int64_t> heads;  ///< model head indices along "head", if any
    std::int64_t layer = -1;          ///< block index, -1 for non-block hooks
};

/// File-level facts of an open file.
struct FileInfo {
    std::string schema_version;  ///< as stored, e.g. "1.0"
    int major = 0;
    int minor = 0;
    std::string created_by;
    std::string created_utc;
};

}  // namespace attnscope::store
