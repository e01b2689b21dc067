// Path helpers of the attnscope HDF5 layout (names themselves are in schema.h).
#include "core/store/schema.h"

#include <algorithm>
#include <cstdio>

namespace attnscope::store::schema {

std::string prompt_id(std::int64_t id) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(id));
    return buf;
}

std::int64_t parse_prompt_id(std::string_view name) {
    if (name.empty() || name.size() > 18) return -1;
    std::int64_t id = 0;
    for (const char c : name) {
        if (c < '0' || c > '9') return -1;
        id = id * 10 + (c - '0');
    }
    return id;
}

std::string prompt_path(std::int64_t id) {
    return std::string(kPromptsGroup) + "/" + prompt_id(id);
}

std::string run_path(std::string_view run) {
    return std::string(kRunsGroup) + "/" + std::string(run);
}

std::string run_prompt_path(std::string_view run, std::int64_t id) {
    return run_path(run) + "/" + kRunPrompts + "/" + prompt_id(id);
}

std::string hook_to_path(std::string_view hook) {
    std::string out(hook);
    std::replace(out.begin(), out.end(), '.', '/');
    return out;
}

std::string path_to_hook(std::string_view path) {
    std::string out(path);
    std::replace(out.begin(), out.end(), '/', '.');
    return out;
}

namespace {

bool all_of_charset(std::string_view name, bool allow_dot_dash) {
    if (name.empty() || name.size() > 64) return false;
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' ||
                        (allow_dot_dash && (c == '.' || c == '-'));
        if (!ok) return false;
    }
    return true;
}

}  // namespace

bool is_valid_run_name(std::string_view name) {
    return all_of_charset(name, true) && name.front() != '.' && name.front() != '-';
}

bool is_valid_metric_name(std::string_view name) { return all_of_charset(name, false); }

}  // namespace attnscope::store::schema
