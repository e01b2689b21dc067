// attnscope tokenize: ids and token strings, to check what the model will actually see.
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/common.h"
#include "core/base/error.h"
#include "core/text/tokenizer.h"

namespace attnscope::cli {
namespace {

nlohmann::ordered_json encode_json(const text::Tokenizer& t, const std::string& s, bool special) {
    const auto ids = t.encode(s, special);
    std::vector<std::string> toks, shown;
    for (auto id : ids) {
        toks.push_back(t.id_to_token(id));
        shown.push_back(t.token_display(id));
    }
    nlohmann::ordered_json j;
    j["n_tokens"] = ids.size();
    j["ids"] = ids;
    j["tokens"] = toks;
    j["text"] = shown;
    return j;
}

}  // namespace

int cmd_tokenize(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description desc("attnscope tokenize options");
    desc.add_options()("help,h", "show this help")
        ("model,m", po::value<std::string>(), "checkpoint folder with tokenizer.json (default: bundled model)")
        ("text,t", po::value<std::string>(), "text to tokenize")
        ("file,f", po::value<std::string>(), "file: each line is tokenized separately (JSON lines out)")
        ("no-special", "do not add BOS/EOS special tokens")
        ("json", "print JSON");
    po::variables_map vm;
    const std::string usage = "attnscope tokenize [--model DIR] (--text TEXT | --file F) [--json]";
    if (!parse(args, desc, vm, usage, out)) return kExitOk;
    if (vm.count("text") == vm.count("file"))
        throw UsageError("give exactly one of --text and --file\nusage: " + usage);
    const std::filesystem::path dir = vm.count("model")
                                          ? std::filesystem::path(vm["model"].as<std::string>())
                                          : default_model_dir();
    const text::Tokenizer tok = text::Tokenizer::load(dir);
    const bool special = !vm.count("no-special");

    if (vm.count("file")) {
        const std::filesystem::path path = vm["file"].as<std::string>();
        std::istringstream in(read_file(path));
        std::string line;
        std::size_t n = 0;
        while (std::getline(in, line)) {
            ++n;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            try {
                auto j = encode_json(tok, line, special);
                j["line"] = n;
                out << j.dump() << "\n";
            } catch (const TokenizerError& e) {
                throw TokenizerError(path.string() + ":" + std::to_string(n) + ": " + e.what());
            }
        }
        return kExitOk;
    }
    const std::string s = vm["text"].as<std::string>();
    if (vm.count("json")) {
        out << encode_json(tok, s, special).dump(2) << "\n";
        return kExitOk;
    }
    const auto ids = tok.encode(s, special);
    out << ids.size() << " tokens\n";
    for (std::size_t i = 0; i < ids.size(); ++i)
        out << std::setw(5) << i << std::setw(8) << ids[i] << "  " << tok.id_to_token(ids[i])
            << "  " << nlohmann::json(tok.token_display(ids[i])).dump() << "\n";
    return kExitOk;
}

}  // namespace attnscope::cli
