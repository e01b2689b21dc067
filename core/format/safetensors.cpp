// safetensors reading: POSIX mmap, header validation, checkpoint folders (single file, sharded
// index, or loose *.safetensors). Every check happens before a tensor pointer is handed out, so
// callers may trust TensorView::data/nbytes without re-checking bounds.
#include "core/format/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace attnscope::format {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Same cap as the reference implementation (safetensors crate, MAX_HEADER_SIZE): a larger
// header is a corrupt length prefix or an attack on the JSON parser, never a real checkpoint.
constexpr std::uint64_t kMaxHeaderSize = 100'000'000;

const char* const kPickleHelp =
    "PyTorch pickle checkpoints are refused because loading them can execute arbitrary code. "
    "Convert the folder to safetensors once, in a trusted Python environment, e.g.: "
    "python3 -c \"from transformers import AutoModelForCausalLM as M; "
    "M.from_pretrained('DIR').save_pretrained('DIR', safe_serialization=True)\"";

[[noreturn]] void fail(const std::string& source, const std::string& what) {
    throw WeightsError(source + ": " + what);
}

// Names come from untrusted JSON; keep control characters out of error messages.
std::string printable(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string tensor_ref(const std::string& name) { return "tensor '" + printable(name) + "'"; }

// "number -3", "string \"x\"" ...: what a field actually held, for messages.
std::string describe(const json& v) {
    std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "boolean " + text;
        case json::value_t::string: return "string " + printable(text);
        case json::value_t::array: return "array " + printable(text);
        case json::value_t::object: return "object " + printable(text);
        default: return "number " + text;
    }
}

// Parses JSON text, rejecting duplicate keys in any object. nlohmann (like Python's json) keeps
// the last duplicate silently; for a weights header that would hide a second, conflicting entry
// for the same tensor, so the duplicate is reported instead. `what` names the text in messages.
json parse_json_strict(const char* first, const char* last, const std::string& source,
                       const std::string& what) {
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    bool duplicate_at_top = false;
    auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
        switch (event) {
            case json::parse_event_t::object_start: open_objects.emplace_back(); break;
            case json::parse_event_t::object_end:
                if (!open_objects.empty()) open_objects.pop_back();
                break;
            case json::parse_event_t::key:
                if (!open_objects.empty() && parsed.is_string() &&
                    !open_objects.back().insert(parsed.get_ref<const std::string&>()).second &&
                    duplicate.empty()) {
                    duplicate = parsed.get_ref<const std::string&>();
                    duplicate_at_top = open_objects.size() == 1;
                }
                break;
            default: break;
        }
        return true;
    };
    json doc;
    try {
        doc = json::parse(first, last, callback);
    } catch (const json::parse_error& e) {
        fail(source, what + " is not valid JSON (error at byte " + std::to_string(e.byte) +
                         " of the " + what + "): " + e.what() +
                         "; the file is corrupt or not in this format");
    } catch (const json::exception& e) {
        fail(source, what + " is not valid JSON: " + e.what());
    }
    if (!duplicate.empty()) {
        if (duplicate_at_top) {
            fail(source, "key '" + printable(duplicate) + "' appears more than once in the " +
                             what + "; the file is ambiguous (which entry is meant?) - "
                             "re-export it");
        }
        fail(source, "key '" + printable(duplicate) + "' appears more than once in one object " +
                         "of the " + what + "; the file is ambiguous - re-export it");
    }
    return doc;
}

const std::vector<std::pair<const char*, DType>>& dtype_names() {
    static const std::vector<std::pair<const char*, DType>> names = {
        {"F64", DType::kF64},   {"F32", DType::kF32},         {"F16", DType::kF16},
        {"BF16", DType::kBF16}, {"I64", DType::kI64},         {"I32", DType::kI32},
        {"I16", DType::kI16},   {"I8", DType::kI8},           {"U8", DType::kU8},
        {"BOOL", DType::kBool}, {"F8_E4M3", DType::kF8E4M3}, {"F8_E5M2", DType::kF8E5M2},
    };
    return names;
}

