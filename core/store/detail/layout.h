// Reading and checking the parts of the layout that both the writer (when it appends to an
// existing file) and the reader need: the root version attributes, /model, a prompt's tokens.
// Internal to core/store; callers hold detail::hdf5_lock().
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/store/types.h"

namespace attnscope::store::detail {

/// What the root attributes say about a file.
struct VersionCheck {
    enum class Status {
        kOk,            ///< attnscope file of a supported major
        kNotAttnscope,  ///< schema attribute missing or wrong, or version unparseable
        kOtherMajor,    ///< attnscope file of another major
    };
    Status status = Status::kNotAttnscope;
    std::string reason;  ///< for kNotAttnscope: what is wrong
    FileInfo info;       ///< version fields (valid for kOk and kOtherMajor)
};

/// Classifies an open file by its root attributes. Never throws SchemaError (IoError only when
/// HDF5 itself fails).
VersionCheck check_version(hid_t file, const std::string& file_name);

/// check_version, throwing SchemaError for anything but kOk: "not an attnscope file" with the
/// reason, or the refusal naming the version found, the versions supported and what to do.
FileInfo require_supported(hid_t file, const std::string& file_name);

/// The SchemaError message for a file of another major (shared by reader and writer).
std::string other_major_message(const std::string& file_name, const FileInfo& info, bool writing);

/// Reads and validates /model and /model/config_json.
ModelInfo read_model(hid_t file, const std::string& file_name);

/// Empty when `a` (in the file) and `b` (this run) describe the same model, else the
/// differences, e.g. "n_layers 12 in the file vs 16 here, arch 'gpt2' vs 'llama'".
std::string model_differences(const ModelInfo& a, const ModelInfo& b);

/// Reads /prompts/<id>/tokens, checking it is a rank-1 integer dataset convertible to int32,
/// `expected` long when `expected` >= 0, and backed by storage for its length (all checked before
/// the buffer is allocated).
std::vector<std::int32_t> read_tokens(hid_t file, std::int64_t id, const std::string& file_name,
                                      std::int64_t expected = -1);

/// Splits "a,b,c" into {"a","b","c"}; "" into {}.
std::vector<std::string> split_dims(const std::string& dims);

/// Shape as "[2, 300, 300]".
std::string shape_string(const std::vector<std::int64_t>& shape);

/// Current UTC time as ISO 8601, "2024-05-01T12:00:00Z".
std::string utc_now();

}  // namespace attnscope::store::detail
