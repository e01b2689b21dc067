#include "core/format/prompts.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "core/base/error.h"
#include "core/base/utf8.h"

namespace attnscope::format {

std::vector<PromptInput> parse_prompts(const std::string& content, const std::string& name) {
    const std::string ext = std::filesystem::path(name).extension().string();
    const bool jsonl = ext == ".jsonl" || ext == ".json";
    if (!jsonl && ext != ".txt")
        throw ConfigError(name + ": unknown prompts-file extension '" + ext +
                          "'; use .txt (one prompt per line) or .jsonl ({\"id\", \"text\"} per line)");
    std::vector<PromptInput> out;
    std::set<std::int64_t> seen;
    std::size_t begin = 0, line_no = 0;
    while (begin < content.size()) {
        std::size_t end = content.find('\n', begin);
        if (end == std::string::npos) end = content.size();
        std::string line = content.substr(begin, end - begin);
        begin = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const std::string where = name + ":" + std::to_string(line_no);
        if (const auto bad = utf8::find_invalid(line); bad != utf8::npos)
            throw ConfigError(where + ": invalid UTF-8 at byte " + std::to_string(bad) +
                              " of the line; save the file as UTF-8");
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        PromptInput p;
        p.source = where;
        p.id = static_cast<std::int64_t>(out.size());
        if (jsonl) {
            nlohmann::json j;
            try {
                j = nlohmann::json::parse(line);
            } catch (const nlohmann::json::exception& e) {
                throw ConfigError(where + ": not a JSON object (" + e.what() + ")");
            }
            if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
                throw ConfigError(where + ": each line must be an object with a string \"text\"");
            p.text = j["text"].get<std::string>();
            if (j.contains("id")) {
                if (!j["id"].is_number_integer() || j["id"].get<std::int64_t>() < 0)
                    throw ConfigError(where + ": \"id\" must be a non-negative integer");
                p.id = j["id"].get<std::int64_t>();
            }
        } else {
            p.text = line;
        }
        if (!seen.insert(p.id).second)
            throw ConfigError(where + ": duplicate prompt id " + std::to_string(p.id));
        out.push_back(std::move(p));
    }
    return out;
}

std::vector<PromptInput> read_prompts(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path.string() + ": cannot open the prompts file");
    std::ostringstream s;
    s << in.rdbuf();
    auto prompts = parse_prompts(s.str(), path.string());
    if (prompts.empty()) throw ConfigError(path.string() + ": the prompts file has no prompts");
    return prompts;
}

}  // namespace attnscope::format
