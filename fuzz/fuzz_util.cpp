#include "fuzz/fuzz_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

namespace attnscope::fuzz {

namespace fs = std::filesystem;

namespace {
fs::path g_dir;
void remove_scratch() {
    std::error_code ec;
    if (!g_dir.empty()) fs::remove_all(g_dir, ec);
}
}  // namespace

const fs::path& scratch_dir() {
    if (g_dir.empty()) {
        std::error_code ec;
        fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm")
                                                         : fs::temp_directory_path();
        g_dir = base / ("attnscope-fuzz-" + std::to_string(::getpid()));
        fs::create_directories(g_dir, ec);
        if (ec) {
            std::fprintf(stderr, "fuzz: cannot create %s: %s\n", g_dir.c_str(),
                         ec.message().c_str());
            std::abort();
        }
        std::atexit(remove_scratch);
    }
    return g_dir;
}

void write_file(const fs::path& path, const std::uint8_t* data, std::size_t size) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (size) out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) {
        std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
        std::abort();
    }
}

std::string source_dir() {
    if (const char* env = std::getenv("ATTNSCOPE_SOURCE_DIR"); env && *env) return env;
    return ATTNSCOPE_SOURCE_DIR;
}

std::string read_source_file(const std::string& relative) {
    const std::string path = source_dir() + "/" + relative;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "fuzz: cannot read %s (set ATTNSCOPE_SOURCE_DIR)\n", path.c_str());
        std::abort();
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace attnscope::fuzz
