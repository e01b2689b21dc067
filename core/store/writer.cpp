// The store writer: opening rules for existing files, prompts shared across runs, causal map
// tiles, generic hook arrays and metrics, per-prompt flush. See writer.h and
// docs/hdf5-schema.md.
#include "core/store/writer.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/base/hook_name.h"
#include "core/base/utf8.h"
#include "core/store/detail/h5.h"
#include "core/store/detail/layout.h"
#include "core/store/half.h"
#include "core/store/schema.h"

namespace attnscope::store {

using detail::check;
using detail::check_id;
using detail::Id;

// --- small value helpers (declared in types.h) ---------------------------------------------------

const char* to_string(DType dtype) {
    return dtype == DType::kF16 ? schema::kDtypeF16 : schema::kDtypeF32;
}

DType parse_dtype(const std::string& text) {
    if (text == "f16" || text == "float16") return DType::kF16;
    if (text == "f32" || text == "float32") return DType::kF32;
    throw ConfigError("map dtype '" + text +
                      "' is not supported; use f16 or f32 (bfloat16 is "
                      "never stored: NumPy cannot read it)");
}

std::int64_t FloatRef::numel() const {
    std::int64_t n = 1;
    for (const auto d : shape) n *= d;
    return n;
}

FloatArray FloatArray::from_f32(std::vector<float> values, std::vector<std::int64_t> shape) {
    FloatArray a;
    a.element = Element::kF32;
    a.f32 = std::move(values);
    a.shape = std::move(shape);
    return a;
}

FloatArray FloatArray::from_f16_bits(std::vector<std::uint16_t> bits,
                                     std::vector<std::int64_t> shape) {
    FloatArray a;
    a.element = Element::kF16Bits;
    a.f16 = std::move(bits);
    a.shape = std::move(shape);
    return a;
}

FloatArray FloatArray::borrow(Element element, const void* data, std::vector<std::int64_t> shape,
                              std::shared_ptr<const void> owner) {
    FloatArray a;
    a.element = element;
    a.shape = std::move(shape);
    a.external = data;
    a.owner = std::move(owner);
    return a;
}

std::size_t FloatArray::nbytes() const {
    if (external) {
        std::size_t n = element == Element::kF32 ? 4 : 2;
        for (const auto d : shape) n *= static_cast<std::size_t>(d);
        return n;
    }
    return f32.size() * 4 + f16.size() * 2;
}

FloatRef FloatArray::ref() const {
    if (external) return {element, external, shape};
    if (element == Element::kF32) return FloatRef::f32(f32.data(), shape);
    return FloatRef::f16_bits(f16.data(), shape);
}

namespace {

// Display-safe UTF-8 without NUL (HDF5 variable-length strings are C strings).
std::string display_utf8(const std::string& bytes) {
    std::string s = utf8::escape_invalid(bytes);
    if (s.find('\0') == std::string::npos) return s;
    std::string out;
    out.reserve(s.size() + 8);
    for (const char c : s) {
        if (c == '\0')
            out += "\\x00";
        else
            out += c;
    }
    return out;
}

std::string json_list(const std::vector<std::string>& items) {
    return nlohmann::json(items).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

constexpr std::size_t kTargetChunkBytes = 256 * 1024;  // non-map arrays
constexpr std::size_t kSlabBytes = 16 * 1024 * 1024;   // conversion buffer for big arrays

std::size_t element_size(DType t) { return t == DType::kF16 ? 2 : 4; }

// The type an array is stored with.
Id file_type(DType t) {
    if (t == DType::kF16) return detail::half_type();
    return Id(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
}

// Converts `n` elements of `src` (starting at element `offset`) into `dst` of storage type `to`.
void convert(const FloatRef& src, std::size_t offset, std::size_t n, DType to, void* dst) {
    if (src.element == Element::kF32) {
        const float* in = static_cast<const float*>(src.data) + offset;
        if (to == DType::kF32)
            std::memcpy(dst, in, n * 4);
        else
            floats_to_halves(in, static_cast<std::uint16_t*>(dst), n);
    } else {
        const auto* in = static_cast<const std::uint16_t*>(src.data) + offset;
        if (to == DType::kF16)
            std::memcpy(dst, in, n * 2);
        else
            halves_to_floats(in, static_cast<float*>(dst), n);
    }
}

// True when every stored element of the tile equals `fill` (value comparison: -0 == 0).
bool tile_is_fill(const void* tile, std::size_t n, DType t, float fill) {
    if (t == DType::kF32) {
        const float* v = static_cast<const float*>(tile);
        for (std::size_t i = 0; i < n; ++i)
            if (!(v[i] == fill)) return false;
        return true;
    }
    const auto* v = static_cast<const std::uint16_t*>(tile);
    if (fill == 0.0f) {
        for (std::size_t i = 0; i < n; ++i)
            if ((v[i] & 0x7fffu) != 0) return false;
        return true;
    }
    const std::uint16_t bits = float_to_half(fill);
    for (std::size_t i = 0; i < n; ++i)
        if (v[i] != bits) return false;
    return true;
}

}  // namespace

// --- Impl ---------------------------------------------------------------------------------------

struct Writer::Impl {
    std::filesystem::path path;
    std::string file;  // for messages
    ModelInfo model;
    RunInfo run;
    WriterOptions options;

    Id fid;
    Id run_group;
    Id prompt_group;  // the open prompt's run group (/runs/<run>/prompts/<id>)
    std::string run_path;

    bool created = false;  // this writer created (or truncated) the file
    bool closed = false;
    bool failed = false;  // a write failed: nothing more may reach the file
    std::string failure;  // the first failure's message

    bool prompt_open = false;
    std::int64_t prompt_id = -1;
    std::int64_t n_tokens = 0;
    std::int64_t n_prompt_tokens = 0;
    std::string prompt_path;  // /runs/<run>/prompts/<id>
    std::int64_t done = 0;

    // Disk-space reservation (see reserve()): file size after the last flush, an upper bound
    // of what HDF5 allocated since, and how far blocks are reserved.
    std::uint64_t committed = 0;
    std::uint64_t pending = 0;
    std::uint64_t reserved_end = 0;
    void reserve(std::uint64_t bytes, const std::string& where);
    void flushed();

    void open_or_create();
    IoError locked(const std::string& stack) const;
    void create_file();
    void write_run_group();
    void require_usable(const char* call) const;
    void write_prompt_entry(const Prompt& p, const std::vector<std::string>& token_str);
    void drop_prompt_everywhere(std::int64_t id);
    std::int64_t count_complete(const std::string& run_prompts_path);
    Id create_dataset(const std::string& path, DType dtype, const std::vector<std::int64_t>& shape,
                      const std::vector<hsize_t>& chunk, bool with_fill, float fill);
    void write_map(hid_t ds, const std::string& path, const FloatRef& data, DType dtype,
                   float fill);
    void write_array(hid_t ds, const std::string& path, const FloatRef& data, DType dtype);
    void write_array_attrs(hid_t ds, const std::string& path, const std::string& dims,
                           std::int64_t layer, const std::vector<std::int64_t>* heads);
    void write_float_dataset(const std::string& path, const std::string& label,
                             const FloatRef& data, DType dtype, const std::string& dims,
                             const std::vector<std::int64_t>* heads, std::int64_t layer,
                             bool is_map, float fill, const MetricInfo* metric);
    void abandon() noexcept;

    // Runs `fn`; an IoError marks the writer failed (the file keeps its last flushed state and
    // nothing more is written to it).
    template <class Fn>
    void guard(Fn&& fn) {
        try {
            fn();
        } catch (const IoError& e) {
            if (!failed) {
                failed = true;
                failure = e.what();
            }
            throw;
        }
    }
};

namespace {

void validate_model(const ModelInfo& m) {
    if (m.arch.empty()) throw ConfigError("store: model arch is empty; pass the config's arch");
    const std::pair<const char*, std::int64_t> sizes[] = {
        {"n_layers", m.n_layers}, {"n_heads", m.n_heads}, {"n_kv_heads", m.n_kv_heads},
        {"d_model", m.d_model},   {"d_head", m.d_head},   {"vocab_size", m.vocab_size}};
    for (const auto& [name, v] : sizes)
        if (v <= 0)
            throw ConfigError(std::string("store: model ") + name + " is " + std::to_string(v) +
                              ", must be > 0");
    if (m.n_kv_heads > m.n_heads)
        throw ConfigError("store: model n_kv_heads " + std::to_string(m.n_kv_heads) +
                          " exceeds n_heads " + std::to_string(m.n_heads));
}

void validate_run(const RunInfo& r) {
    if (!schema::is_valid_run_name(r.name))
        throw ConfigError("store: run name '" + r.name +
                          "' is not valid; use 1-64 characters of A-Z a-z 0-9 _ . - (not "
                          "starting with . or -)");
    const auto j = nlohmann::json::parse(r.intervention_json, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw ConfigError("store: run '" + r.name + "' intervention is not a JSON object: " +
                          r.intervention_json.substr(0, 80));
}

}  // namespace

// A full disk must surface before HDF5 writes, not in the middle of a metadata flush (which
// would leave a superblock pointing past the end of the file). So before each write, blocks
// are reserved (fallocate) for everything HDF5 may have allocated since the last flush: the
// array bytes plus slack for metadata. The reserved tail is trimmed at close.
void Writer::Impl::reserve(std::uint64_t bytes, const std::string& where) {
    constexpr std::uint64_t kSlack = 256 * 1024;   // object headers, B-tree nodes, heaps
    constexpr std::uint64_t kAhead = 1024 * 1024;  // reserve in steps, not per array
    pending += bytes + bytes / 64 + kSlack;
    const std::uint64_t need = committed + pending;
    if (need <= reserved_end) return;
    std::uint64_t target = need + kAhead;
    int err = detail::reserve_space(fid.get(), target);
    if (err != 0) {
        target = need;  // a small disk: reserve just what is needed
        err = detail::reserve_space(fid.get(), target);
    }
    if (err != 0)
        throw IoError(file + ": " + where + ": reserving " +
                      std::to_string((target - committed) >> 20) + " MiB of disk space failed (" +
                      std::strerror(err) +
                      "); free disk space and capture again; the file keeps the " +
                      std::to_string(done) + " prompts finished before");
    reserved_end = target;
}

void Writer::Impl::flushed() {
    committed = detail::file_size(fid.get());
    pending = 0;
}

void Writer::Impl::require_usable(const char* call) const {
    if (closed) throw std::logic_error(std::string("store::Writer::") + call + " after close");
    if (failed)
        throw IoError(file + ": an earlier write failed (" + failure +
                      "); the file holds the prompts finished before it; start a new run");
}

IoError Writer::Impl::locked(const std::string& stack) const {
    return IoError(file +
                   ": cannot open for writing: another process is writing it (HDF5 file "
                   "lock: " +
                   stack + "); wait for it to finish or choose another file");
}

void Writer::Impl::open_or_create() {
    std::error_code ec;
    const bool present = std::filesystem::exists(path, ec) || std::filesystem::is_symlink(path, ec);
    if (!present) return create_file();
    if (std::filesystem::is_directory(path, ec))
        throw IoError(file + " is a directory; pass a file name for --out");
    if (options.truncate) return create_file();

    // Classify what is there, read-only first: never modify a file before knowing it is ours.
    const htri_t is_hdf5 = detail::is_hdf5_file(file);
    std::string not_ours;
    if (is_hdf5 <= 0) {
        const std::string stack = detail::take_error_stack();
        not_ours = is_hdf5 == 0 ? "not an HDF5 file" : "cannot be read as HDF5: " + stack;
    } else {
        Id probe(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
        if (!probe.valid()) {
            const std::string stack = detail::take_error_stack();
            if (stack.find("lock") != std::string::npos) throw locked(stack);
            not_ours = "an HDF5 file that cannot be opened (" + stack + ")";
        } else {
            const detail::VersionCheck v = detail::check_version(probe.get(), file);
            if (v.status == detail::VersionCheck::Status::kNotAttnscope) {
                not_ours = "not an attnscope file: " + v.reason;
            } else if (v.status == detail::VersionCheck::Status::kOtherMajor) {
                throw SchemaError(detail::other_major_message(file, v.info, true));
            } else {
                ModelInfo there;
                std::string diff;
                try {
                    there = detail::read_model(probe.get(), file);
                    diff = detail::model_differences(there, model);
                } catch (const SchemaError& e) {
                    not_ours = std::string("a damaged attnscope file (") + e.what() + ")";
                }
                if (!diff.empty()) {
                    if (!options.force)
                        throw SchemaError(file + " holds captures of another model (" + diff +
                                          "); one file holds one model: write to a new file, "
                                          "or pass --force to overwrite " +
                                          file + " and lose its runs");
                    probe.reset();
                    return create_file();
                }
            }
        }
    }
    if (!not_ours.empty()) {
        if (!options.force)
            throw IoError(file + " exists and is " + not_ours +
                          "; pass --force to overwrite it or choose another name");
        return create_file();
    }

    // Ours and the same model: append a run.
    Id fapl = check_id(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, file, "", "creating properties");
    detail::configure_writer_access(fapl.get());
    fid = Id(H5Fopen(file.c_str(), H5F_ACC_RDWR, fapl.get()), H5Fclose);
    if (!fid.valid()) {
        const std::string stack = detail::take_error_stack();
        if (stack.find("lock") != std::string::npos) throw locked(stack);
        throw IoError(file + ": opening for writing failed (HDF5: " + stack +
                      "); check permissions and free space");
    }
    detail::open_group(fid.get(), schema::kPromptsGroup, file);
    detail::open_group(fid.get(), schema::kRunsGroup, file);
    run_path = schema::run_path(run.name);
    if (detail::exists(fid.get(), run_path)) {
        if (!options.force)
            throw IoError(file + ": run '" + run.name +
                          "' already exists; pass --force to replace it or choose another "
                          "--run name");
        check(H5Ldelete(fid.get(), run_path.c_str(), H5P_DEFAULT), file, run_path,
              "deleting the old run for --force");
    }
}

void Writer::Impl::create_file() {
    Id fapl = check_id(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, file, "", "creating properties");
    detail::configure_writer_access(fapl.get());
    // Default (earliest) format on purpose: no superblock "open for write" flag, so a crashed
    // writer leaves a file any reader opens without h5clear, and h5py of any age reads it.
    fid = Id(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
    if (!fid.valid()) {
        const std::string stack = detail::take_error_stack();
        if (stack.find("lock") != std::string::npos)
            throw IoError(file +
                          ": cannot create: another process has it open (HDF5 file "
                          "lock: " +
                          stack + "); choose another file");
        throw IoError(file + ": creating the file failed (HDF5: " + stack +
                      "); check that the directory exists and is writable");
    }
    created = true;
    const hid_t f = fid.get();
    detail::write_attr(f, schema::kAttrSchema, std::string(schema::kSchemaName), file, "/");
    detail::write_attr(f, schema::kAttrSchemaVersion, std::string(schema::kVersion), file, "/");
    detail::write_attr(f, schema::kAttrCreatedBy, display_utf8(options.created_by), file, "/");
    detail::write_attr(f, schema::kAttrCreatedUtc, detail::utc_now(), file, "/");

    const std::string mp = schema::kModelGroup;
    Id mg = detail::create_group(f, mp, file);
    const hid_t g = mg.get();
    detail::write_attr(g, schema::kAttrArch, display_utf8(model.arch), file, mp);
    detail::write_attr(g, schema::kAttrNLayers, model.n_layers, file, mp);
    detail::write_attr(g, schema::kAttrNHeads, model.n_heads, file, mp);
    detail::write_attr(g, schema::kAttrNKvHeads, model.n_kv_heads, file, mp);
    detail::write_attr(g, schema::kAttrDModel, model.d_model, file, mp);
    detail::write_attr(g, schema::kAttrDHead, model.d_head, file, mp);
    detail::write_attr(g, schema::kAttrVocabSize, model.vocab_size, file, mp);
    detail::write_attr(g, schema::kAttrSource, display_utf8(model.source), file, mp);
    detail::write_attr(g, schema::kAttrWeightsSha256, display_utf8(model.weights_sha256), file, mp);
    detail::write_string_dataset(f, schema::kConfigJson, display_utf8(model.config_json), file,
                                 schema::kConfigJson);
    detail::create_group(f, schema::kPromptsGroup, file);
    detail::create_group(f, schema::kRunsGroup, file);
    run_path = schema::run_path(run.name);
}

void Writer::Impl::write_run_group() {
    flushed();  // nothing is flushed yet, but nothing of the file is on disk beyond its size
    reserve(model.config_json.size(), run_path);
    run_group = detail::create_group(fid.get(), run_path, file);
    const hid_t g = run_group.get();
    const std::string& p = run_path;
    detail::write_attr(g, schema::kAttrIntervention, display_utf8(run.intervention_json), file, p);
    detail::write_attr(g, schema::kAttrHooks, json_list(run.hooks), file, p);
    detail::write_attr(g, schema::kAttrSeed, run.seed, file, p);
    detail::write_attr(g, schema::kAttrArgv, json_list(run.argv), file, p);
    detail::write_attr(g, schema::kAttrVersion, display_utf8(run.version), file, p);
    detail::write_attr(g, schema::kAttrCreatedUtc, detail::utc_now(), file, p);
    detail::write_attr(g, schema::kAttrMapDtype, std::string(to_string(run.map_dtype)), file, p);
    detail::write_attr(g, schema::kAttrNPromptsDone, std::int64_t{0}, file, p);
    detail::write_attr_bool(g, schema::kAttrComplete, false, file, p);
    detail::create_group(g, schema::kRunPrompts, file);
    check(H5Fflush(fid.get(), H5F_SCOPE_GLOBAL), file, "", "flushing");
    flushed();
}

void Writer::Impl::write_prompt_entry(const Prompt& p, const std::vector<std::string>& token_str) {
    const std::string pp = schema::prompt_path(p.id);
    Id g = detail::create_group(fid.get(), pp, file);
    detail::write_attr(g.get(), schema::kAttrText, display_utf8(p.text), file, pp);
    detail::write_attr(g.get(), schema::kAttrSource, display_utf8(p.source), file, pp);
    detail::write_attr(g.get(), schema::kAttrNTokens, static_cast<std::int64_t>(p.tokens.size()),
                       file, pp);
    detail::write_attr(g.get(), schema::kAttrNPromptTokens, n_prompt_tokens, file, pp);
    const std::string tp = pp + "/" + schema::kTokens;
    const hsize_t n = p.tokens.size();
    Id space = check_id(H5Screate_simple(1, &n, nullptr), H5Sclose, file, tp, "writing tokens");
    Id ds = check_id(H5Dcreate2(g.get(), schema::kTokens, H5T_STD_I32LE, space.get(), H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT),
                     H5Dclose, file, tp, "writing tokens");
    check(H5Dwrite(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.tokens.data()),
          file, tp, "writing tokens");
    detail::write_attr(ds.get(), schema::kAttrDims, std::string("pos"), file, tp);
    const std::string sp = pp + "/" + schema::kTokenStr;
    detail::write_strings_dataset(g.get(), schema::kTokenStr, token_str, file, sp);
    Id sds = detail::open_dataset(g.get(), schema::kTokenStr, file);
    detail::write_attr(sds.get(), schema::kAttrDims, std::string("pos"), file, sp);
}

std::int64_t Writer::Impl::count_complete(const std::string& run_prompts_path) {
    Id g = detail::open_group(fid.get(), run_prompts_path, file);
    std::int64_t n = 0;
    for (const auto& name : detail::list_links(g.get(), run_prompts_path, file)) {
        Id pg = detail::open_group(g.get(), name, file);
        if (detail::has_attr(pg.get(), schema::kAttrComplete) &&
            detail::read_attr_bool(pg.get(), schema::kAttrComplete, file,
                                   run_prompts_path + "/" + name))
            ++n;
    }
    return n;
}

void Writer::Impl::drop_prompt_everywhere(std::int64_t id) {
    // --force on a prompt whose stored tokens differ: results of other runs for it described the
    // old tokens, so they go with them; those runs' counts are recomputed.
    Id runs = detail::open_group(fid.get(), schema::kRunsGroup, file);
    for (const auto& r : detail::list_links(runs.get(), schema::kRunsGroup, file)) {
        if (r == run.name) continue;
        const std::string rp = schema::run_prompt_path(r, id);
        if (!detail::exists(fid.get(), rp)) continue;
        check(H5Ldelete(fid.get(), rp.c_str(), H5P_DEFAULT), file, rp, "deleting for --force");
        const std::string rpath = schema::run_path(r);
        Id rg = detail::open_group(fid.get(), rpath, file);
        detail::write_attr(rg.get(), schema::kAttrNPromptsDone,
                           count_complete(rpath + "/" + schema::kRunPrompts), file, rpath);
    }
    const std::string pp = schema::prompt_path(id);
    check(H5Ldelete(fid.get(), pp.c_str(), H5P_DEFAULT), file, pp, "deleting for --force");
}

Id Writer::Impl::create_dataset(const std::string& path, DType dtype,
                                const std::vector<std::int64_t>& shape,
                                const std::vector<hsize_t>& chunk, bool with_fill, float fill) {
    const std::string what = "creating dataset";
    const std::vector<hsize_t> dims(shape.begin(), shape.end());
    Id space = shape.empty()
                   ? check_id(H5Screate(H5S_SCALAR), H5Sclose, file, path, what)
                   : check_id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                              H5Sclose, file, path, what);
    Id dcpl = check_id(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, file, path, what);
    Id ftype = file_type(dtype);
    if (!chunk.empty()) {
        check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), file, path,
              what);
        check(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_INCR), file, path, what);
        if (options.compress) {
            check(H5Pset_shuffle(dcpl.get()), file, path, what);
            check(H5Pset_deflate(dcpl.get(), 1), file, path, what);
        }
    }
    if (with_fill) {
        if (dtype == DType::kF16) {
            const std::uint16_t bits = float_to_half(fill);
            check(H5Pset_fill_value(dcpl.get(), ftype.get(), &bits), file, path, what);
        } else {
            check(H5Pset_fill_value(dcpl.get(), H5T_NATIVE_FLOAT, &fill), file, path, what);
        }
    }
    Id lcpl = check_id(H5Pcreate(H5P_LINK_CREATE), H5Pclose, file, path, what);
    check(H5Pset_create_intermediate_group(lcpl.get(), 1), file, path, what);
    return check_id(H5Dcreate2(fid.get(), path.c_str(), ftype.get(), space.get(), lcpl.get(),
                               dcpl.get(), H5P_DEFAULT),
                    H5Dclose, file, path, what);
}

void Writer::Impl::write_map(hid_t ds, const std::string& path, const FloatRef& data, DType dtype,
                             float fill) {
    // [head, query_pos, key_pos], tile = chunk = (1, c, c). Tiles strictly above the diagonal
    // that hold only the fill value are never written, so their chunks are never allocated.
    const std::int64_t heads = data.shape[0];
    const std::int64_t t = data.shape[1];
    const std::int64_t c = std::min<std::int64_t>(t, schema::kMapChunk);
    const std::int64_t nb = (t + c - 1) / c;
    const std::size_t es = element_size(dtype);
    std::vector<unsigned char> tile(static_cast<std::size_t>(c * c) * es);
    // Without filters a tile is written as its raw chunk (H5Dwrite_chunk): no dataspace
    // selection, no type path, no chunk cache. Edge chunks are padded with the fill value,
    // as HDF5 itself stores them. With compression the filtered path below is used.
    const bool direct = !options.compress;
    std::vector<unsigned char> fill_elem(es);
    if (dtype == DType::kF16) {
        const std::uint16_t b = float_to_half(fill);
        std::memcpy(fill_elem.data(), &b, es);
    } else {
        std::memcpy(fill_elem.data(), &fill, es);
    }
    Id mtype = file_type(dtype);  // memory type == file type: no HDF5 conversion
    Id fspace = check_id(H5Dget_space(ds), H5Sclose, file, path, "writing map");
    for (std::int64_t h = 0; h < heads; ++h) {
        for (std::int64_t qi = 0; qi < nb; ++qi) {
            const std::int64_t q0 = qi * c, nq = std::min(c, t - q0);
            for (std::int64_t ki = 0; ki < nb; ++ki) {
                const std::int64_t k0 = ki * c, nk = std::min(c, t - k0);
                for (std::int64_t r = 0; r < nq; ++r) {
                    const std::size_t src = static_cast<std::size_t>((h * t + q0 + r) * t + k0);
                    convert(data, src, static_cast<std::size_t>(nk), dtype,
                            tile.data() + static_cast<std::size_t>(r * nk) * es);
                }
                const auto n = static_cast<std::size_t>(nq * nk);
                if (ki > qi && tile_is_fill(tile.data(), n, dtype, fill)) continue;
                if (direct) {
                    if (nq != c || nk != c) {
                        // Re-lay the [nq, nk] tile into a full [c, c] chunk, back to front so
                        // rows never overwrite rows not yet moved.
                        for (std::int64_t r = nq - 1; r >= 0; --r) {
                            unsigned char* dst = tile.data() + static_cast<std::size_t>(r * c) * es;
                            std::memmove(dst, tile.data() + static_cast<std::size_t>(r * nk) * es,
                                         static_cast<std::size_t>(nk) * es);
                            for (std::int64_t k = nk; k < c; ++k)
                                std::memcpy(dst + static_cast<std::size_t>(k) * es, fill_elem.data(), es);
                        }
                        for (std::int64_t r = nq; r < c; ++r)
                            for (std::int64_t k = 0; k < c; ++k)
                                std::memcpy(tile.data() + static_cast<std::size_t>(r * c + k) * es,
                                            fill_elem.data(), es);
                    }
                    const hsize_t offset[3] = {static_cast<hsize_t>(h), static_cast<hsize_t>(q0),
                                               static_cast<hsize_t>(k0)};
                    check(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, offset, tile.size(), tile.data()),
                          file, path,
                          "writing map chunk (head " + std::to_string(h) + ", query " +
                              std::to_string(q0) + ", key " + std::to_string(k0) + ")");
                    continue;
                }
                const hsize_t start[3] = {static_cast<hsize_t>(h), static_cast<hsize_t>(q0),
                                          static_cast<hsize_t>(k0)};
                const hsize_t count[3] = {1, static_cast<hsize_t>(nq), static_cast<hsize_t>(nk)};
                check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count,
                                          nullptr),
                      file, path, "selecting a map tile");
                // Memory space of the same shape as the file selection: HDF5 then maps the
                // tile to its chunk directly instead of element by element.
                Id mspace = check_id(H5Screate_simple(3, count, nullptr), H5Sclose, file, path,
                                     "writing map");
                check(
                    H5Dwrite(ds, mtype.get(), mspace.get(), fspace.get(), H5P_DEFAULT, tile.data()),
                    file, path,
                    "writing map tile (head " + std::to_string(h) + ", query " +
                        std::to_string(q0) + ", key " + std::to_string(k0) + ")");
            }
        }
    }
}