std::string known_dtypes() {
    std::string out;
    for (const auto& [name, dtype] : dtype_names()) {
        if (!out.empty()) out += ", ";
        out += name;
    }
    return out;
}

bool get_u64(const json& v, std::uint64_t& out) {
    if (v.is_number_unsigned()) {
        out = v.get<std::uint64_t>();
        return true;
    }
    // nlohmann stores non-negative literals as unsigned; a signed integer here is negative.
    return false;
}

struct Range {
    std::uint64_t begin;
    std::uint64_t end;
    std::size_t index;
};

std::vector<TensorView> parse_impl(const std::byte* data, std::size_t size,
                                   const std::string& source,
                                   const std::shared_ptr<const MappedFile>& file,
                                   std::map<std::string, std::string>* metadata_out) {
    if (size < 8) {
        fail(source, "file is " + std::to_string(size) +
                         " bytes, shorter than the 8-byte header length; it is truncated or not "
                         "a safetensors file - re-download or re-export it");
    }
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) {
        header_len = (header_len << 8) | static_cast<std::uint64_t>(data[i]);
    }
    // The cap first: an absurd length says "corrupt" more precisely than "truncated".
    if (header_len > kMaxHeaderSize) {
        fail(source, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                         std::to_string(kMaxHeaderSize) +
                         " bytes; the file is corrupt or not a safetensors file");
    }
    if (header_len > size - 8) {
        fail(source, "header length " + std::to_string(header_len) +
                         " runs past the end of the file (" + std::to_string(size) +
                         " bytes); the file is truncated or not a safetensors file - "
                         "re-download or re-export it");
    }
    const char* header = reinterpret_cast<const char*>(data + 8);
    const json doc = parse_json_strict(header, header + header_len, source, "header");
    if (!doc.is_object()) {
        fail(source, "header must be a JSON object, found " + describe(doc));
    }

    const std::byte* section = data + 8 + header_len;
    const std::uint64_t section_size = size - 8 - header_len;

    std::vector<TensorView> tensors;
    std::vector<Range> ranges;
    tensors.reserve(doc.size());
    ranges.reserve(doc.size());
    for (const auto& [name, entry] : doc.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object()) {
                fail(source, "__metadata__ must be an object of strings, found " +
                                 describe(entry));
            }
            for (const auto& [key, value] : entry.items()) {
                if (!value.is_string()) {
                    fail(source, "__metadata__ entry '" + printable(key) +
                                     "' must be a string, found " + describe(value));
                }
                if (metadata_out) (*metadata_out)[key] = value.get<std::string>();
            }
            continue;
        }
        const std::string where = tensor_ref(name);
        if (!entry.is_object()) {
            fail(source, where + ": entry must be an object {dtype, shape, data_offsets}, found " +
                             describe(entry));
        }
        for (const char* key : {"dtype", "shape", "data_offsets"}) {
            if (!entry.contains(key)) fail(source, where + ": '" + key + "' is missing");
        }

        TensorView view;
        view.name = name;
        view.file = file;

        const json& dtype = entry["dtype"];
        if (!dtype.is_string()) {
            fail(source, where + ": dtype must be a string, found " + describe(dtype));
        }
        const auto& dtype_str = dtype.get_ref<const std::string&>();
        const auto& names = dtype_names();
        auto it = std::find_if(names.begin(), names.end(),
                               [&](const auto& p) { return dtype_str == p.first; });
        if (it == names.end()) {
            fail(source, where + ": unknown dtype '" + printable(dtype_str) +
                             "'; known: " + known_dtypes());
        }
        view.dtype = it->second;

        const json& shape = entry["shape"];
        if (!shape.is_array()) {
            fail(source, where + ": shape must be an array of non-negative integers, found " +
                             describe(shape));
        }
        bool has_zero = false;
        for (const json& dim : shape) {
            std::uint64_t d = 0;
            if (!get_u64(dim, d) ||
                d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                fail(source, where + ": shape " + printable(shape.dump()) +
                                 " has a dimension that is not a non-negative integer: " +
                                 describe(dim));
            }
            has_zero = has_zero || d == 0;
            view.shape.push_back(static_cast<std::int64_t>(d));
        }
        // Element count with overflow guard. A zero dimension makes the product 0 however large
        // the other dimensions are, so it is not an overflow.
        std::uint64_t numel = 1;
        if (has_zero) {
            numel = 0;
        } else {
            const std::uint64_t limit =
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
            for (std::int64_t d : view.shape) {
                const auto ud = static_cast<std::uint64_t>(d);
                if (numel > limit / ud) {
                    fail(source, where + ": shape " + shape.dump() +
                                     " has more elements than fit in 64 bits");
                }
                numel *= ud;
            }
        }
        const std::uint64_t elem = dtype_size(view.dtype);
        if (numel > std::numeric_limits<std::uint64_t>::max() / elem) {
            fail(source, where + ": shape " + shape.dump() + " is too large for 64-bit sizes");
        }
        const std::uint64_t expected_bytes = numel * elem;

        const json& offsets = entry["data_offsets"];
        std::uint64_t begin = 0;
        std::uint64_t end = 0;
        if (!offsets.is_array() || offsets.size() != 2 || !get_u64(offsets[0], begin) ||
            !get_u64(offsets[1], end)) {
            fail(source, where + ": data_offsets must be [begin, end], two non-negative "
                                 "integers, found " + describe(offsets));
        }
        if (begin > end) {
            fail(source, where + ": data_offsets [" + std::to_string(begin) + ", " +
                             std::to_string(end) + "] are reversed (begin > end)");
        }
        if (end > section_size) {
            fail(source, where + ": data_offsets [" + std::to_string(begin) + ", " +
                             std::to_string(end) + "] run past the end of the data section (" +
                             std::to_string(section_size) +
                             " bytes); the file is truncated - re-download it");
        }
        if (end - begin != expected_bytes) {
            fail(source, where + ": holds " + std::to_string(end - begin) + " bytes but dtype " +
                             dtype_str + " x shape " + shape.dump() + " needs " +
                             std::to_string(expected_bytes) + " bytes");
        }
        view.data = section + begin;
        view.nbytes = static_cast<std::size_t>(end - begin);
        ranges.push_back({begin, end, tensors.size()});
        tensors.push_back(std::move(view));
    }

    // Overlap check. The spec also forbids holes, but writers in the wild (and alignment
    // padding) leave gaps; a gap cannot make one tensor alias another, an overlap can.
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    const Range* furthest = nullptr;  // the non-empty range with the largest end so far
    for (const Range& r : ranges) {
        if (r.begin == r.end) continue;  // an empty tensor occupies no bytes
        if (furthest && r.begin < furthest->end) {
            fail(source, tensor_ref(tensors[r.index].name) + " (bytes " +
                             std::to_string(r.begin) + ".." + std::to_string(r.end) +
                             ") overlaps " + tensor_ref(tensors[furthest->index].name) +
                             " (bytes " + std::to_string(furthest->begin) + ".." +
                             std::to_string(furthest->end) + "); the file is corrupt");
        }
        if (!furthest || r.end > furthest->end) furthest = &r;
    }
    return tensors;
}

