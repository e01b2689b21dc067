// The store reader: open and validate, listings, token arrays, hook arrays as float32 (whole,
// per head, per tile) and metrics. See reader.h and docs/hdf5-schema.md.
#include "core/store/reader.h"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/store/detail/h5.h"
#include "core/store/detail/layout.h"
#include "core/store/half.h"
#include "core/store/schema.h"

namespace attnscope::store {

using detail::check;
using detail::check_id;
using detail::Id;

namespace {

// Natural order: digit runs compare as numbers ("blocks.2" < "blocks.10").
bool natural_less(const std::string& a, const std::string& b) {
    std::size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        const bool da = a[i] >= '0' && a[i] <= '9', db = b[j] >= '0' && b[j] <= '9';
        if (da && db) {
            std::size_t ie = i, je = j;
            while (ie < a.size() && a[ie] >= '0' && a[ie] <= '9') ++ie;
            while (je < b.size() && b[je] >= '0' && b[je] <= '9') ++je;
            const std::string na = a.substr(i, ie - i), nb = b.substr(j, je - j);
            if (na.size() != nb.size()) return na.size() < nb.size();
            if (na != nb) return na < nb;
            i = ie;
            j = je;
        } else {
            if (a[i] != b[j]) return a[i] < b[j];
            ++i;
            ++j;
        }
    }
    return a.size() - i < b.size() - j;
}

std::string join(const std::vector<std::string>& items, std::size_t max = 12) {
    std::string out;
    for (std::size_t i = 0; i < items.size() && i < max; ++i) {
        if (i) out += ", ";
        out += items[i];
    }
    if (items.size() > max) out += ", ... (" + std::to_string(items.size()) + " in all)";
    return out.empty() ? "none" : out;
}

std::vector<std::string> parse_string_list(const std::string& json, const std::string& file,
                                           const std::string& path, const char* attr) {
    const auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded() || !j.is_array())
        detail::throw_schema(
            file, path,
            std::string("attribute '") + attr + "' is not a JSON list: " + json.substr(0, 80));
    std::vector<std::string> out;
    for (const auto& e : j) {
        if (!e.is_string())
            detail::throw_schema(file, path,
                                 std::string("attribute '") + attr + "' holds a non-string item");
        out.push_back(e.get<std::string>());
    }
    return out;
}

}  // namespace

struct Reader::Impl {
    std::filesystem::path path;
    std::string file;
    Id fid;
    FileInfo info;
    ModelInfo model;

    void open();
    void finish_open();
    Id run_group(const std::string& run) const;
    std::string prompt_group_path(const std::string& run, std::int64_t prompt) const;
    std::string hook_path(const std::string& run, std::int64_t prompt,
                          const std::string& hook) const;
    ArrayInfo inspect(hid_t ds, const std::string& path, bool metric) const;
    void check_against_prompt(const ArrayInfo& a, std::int64_t prompt) const;
    std::int64_t head_slot(const ArrayInfo& a, std::int64_t head) const;
    std::vector<float> read_selection(hid_t ds, const ArrayInfo& a, const hsize_t* start,
                                      const hsize_t* count) const;
    std::vector<float> read_all(hid_t ds, const ArrayInfo& a) const;
    MetricData read_metric_at(const std::string& path) const;
    void collect_hooks(hid_t group, const std::string& abs, const std::string& rel,
                       std::vector<std::string>& out) const;
};