void Writer::Impl::write_array(hid_t ds, const std::string& path, const FloatRef& data,
                               DType dtype) {
    const std::size_t total = static_cast<std::size_t>(data.numel());
    const std::size_t es = element_size(dtype);
    Id mtype = file_type(dtype);
    const bool same = (data.element == Element::kF32) == (dtype == DType::kF32);
    if (data.shape.empty() || same) {
        // No conversion: write straight from the caller's buffer.
        if (same) {
            check(H5Dwrite(ds, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data), file, path,
                  "writing array");
            return;
        }
        std::vector<unsigned char> one(es);
        convert(data, 0, 1, dtype, one.data());
        check(H5Dwrite(ds, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, one.data()), file, path,
              "writing array");
        return;
    }
    // Convert in slabs of whole rows along axis 0.
    const std::size_t row = total / static_cast<std::size_t>(data.shape[0]);
    const std::size_t rows_per_slab = std::max<std::size_t>(1, kSlabBytes / (row * es));
    std::vector<unsigned char> buf(std::min<std::size_t>(rows_per_slab, data.shape[0]) * row * es);
    Id fspace = check_id(H5Dget_space(ds), H5Sclose, file, path, "writing array");
    const int rank = static_cast<int>(data.shape.size());
    for (std::size_t r0 = 0; r0 < static_cast<std::size_t>(data.shape[0]); r0 += rows_per_slab) {
        const std::size_t nr =
            std::min<std::size_t>(rows_per_slab, static_cast<std::size_t>(data.shape[0]) - r0);
        convert(data, r0 * row, nr * row, dtype, buf.data());
        std::vector<hsize_t> start(rank, 0), count(data.shape.begin(), data.shape.end());
        start[0] = r0;
        count[0] = nr;
        check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                                  nullptr),
              file, path, "selecting rows");
        Id mspace = check_id(H5Screate_simple(rank, count.data(), nullptr), H5Sclose, file, path,
                             "writing array");
        check(H5Dwrite(ds, mtype.get(), mspace.get(), fspace.get(), H5P_DEFAULT, buf.data()), file,
              path, "writing array rows");
    }
}

