// The store's HDF5 RAII layer: handles, error stack to message, types, checked attributes and
// string datasets. See h5.h.
#include "core/store/detail/h5.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <cstdlib>
#include <cstring>

#include "core/base/error.h"

namespace attnscope::store::detail {

std::unique_lock<std::recursive_mutex> hdf5_lock() {
    static std::recursive_mutex mutex;
    std::unique_lock<std::recursive_mutex> lock(mutex);
    // Per thread in thread-safe HDF5 builds, global otherwise: set it every time (cheap).
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return lock;
}

void Id::reset() noexcept { (void)close_checked(); }

herr_t Id::close_checked() noexcept {
    herr_t status = 0;
    if (id_ >= 0 && closer_ != nullptr) status = closer_(id_);
    id_ = -1;
    return status;
}

// --- errors --------------------------------------------------------------------------------------

namespace {

struct StackWalk {
    std::vector<std::string> lines;
};

// HDF5's sec2 driver describes a failed read/write as "file write failed: time = ..., filename
// = ..., file descriptor = 3, errno = 28, error message = 'No space left on device', buf = ...":
// keep the operation and the errno text.
std::string compact(const std::string& desc) {
    const std::size_t colon = desc.find(": time = ");
    const std::size_t err = desc.find("errno = ");
    if (colon == std::string::npos || err == std::string::npos) return desc;
    std::string out = desc.substr(0, colon) + ": " + desc.substr(err);
    const std::size_t tail = out.find("', ");
    if (tail != std::string::npos) out.resize(tail + 1);
    return out;
}

herr_t walk_cb(unsigned /*n*/, const H5E_error2_t* err, void* data) {
    auto* walk = static_cast<StackWalk*>(data);
    std::string line;
    if (err->desc != nullptr && err->desc[0] != '\0') line = compact(err->desc);
    char minor[160] = {0};
    if (H5Eget_msg(err->min_num, nullptr, minor, sizeof minor) > 0 && minor[0] != '\0') {
        if (line.empty()) {
            line = minor;
        } else if (line.find(minor) == std::string::npos) {
            line += " (";
            line += minor;
            line += ")";
        }
    }
    if (!line.empty()) walk->lines.push_back(line);
    return 0;
}

}  // namespace

std::string take_error_stack() {
    StackWalk walk;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &walk);
    H5Eclear2(H5E_DEFAULT);
    // Upward = innermost first. The innermost two carry the cause (e.g. errno text); the
    // outermost says which API call failed. Keep at most three, without repeats.
    std::vector<std::string> keep;
    auto add = [&](const std::string& s) {
        for (const auto& k : keep)
            if (k == s) return;
        keep.push_back(s);
    };
    for (std::size_t i = 0; i < walk.lines.size() && i < 2; ++i) add(walk.lines[i]);
    if (!walk.lines.empty()) add(walk.lines.back());
    std::string out;
    for (const auto& k : keep) {
        if (!out.empty()) out += "; ";
        out += k;
    }
    return out;
}

std::string where(const std::string& file, const std::string& path) {
    return path.empty() ? file + ": " : file + ": " + path + ": ";
}

void throw_io(const std::string& file, const std::string& path, const std::string& what,
              const std::string& hint) {
    const std::string stack = take_error_stack();
    std::string msg = where(file, path) + what + " failed";
    if (!stack.empty()) msg += " (HDF5: " + stack + ")";
    if (!hint.empty()) msg += "; " + hint;
    throw IoError(msg);
}

void throw_schema(const std::string& file, const std::string& path, const std::string& problem,
                  const std::string& hint) {
    H5Eclear2(H5E_DEFAULT);
    std::string msg = where(file, path) + problem;
    if (!hint.empty()) msg += "; " + hint;
    throw SchemaError(msg);
}

hid_t check(hid_t id, const std::string& file, const std::string& path, const std::string& what) {
    if (id < 0) throw_io(file, path, what);
    return id;
}

Id check_id(hid_t id, Id::Closer closer, const std::string& file, const std::string& path,
            const std::string& what) {
    return Id(check(id, file, path, what), closer);
}

// --- types ---------------------------------------------------------------------------------------

