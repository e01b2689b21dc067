// Capture: run a model over prompts and store per-head attention maps (and any other hook
// tensor) in the HDF5 store. The forward of the next batch overlaps the writing of the previous
// one through store::AsyncWriter (bounded queue, one writer thread). With `generate` > 0 each
// decoding step's attention rows are stored too, so a map covers prompt + generated tokens.
// This is the library behind `attnscope capture`; it holds no argv parsing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/format/prompts.h"
#include "core/store/types.h"

namespace attnscope::model {
class Model;
}

namespace attnscope::probes {

struct CaptureOptions {
    std::string run = "main";
    /// Hook names or globs; default every layer's attention pattern.
    std::vector<std::string> hooks = {"blocks.*.attn.hook_pattern"};
    std::vector<int> layers;          ///< empty = all layers (filters block hooks)
    std::vector<int> heads;           ///< empty = all heads (filters attention maps)
    bool map_f32 = false;             ///< store maps as float32 instead of float16
    int max_tokens = 0;               ///< truncate prompts to this many tokens (0 = no limit)
    int batch = 1;                    ///< prompts per forward (right-padded)
    int generate = 0;                 ///< decoding steps to capture after each prompt
    bool force = false;               ///< replace an existing run / unreadable file
    bool compress = false;            ///< shuffle + deflate(1)
    std::uint64_t seed = 0;
    /// Refuse when the estimated bytes to write exceed this (0 = no limit). Free disk space and
    /// free memory are always checked.
    std::int64_t max_bytes = 0;
    std::vector<std::string> argv;    ///< recorded in the run attributes
    std::string intervention_json = "{}";
    std::string version;
};

struct CaptureReport {
    std::int64_t prompts = 0;
    std::int64_t tokens = 0;
    std::int64_t map_bytes = 0;        ///< bytes of attention-map data handed to the writer
    double seconds = 0;
    std::vector<std::string> hooks;    ///< the concrete hook names captured
    std::int64_t estimated_bytes = 0;  ///< estimate made before writing (arrays only)
};


/// Called after each prompt is queued: (prompts done, prompts total, tokens done).
using CaptureProgress = std::function<void(std::int64_t, std::int64_t, std::int64_t)>;

/// Captures `prompts` into `out`. Throws ConfigError for bad options (unknown layers or heads,
/// a prompt longer than the context without max_tokens, naming the prompt's source), HookError
/// for hook patterns that match nothing, and the store's IoError / SchemaError for file
/// problems (existing run without force, another model's file, newer schema). On error the run
/// stays marked incomplete and every prompt written so far remains readable.
CaptureReport capture(model::Model& model, const std::vector<format::PromptInput>& prompts,
                      const std::filesystem::path& out, const CaptureOptions& options,
                      const CaptureProgress& progress = {});

/// The store's description of `model` (sizes, source folder, config.json verbatim).
store::ModelInfo model_info(const model::Model& model);

/// Parses "0,2,5-9" into {0,2,5,6,7,8,9}. Throws ConfigError naming `what` on malformed input.
std::vector<int> parse_index_list(const std::string& text, const std::string& what);

}  // namespace attnscope::probes
