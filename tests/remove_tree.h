// Recursive delete for test temp folders, written with POSIX calls on purpose: the pip LibTorch
// (GPU machine) exports its own std::filesystem symbols, and its remove_all(path, error_code&)
// crashed (null call) when it interposed in a test binary linked to it. Never throws.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

namespace attnscope::test {

inline void remove_tree(const std::filesystem::path& p) noexcept {
    const std::string s = p.string();
    struct stat st;
    if (::lstat(s.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        if (DIR* d = ::opendir(s.c_str())) {
            while (dirent* e = ::readdir(d)) {
                if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
                remove_tree(p / e->d_name);
            }
            ::closedir(d);
        }
        ::rmdir(s.c_str());
    } else {
        ::unlink(s.c_str());
    }
}

}  // namespace attnscope::test

#include <atomic>
#include <random>

namespace attnscope::test {

/// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
public:
    explicit TempDir(const std::string& tag = "t") {
        static std::atomic<int> counter{0};
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                ("attnscope-" + tag + "-" + std::to_string(::getpid()) + "-" +
                 std::to_string(counter++) + "-" + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() { remove_tree(path_); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
    operator const std::filesystem::path&() const { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace attnscope::test