Id half_type() {
    // binary16 as a custom float: sign bit 15, exponent bits 10-14 (bias 15), mantissa 0-9.
    Id t(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
    if (!t.valid() || H5Tset_fields(t.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(t.get(), 2) < 0 ||
        H5Tset_ebias(t.get(), 15) < 0)
        throw_io("<memory>", "", "creating the float16 HDF5 type");
    return t;
}

Id utf8_type() {
    Id t(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!t.valid() || H5Tset_size(t.get(), H5T_VARIABLE) < 0 ||
        H5Tset_cset(t.get(), H5T_CSET_UTF8) < 0)
        throw_io("<memory>", "", "creating the UTF-8 string HDF5 type");
    return t;
}

Id bool_type() {
    Id t(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose);
    const std::int8_t f = 0, tr = 1;
    if (!t.valid() || H5Tenum_insert(t.get(), "FALSE", &f) < 0 ||
        H5Tenum_insert(t.get(), "TRUE", &tr) < 0)
        throw_io("<memory>", "", "creating the bool HDF5 type");
    return t;
}

bool is_half(hid_t type) {
    if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 2) return false;
    size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return false;
    return spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 &&
           H5Tget_ebias(type) == 15;
}

// --- links ---------------------------------------------------------------------------------------

bool exists(hid_t loc, const std::string& path) {
    // H5Lexists fails (rather than returning false) when an intermediate group is missing, so
    // test each prefix in turn.
    std::size_t pos = (!path.empty() && path[0] == '/') ? 1 : 0;
    if (path == "/") return true;
    while (true) {
        const std::size_t slash = path.find('/', pos);
        const std::string prefix = path.substr(0, slash);
        const htri_t e = H5Lexists(loc, prefix.c_str(), H5P_DEFAULT);
        if (e <= 0) {
            H5Eclear2(H5E_DEFAULT);
            return false;
        }
        if (slash == std::string::npos) return true;
        pos = slash + 1;
    }
}

H5O_type_t object_type(hid_t loc, const std::string& path) {
    const hid_t obj = H5Oopen(loc, path.c_str(), H5P_DEFAULT);
    if (obj < 0) {
        H5Eclear2(H5E_DEFAULT);
        return H5O_TYPE_UNKNOWN;
    }
    const H5I_type_t t = H5Iget_type(obj);
    H5Oclose(obj);
    if (t == H5I_GROUP) return H5O_TYPE_GROUP;
    if (t == H5I_DATASET) return H5O_TYPE_DATASET;
    if (t == H5I_DATATYPE) return H5O_TYPE_NAMED_DATATYPE;
    return H5O_TYPE_UNKNOWN;
}

Id open_group(hid_t loc, const std::string& path, const std::string& file) {
    if (!exists(loc, path)) throw_schema(file, path, "group is missing");
    if (object_type(loc, path) != H5O_TYPE_GROUP) throw_schema(file, path, "is not a group");
    return check_id(H5Gopen2(loc, path.c_str(), H5P_DEFAULT), H5Gclose, file, path,
                    "opening group");
}

Id open_dataset(hid_t loc, const std::string& path, const std::string& file) {
    if (!exists(loc, path)) throw_schema(file, path, "dataset is missing");
    if (object_type(loc, path) != H5O_TYPE_DATASET) throw_schema(file, path, "is not a dataset");
    return check_id(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose, file, path,
                    "opening dataset");
}

Id create_group(hid_t loc, const std::string& path, const std::string& file) {
    Id lcpl = check_id(H5Pcreate(H5P_LINK_CREATE), H5Pclose, file, path, "creating property list");
    check(H5Pset_create_intermediate_group(lcpl.get(), 1), file, path, "setting property");
    check(H5Pset_char_encoding(lcpl.get(), H5T_CSET_UTF8), file, path, "setting property");
    return check_id(H5Gcreate2(loc, path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                    file, path, "creating group");
}

namespace {

herr_t collect_cb(hid_t /*group*/, const char* name, const H5L_info_t* /*info*/, void* data) {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
}

}  // namespace

std::vector<std::string> list_links(hid_t group, const std::string& path, const std::string& file) {
    std::vector<std::string> names;
    hsize_t idx = 0;
    if (H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_cb, &names) < 0)
        throw_io(file, path, "listing group members");
    return names;
}

// --- attributes ----------------------------------------------------------------------------------

namespace {

void delete_attr_if_present(hid_t obj, const char* name, const std::string& file,
                            const std::string& path) {
    const htri_t e = H5Aexists(obj, name);
    if (e < 0) throw_io(file, path, std::string("checking attribute '") + name + "'");
    if (e > 0 && H5Adelete(obj, name) < 0)
        throw_io(file, path, std::string("replacing attribute '") + name + "'");
}

void write_attr_raw(hid_t obj, const char* name, hid_t type, hid_t space, const void* buf,
                    const std::string& file, const std::string& path) {
    delete_attr_if_present(obj, name, file, path);
    const std::string what = std::string("writing attribute '") + name + "'";
    Id attr = check_id(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, file,
                       path, what);
    check(H5Awrite(attr.get(), type, buf), file, path, what);
}

Id scalar_space(const std::string& file, const std::string& path) {
    return check_id(H5Screate(H5S_SCALAR), H5Sclose, file, path, "creating dataspace");
}

// Opens attribute `name`; nullopt when absent.
std::optional<Id> open_attr(hid_t obj, const char* name, const std::string& file,
                            const std::string& path) {
    const htri_t e = H5Aexists(obj, name);
    if (e < 0) throw_io(file, path, std::string("checking attribute '") + name + "'");
    if (e == 0) return std::nullopt;
    return check_id(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose, file, path,
                    std::string("opening attribute '") + name + "'");
}

// Number of elements of an attribute's or dataset's dataspace; -1 for a null dataspace.
std::int64_t n_elements(hid_t space) {
    if (H5Sget_simple_extent_type(space) == H5S_NULL) return -1;
    return static_cast<std::int64_t>(H5Sget_simple_extent_npoints(space));
}

std::string attr_label(const char* name) { return std::string("attribute '") + name + "'"; }

// Reads `n` strings stored with file type `ftype` from an attribute (is_attr) or a dataset.
std::vector<std::string> read_strings(hid_t obj, bool is_attr, hid_t ftype, std::size_t n,
                                      const std::string& file, const std::string& path,
                                      const std::string& label) {
    std::vector<std::string> out;
    out.reserve(n);
    const std::string what = "reading " + label;
    if (H5Tis_variable_str(ftype) > 0) {
        Id mtype = check_id(H5Tcopy(H5T_C_S1), H5Tclose, file, path, what);
        check(H5Tset_size(mtype.get(), H5T_VARIABLE), file, path, what);
        check(H5Tset_cset(mtype.get(), H5Tget_cset(ftype)), file, path, what);
        std::vector<char*> ptrs(n, nullptr);
        const herr_t st =
            is_attr ? H5Aread(obj, mtype.get(), ptrs.data())
                    : H5Dread(obj, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data());
        if (st < 0) throw_io(file, path, what);
        for (char* p : ptrs) {
            out.emplace_back(p != nullptr ? p : "");
            if (p != nullptr) H5free_memory(p);
        }
        return out;
    }
    const std::size_t size = H5Tget_size(ftype);
    if (size == 0) throw_schema(file, path, label + " is a string of size 0");
    Id mtype = check_id(H5Tcopy(ftype), H5Tclose, file, path, what);
    std::vector<char> buf(size * n + 1, '\0');
    const herr_t st = is_attr
                          ? H5Aread(obj, mtype.get(), buf.data())
                          : H5Dread(obj, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
    if (st < 0) throw_io(file, path, what);
    const bool space_pad = H5Tget_strpad(ftype) == H5T_STR_SPACEPAD;
    for (std::size_t i = 0; i < n; ++i) {
        std::string s(buf.data() + i * size, size);
        const std::size_t nul = s.find('\0');
        if (nul != std::string::npos) s.resize(nul);
        if (space_pad)
            while (!s.empty() && s.back() == ' ') s.pop_back();
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace

void write_attr(hid_t obj, const char* name, const std::string& value, const std::string& file,
                const std::string& path) {
    Id type = utf8_type();
    Id space = scalar_space(file, path);
    const char* ptr = value.c_str();
    write_attr_raw(obj, name, type.get(), space.get(), &ptr, file, path);
}

void write_attr(hid_t obj, const char* name, std::int64_t value, const std::string& file,
                const std::string& path) {
    Id space = scalar_space(file, path);
    // Stored little-endian 64-bit whatever the host; read back through H5T_NATIVE_INT64.
    delete_attr_if_present(obj, name, file, path);
    const std::string what = "writing " + attr_label(name);
    Id attr = check_id(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       H5Aclose, file, path, what);
    check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), file, path, what);
}

void write_attr(hid_t obj, const char* name, const std::vector<std::int64_t>& values,
                const std::string& file, const std::string& path) {
    const std::string what = "writing " + attr_label(name);
    const hsize_t n = values.size();
    Id space = values.empty()
                   ? check_id(H5Screate(H5S_NULL), H5Sclose, file, path, what)
                   : check_id(H5Screate_simple(1, &n, nullptr), H5Sclose, file, path, what);
    delete_attr_if_present(obj, name, file, path);
    Id attr = check_id(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       H5Aclose, file, path, what);
    if (!values.empty())
        check(H5Awrite(attr.get(), H5T_NATIVE_INT64, values.data()), file, path, what);
}

void write_attr_bool(hid_t obj, const char* name, bool value, const std::string& file,
                     const std::string& path) {
    Id type = bool_type();
    Id space = scalar_space(file, path);
    const std::int8_t v = value ? 1 : 0;
    write_attr_raw(obj, name, type.get(), space.get(), &v, file, path);
}

bool has_attr(hid_t obj, const char* name) {
    const htri_t e = H5Aexists(obj, name);
    if (e < 0) H5Eclear2(H5E_DEFAULT);
    return e > 0;
}

std::optional<std::string> read_attr_string_opt(hid_t obj, const char* name,
                                                const std::string& file, const std::string& path) {
    auto attr = open_attr(obj, name, file, path);
    if (!attr) return std::nullopt;
    Id type =
        check_id(H5Aget_type(attr->get()), H5Tclose, file, path, "reading " + attr_label(name));
    if (H5Tget_class(type.get()) != H5T_STRING)
        throw_schema(file, path, attr_label(name) + " is not a string");
    Id space =
        check_id(H5Aget_space(attr->get()), H5Sclose, file, path, "reading " + attr_label(name));
    if (n_elements(space.get()) != 1)
        throw_schema(file, path, attr_label(name) + " is not a single string");
    return read_strings(attr->get(), true, type.get(), 1, file, path, attr_label(name)).front();
}

std::string read_attr_string(hid_t obj, const char* name, const std::string& file,
                             const std::string& path) {
    auto v = read_attr_string_opt(obj, name, file, path);
    if (!v) throw_schema(file, path, attr_label(name) + " is missing");
    return *v;
}

std::optional<std::int64_t> read_attr_int_opt(hid_t obj, const char* name, const std::string& file,
                                              const std::string& path) {
    auto attr = open_attr(obj, name, file, path);
    if (!attr) return std::nullopt;
    Id type =
        check_id(H5Aget_type(attr->get()), H5Tclose, file, path, "reading " + attr_label(name));
    if (H5Tget_class(type.get()) != H5T_INTEGER)
        throw_schema(file, path, attr_label(name) + " is not an integer");
    Id space =
        check_id(H5Aget_space(attr->get()), H5Sclose, file, path, "reading " + attr_label(name));
    if (n_elements(space.get()) != 1)
        throw_schema(file, path, attr_label(name) + " is not a single integer");
    std::int64_t v = 0;
    check(H5Aread(attr->get(), H5T_NATIVE_INT64, &v), file, path, "reading " + attr_label(name));
    return v;
}

std::int64_t read_attr_int(hid_t obj, const char* name, const std::string& file,
                           const std::string& path) {
    auto v = read_attr_int_opt(obj, name, file, path);
    if (!v) throw_schema(file, path, attr_label(name) + " is missing");
    return *v;
}

std::vector<std::int64_t> read_attr_ints(hid_t obj, const char* name, const std::string& file,
                                         const std::string& path) {
    auto attr = open_attr(obj, name, file, path);
    if (!attr) throw_schema(file, path, attr_label(name) + " is missing");
    Id type =
        check_id(H5Aget_type(attr->get()), H5Tclose, file, path, "reading " + attr_label(name));
    if (H5Tget_class(type.get()) != H5T_INTEGER)
        throw_schema(file, path, attr_label(name) + " is not an integer list");
    Id space =
        check_id(H5Aget_space(attr->get()), H5Sclose, file, path, "reading " + attr_label(name));
    const std::int64_t n = n_elements(space.get());
    if (n <= 0) return {};
    if (H5Sget_simple_extent_ndims(space.get()) > 1)
        throw_schema(file, path, attr_label(name) + " is not a 1-D integer list");
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    check(H5Aread(attr->get(), H5T_NATIVE_INT64, v.data()), file, path,
          "reading " + attr_label(name));
    return v;
}

bool read_attr_bool(hid_t obj, const char* name, const std::string& file, const std::string& path) {
    auto attr = open_attr(obj, name, file, path);
    if (!attr) throw_schema(file, path, attr_label(name) + " is missing");
    Id type =
        check_id(H5Aget_type(attr->get()), H5Tclose, file, path, "reading " + attr_label(name));
    Id space =
        check_id(H5Aget_space(attr->get()), H5Sclose, file, path, "reading " + attr_label(name));
    if (n_elements(space.get()) != 1)
        throw_schema(file, path, attr_label(name) + " is not a single value");
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls == H5T_ENUM) {
        // h5py's bool: enum over a 1-byte integer. Enum -> integer is no HDF5 conversion, so read
        // the raw value with the attribute's own type.
        if (H5Tget_size(type.get()) != 1)
            throw_schema(file, path, attr_label(name) + " is an enum that is not a bool");
        std::int8_t v = 0;
        check(H5Aread(attr->get(), type.get(), &v), file, path, "reading " + attr_label(name));
        return v != 0;
    }
    if (cls != H5T_INTEGER) throw_schema(file, path, attr_label(name) + " is not a bool");
    std::int64_t v = 0;
    check(H5Aread(attr->get(), H5T_NATIVE_INT64, &v), file, path, "reading " + attr_label(name));
    return v != 0;
}

// --- string datasets -----------------------------------------------------------------------------

void write_string_dataset(hid_t loc, const std::string& path, const std::string& value,
                          const std::string& file, const std::string& abs_path) {
    const std::string what = "writing string dataset";
    Id type = utf8_type();
    Id space = scalar_space(file, abs_path);
    Id ds = check_id(H5Dcreate2(loc, path.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT),
                     H5Dclose, file, abs_path, what);
    const char* ptr = value.c_str();
    check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &ptr), file, abs_path,
          what);
}