void Writer::Impl::write_array_attrs(hid_t ds, const std::string& path, const std::string& dims,
                                     std::int64_t layer, const std::vector<std::int64_t>* heads) {
    detail::write_attr(ds, schema::kAttrDims, dims, file, path);
    if (layer >= 0) detail::write_attr(ds, schema::kAttrLayer, layer, file, path);
    if (heads != nullptr) detail::write_attr(ds, schema::kAttrHeads, *heads, file, path);
}

void Writer::Impl::write_float_dataset(const std::string& path, const std::string& label,
                                       const FloatRef& data, DType dtype, const std::string& dims,
                                       const std::vector<std::int64_t>* heads, std::int64_t layer,
                                       bool is_map, float fill, const MetricInfo* metric) {
    if (detail::exists(fid.get(), path))
        detail::throw_schema(file, path, label + " is already stored for this prompt",
                             "each is written once per run and prompt");
    std::vector<hsize_t> chunk;
    if (is_map) {
        const auto c =
            static_cast<hsize_t>(std::min<std::int64_t>(data.shape[1], schema::kMapChunk));
        chunk = {1, c, c};
    } else if (!data.shape.empty()) {
        chunk.assign(data.shape.begin(), data.shape.end());
        std::size_t row = element_size(dtype);
        for (std::size_t i = 1; i < chunk.size(); ++i) row *= chunk[i];
        chunk[0] = static_cast<hsize_t>(std::clamp<std::size_t>(
            kTargetChunkBytes / row, 1, static_cast<std::size_t>(data.shape[0])));
    }
    reserve(static_cast<std::uint64_t>(data.numel()) * element_size(dtype), path);
    Id ds = create_dataset(path, dtype, data.shape, chunk, is_map, fill);
    if (is_map)
        write_map(ds.get(), path, data, dtype, fill);
    else
        write_array(ds.get(), path, data, dtype);
    write_array_attrs(ds.get(), path, dims, layer, heads);
    if (metric != nullptr) {
        detail::write_attr(ds.get(), schema::kAttrParams, display_utf8(metric->params_json), file,
                           path);
        detail::write_attr(ds.get(), schema::kAttrUnits, display_utf8(metric->units), file, path);
        detail::write_attr(ds.get(), schema::kAttrMetricVersion, metric->metric_version, file,
                           path);
    }
    // Closing writes the chunks still in the chunk cache: its failure is a write failure.
    if (ds.close_checked() < 0) detail::throw_io(file, path, "writing the last chunks");
}