std::string path_string(const fs::path& p) { return p.string(); }

bool is_regular(const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);  // follows symlinks (Hugging Face cache snapshots)
}

}  // namespace

std::string to_string(DType dtype) {
    for (const auto& [name, d] : dtype_names()) {
        if (d == dtype) return name;
    }
    return "?";
}

std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::kF64:
        case DType::kI64: return 8;
        case DType::kF32:
        case DType::kI32: return 4;
        case DType::kF16:
        case DType::kBF16:
        case DType::kI16: return 2;
        case DType::kI8:
        case DType::kU8:
        case DType::kBool:
        case DType::kF8E4M3:
        case DType::kF8E5M2: return 1;
    }
    return 1;
}

// ---- MappedFile ----

MappedFile::MappedFile(const fs::path& path) : path_(path) {
    // O_NONBLOCK so that a FIFO named like a checkpoint cannot hang open(); it is then rejected
    // as not a regular file.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        const int err = errno;
        throw IoError(path_string(path) + ": cannot open: " + std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw IoError(path_string(path) + ": cannot stat: " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw IoError(path_string(path) + ": not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {  // mmap of length 0 fails with EINVAL; an empty file maps to nothing
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw IoError(path_string(path) + ": cannot memory-map " + std::to_string(size_) +
                          " bytes: " + std::strerror(err));
        }
        data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() noexcept {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

// ---- TensorView ----

std::int64_t TensorView::numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;  // validated at parse time not to overflow
    return n;
}

// ---- SafetensorsFile ----

SafetensorsFile SafetensorsFile::open(const fs::path& path) {
    return parse(std::make_shared<const MappedFile>(path), path_string(path));
}

SafetensorsFile SafetensorsFile::parse(std::shared_ptr<const MappedFile> file,
                                       const std::string& source) {
    if (!file) throw WeightsError(source + ": no file to parse (null MappedFile)");
    SafetensorsFile out;
    out.path_ = file->path();
    out.tensors_ = parse_impl(file->data(), file->size(), source, file, &out.metadata_);
    return out;
}

std::vector<TensorView> SafetensorsFile::parse_buffer(const std::byte* data, std::size_t size,
                                                      const std::string& source) {
    if (!data && size > 0) throw WeightsError(source + ": null buffer");
    return parse_impl(data, size, source, nullptr, nullptr);
}

// ---- Checkpoint ----

namespace {

const char* const kIndexName = "model.safetensors.index.json";

// A shard name from the index must be a plain file name in the checkpoint folder; anything else
// ("../x", "/etc/y", "sub/z") would let a downloaded index point the loader at arbitrary files.
bool is_plain_file_name(const std::string& name) {
    if (name.empty() || name == "." || name == "..") return false;
    if (name.find_first_of(std::string("/\\\0", 3)) != std::string::npos) return false;
    return name.find("..") == std::string::npos;
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path_string(path) + ": cannot open: " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw IoError(path_string(path) + ": read error");
    return ss.str();
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
    std::string out;
    for (const auto& s : items) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        throw IoError(path_string(dir) + ": not a directory (expected a Hugging Face model "
                                         "folder with *.safetensors)");
    }
    Checkpoint ckpt;
    ckpt.dir_ = dir;
    const std::string dir_str = path_string(dir);

    auto add_file = [&](const SafetensorsFile& f) {
        ckpt.files_.push_back(f.path());
        for (const TensorView& t : f.tensors()) {
            auto [it, inserted] = ckpt.tensors_.emplace(t.name, t);
            if (!inserted) {
                throw WeightsError(dir_str + ": " + tensor_ref(t.name) + " appears in both " +
                                   path_string(it->second.file->path().filename()) + " and " +
                                   path_string(f.path().filename()) +
                                   "; remove the stray file or re-export the checkpoint");
            }
        }
    };

    const fs::path index_path = dir / kIndexName;
    if (fs::exists(index_path, ec) && !is_regular(index_path)) {
        throw WeightsError(path_string(index_path) + ": not a regular file");
    }
    if (fs::exists(index_path, ec)) {
        const std::string src = path_string(index_path);
        const std::string text = read_text(index_path);
        const json doc = parse_json_strict(text.data(), text.data() + text.size(), src, "index");
        if (!doc.is_object() || !doc.contains("weight_map") || !doc["weight_map"].is_object()) {
            throw WeightsError(src + ": expected an object with \"weight_map\": {tensor: shard "
                                     "file}; the index is malformed - re-download it");
        }
        // shard file -> tensors the index assigns to it (std::map: shards load in name order,
        // which is the numeric order for model-0000i-of-0000n names).
        std::map<std::string, std::set<std::string>> shards;
        std::map<std::string, std::string> owner;
        for (const auto& [tensor, shard] : doc["weight_map"].items()) {
            if (!shard.is_string()) {
                throw WeightsError(src + ": weight_map entry for " + tensor_ref(tensor) +
                                   " must be a shard file name, found " + describe(shard));
            }
            const auto& shard_name = shard.get_ref<const std::string&>();
            if (!is_plain_file_name(shard_name)) {
                throw WeightsError(src + ": weight_map entry for " + tensor_ref(tensor) +
                                   " names shard '" + printable(shard_name) +
                                   "', which is not a plain file name inside " + dir_str +
                                   " (path traversal is refused)");
            }
            shards[shard_name].insert(tensor);
            owner[tensor] = shard_name;
        }
        if (shards.empty()) {
            throw WeightsError(src + ": weight_map is empty; the index lists no tensors");
        }
        std::vector<std::string> missing;
        for (const auto& [shard, tensors] : shards) {
            if (!is_regular(dir / shard)) missing.push_back(shard);
        }
        if (!missing.empty()) {
            throw WeightsError(src + ": shard file" + (missing.size() > 1 ? "s " : " ") +
                               join(missing, ", ") + " listed in the index " +
                               (missing.size() > 1 ? "are" : "is") + " missing from " + dir_str +
                               "; the download is incomplete - download the missing shards");
        }
        for (const auto& [shard, listed] : shards) {
            const SafetensorsFile f = SafetensorsFile::open(dir / shard);
            std::set<std::string> present;
            for (const TensorView& t : f.tensors()) {
                auto it = owner.find(t.name);
                if (it == owner.end()) {
                    throw WeightsError(path_string(f.path()) + ": unexpected " +
                                       tensor_ref(t.name) + " not in index " + kIndexName +
                                       "; the index and shards disagree - re-download both");
                }
                if (it->second != shard) {
                    throw WeightsError(path_string(f.path()) + ": " + tensor_ref(t.name) +
                                       " is assigned to shard " + it->second + " by " +
                                       kIndexName + "; the index and shards disagree - "
                                       "re-download both");
                }
                present.insert(t.name);
            }
            for (const std::string& name : listed) {
                if (!present.count(name)) {
                    throw WeightsError(path_string(f.path()) + ": " + tensor_ref(name) +
                                       " is listed for this shard in " + kIndexName +
                                       " but missing from it; the shard is stale or "
                                       "corrupt - re-download it");
                }
            }
            add_file(f);
        }
        return ckpt;
    }

    const fs::path single = dir / "model.safetensors";
    if (is_regular(single)) {
        add_file(SafetensorsFile::open(single));
        return ckpt;
    }

    std::vector<fs::path> found;
    std::vector<std::string> pickles;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const fs::path& p = it->path();
        if (!is_regular(p)) continue;
        const std::string ext = path_string(p.extension());
        if (ext == ".safetensors") {
            found.push_back(p);
        } else if (ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".ckpt") {
            pickles.push_back(path_string(p.filename()));
        }
    }
    if (ec) throw IoError(dir_str + ": cannot list the folder: " + ec.message());
    if (found.empty()) {
        if (!pickles.empty()) {
            std::sort(pickles.begin(), pickles.end());
            std::string help = kPickleHelp;
            for (std::size_t pos; (pos = help.find("DIR")) != std::string::npos;) {
                help.replace(pos, 3, dir_str);
            }
            throw WeightsError(dir_str + ": no *.safetensors, only PyTorch pickle files (" +
                               join(pickles, ", ") + "). " + help);
        }
        throw WeightsError("no *.safetensors in " + dir_str +
                           "; expected model.safetensors or sharded model-*.safetensors with " +
                           kIndexName);
    }
    std::sort(found.begin(), found.end());
    for (const fs::path& p : found) add_file(SafetensorsFile::open(p));
    return ckpt;
}

const TensorView* Checkpoint::find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& Checkpoint::at(const std::string& name) const {
    if (const TensorView* t = find(name)) return *t;
    throw WeightsError(path_string(dir_) + ": " + tensor_ref(name) + " not found in the " +
                       "checkpoint (" + std::to_string(tensors_.size()) +
                       " tensors); the checkpoint does not match the expected architecture");
}

std::vector<std::string> Checkpoint::names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& [name, t] : tensors_) out.push_back(name);
    return out;
}

std::size_t Checkpoint::total_bytes() const {
    std::size_t total = 0;
    for (const auto& [name, t] : tensors_) total += t.nbytes;
    return total;
}

}  // namespace attnscope::format
