// attnscope: command-line front end. argv -> subcommand -> library call; errors -> exit codes.
#include <iostream>
#include <string>
#include <vector>

#include "cli/common.h"
#include "core/base/error.h"

namespace {

const char* kUsage =
    "usage: attnscope <command> [options]\n"
    "\n"
    "commands:\n"
    "  info       architecture, parameters, dtype and hook points of a model\n"
    "  tokenize   token ids and strings of a text or of each line of a file\n"
    "  generate   continue a prompt (greedy or sampled)\n"
    "  capture    store per-head attention (and any hook) of prompts in an HDF5 file\n"
    "  inspect    runs, prompts and arrays of a capture file (shapes, sizes, completeness)\n"
    "  analyze    attention metrics (sinks, entropy, distance, WAAD/FAI roles) of prompts or a capture file\n"
    "  eval       score a task (multiple choice, classification, perplexity) with and without interventions\n"
    "  head-search  choose the heads an intervention helps on a dev split (ACT's offline search)\n"
#ifdef ATTNSCOPE_HAVE_PLOT
    "  plot       a figure (heatmap, grid, layers, diff, tokens) of a capture file as PNG or SVG\n"
#endif
    "\n"
    "Run `attnscope <command> --help` for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
    using namespace attnscope::cli;
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        (argc < 2 ? std::cerr : std::cout) << kUsage;
        return argc < 2 ? kExitUsage : kExitOk;
    }
    if (std::string(argv[1]) == "--version") {
        std::cout << "attnscope " << ATTNSCOPE_VERSION << "\n";
        return kExitOk;
    }
    const std::string cmd = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    try {
        if (cmd == "info") return cmd_info(args, std::cout);
        if (cmd == "tokenize") return cmd_tokenize(args, std::cout);
        if (cmd == "generate") return cmd_generate(args, std::cout);
        if (cmd == "capture") return cmd_capture(args, std::cout);
        if (cmd == "analyze") return cmd_analyze(args, std::cout);
        if (cmd == "inspect") return cmd_inspect(args, std::cout);
        if (cmd == "eval") return cmd_eval(args, std::cout);
        if (cmd == "head-search") return cmd_head_search(args, std::cout);
#ifdef ATTNSCOPE_HAVE_PLOT
        if (cmd == "plot") return cmd_plot(args, std::cout);
#else
        if (cmd == "plot") {
            std::cerr << "attnscope plot: this build has no Qt 6; install qt6-base-dev "
                         "qt6-svg-dev and rebuild\n";
            return kExitFailure;
        }
#endif
        std::cerr << "attnscope: unknown command '" << cmd << "'\n\n" << kUsage;
        return kExitUsage;
    } catch (const UsageError& e) {
        std::cerr << "attnscope " << cmd << ": " << e.what() << "\n";
        return kExitUsage;
    } catch (const attnscope::Error& e) {
        std::cerr << "attnscope " << cmd << ": error: " << e.what() << "\n";
        return kExitFailure;
    } catch (const std::exception& e) {
        // Anything else is a bug in attnscope or a library it uses; still no crash.
        std::cerr << "attnscope " << cmd << ": internal error: " << e.what()
                  << "\n(please report this with the command line that caused it)\n";
        return kExitFailure;
    }
}