void Writer::Impl::abandon() noexcept {
    if (closed) return;
    closed = true;
    prompt_open = false;
    if (fid.valid() && failed) {
        detail::poison_file(fid.get());
    } else if (fid.valid() && H5Fflush(fid.get(), H5F_SCOPE_GLOBAL) >= 0) {
        detail::trim_file(fid.get());  // drop the reserved tail, as close() does
    }
    prompt_group.reset();
    run_group.reset();
    if (fid.valid()) detail::close_open_objects(fid.get());
    fid.reset();
    H5Eclear2(H5E_DEFAULT);
}

// --- public --------------------------------------------------------------------------------------

Writer::Writer(const std::filesystem::path& path, const ModelInfo& model, const RunInfo& run,
               const WriterOptions& options)
    : impl_(std::make_unique<Impl>()) {
    validate_model(model);
    validate_run(run);
    auto lock = detail::hdf5_lock();
    Impl& m = *impl_;
    m.path = path;
    m.file = path.string();
    m.model = model;
    m.run = run;
    m.options = options;
    try {
        m.open_or_create();
        m.guard([&] { m.write_run_group(); });
    } catch (...) {
        m.abandon();
        // A file this writer created holds nothing yet: do not leave a half-made one behind.
        std::error_code ec;
        if (m.created) std::filesystem::remove(m.path, ec);
        throw;
    }
}

