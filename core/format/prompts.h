// Prompt files for batch commands (capture, analyze, eval): `.txt` with one prompt per line, or
// `.jsonl` with one {"id": N, "text": "..."} object per line. Torch-free; a fuzz target.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace attnscope::format {

struct PromptInput {
    std::int64_t id = 0;   ///< stable id (store path /prompts/<id>); >= 0
    std::string text;      ///< valid UTF-8
    std::string source;    ///< "file:line"
};

/// Reads a prompts file. `.txt`: every non-empty line is a prompt, ids 0, 1, 2, ... in order
/// (a trailing '\r' is dropped; "\n" inside a prompt is impossible: use .jsonl). `.jsonl`: every
/// non-blank line is a JSON object with "text" (string) and optional "id" (non-negative integer;
/// default: the index of the line among prompts). Throws IoError when the file cannot be read,
/// ConfigError naming file:line for invalid UTF-8, malformed JSON, a missing/non-string text, a
/// bad or duplicate id, or an unknown extension (supported: .txt, .jsonl).
std::vector<PromptInput> read_prompts(const std::filesystem::path& path);

/// Same from memory; `name` decides the format by extension and names the source in messages.
std::vector<PromptInput> parse_prompts(const std::string& content, const std::string& name);

}  // namespace attnscope::format