void Reader::Impl::open() {
    fid.reset();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw IoError(file +
                      ": no such file; check the path (capture files are written by "
                      "`attnscope capture --out FILE`)");
    if (std::filesystem::is_directory(path, ec))
        throw IoError(file + " is a directory, not a capture file");
    const htri_t is_hdf5 = detail::is_hdf5_file(file);
    if (is_hdf5 == 0)
        throw SchemaError(file +
                          ": not an attnscope file (not an HDF5 file: no HDF5 signature); "
                          "expected a file written by `attnscope capture`");
    if (is_hdf5 < 0)
        throw IoError(file + ": cannot be read (" + detail::take_error_stack() +
                      "); check permissions");
    Id fapl = check_id(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, file, "", "creating properties");
    detail::disable_file_locking(fapl.get());
    fid = Id(H5Fopen(file.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
    if (!fid.valid()) {
        std::string stack = detail::take_error_stack();
        if (stack.find("file locking flag") != std::string::npos) {
            // A Writer in this process has the file open (with locking): HDF5 shares the open
            // file, which needs the same locking setting. The reader then sees its in-memory
            // state.
            fid = Id(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
            if (fid.valid()) return finish_open();
            stack = detail::take_error_stack();
        }
        std::string hint = "the file may be damaged";
        if (stack.find("truncated") != std::string::npos)
            hint = "the file is truncated (an interrupted copy or a full disk?)";
        throw IoError(file + ": cannot open as HDF5 (" + stack + "); " + hint +
                      "; capture it again");
    }
    finish_open();
}

void Reader::Impl::finish_open() {
    info = detail::require_supported(fid.get(), file);
    model = detail::read_model(fid.get(), file);
    detail::open_group(fid.get(), schema::kPromptsGroup, file);
    detail::open_group(fid.get(), schema::kRunsGroup, file);
}

Id Reader::Impl::run_group(const std::string& run) const {
    const std::string rp = schema::run_path(run);
    if (!schema::is_valid_run_name(run) || !detail::exists(fid.get(), rp)) {
        Id runs = detail::open_group(fid.get(), schema::kRunsGroup, file);
        throw SchemaError(file + ": no run '" + run + "'; runs in the file: " +
                          join(detail::list_links(runs.get(), schema::kRunsGroup, file)));
    }
    return detail::open_group(fid.get(), rp, file);
}

std::string Reader::Impl::prompt_group_path(const std::string& run, std::int64_t prompt) const {
    run_group(run);
    const std::string pp = schema::run_prompt_path(run, prompt);
    if (!detail::exists(fid.get(), pp))
        throw SchemaError(file + ": run '" + run + "' has no prompt " + schema::prompt_id(prompt));
    return pp;
}

void Reader::Impl::collect_hooks(hid_t group, const std::string& abs, const std::string& rel,
                                 std::vector<std::string>& out) const {
    for (const auto& name : detail::list_links(group, abs, file)) {
        if (rel.empty() && name == schema::kMetrics) continue;
        const std::string child_rel = rel.empty() ? name : rel + "/" + name;
        const H5O_type_t t = detail::object_type(group, name);
        if (t == H5O_TYPE_DATASET) {
            out.push_back(schema::path_to_hook(child_rel));
        } else if (t == H5O_TYPE_GROUP) {
            Id g = detail::open_group(group, name, file);
            collect_hooks(g.get(), abs + "/" + name, child_rel, out);
        }
    }
}

std::string Reader::Impl::hook_path(const std::string& run, std::int64_t prompt,
                                    const std::string& hook) const {
    const std::string pp = prompt_group_path(run, prompt);
    const std::string path = pp + "/" + schema::hook_to_path(hook);
    if (hook.empty() || hook.find('/') != std::string::npos ||
        detail::object_type(fid.get(), path) != H5O_TYPE_DATASET) {
        Id g = detail::open_group(fid.get(), pp, file);
        std::vector<std::string> hooks;
        collect_hooks(g.get(), pp, "", hooks);
        std::sort(hooks.begin(), hooks.end(), natural_less);
        throw SchemaError(file + ": run '" + run + "' prompt " + schema::prompt_id(prompt) +
                          " has no hook '" + hook + "'; stored: " + join(hooks));
    }
    return path;
}

ArrayInfo Reader::Impl::inspect(hid_t ds, const std::string& path, bool metric) const {
    ArrayInfo a;
    a.path = path;
    Id type = check_id(H5Dget_type(ds), H5Tclose, file, path, "reading the type");
    if (detail::is_half(type.get()))
        a.dtype = DType::kF16;
    else if (H5Tget_class(type.get()) == H5T_FLOAT && H5Tget_size(type.get()) == 4)
        a.dtype = DType::kF32;
    else
        detail::throw_schema(file, path,
                             "is not float16 or float32 (bfloat16 and other "
                             "formats are not part of the schema)");
    a.shape = detail::dataset_shape(ds, file, path);
    a.dims = detail::read_attr_string(ds, schema::kAttrDims, file, path);
    const auto axes = detail::split_dims(a.dims);
    if (axes.size() != a.shape.size())
        detail::throw_schema(file, path,
                             "attribute 'dims' ('" + a.dims + "') names " +
                                 std::to_string(axes.size()) + " axes but the shape is " +
                                 detail::shape_string(a.shape));
    if (metric) return a;
    a.layer = detail::read_attr_int_opt(ds, schema::kAttrLayer, file, path).value_or(-1);
    const bool is_map = a.dims == schema::kMapDims;
    if (is_map && a.shape[1] != a.shape[2])
        detail::throw_schema(file, path,
                             "map shape " + detail::shape_string(a.shape) + " is not [head, T, T]");
    const auto head_axis = std::find(axes.begin(), axes.end(), "head");
    if (head_axis != axes.end()) {
        const std::int64_t len = a.shape[static_cast<std::size_t>(head_axis - axes.begin())];
        if (detail::has_attr(ds, schema::kAttrHeads)) {
            a.heads = detail::read_attr_ints(ds, schema::kAttrHeads, file, path);
        } else if (is_map) {
            detail::throw_schema(file, path, "attribute 'heads' is missing");
        } else {
            for (std::int64_t i = 0; i < len; ++i) a.heads.push_back(i);
        }
        if (static_cast<std::int64_t>(a.heads.size()) != len)
            detail::throw_schema(file, path,
                                 "attribute 'heads' lists " + std::to_string(a.heads.size()) +
                                     " heads for a head axis of " + std::to_string(len));
    }
    return a;
}

// The checks the writer makes before storing a hook (writer.cpp, write_hook), repeated on read so
// that a damaged or hostile file cannot make a caller size buffers from an arbitrary shape:
// maps are [head, T, T] and a leading "pos" axis is T, with T the prompt's n_tokens or
// n_prompt_tokens; head indices are distinct model heads.
void Reader::Impl::check_against_prompt(const ArrayInfo& a, std::int64_t prompt) const {
    const std::string pp = schema::prompt_path(prompt);
    if (!detail::exists(fid.get(), pp))
        detail::throw_schema(file, a.path, "belongs to prompt " + schema::prompt_id(prompt) +
                                               ", which is missing from /prompts");
    Id g = detail::open_group(fid.get(), pp, file);
    const std::int64_t n = detail::read_attr_int(g.get(), schema::kAttrNTokens, file, pp);
    const std::int64_t np =
        detail::read_attr_int_opt(g.get(), schema::kAttrNPromptTokens, file, pp).value_or(n);
    const auto axes = detail::split_dims(a.dims);
    for (std::size_t i = 0; i < axes.size(); ++i) {
        const bool pos_axis = (axes[i] == "pos" && i == 0) ||
                              (a.dims == schema::kMapDims && i > 0);
        if (pos_axis && a.shape[i] != n && a.shape[i] != np)
            detail::throw_schema(file, a.path,
                                 "shape " + detail::shape_string(a.shape) + " has " + axes[i] +
                                     " = " + std::to_string(a.shape[i]) + " but the prompt has " +
                                     std::to_string(n) + " tokens");
    }
    std::vector<std::int64_t> sorted = a.heads;
    std::sort(sorted.begin(), sorted.end());
    if (!sorted.empty() && (sorted.front() < 0 || sorted.back() >= model.n_heads ||
                            std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()))
        detail::throw_schema(file, a.path,
                             "attribute 'heads' must list distinct heads in [0, " +
                                 std::to_string(model.n_heads) + ")");
}

std::int64_t Reader::Impl::head_slot(const ArrayInfo& a, std::int64_t head) const {
    const auto it = std::find(a.heads.begin(), a.heads.end(), head);
    if (it == a.heads.end()) {
        std::vector<std::string> hs;
        for (const auto h : a.heads) hs.push_back(std::to_string(h));
        throw ShapeError(file + ": " + a.path + ": head " + std::to_string(head) +
                         " is not stored; stored heads: " + join(hs, 64));
    }
    return it - a.heads.begin();
}

std::vector<float> Reader::Impl::read_selection(hid_t ds, const ArrayInfo& a, const hsize_t* start,
                                                const hsize_t* count) const {
    const int rank = static_cast<int>(a.shape.size());
    std::size_t n = 1;
    for (int i = 0; i < rank; ++i) n *= count[i];
    std::vector<float> out(n);
    if (n == 0) return out;
    Id fspace = check_id(H5Dget_space(ds), H5Sclose, file, a.path, "reading");
    check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), file,
          a.path, "selecting");
    // Same shape as the file selection, so HDF5 maps chunks directly (a 1-D memory space makes
    // it iterate element by element, ~20x slower).
    Id mspace = check_id(H5Screate_simple(rank, count, nullptr), H5Sclose, file, a.path, "reading");
    if (a.dtype == DType::kF32) {
        check(H5Dread(ds, H5T_NATIVE_FLOAT, mspace.get(), fspace.get(), H5P_DEFAULT, out.data()),
              file, a.path, "reading");
    } else {
        // Raw binary16 bits (memory type = the schema's half type), converted here: exact and
        // much faster than HDF5's soft float conversion.
        std::vector<std::uint16_t> bits(n);
        Id mtype = detail::half_type();
        check(H5Dread(ds, mtype.get(), mspace.get(), fspace.get(), H5P_DEFAULT, bits.data()), file,
              a.path, "reading");
        halves_to_floats(bits.data(), out.data(), n);
    }
    return out;
}

std::vector<float> Reader::Impl::read_all(hid_t ds, const ArrayInfo& a) const {
    std::vector<hsize_t> start(a.shape.size(), 0), count(a.shape.begin(), a.shape.end());
    if (a.shape.empty()) {
        std::vector<float> out(1);
        if (a.dtype == DType::kF32) {
            check(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), file,
                  a.path, "reading");
        } else {
            std::uint16_t bits = 0;
            Id mtype = detail::half_type();
            check(H5Dread(ds, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &bits), file, a.path,
                  "reading");
            out[0] = half_to_float(bits);
        }
        return out;
    }
    return read_selection(ds, a, start.data(), count.data());
}

