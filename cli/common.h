// Shared plumbing of the attnscope subcommands: argv -> options via Boost.Program_options, the
// default model folder, and error -> exit-code mapping. No algorithms live in cli/.
#pragma once

#include <boost/program_options.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "probes/intervention.h"

namespace attnscope::model {
class Model;
}

namespace attnscope::cli {

namespace po = boost::program_options;

/// Exit codes: 0 success, 1 runtime failure (bad file, bad input), 2 usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

/// Thrown for command-line mistakes; main prints the message and the subcommand's usage.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The model used when --model is absent: $ATTNSCOPE_MODEL, else the bundled default model of
/// the source tree this binary was built from. Throws UsageError when none exists.
std::filesystem::path default_model_dir();

/// Parses `args` (without the subcommand name) against `desc`; --help prints usage and returns
/// false. Unknown options and missing values become UsageError.
bool parse(const std::vector<std::string>& args, const po::options_description& desc,
           po::variables_map& vm, const std::string& usage_line, std::ostream& out,
           const po::positional_options_description* positional = nullptr);

/// Adds --model, --device, --dtype.
void add_model_options(po::options_description& desc);

struct ModelArgs {
    std::filesystem::path dir;
    std::string device;
    std::string dtype;
};
ModelArgs model_args(const po::variables_map& vm);

/// Adds --method, --param, --act-heads, --calib (interventions; docs/interventions.md).
void add_method_options(po::options_description& desc);

/// The interventions named by --method/--param/--act-heads (an empty set when none), calibrated
/// when a method needs reference text: on --calib FILE (a prompts file) if given, else on
/// `default_calib()`. Not attached.
probes::InterventionSet method_set(const po::variables_map& vm, model::Model& m,
                                   const std::function<std::vector<std::vector<std::int32_t>>()>& default_calib);

/// Writes `text` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees a half-written file and a failure leaves any old file intact. Throws IoError.
void write_file_atomic(const std::filesystem::path& path, const std::string& text);

/// Reads a whole file as bytes. Throws IoError naming it.
std::string read_file(const std::filesystem::path& path);

/// Subcommands. Each returns an exit code; errors propagate as exceptions to main.
int cmd_info(const std::vector<std::string>& args, std::ostream& out);
int cmd_tokenize(const std::vector<std::string>& args, std::ostream& out);
int cmd_generate(const std::vector<std::string>& args, std::ostream& out);
int cmd_capture(const std::vector<std::string>& args, std::ostream& out);
int cmd_analyze(const std::vector<std::string>& args, std::ostream& out);
int cmd_inspect(const std::vector<std::string>& args, std::ostream& out);
int cmd_eval(const std::vector<std::string>& args, std::ostream& out);
int cmd_head_search(const std::vector<std::string>& args, std::ostream& out);
/// Only in builds with Qt 6 (ATTNSCOPE_HAVE_PLOT).
int cmd_plot(const std::vector<std::string>& args, std::ostream& out);

}  // namespace attnscope::cli
