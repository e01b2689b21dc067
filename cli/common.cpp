#include "cli/common.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <unistd.h>

#include "core/base/error.h"
#include "core/format/prompts.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"

namespace attnscope::cli {

std::filesystem::path default_model_dir() {
    if (const char* env = std::getenv("ATTNSCOPE_MODEL"); env && *env) return env;
    const std::filesystem::path src = ATTNSCOPE_SOURCE_DIR;
    // The bundled sample model once it exists (issue #3), else the golden-test fixture.
    for (const char* rel : {"samples/models/tinydeb-llama", "tests/fixtures/hf/tiny-llama"}) {
        const auto p = src / rel;
        if (std::filesystem::exists(p / "config.json")) return p;
    }
    throw UsageError("no --model given and no bundled default model found under " + src.string() +
                     "; pass --model DIR or set ATTNSCOPE_MODEL");
}

bool parse(const std::vector<std::string>& args, const po::options_description& desc,
           po::variables_map& vm, const std::string& usage_line, std::ostream& out,
           const po::positional_options_description* positional) {
    try {
        po::command_line_parser parser(args);
        parser.options(desc);
        if (positional) parser.positional(*positional);
        po::store(parser.run(), vm);
        if (vm.count("help")) {
            out << "usage: " << usage_line << "\n\n" << desc << "\n";
            return false;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        std::ostringstream s;
        s << e.what() << "\nusage: " << usage_line << "\n" << desc;
        throw UsageError(s.str());
    }
    return true;
}

void add_model_options(po::options_description& desc) {
    desc.add_options()
        ("model,m", po::value<std::string>(), "Hugging Face checkpoint folder (default: bundled model)")
        ("device", po::value<std::string>()->default_value("cpu"), "cpu | cuda | cuda:N")
        ("dtype", po::value<std::string>()->default_value("auto"),
         "compute dtype: float32 | bfloat16 | float16 | auto (f32 on CPU, bf16 on CUDA)");
}

ModelArgs model_args(const po::variables_map& vm) {
    ModelArgs a;
    a.dir = vm.count("model") ? std::filesystem::path(vm["model"].as<std::string>())
                              : default_model_dir();
    a.device = vm["device"].as<std::string>();
    a.dtype = vm["dtype"].as<std::string>();
    return a;
}

void add_method_options(po::options_description& desc) {
    desc.add_options()
        ("method", po::value<std::vector<std::string>>()->composing(),
         "intervention NAME[:k=v,...] (repeatable; act, var, softpag, ablate, temperature)")
        ("param", po::value<std::vector<std::string>>()->composing(),
         "method parameter k=v, or METHOD.k=v with several methods (repeatable)")
        ("act-heads", po::value<std::string>(), "ACT head set from `attnscope head-search --out FILE` (adds --method act if absent)")
        ("calib", po::value<std::string>(),
         "prompts file for methods that calibrate on reference text (var dims=auto, ablate mode=mean)");
}

probes::InterventionSet method_set(const po::variables_map& vm, model::Model& m,
                                   const std::function<std::vector<std::vector<std::int32_t>>()>& default_calib) {
    std::vector<std::string> methods, params;
    if (vm.count("method")) methods = vm["method"].as<std::vector<std::string>>();
    if (vm.count("param")) params = vm["param"].as<std::vector<std::string>>();
    if (vm.count("act-heads")) {
        bool has_act = false;
        for (const auto& s : methods) has_act |= probes::parse_method_spec(s).name == "act";
        if (!has_act) methods.push_back("act");
        params.push_back((methods.size() > 1 ? "act." : "") + std::string("heads_file=") + vm["act-heads"].as<std::string>());
    }
    if (methods.empty()) {
        if (!params.empty()) throw UsageError("--param given without --method");
        return {};
    }
    probes::InterventionSet set = probes::InterventionSet::from_cli(methods, params, m);
    if (set.needs_calibration()) {
        std::vector<std::vector<std::int32_t>> seqs;
        if (vm.count("calib")) {
            const auto& tok = m.require_tokenizer();
            for (const auto& p : format::read_prompts(vm["calib"].as<std::string>())) {
                auto ids = tok.encode(p.text);
                if (static_cast<std::int64_t>(ids.size()) > m.context_length()) ids.resize(static_cast<std::size_t>(m.context_length()));
                seqs.push_back(std::move(ids));
            }
        } else {
            seqs = default_calib();
        }
        set.calibrate(m, seqs);
    }
    return set;
}

void write_file_atomic(const std::filesystem::path& path, const std::string& text) {
    const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw IoError("cannot create " + tmp.string() + " (is the folder writable?)");
        f << text;
        f.flush();
        if (!f) {
            f.close();
            std::error_code ec;
            std::filesystem::remove(tmp, ec);
            throw IoError("cannot write " + path.string() + " (disk full?); nothing was changed");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        throw IoError("cannot replace " + path.string() + ": " + ec.message());
    }
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path.string() + ": cannot open for reading");
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad()) throw IoError(path.string() + ": read error");
    return s.str();
}

}  // namespace attnscope::cli