MetricData Reader::Impl::read_metric_at(const std::string& path) const {
    Id ds = detail::open_dataset(fid.get(), path, file);
    const ArrayInfo a = inspect(ds.get(), path, true);
    MetricData m;
    m.shape = a.shape;
    m.info.dims = a.dims;
    m.info.params_json = detail::read_attr_string(ds.get(), schema::kAttrParams, file, path);
    m.info.units = detail::read_attr_string(ds.get(), schema::kAttrUnits, file, path);
    m.info.metric_version = detail::read_attr_int(ds.get(), schema::kAttrMetricVersion, file, path);
    m.data = read_all(ds.get(), a);
    return m;
}

// --- public --------------------------------------------------------------------------------------

Reader::Reader(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
    auto lock = detail::hdf5_lock();
    impl_->path = path;
    impl_->file = path.string();
    try {
        impl_->open();
    } catch (...) {
        impl_->fid.reset();
        throw;
    }
}

Reader::~Reader() noexcept {
    if (impl_) {
        auto lock = detail::hdf5_lock();
        impl_.reset();
    }
}

Reader::Reader(Reader&&) noexcept = default;

Reader& Reader::operator=(Reader&& other) noexcept {
    if (this != &other) {
        if (impl_) {
            auto lock = detail::hdf5_lock();
            impl_.reset();
        }
        impl_ = std::move(other.impl_);
    }
    return *this;
}

