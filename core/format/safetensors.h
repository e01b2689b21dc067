// Reading Hugging Face checkpoints in the safetensors format, memory-mapped and fully validated
// before any byte of tensor data is trusted. Torch-free on purpose: the same code is the fuzz
// target for untrusted model files. PyTorch pickles (*.bin, *.pt) are refused, never executed.
//
// File layout (https://github.com/huggingface/safetensors): u64 little-endian header length N,
// N bytes of JSON {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {str: str}},
// then the data section; offsets are relative to the data section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace attnscope::format {

/// Element types the format defines. Model loading accepts F32, F16 and BF16 only.
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool, kF8E4M3, kF8E5M2 };

/// "F32", "BF16", ... as written in safetensors headers.
std::string to_string(DType dtype);
/// Bytes per element.
std::size_t dtype_size(DType dtype);

/// A read-only memory mapping of a whole file; unmapped when the last owner goes away.
class MappedFile {
public:
    /// Throws IoError naming the file when it cannot be opened or mapped.
    explicit MappedFile(const std::filesystem::path& path);
    ~MappedFile() noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::byte* data() const { return data_; }
    std::size_t size() const { return size_; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

/// One tensor inside a mapped file. `data` stays valid while `file` is alive.
struct TensorView {
    std::string name;
    DType dtype = DType::kF32;
    std::vector<std::int64_t> shape;
    const std::byte* data = nullptr;
    std::size_t nbytes = 0;
    std::shared_ptr<const MappedFile> file;

    std::int64_t numel() const;
};

/// One .safetensors file, header parsed and validated.
class SafetensorsFile {
public:
    /// Maps and validates `path`. Throws WeightsError naming the file and the problem when:
    /// the file is shorter than 8 bytes; the header length runs past the end of the file (or is
    /// absurdly large); the header is not a JSON object; a tensor entry lacks dtype/shape/
    /// data_offsets or has an unknown dtype or negative dimension; a byte range lies outside the
    /// data section, is reversed, or overlaps another tensor; the byte size differs from
    /// shape x dtype size; a key appears twice in one JSON object; __metadata__ is not an object
    /// of strings. Gaps between tensors are tolerated (the spec forbids them, writers produce
    /// them; they cannot alias data). IoError when the file cannot be read.
    /// Tensors are listed in name order. The mapping is private and read-only; truncating the
    /// file on disk while it is mapped is undefined (SIGBUS), as for any mmap reader.
    static SafetensorsFile open(const std::filesystem::path& path);

    /// Parses and validates from an in-memory buffer (fuzzing and tests); `source` names it.
    static SafetensorsFile parse(std::shared_ptr<const MappedFile> file, const std::string& source);

    const std::vector<TensorView>& tensors() const { return tensors_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::filesystem::path& path() const { return path_; }

    /// Validates a raw header+data buffer without a file (fuzz entry point). Throws as open().
    /// The returned views point into `data` and have no `file` owner.
    static std::vector<TensorView> parse_buffer(const std::byte* data, std::size_t size,
                                                const std::string& source);

private:
    std::filesystem::path path_;
    std::vector<TensorView> tensors_;
    std::map<std::string, std::string> metadata_;
};

/// All tensors of a checkpoint folder: `model.safetensors`, or the shards listed in
/// `model.safetensors.index.json` (every shard must exist and hold exactly the tensors the
/// index assigns to it), or else every `*.safetensors` in the folder.
class Checkpoint {
public:
    /// Throws WeightsError when the folder holds no safetensors. If it holds only PyTorch pickle
    /// files (*.bin, *.pt, *.pth, *.ckpt) the message says they are refused for safety and how to
    /// convert them (a one-line Python command with transformers' save_pretrained); pickle files
    /// are never opened. With an index: shard names must be plain file names in `dir` (no path
    /// traversal), every shard must exist, and a tensor the index does not list, or lists for
    /// another shard, is an error. A tensor present in two files is an error. IoError when `dir`
    /// is not a directory or a file cannot be read.
    static Checkpoint open(const std::filesystem::path& dir);

    /// nullptr when absent.
    const TensorView* find(const std::string& name) const;
    /// Throws WeightsError naming the tensor and the checkpoint folder when absent.
    const TensorView& at(const std::string& name) const;
    /// Sorted names of all tensors.
    std::vector<std::string> names() const;
    const std::filesystem::path& dir() const { return dir_; }
    std::size_t total_bytes() const;
    /// The files the tensors came from, in load order.
    const std::vector<std::filesystem::path>& files() const { return files_; }

private:
    std::filesystem::path dir_;
    std::vector<std::filesystem::path> files_;
    std::map<std::string, TensorView> tensors_;
};

}  // namespace attnscope::format
