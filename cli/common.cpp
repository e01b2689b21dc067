#include "cli/common.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/base/error.h"

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
           po::variables_map& vm, const std::string& usage_line, std::ostream& out) {
    try {
        po::store(po::command_line_parser(args).options(desc).run(), vm);
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

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path.string() + ": cannot open for reading");
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad()) throw IoError(path.string() + ": read error");
    return s.str();
}

}  // namespace attnscope::cli