void write_strings_dataset(hid_t loc, const std::string& path,
                           const std::vector<std::string>& values, const std::string& file,
                           const std::string& abs_path) {
    const std::string what = "writing string dataset";
    Id type = utf8_type();
    const hsize_t n = values.size();
    Id space = check_id(H5Screate_simple(1, &n, nullptr), H5Sclose, file, abs_path, what);
    Id ds = check_id(H5Dcreate2(loc, path.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT),
                     H5Dclose, file, abs_path, what);
    std::vector<const char*> ptrs;
    ptrs.reserve(values.size());
    for (const auto& v : values) ptrs.push_back(v.c_str());
    if (n > 0)
        check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), file,
              abs_path, what);
}

std::string read_string_dataset(hid_t dataset, const std::string& file, const std::string& path) {
    Id type = check_id(H5Dget_type(dataset), H5Tclose, file, path, "reading string");
    if (H5Tget_class(type.get()) != H5T_STRING) throw_schema(file, path, "is not a string");
    Id space = check_id(H5Dget_space(dataset), H5Sclose, file, path, "reading string");
    if (n_elements(space.get()) != 1) throw_schema(file, path, "is not a single string");
    return read_strings(dataset, false, type.get(), 1, file, path, "string").front();
}

std::vector<std::string> read_strings_dataset(hid_t dataset, const std::string& file,
                                              const std::string& path, std::int64_t expected) {
    Id type = check_id(H5Dget_type(dataset), H5Tclose, file, path, "reading strings");
    if (H5Tget_class(type.get()) != H5T_STRING) throw_schema(file, path, "is not a string dataset");
    Id space = check_id(H5Dget_space(dataset), H5Sclose, file, path, "reading strings");
    if (H5Sget_simple_extent_ndims(space.get()) != 1)
        throw_schema(file, path, "is not a 1-D string dataset");
    const std::int64_t n = n_elements(space.get());
    if (expected >= 0 && std::max<std::int64_t>(n, 0) != expected)
        throw_schema(file, path,
                     "has " + std::to_string(n) + " strings for " + std::to_string(expected) +
                         " tokens");
    if (n <= 0) return {};
    return read_strings(dataset, false, type.get(), static_cast<std::size_t>(n), file, path,
                        "strings");
}

