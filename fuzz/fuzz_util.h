// Shared helpers of the libFuzzer targets. Policy of every target: the documented error types
// (attnscope::Error and its subclasses) are the expected way to reject bad input and are caught;
// any other exception (a leaked nlohmann::json exception, std::out_of_range, std::bad_alloc ...)
// escapes, and libFuzzer reports it as a crash together with ASan/UBSan reports, leaks, timeouts
// and out-of-memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace attnscope::fuzz {

/// A private scratch folder for one fuzz process: under /dev/shm when it exists (tmpfs, no disk
/// I/O per execution), else the system temp folder. Created on first use, removed at exit.
const std::filesystem::path& scratch_dir();

/// Writes `size` bytes to `path`, replacing it. Aborts on failure (the harness is broken).
void write_file(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size);

/// Reads a whole file of the source tree (seed tokenizers); aborts when missing.
std::string read_source_file(const std::string& relative);

/// The repository root: $ATTNSCOPE_SOURCE_DIR when set, else the compile-time root.
std::string source_dir();

}  // namespace attnscope::fuzz
