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