std::vector<std::int64_t> dataset_shape(hid_t dataset, const std::string& file,
                                        const std::string& path) {
    Id space = check_id(H5Dget_space(dataset), H5Sclose, file, path, "reading dataspace");
    if (H5Sget_simple_extent_type(space.get()) == H5S_NULL)
        throw_schema(file, path, "has an empty (null) dataspace");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) throw_io(file, path, "reading dataspace");
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0)
        throw_io(file, path, "reading dataspace");
    // Dims come from the file: a dim above 2^63 would turn negative below, and a huge product
    // would overflow the callers' buffer sizes (docs/fuzzing.md, "Reader validation").
    constexpr hsize_t kMaxElements = hsize_t{1} << 40;
    hsize_t n = 1;
    for (const hsize_t d : dims) {
        if (d > kMaxElements || (d != 0 && n > kMaxElements / d))
            throw_schema(file, path,
                         "has an impossible shape (more than 2^40 elements); the file is damaged");
        n = d == 0 ? 0 : n * d;
    }
    return std::vector<std::int64_t>(dims.begin(), dims.end());
}

// --- files ---------------------------------------------------------------------------------------

namespace {

int file_descriptor(hid_t file) {
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || handle == nullptr) {
        H5Eclear2(H5E_DEFAULT);
        return -1;
    }
    return *static_cast<int*>(handle);
}

}  // namespace