void Reader::refresh() {
    auto lock = detail::hdf5_lock();
    impl_->open();
}

const std::filesystem::path& Reader::path() const noexcept { return impl_->path; }
const FileInfo& Reader::file_info() const noexcept { return impl_->info; }
const ModelInfo& Reader::model() const noexcept { return impl_->model; }

std::vector<PromptSummary> Reader::prompts() const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    Id g = detail::open_group(m.fid.get(), schema::kPromptsGroup, m.file);
    std::vector<PromptSummary> out;
    for (const auto& name : detail::list_links(g.get(), schema::kPromptsGroup, m.file)) {
        const std::int64_t id = schema::parse_prompt_id(name);
        if (id < 0) continue;  // not a prompt id: an item of a later minor version
        // A prompt whose group a killed writer never flushed is in no complete run: leave it out.
        if (detail::object_type(g.get(), name) != H5O_TYPE_GROUP) continue;
        out.push_back(prompt(id));
    }
    std::sort(out.begin(), out.end(),
              [](const PromptSummary& a, const PromptSummary& b) { return a.id < b.id; });
    return out;
}

PromptSummary Reader::prompt(std::int64_t id) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    const std::string pp = schema::prompt_path(id);
    if (!detail::exists(m.fid.get(), pp))
        throw SchemaError(m.file + ": no prompt " + schema::prompt_id(id));
    Id g = detail::open_group(m.fid.get(), pp, m.file);
    PromptSummary p;
    p.id = id;
    p.text = detail::read_attr_string(g.get(), schema::kAttrText, m.file, pp);
    p.source = detail::read_attr_string_opt(g.get(), schema::kAttrSource, m.file, pp).value_or("");
    p.n_tokens = detail::read_attr_int(g.get(), schema::kAttrNTokens, m.file, pp);
    p.n_prompt_tokens = detail::read_attr_int_opt(g.get(), schema::kAttrNPromptTokens, m.file, pp)
                            .value_or(p.n_tokens);
    if (p.n_tokens <= 0 || p.n_prompt_tokens <= 0 || p.n_prompt_tokens > p.n_tokens)
        detail::throw_schema(m.file, pp,
                             "n_tokens " + std::to_string(p.n_tokens) + " / n_prompt_tokens " +
                                 std::to_string(p.n_prompt_tokens) + " are inconsistent");
    return p;
}

