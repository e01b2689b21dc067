#include "fuzz/fuzz_util.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

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

// Scratch folders of fuzz processes that died without running atexit (a crash, a timeout, a
// fork-mode child): removed by the next process, so long campaigns do not fill /dev/shm.
static void remove_stale(const fs::path& base) {
    std::error_code ec;
    const std::string prefix = "attnscope-fuzz-";
    for (fs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.compare(0, prefix.size(), prefix) != 0) continue;
        const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
        if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
            std::error_code rm;
            fs::remove_all(it->path(), rm);
        }
    }
}

const fs::path& scratch_dir() {
    if (g_dir.empty()) {
        std::error_code ec;
        fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm")
                                                         : fs::temp_directory_path();
        remove_stale(base);
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