htri_t is_hdf5_file(const std::string& name) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Fis_accessible(name.c_str(), H5P_DEFAULT);
#else
    return H5Fis_hdf5(name.c_str());
#endif
}

void configure_writer_access(hid_t fapl) {
    H5AC_cache_config_t c;
    std::memset(&c, 0, sizeof c);
    c.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    if (H5Pget_mdc_config(fapl, &c) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return;
    }
    c.set_initial_size = 1;
    c.initial_size = 32u << 20;
    c.min_size = 32u << 20;
    if (c.max_size < (128u << 20)) c.max_size = 128u << 20;
    if (H5Pset_mdc_config(fapl, &c) < 0) H5Eclear2(H5E_DEFAULT);  // keep the defaults
}

void disable_file_locking(hid_t fapl) {
#if H5_VERSION_GE(1, 12, 1) || (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7)
    H5Pset_file_locking(fapl, 0, 1);
#else
    (void)fapl;
#endif
}

void poison_file(hid_t file) noexcept {
    const int fd = file_descriptor(file);
    if (fd < 0) return;
    // A writable, truncatable sink (the close must succeed: HDF5 1.10 leaves a file whose close
    // failed half torn down, and crashes at exit). memfd: memory-backed, never hits a full disk.
    int sink = -1;
#ifdef __linux__
    sink = static_cast<int>(::syscall(SYS_memfd_create, "attnscope-store-sink", 0u));
#endif
    if (sink < 0) {
        char name[] = "/tmp/attnscope-store-sink-XXXXXX";
        sink = ::mkstemp(name);
        if (sink >= 0) ::unlink(name);
    }
    if (sink < 0) return;
    ::dup2(sink, fd);
    ::close(sink);
}

