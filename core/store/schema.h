// Every name of the attnscope HDF5 layout in one place: group paths, dataset and attribute names,
// the schema version, and the helpers that turn prompt ids, run names and hook names into paths.
// The layout itself, with types and meanings, is documented in docs/hdf5-schema.md; the two are
// kept in step by hand, so change both or neither. No HDF5 here: this header is plain strings
// and can be included by tools that only need the names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace attnscope::store::schema {

// --- version ------------------------------------------------------------------------------------

/// Value of the root attribute `schema` in every attnscope file.
inline constexpr char kSchemaName[] = "attnscope";
/// Schema version this build writes. A minor bump only adds optional items; a major bump moves,
/// renames or changes the meaning of something. Readers accept every minor of kMajor.
inline constexpr int kMajor = 1;
inline constexpr int kMinor = 0;
inline constexpr char kVersion[] = "1.0";

// --- groups and datasets (absolute paths or names relative to their parent) ----------------------

inline constexpr char kModelGroup[] = "/model";
inline constexpr char kConfigJson[] = "/model/config_json";  // scalar UTF-8 string dataset
inline constexpr char kPromptsGroup[] = "/prompts";
inline constexpr char kRunsGroup[] = "/runs";
inline constexpr char kTokens[] = "tokens";       // under /prompts/<id>: int32 [pos]
inline constexpr char kTokenStr[] = "token_str";  // under /prompts/<id>: UTF-8 strings [pos]
inline constexpr char kRunPrompts[] = "prompts";  // under /runs/<run>
inline constexpr char kMetrics[] = "metrics";     // under /runs/<run> and /runs/<run>/prompts/<id>

// --- root attributes -----------------------------------------------------------------------------

inline constexpr char kAttrSchema[] = "schema";                 // string "attnscope"
inline constexpr char kAttrSchemaVersion[] = "schema_version";  // string "MAJOR.MINOR"
inline constexpr char kAttrCreatedBy[] = "created_by";          // string, e.g. "attnscope 0.1.0"
inline constexpr char kAttrCreatedUtc[] = "created_utc";        // string, ISO 8601 "...Z"

// --- /model attributes ---------------------------------------------------------------------------

inline constexpr char kAttrArch[] = "arch";                     // string, e.g. "llama"
inline constexpr char kAttrNLayers[] = "n_layers";              // int64
inline constexpr char kAttrNHeads[] = "n_heads";                // int64
inline constexpr char kAttrNKvHeads[] = "n_kv_heads";           // int64
inline constexpr char kAttrDModel[] = "d_model";                // int64
inline constexpr char kAttrDHead[] = "d_head";                  // int64
inline constexpr char kAttrVocabSize[] = "vocab_size";          // int64
inline constexpr char kAttrSource[] = "source";                 // string (also on prompts)
inline constexpr char kAttrWeightsSha256[] = "weights_sha256";  // string, may be empty

// --- /prompts/<id> attributes --------------------------------------------------------------------

inline constexpr char kAttrText[] = "text";                      // string
inline constexpr char kAttrNTokens[] = "n_tokens";               // int64 == len(tokens)
inline constexpr char kAttrNPromptTokens[] = "n_prompt_tokens";  // int64 <= n_tokens

// --- /runs/<run> attributes ----------------------------------------------------------------------

inline constexpr char kAttrIntervention[] = "intervention";    // string, JSON object ("{}")
inline constexpr char kAttrHooks[] = "hooks";                  // string, JSON list of strings
inline constexpr char kAttrSeed[] = "seed";                    // int64
inline constexpr char kAttrArgv[] = "argv";                    // string, JSON list of strings
inline constexpr char kAttrVersion[] = "version";              // string, attnscope version
inline constexpr char kAttrComplete[] = "complete";            // bool (also on run prompts)
inline constexpr char kAttrMapDtype[] = "map_dtype";           // string "f16" | "f32"
inline constexpr char kAttrNPromptsDone[] = "n_prompts_done";  // int64

// --- array attributes ----------------------------------------------------------------------------

inline constexpr char kAttrDims[] = "dims";                     // string "head,query_pos,key_pos"
inline constexpr char kAttrHeads[] = "heads";                   // int64 [head]: model head indices
inline constexpr char kAttrLayer[] = "layer";                   // int64
inline constexpr char kAttrParams[] = "params";                 // string, JSON object (metrics)
inline constexpr char kAttrUnits[] = "units";                   // string (metrics)
inline constexpr char kAttrMetricVersion[] = "metric_version";  // int64 (metrics)

/// Axis names of attention maps on disk (the hook's dims without the batch axis).
inline constexpr char kMapDims[] = "head,query_pos,key_pos";
/// Edge of a map chunk: chunks are (1, min(T, kMapChunk), min(T, kMapChunk)).
inline constexpr std::int64_t kMapChunk = 256;

/// Map storage dtype names, as in the run attribute `map_dtype` and the CLI's --map-dtype.
inline constexpr char kDtypeF16[] = "f16";
inline constexpr char kDtypeF32[] = "f32";

// --- names to paths ------------------------------------------------------------------------------

/// Zero-padded decimal prompt id, 6 digits ("000042"); wider ids keep all their digits.
/// Precondition: id >= 0.
std::string prompt_id(std::int64_t id);
/// Parses a prompt-id group name ("000042" -> 42); -1 when `name` is not all decimal digits.
std::int64_t parse_prompt_id(std::string_view name);

/// "/prompts/000042".
std::string prompt_path(std::int64_t id);
/// "/runs/<run>".
std::string run_path(std::string_view run);
/// "/runs/<run>/prompts/000042".
std::string run_prompt_path(std::string_view run, std::int64_t id);

/// Hook name to the path below a run prompt: '.' becomes '/' ("blocks.7.attn.hook_pattern" ->
/// "blocks/7/attn/hook_pattern").
std::string hook_to_path(std::string_view hook);
/// Inverse of hook_to_path.
std::string path_to_hook(std::string_view path);

/// True for names usable as a run name: 1-64 characters of [A-Za-z0-9_.-], not starting with
/// '.' or '-'.
bool is_valid_run_name(std::string_view name);
/// True for names usable as a metric name: 1-64 characters of [A-Za-z0-9_].
bool is_valid_metric_name(std::string_view name);

}  // namespace attnscope::store::schema