Writer::~Writer() noexcept {
    if (impl_) {
        auto lock = detail::hdf5_lock();
        impl_->abandon();
        impl_.reset();
    }
}

Writer::Writer(Writer&&) noexcept = default;

Writer& Writer::operator=(Writer&& other) noexcept {
    if (this != &other) {
        if (impl_) {
            auto lock = detail::hdf5_lock();
            impl_->abandon();
            impl_.reset();
        }
        impl_ = std::move(other.impl_);
    }
    return *this;
}

void Writer::begin_prompt(const Prompt& prompt) {
    auto lock = detail::hdf5_lock();
    Impl& m = *impl_;
    m.require_usable("begin_prompt");
    if (m.prompt_open)
        throw std::logic_error("store::Writer::begin_prompt: prompt " +
                               schema::prompt_id(m.prompt_id) + " is still open");
    const std::string id = schema::prompt_id(prompt.id);
    if (prompt.id < 0) throw ShapeError("store: prompt id " + std::to_string(prompt.id) + " < 0");
    if (prompt.tokens.empty())
        throw ShapeError(m.file + ": prompt " + id + " has no tokens; nothing to store");
    if (prompt.token_str.size() != prompt.tokens.size())
        throw ShapeError(m.file + ": prompt " + id + " has " +
                         std::to_string(prompt.token_str.size()) + " token strings for " +
                         std::to_string(prompt.tokens.size()) + " tokens; they must match");
    const auto n = static_cast<std::int64_t>(prompt.tokens.size());
    const std::int64_t np = prompt.n_prompt_tokens < 0 ? n : prompt.n_prompt_tokens;
    if (np <= 0 || np > n)
        throw ShapeError(m.file + ": prompt " + id + " n_prompt_tokens " + std::to_string(np) +
                         " is outside 1.." + std::to_string(n));
    m.guard([&] {
        m.n_prompt_tokens = np;
        const std::string pp = schema::prompt_path(prompt.id);
        const std::string rp = schema::run_prompt_path(m.run.name, prompt.id);
        if (detail::exists(m.fid.get(), rp))
            detail::throw_schema(m.file, rp,
                                 "prompt " + id + " is already stored in run '" + m.run.name + "'",
                                 "each prompt id is written once per run");
        std::uint64_t text_bytes = prompt.text.size() + prompt.tokens.size() * 4;
        for (const auto& t : prompt.token_str) text_bytes += t.size() * 4 + 16;
        m.reserve(text_bytes, pp);
        bool write_entry = true;
        if (detail::exists(m.fid.get(), pp)) {
            const auto stored = detail::read_tokens(m.fid.get(), prompt.id, m.file);
            if (stored == prompt.tokens) {
                write_entry = false;
            } else if (!m.options.force) {
                throw SchemaError("prompt " + id + " in " + m.file +
                                  " has other tokens than this run; use a new file or --force");
            } else {
                m.drop_prompt_everywhere(prompt.id);
            }
        }
        if (write_entry) {
            std::vector<std::string> token_str;
            token_str.reserve(prompt.token_str.size());
            for (const auto& s : prompt.token_str) token_str.push_back(display_utf8(s));
            m.write_prompt_entry(prompt, token_str);
        }
        m.prompt_group = detail::create_group(m.fid.get(), rp, m.file);
        detail::write_attr_bool(m.prompt_group.get(), schema::kAttrComplete, false, m.file, rp);
        m.prompt_open = true;
        m.prompt_id = prompt.id;
        m.n_tokens = n;
        m.prompt_path = rp;
    });
}