void close_open_objects(hid_t file) noexcept {
    const unsigned types =
        H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL;
    const ssize_t n = H5Fget_obj_count(file, types);
    if (n <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return;
    }
    std::vector<hid_t> ids(static_cast<std::size_t>(n));
    const ssize_t got = H5Fget_obj_ids(file, types, ids.size(), ids.data());
    for (ssize_t i = 0; i < got; ++i) {
        switch (H5Iget_type(ids[i])) {
            case H5I_DATASET: H5Dclose(ids[i]); break;
            case H5I_GROUP: H5Gclose(ids[i]); break;
            case H5I_DATATYPE: H5Tclose(ids[i]); break;
            case H5I_ATTR: H5Aclose(ids[i]); break;
            default: break;
        }
    }
    H5Eclear2(H5E_DEFAULT);
}

int reserve_space(hid_t file, std::uint64_t end) noexcept {
    const int fd = file_descriptor(file);
    if (fd < 0) return 0;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return errno;
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (end <= size) return 0;
#ifdef __linux__
    // Mode 0 extends the file and allocates blocks; only the part past the current end.
    if (::fallocate(fd, 0, static_cast<off_t>(size), static_cast<off_t>(end - size)) == 0) return 0;
    const int err = errno;
    if (err == EOPNOTSUPP || err == ENOSYS) return 0;
    return err;
#else
    return 0;
#endif
}

void trim_file(hid_t file) noexcept {
    const int fd = file_descriptor(file);
    const std::uint64_t end = file_size(file);  // max(HDF5's end of file, end of allocation)
    struct stat st {};
    if (fd < 0 || end == 0 || ::fstat(fd, &st) != 0) return;
    if (static_cast<std::uint64_t>(st.st_size) > end)
        (void)::ftruncate(fd, static_cast<off_t>(end));
}

std::uint64_t file_size(hid_t file) noexcept {
    hsize_t size = 0;
    if (H5Fget_filesize(file, &size) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    return size;
}

bool fsync_file(hid_t file) noexcept {
    const int fd = file_descriptor(file);
    return fd >= 0 && ::fsync(fd) == 0;
}

}  // namespace attnscope::store::detail
