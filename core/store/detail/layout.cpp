// Shared readers of the root, /model and prompt tokens, with the checks both the writer and the
// reader apply before trusting a file. See layout.h.
#include "core/store/detail/layout.h"

#include <cstdio>
#include <ctime>
#include <optional>

#include "core/base/error.h"
#include "core/store/detail/h5.h"
#include "core/store/schema.h"

namespace attnscope::store::detail {

namespace {

// "MAJOR.MINOR" with both parts decimal; false otherwise.
bool parse_version(const std::string& text, int& major, int& minor) {
    const std::size_t dot = text.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 >= text.size() || dot > 4 ||
        text.size() - dot - 1 > 4)
        return false;
    major = 0;
    minor = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (i == dot) continue;
        const char c = text[i];
        if (c < '0' || c > '9') return false;
        int& part = i < dot ? major : minor;
        part = part * 10 + (c - '0');
    }
    return true;
}

std::string supported() {
    return std::to_string(schema::kMajor) + ".x (" + schema::kVersion + " and any later " +
           std::to_string(schema::kMajor) + ".N)";
}

}  // namespace

VersionCheck check_version(hid_t file, const std::string& file_name) {
    VersionCheck out;
    // A wrong-typed attribute is a reason, not an exception, here.
    std::optional<std::string> schema_name;
    try {
        schema_name = read_attr_string_opt(file, schema::kAttrSchema, file_name, "/");
    } catch (const SchemaError&) {
        out.reason = "root attribute 'schema' is not a string";
        return out;
    }
    if (!schema_name) {
        out.reason = "no root attribute 'schema'";
        return out;
    }
    if (*schema_name != schema::kSchemaName) {
        out.reason =
            "root attribute 'schema' is '" + *schema_name + "', not '" + schema::kSchemaName + "'";
        return out;
    }
    std::optional<std::string> version;
    try {
        version = read_attr_string_opt(file, schema::kAttrSchemaVersion, file_name, "/");
    } catch (const SchemaError&) {
        out.reason = "root attribute 'schema_version' is not a string";
        return out;
    }
    if (!version) {
        out.reason = "no root attribute 'schema_version'";
        return out;
    }
    if (!parse_version(*version, out.info.major, out.info.minor)) {
        out.reason = "root attribute 'schema_version' is '" + *version + "', not MAJOR.MINOR";
        return out;
    }
    out.info.schema_version = *version;
    try {
        out.info.created_by =
            read_attr_string_opt(file, schema::kAttrCreatedBy, file_name, "/").value_or("");
        out.info.created_utc =
            read_attr_string_opt(file, schema::kAttrCreatedUtc, file_name, "/").value_or("");
    } catch (const SchemaError&) {
        // Informational attributes: a wrong type does not make the file unreadable.
    }
    out.status = out.info.major == schema::kMajor ? VersionCheck::Status::kOk
                                                  : VersionCheck::Status::kOtherMajor;
    return out;
}

std::string other_major_message(const std::string& file_name, const FileInfo& info, bool writing) {
    const bool newer = info.major > schema::kMajor;
    std::string msg = file_name + ": written with attnscope HDF5 schema " + info.schema_version +
                      (newer ? " (by a newer attnscope)" : " (by an older attnscope)") +
                      "; this build supports schema " + supported();
    if (writing) {
        msg +=
            "; a file this build cannot read is never modified, even with --force: write to "
            "another file";
        msg += newer ? ", or upgrade attnscope" : "";
    } else {
        msg += newer ? "; upgrade attnscope to read it"
                     : "; open it with the attnscope version that wrote it, or capture again";
    }
    return msg;
}

FileInfo require_supported(hid_t file, const std::string& file_name) {
    VersionCheck v = check_version(file, file_name);
    if (v.status == VersionCheck::Status::kNotAttnscope)
        throw SchemaError(file_name + ": not an attnscope file (" + v.reason +
                          "); expected an HDF5 file written by `attnscope capture`");
    if (v.status == VersionCheck::Status::kOtherMajor)
        throw SchemaError(other_major_message(file_name, v.info, false));
    return v.info;
}

