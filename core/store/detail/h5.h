// The thin RAII layer over the HDF5 C API that the store's writer and reader share: an owning
// handle, the process-wide lock every HDF5 call runs under, error messages built from HDF5's
// error stack, the custom binary16 and UTF-8 string types, and checked attribute / string
// helpers. Internal to core/store (HighFive's wrappers are the model; HighFive is not packaged in
// Debian 12). Every function here expects the caller to hold hdf5_lock().
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace attnscope::store::detail {

/// Serialises all HDF5 use in the process (the serial library is not thread-safe) and turns off
/// HDF5's automatic error printing for the calling thread (errors become exceptions instead).
/// Recursive, so public entry points can nest.
std::unique_lock<std::recursive_mutex> hdf5_lock();

/// An owned hid_t, closed with its H5*close function on destruction. Move-only.
class Id {
public:
    using Closer = herr_t (*)(hid_t);
    Id() noexcept = default;
    Id(hid_t id, Closer closer) noexcept : id_(id), closer_(closer) {}
    ~Id() noexcept { reset(); }
    Id(Id&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
    Id& operator=(Id&& other) noexcept {
        if (this != &other) {
            reset();
            id_ = other.id_;
            closer_ = other.closer_;
            other.id_ = -1;
        }
        return *this;
    }
    Id(const Id&) = delete;
    Id& operator=(const Id&) = delete;

    hid_t get() const noexcept { return id_; }
    bool valid() const noexcept { return id_ >= 0; }
    /// Closes now; errors from the close function are dropped (use close_checked to see them).
    void reset() noexcept;
    /// Closes now and returns the close function's status (< 0 on failure).
    herr_t close_checked() noexcept;

private:
    hid_t id_ = -1;
    Closer closer_ = nullptr;
};

/// The innermost messages of the calling thread's HDF5 error stack as one line (e.g. "file write
/// failed: ... errno = 28, error message = 'No space left on device'"), then clears the stack.
/// Empty when the stack is empty.
std::string take_error_stack();

/// "FILE: PATH: " (PATH left out when empty): the prefix of every store message.
std::string where(const std::string& file, const std::string& path);

/// Throws IoError "FILE: PATH: WHAT failed (HDF5: stack)[; HINT]".
[[noreturn]] void throw_io(const std::string& file, const std::string& path,
                           const std::string& what, const std::string& hint = "");
/// Throws SchemaError "FILE: PATH: PROBLEM[; HINT]".
[[noreturn]] void throw_schema(const std::string& file, const std::string& path,
                               const std::string& problem, const std::string& hint = "");

/// Returns `id` when >= 0, else throw_io.
hid_t check(hid_t id, const std::string& file, const std::string& path, const std::string& what);
/// As check, wrapping the id into an owner with `closer`.
Id check_id(hid_t id, Id::Closer closer, const std::string& file, const std::string& path,
            const std::string& what);

// --- types -----------------------------------------------------------------------------------

/// IEEE binary16, little endian: h5py / NumPy read it as float16 ("<f2").
Id half_type();
/// Variable-length UTF-8 string.
Id utf8_type();
/// h5py's bool: an enum over int8 with FALSE = 0, TRUE = 1 (NumPy reads it as bool).
Id bool_type();
/// True when `type` is a 2-byte IEEE binary16 float (any byte order), false for other floats
/// (e.g. a bfloat16 written as a custom float, which the store refuses).
bool is_half(hid_t type);

// --- links and objects -----------------------------------------------------------------------

/// True when every component of `path` (absolute or relative to `loc`) exists.
bool exists(hid_t loc, const std::string& path);
/// Object type at `path` (which must exist), H5O_TYPE_UNKNOWN when it cannot be determined.
H5O_type_t object_type(hid_t loc, const std::string& path);
/// Opens the group at `path`; SchemaError when it is missing or not a group.
Id open_group(hid_t loc, const std::string& path, const std::string& file);
/// Opens the dataset at `path`; SchemaError when it is missing or not a dataset.
Id open_dataset(hid_t loc, const std::string& path, const std::string& file);
/// Creates the group at `path`, with missing intermediate groups. IoError on failure.
Id create_group(hid_t loc, const std::string& path, const std::string& file);
/// Names of the links in the group at `path`, in name order.
std::vector<std::string> list_links(hid_t group, const std::string& path, const std::string& file);

// --- attributes (writers replace an existing attribute of the same name) ---------------------

void write_attr(hid_t obj, const char* name, const std::string& value, const std::string& file,
                const std::string& path);
void write_attr(hid_t obj, const char* name, std::int64_t value, const std::string& file,
                const std::string& path);
void write_attr(hid_t obj, const char* name, const std::vector<std::int64_t>& values,
                const std::string& file, const std::string& path);
void write_attr_bool(hid_t obj, const char* name, bool value, const std::string& file,
                     const std::string& path);

bool has_attr(hid_t obj, const char* name);
/// Readers: SchemaError naming FILE, PATH and the attribute when it is missing (non-optional
/// forms) or has the wrong class or shape. Strings may be fixed or variable length.
std::optional<std::string> read_attr_string_opt(hid_t obj, const char* name,
                                                const std::string& file, const std::string& path);
std::string read_attr_string(hid_t obj, const char* name, const std::string& file,
                             const std::string& path);
std::optional<std::int64_t> read_attr_int_opt(hid_t obj, const char* name, const std::string& file,
                                              const std::string& path);
std::int64_t read_attr_int(hid_t obj, const char* name, const std::string& file,
                           const std::string& path);
std::vector<std::int64_t> read_attr_ints(hid_t obj, const char* name, const std::string& file,
                                         const std::string& path);
/// Accepts h5py's bool enum and any integer type (non-zero is true).
bool read_attr_bool(hid_t obj, const char* name, const std::string& file, const std::string& path);

// --- string datasets -------------------------------------------------------------------------

/// Writes a scalar UTF-8 string dataset at `path` (relative to `loc`).
void write_string_dataset(hid_t loc, const std::string& path, const std::string& value,
                          const std::string& file, const std::string& abs_path);
/// Writes a 1-D UTF-8 string dataset; `values` must be valid UTF-8 without NUL bytes.
void write_strings_dataset(hid_t loc, const std::string& path,
                           const std::vector<std::string>& values, const std::string& file,
                           const std::string& abs_path);
/// Reads a scalar (or one-element) string dataset.
std::string read_string_dataset(hid_t dataset, const std::string& file, const std::string& path);
/// Reads a 1-D string dataset. With `expected` >= 0, a length other than `expected` is a
/// SchemaError raised before anything is allocated or read.
std::vector<std::string> read_strings_dataset(hid_t dataset, const std::string& file,
                                              const std::string& path,
                                              std::int64_t expected = -1);

// --- dataspaces ------------------------------------------------------------------------------

/// Current dims of a dataset (empty for a scalar). SchemaError for a null dataspace, and for
/// dims whose element count exceeds 2^40 (no capture holds a tensor that large; a damaged or
/// hostile header would otherwise make callers size buffers from it).
std::vector<std::int64_t> dataset_shape(hid_t dataset, const std::string& file,
                                        const std::string& path);

// --- files -----------------------------------------------------------------------------------

/// > 0 when `name` has an HDF5 signature, 0 when it has none, < 0 when it cannot be read.
/// (H5Fis_accessible from 1.12 on, H5Fis_hdf5 before.)
htri_t is_hdf5_file(const std::string& name);

/// Writer file access: a metadata cache (32 MiB, up to 128 MiB) large enough that a prompt's
/// metadata stays in memory until the per-prompt flush instead of being evicted half-way, which
/// would put partly updated structures on disk before the prompt is complete.
void configure_writer_access(hid_t fapl);

/// Turns HDF5's file locking off in `fapl` (readers: a writer holds an exclusive lock while it
/// writes). No-op before HDF5 1.10.7, where HDF5_USE_FILE_LOCKING=FALSE does the same.
void disable_file_locking(hid_t fapl);

/// After a failed write: points the file's descriptor at an anonymous in-memory file, so that
/// closing the HDF5 file (which flushes) completes and frees the library's state, while nothing
/// more reaches the real file: it keeps what the last successful flush left. Best effort; sec2
/// (default) driver only.
void poison_file(hid_t file) noexcept;
/// Closes every dataset, group, named type and attribute still open in `file` (after a failed
/// H5Dclose the id stays open, and the file would never really close).
void close_open_objects(hid_t file) noexcept;
/// Reserves disk blocks up to byte `end` of the file (fallocate), so that a full disk shows up
/// here, before HDF5 writes anything, rather than in the middle of a metadata flush. Returns 0,
/// or the errno (ENOSPC, EFBIG, ...). Filesystems without fallocate count as success.
int reserve_space(hid_t file, std::uint64_t end) noexcept;
/// Cuts what reserve_space added past HDF5's own end of file. Call right after a flush.
void trim_file(hid_t file) noexcept;
/// Size HDF5 gives for the file: max(end of allocated space, end of file).
std::uint64_t file_size(hid_t file) noexcept;
/// fsync() of the file's descriptor (sec2 driver); false when unavailable or failed.
bool fsync_file(hid_t file) noexcept;

}  // namespace attnscope::store::detail