std::vector<std::int32_t> Reader::tokens(std::int64_t id) const {
    auto lock = detail::hdf5_lock();
    const PromptSummary p = prompt(id);
    auto t = detail::read_tokens(impl_->fid.get(), id, impl_->file, p.n_tokens);
    if (static_cast<std::int64_t>(t.size()) != p.n_tokens)
        detail::throw_schema(impl_->file, schema::prompt_path(id) + "/" + schema::kTokens,
                             "has " + std::to_string(t.size()) + " tokens but n_tokens is " +
                                 std::to_string(p.n_tokens));
    return t;
}

std::vector<std::string> Reader::token_strings(std::int64_t id) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    const auto t = tokens(id);
    const std::string path = schema::prompt_path(id) + "/" + schema::kTokenStr;
    Id ds = detail::open_dataset(m.fid.get(), path, m.file);
    auto s = detail::read_strings_dataset(ds.get(), m.file, path,
                                          static_cast<std::int64_t>(t.size()));
    if (s.size() != t.size())
        detail::throw_schema(m.file, path,
                             "has " + std::to_string(s.size()) + " strings for " +
                                 std::to_string(t.size()) + " tokens");
    return s;
}

std::vector<RunSummary> Reader::runs() const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    Id g = detail::open_group(m.fid.get(), schema::kRunsGroup, m.file);
    std::vector<RunSummary> out;
    for (const auto& name : detail::list_links(g.get(), schema::kRunsGroup, m.file))
        out.push_back(run(name));
    return out;
}