void Writer::write_hook(std::string_view hook, const FloatRef& data, const HookOptions& options) {
    auto lock = detail::hdf5_lock();
    Impl& m = *impl_;
    m.require_usable("write_hook");
    if (!m.prompt_open) throw std::logic_error("store::Writer::write_hook: no prompt is open");
    const HookName hn = HookName::parse(hook);  // HookError for unknown names
    const std::string name = hn.to_string();
    const bool is_map = hn.site == Site::kPattern || hn.site == Site::kAttnScores;
    std::string dims = options.dims;
    if (dims.empty()) {
        dims = std::string(site_dims(hn.site));
        if (dims.rfind("batch,", 0) == 0) dims = dims.substr(6);
    }
    const auto axes = detail::split_dims(dims);
    const std::string where = m.file + ": prompt " + schema::prompt_id(m.prompt_id) + ": " + name;
    const std::string shape = detail::shape_string(data.shape);
    if (axes.size() != data.shape.size())
        throw ShapeError(where + ": shape " + shape + " has rank " +
                         std::to_string(data.shape.size()) + " but dims '" + dims + "' name " +
                         std::to_string(axes.size()) + " axes");
    for (const auto d : data.shape)
        if (d <= 0) throw ShapeError(where + ": shape " + shape + " has an empty axis");
    if (data.data == nullptr) throw ShapeError(where + ": no data (null pointer)");
    auto is_pos_len = [&](std::int64_t v) { return v == m.n_tokens || v == m.n_prompt_tokens; };
    const std::string tokens_str =
        std::to_string(m.n_tokens) + (m.n_prompt_tokens != m.n_tokens
                                          ? " (or " + std::to_string(m.n_prompt_tokens) + ")"
                                          : std::string());
    if (is_map) {
        if (dims != schema::kMapDims)
            throw ShapeError(where + ": attention maps have dims '" + schema::kMapDims +
                             "', not '" + dims + "'");
        if (data.shape[1] != data.shape[2] || !is_pos_len(data.shape[1]))
            throw ShapeError(where + ": map shape " + shape + " must be [head, T, T] with T = " +
                             tokens_str + ", the prompt's tokens");
    } else if (axes.front() == "pos" && !is_pos_len(data.shape[0])) {
        throw ShapeError(where + ": shape " + shape +
                         " has pos = " + std::to_string(data.shape[0]) + " but the prompt has " +
                         tokens_str + " tokens");
    }
    std::vector<std::int64_t> heads;
    const auto head_axis = std::find(axes.begin(), axes.end(), "head");
    if (head_axis != axes.end()) {
        const std::int64_t len = data.shape[static_cast<std::size_t>(head_axis - axes.begin())];
        heads = options.heads;
        if (heads.empty())
            for (std::int64_t i = 0; i < len; ++i) heads.push_back(i);
        if (static_cast<std::int64_t>(heads.size()) != len)
            throw ShapeError(where + ": " + std::to_string(heads.size()) +
                             " head indices for a head axis of " + std::to_string(len) +
                             " in shape " + shape);
        std::set<std::int64_t> seen;
        for (const auto h : heads)
            if (h < 0 || h >= m.model.n_heads || !seen.insert(h).second)
                throw ShapeError(where + ": head index " + std::to_string(h) +
                                 " is out of range 0.." + std::to_string(m.model.n_heads - 1) +
                                 " or repeated");
    } else if (!options.heads.empty()) {
        throw ShapeError(where + ": head indices given but dims '" + dims + "' have no head axis");
    }
    if (hn.layer >= m.model.n_layers)
        throw HookError(where + ": layer " + std::to_string(hn.layer) + " but the model has " +
                        std::to_string(m.model.n_layers) + " layers");
    DType dtype;
    if (options.dtype)
        dtype = *options.dtype;
    else if (is_map)
        dtype = m.run.map_dtype;
    else
        dtype = data.element == Element::kF32 ? DType::kF32 : DType::kF16;
    const float fill =
        hn.site == Site::kAttnScores ? -std::numeric_limits<float>::infinity() : 0.0f;
    m.guard([&] {
        const std::string path = m.prompt_path + "/" + schema::hook_to_path(name);
        m.write_float_dataset(path, "hook " + name, data, dtype, dims,
                              head_axis != axes.end() ? &heads : nullptr, hn.layer, is_map, fill,
                              nullptr);
    });
}