ModelInfo read_model(hid_t file, const std::string& file_name) {
    const std::string path = schema::kModelGroup;
    Id g = open_group(file, path, file_name);
    ModelInfo m;
    m.arch = read_attr_string(g.get(), schema::kAttrArch, file_name, path);
    m.n_layers = read_attr_int(g.get(), schema::kAttrNLayers, file_name, path);
    m.n_heads = read_attr_int(g.get(), schema::kAttrNHeads, file_name, path);
    m.n_kv_heads = read_attr_int(g.get(), schema::kAttrNKvHeads, file_name, path);
    m.d_model = read_attr_int(g.get(), schema::kAttrDModel, file_name, path);
    m.d_head = read_attr_int(g.get(), schema::kAttrDHead, file_name, path);
    m.vocab_size = read_attr_int(g.get(), schema::kAttrVocabSize, file_name, path);
    m.source = read_attr_string_opt(g.get(), schema::kAttrSource, file_name, path).value_or("");
    m.weights_sha256 =
        read_attr_string_opt(g.get(), schema::kAttrWeightsSha256, file_name, path).value_or("");
    for (const auto* v :
         {&m.n_layers, &m.n_heads, &m.n_kv_heads, &m.d_model, &m.d_head, &m.vocab_size})
        if (*v <= 0) throw_schema(file_name, path, "model sizes must be positive");
    Id ds = open_dataset(file, schema::kConfigJson, file_name);
    m.config_json = read_string_dataset(ds.get(), file_name, schema::kConfigJson);
    return m;
}

std::string model_differences(const ModelInfo& a, const ModelInfo& b) {
    std::string out;
    auto add = [&](const std::string& s) {
        if (!out.empty()) out += ", ";
        out += s;
    };
    if (a.arch != b.arch) add("arch '" + a.arch + "' in the file vs '" + b.arch + "' here");
    auto num = [&](const char* name, std::int64_t x, std::int64_t y) {
        if (x != y)
            add(std::string(name) + " " + std::to_string(x) + " in the file vs " +
                std::to_string(y) + " here");
    };
    num("n_layers", a.n_layers, b.n_layers);
    num("n_heads", a.n_heads, b.n_heads);
    num("n_kv_heads", a.n_kv_heads, b.n_kv_heads);
    num("d_model", a.d_model, b.d_model);
    num("d_head", a.d_head, b.d_head);
    num("vocab_size", a.vocab_size, b.vocab_size);
    if (!a.weights_sha256.empty() && !b.weights_sha256.empty() &&
        a.weights_sha256 != b.weights_sha256)
        add("weights_sha256 " + a.weights_sha256.substr(0, 12) + "... in the file vs " +
            b.weights_sha256.substr(0, 12) + "... here");
    return out;
}

std::vector<std::int32_t> read_tokens(hid_t file, std::int64_t id, const std::string& file_name,
                                      std::int64_t expected) {
    const std::string path = schema::prompt_path(id) + "/" + schema::kTokens;
    Id ds = open_dataset(file, path, file_name);
    Id type = check_id(H5Dget_type(ds.get()), H5Tclose, file_name, path, "reading tokens");
    if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) > 4)
        throw_schema(file_name, path, "tokens must be a 32-bit integer dataset");
    const auto shape = dataset_shape(ds.get(), file_name, path);
    if (shape.size() != 1)
        throw_schema(file_name, path,
                     "tokens must have rank 1, found shape " + shape_string(shape));
    if (expected >= 0 && shape[0] != expected)
        throw_schema(file_name, path,
                     "has " + std::to_string(shape[0]) + " tokens but n_tokens is " +
                         std::to_string(expected));
    // Tokens are always written in full, so their storage holds every element (1100: above
    // deflate's best ratio, should a tool recompress the file). Without this a tiny file could
    // declare 2^40 unallocated tokens and have the reader allocate them.
    const auto storage = static_cast<std::uint64_t>(H5Dget_storage_size(ds.get()));
    if (static_cast<std::uint64_t>(shape[0]) * H5Tget_size(type.get()) > storage * 1100 + 4096)
        throw_schema(file_name, path,
                     "declares " + std::to_string(shape[0]) + " tokens but stores only " +
                         std::to_string(storage) + " bytes; the file is damaged");
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(shape[0]));
    if (!tokens.empty())
        check(H5Dread(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens.data()),
              file_name, path, "reading tokens");
    return tokens;
}

std::vector<std::string> split_dims(const std::string& dims) {
    std::vector<std::string> out;
    if (dims.empty()) return out;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = dims.find(',', start);
        out.push_back(dims.substr(start, comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(shape[i]);
    }
    return out + "]";
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace attnscope::store::detail