RunSummary Reader::run(const std::string& name) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    Id g = m.run_group(name);
    const std::string rp = schema::run_path(name);
    const hid_t h = g.get();
    RunSummary r;
    r.info.name = name;
    r.info.intervention_json =
        detail::read_attr_string_opt(h, schema::kAttrIntervention, m.file, rp).value_or("{}");
    r.info.hooks = parse_string_list(
        detail::read_attr_string_opt(h, schema::kAttrHooks, m.file, rp).value_or("[]"), m.file, rp,
        schema::kAttrHooks);
    r.info.argv = parse_string_list(
        detail::read_attr_string_opt(h, schema::kAttrArgv, m.file, rp).value_or("[]"), m.file, rp,
        schema::kAttrArgv);
    r.info.seed = detail::read_attr_int_opt(h, schema::kAttrSeed, m.file, rp).value_or(0);
    r.info.version = detail::read_attr_string_opt(h, schema::kAttrVersion, m.file, rp).value_or("");
    const std::string dt = detail::read_attr_string(h, schema::kAttrMapDtype, m.file, rp);
    if (dt == schema::kDtypeF16)
        r.info.map_dtype = DType::kF16;
    else if (dt == schema::kDtypeF32)
        r.info.map_dtype = DType::kF32;
    else
        detail::throw_schema(m.file, rp, "attribute 'map_dtype' is '" + dt + "', not f16 or f32");
    r.created_utc =
        detail::read_attr_string_opt(h, schema::kAttrCreatedUtc, m.file, rp).value_or("");
    r.complete = detail::read_attr_bool(h, schema::kAttrComplete, m.file, rp);
    r.n_prompts_done = detail::read_attr_int(h, schema::kAttrNPromptsDone, m.file, rp);
    return r;
}

std::vector<std::int64_t> Reader::run_prompts(const std::string& run,
                                              bool include_incomplete) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    Id rg = m.run_group(run);
    const bool run_complete = detail::has_attr(rg.get(), schema::kAttrComplete) &&
                              detail::read_attr_bool(rg.get(), schema::kAttrComplete, m.file, schema::run_path(run));
    const std::string pp = schema::run_path(run) + "/" + schema::kRunPrompts;
    Id g = detail::open_group(m.fid.get(), pp, m.file);
    std::vector<std::int64_t> out;
    for (const auto& name : detail::list_links(g.get(), pp, m.file)) {
        const std::int64_t id = schema::parse_prompt_id(name);
        if (id < 0) continue;
        // A writer killed while creating a prompt can leave a link whose group never reached the
        // disk: in an incomplete run that prompt is simply not there; in a complete run it is
        // damage.
        if (!run_complete && detail::object_type(g.get(), name) != H5O_TYPE_GROUP) continue;
        Id pg = detail::open_group(g.get(), name, m.file);
        const bool complete =
            detail::has_attr(pg.get(), schema::kAttrComplete) &&
            detail::read_attr_bool(pg.get(), schema::kAttrComplete, m.file, pp + "/" + name);
        if (complete || include_incomplete) out.push_back(id);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> Reader::hooks(const std::string& run, std::int64_t prompt) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    const std::string pp = m.prompt_group_path(run, prompt);
    Id g = detail::open_group(m.fid.get(), pp, m.file);
    std::vector<std::string> out;
    m.collect_hooks(g.get(), pp, "", out);
    std::sort(out.begin(), out.end(), natural_less);
    return out;
}

ArrayInfo Reader::array_info(const std::string& run, std::int64_t prompt,
                             const std::string& hook) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    const std::string path = m.hook_path(run, prompt, hook);
    Id ds = detail::open_dataset(m.fid.get(), path, m.file);
    ArrayInfo a = m.inspect(ds.get(), path, false);
    m.check_against_prompt(a, prompt);
    return a;
}

std::vector<float> Reader::read_array(const std::string& run, std::int64_t prompt,
                                      const std::string& hook) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    const std::string path = m.hook_path(run, prompt, hook);
    Id ds = detail::open_dataset(m.fid.get(), path, m.file);
    const ArrayInfo a = m.inspect(ds.get(), path, false);
    m.check_against_prompt(a, prompt);
    return m.read_all(ds.get(), a);
}