namespace {

void check_metric(const std::string& where, std::string_view name, const FloatRef& data,
                  const MetricInfo& info) {
    if (!schema::is_valid_metric_name(name))
        throw ConfigError(where + ": metric name '" + std::string(name) +
                          "' is not valid; use 1-64 characters of A-Z a-z 0-9 _");
    const auto axes = detail::split_dims(info.dims);
    if (axes.size() != data.shape.size())
        throw ShapeError(where + ": metric " + std::string(name) + " shape " +
                         detail::shape_string(data.shape) + " does not match dims '" + info.dims +
                         "'");
    for (const auto d : data.shape)
        if (d <= 0)
            throw ShapeError(where + ": metric " + std::string(name) + " shape " +
                             detail::shape_string(data.shape) + " has an empty axis");
    if (data.data == nullptr)
        throw ShapeError(where + ": metric " + std::string(name) + " has no data");
    const auto j = nlohmann::json::parse(info.params_json, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw ConfigError(where + ": metric " + std::string(name) +
                          " params are not a JSON object: " + info.params_json.substr(0, 80));
}

}  // namespace

void Writer::write_metric(std::string_view name, const FloatRef& data, const MetricInfo& info) {
    auto lock = detail::hdf5_lock();
    Impl& m = *impl_;
    m.require_usable("write_metric");
    if (!m.prompt_open) throw std::logic_error("store::Writer::write_metric: no prompt is open");
    check_metric(m.file + ": prompt " + schema::prompt_id(m.prompt_id), name, data, info);
    m.guard([&] {
        const std::string path = m.prompt_path + "/" + schema::kMetrics + "/" + std::string(name);
        m.write_float_dataset(path, "metric " + std::string(name), data, DType::kF32, info.dims,
                              nullptr, -1, false, 0.0f, &info);
    });
}

void Writer::end_prompt() {
    auto lock = detail::hdf5_lock();
    Impl& m = *impl_;
    m.require_usable("end_prompt");
    if (!m.prompt_open) throw std::logic_error("store::Writer::end_prompt: no prompt is open");
    m.guard([&] {
        detail::write_attr_bool(m.prompt_group.get(), schema::kAttrComplete, true, m.file,
                                m.prompt_path);
        detail::write_attr(m.run_group.get(), schema::kAttrNPromptsDone, m.done + 1, m.file,
                           m.run_path);
        if (H5Fflush(m.fid.get(), H5F_SCOPE_GLOBAL) < 0)
            detail::throw_io(m.file, m.prompt_path, "flushing the prompt",
                             "check free disk space; the file holds the " + std::to_string(m.done) +
                                 " prompts finished before");
        if (m.options.fsync && !detail::fsync_file(m.fid.get()))
            throw IoError(m.file + ": fsync after prompt " + schema::prompt_id(m.prompt_id) +
                          " failed; check the disk");
        m.flushed();
        ++m.done;
        m.prompt_group.reset();
        m.prompt_open = false;
    });
}

void Writer::write_run_metric(std::string_view name, const FloatRef& data, const MetricInfo& info) {
    auto lock = detail::hdf5_lock();
    Impl& m = *impl_;
    m.require_usable("write_run_metric");
    if (m.prompt_open)
        throw std::logic_error("store::Writer::write_run_metric: prompt " +
                               schema::prompt_id(m.prompt_id) + " is open");
    check_metric(m.file + ": run " + m.run.name, name, data, info);
    m.guard([&] {
        const std::string path = m.run_path + "/" + schema::kMetrics + "/" + std::string(name);
        if (detail::exists(m.fid.get(), path))
            check(H5Ldelete(m.fid.get(), path.c_str(), H5P_DEFAULT), m.file, path,
                  "replacing metric");
        m.write_float_dataset(path, "metric " + std::string(name), data, DType::kF32, info.dims,
                              nullptr, -1, false, 0.0f, &info);
        check(H5Fflush(m.fid.get(), H5F_SCOPE_GLOBAL), m.file, path, "flushing");
        m.flushed();
    });
}

void Writer::close() {
    auto lock = detail::hdf5_lock();
    Impl& m = *impl_;
    m.require_usable("close");
    if (m.prompt_open) {
        const std::string id = schema::prompt_id(m.prompt_id);
        m.abandon();
        throw std::logic_error("store::Writer::close: prompt " + id +
                               " is still open (call end_prompt first); the run was left "
                               "incomplete");
    }
    m.guard([&] {
        m.reserve(0, m.run_path);
        detail::write_attr_bool(m.run_group.get(), schema::kAttrComplete, true, m.file, m.run_path);
        check(H5Fflush(m.fid.get(), H5F_SCOPE_GLOBAL), m.file, "", "flushing at close");
        detail::trim_file(m.fid.get());
        if (m.options.fsync) detail::fsync_file(m.fid.get());
        m.run_group.reset();
        if (m.fid.close_checked() < 0) detail::throw_io(m.file, "", "closing the file");
        m.closed = true;
    });
}

void Writer::abandon() noexcept {
    auto lock = detail::hdf5_lock();
    impl_->abandon();
}

std::int64_t Writer::prompts_done() const noexcept { return impl_->done; }
bool Writer::closed() const noexcept { return impl_->closed; }
const std::filesystem::path& Writer::path() const noexcept { return impl_->path; }

}  // namespace attnscope::store