std::vector<float> Reader::read_map_head(const std::string& run, std::int64_t prompt,
                                         const std::string& hook, std::int64_t head) const {
    auto lock = detail::hdf5_lock();
    const ArrayInfo a = array_info(run, prompt, hook);
    if (a.dims != schema::kMapDims)
        throw ShapeError(impl_->file + ": " + a.path + " is not an attention map (dims '" + a.dims +
                         "')");
    return read_map_tile(run, prompt, hook, head, 0, a.shape[1], 0, a.shape[2]);
}

std::vector<float> Reader::read_map_tile(const std::string& run, std::int64_t prompt,
                                         const std::string& hook, std::int64_t head,
                                         std::int64_t q0, std::int64_t q1, std::int64_t k0,
                                         std::int64_t k1) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    const std::string path = m.hook_path(run, prompt, hook);
    Id ds = detail::open_dataset(m.fid.get(), path, m.file);
    const ArrayInfo a = m.inspect(ds.get(), path, false);
    m.check_against_prompt(a, prompt);
    if (a.dims != schema::kMapDims)
        throw ShapeError(m.file + ": " + path + " is not an attention map (dims '" + a.dims + "')");
    const std::int64_t t = a.shape[1];
    if (q0 < 0 || q1 <= q0 || q1 > t || k0 < 0 || k1 <= k0 || k1 > t)
        throw ShapeError(m.file + ": " + path + ": tile [" + std::to_string(q0) + ", " +
                         std::to_string(q1) + ") x [" + std::to_string(k0) + ", " +
                         std::to_string(k1) + ") is empty or outside the map [" +
                         std::to_string(t) + ", " + std::to_string(t) + "]");
    const std::int64_t slot = m.head_slot(a, head);
    const hsize_t start[3] = {static_cast<hsize_t>(slot), static_cast<hsize_t>(q0),
                              static_cast<hsize_t>(k0)};
    const hsize_t count[3] = {1, static_cast<hsize_t>(q1 - q0), static_cast<hsize_t>(k1 - k0)};
    return m.read_selection(ds.get(), a, start, count);
}

std::vector<std::string> Reader::metrics(const std::string& run, std::int64_t prompt) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    const std::string mp = m.prompt_group_path(run, prompt) + "/" + schema::kMetrics;
    if (!detail::exists(m.fid.get(), mp)) return {};
    Id g = detail::open_group(m.fid.get(), mp, m.file);
    return detail::list_links(g.get(), mp, m.file);
}

std::vector<std::string> Reader::run_metrics(const std::string& run) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    m.run_group(run);
    const std::string mp = schema::run_path(run) + "/" + schema::kMetrics;
    if (!detail::exists(m.fid.get(), mp)) return {};
    Id g = detail::open_group(m.fid.get(), mp, m.file);
    return detail::list_links(g.get(), mp, m.file);
}

MetricData Reader::read_metric(const std::string& run, std::int64_t prompt,
                               const std::string& name) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    const std::string mp = m.prompt_group_path(run, prompt) + "/" + schema::kMetrics + "/" + name;
    if (!schema::is_valid_metric_name(name) || !detail::exists(m.fid.get(), mp))
        throw SchemaError(m.file + ": run '" + run + "' prompt " + schema::prompt_id(prompt) +
                          " has no metric '" + name + "'; stored: " + join(metrics(run, prompt)));
    return m.read_metric_at(mp);
}

MetricData Reader::read_run_metric(const std::string& run, const std::string& name) const {
    auto lock = detail::hdf5_lock();
    const Impl& m = *impl_;
    m.run_group(run);
    const std::string mp = schema::run_path(run) + "/" + schema::kMetrics + "/" + name;
    if (!schema::is_valid_metric_name(name) || !detail::exists(m.fid.get(), mp))
        throw SchemaError(m.file + ": run '" + run + "' has no dataset-level metric '" + name +
                          "'; stored: " + join(run_metrics(run)));
    return m.read_metric_at(mp);
}

}  // namespace attnscope::store
