// attnscope plot: one figure of a capture file as PNG or SVG, painted offscreen by plots/ (the
// viewer's painters). argv -> PlotRequest -> plots::runPlot. Compiled only when Qt 6 is found;
// this file itself includes no Qt.
#include <iostream>

#include "cli/common.h"
#include "plots/plot.h"
#include "probes/capture.h"

namespace attnscope::cli {

int cmd_plot(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description desc("attnscope plot options");
    desc.add_options()("help,h", "show this help")
        ("in", po::value<std::string>()->required(), "capture file (.h5)")
        ("kind", po::value<std::string>()->default_value("heatmap"), "heatmap | grid | layers | diff | tokens")
        ("out,o", po::value<std::string>()->required(), "output figure: .png or .svg")
        ("run", po::value<std::string>(), "run (default: the first run with attention maps)")
        ("run-b", po::value<std::string>(), "diff: the run subtracted (default: another run of the prompt)")
        ("prompt", po::value<std::int64_t>()->default_value(-1), "prompt id (default: the run's first)")
        ("layer", po::value<int>()->default_value(0), "layer (heatmap, diff, tokens)")
        ("head", po::value<int>()->default_value(0), "head (heatmap, diff, tokens)")
        ("heads", po::value<std::string>(), "tokens: heads of --layer, e.g. 0,2,5-7")
        ("token", po::value<int>()->default_value(-1), "tokens: the picked token (default: all lines)")
        ("to-query", "tokens: lines from --token as a key to the queries attending to it")
        ("metric", po::value<std::string>(), "grid / layers: per-head metric (default: entropy_norm_mean, else sink_alpha0)")
        ("metrics", po::value<std::string>(), "metrics file written by `attnscope analyze --out`")
        ("sort", "grid: order the heads of each layer by the metric")
        ("colormap", po::value<std::string>()->default_value("viridis"), "viridis | magma | gray | rdbu")
        ("log", "logarithmic colour scale")
        ("size", po::value<std::string>(), "WIDTHxHEIGHT in pixels (default depends on --kind)")
        ("title", po::value<std::string>(), "figure title");
    po::positional_options_description pos;
    pos.add("in", 1);
    po::variables_map vm;
    const std::string usage =
        "attnscope plot --in FILE.h5 --kind heatmap|grid|layers|diff|tokens [selectors] --out F.png|F.svg";
    if (!parse(args, desc, vm, usage, out, &pos)) return kExitOk;
    plots::PlotRequest rq;
    rq.in = vm["in"].as<std::string>();
    rq.out = vm["out"].as<std::string>();
    rq.kind = vm["kind"].as<std::string>();
    if (rq.kind != "heatmap" && rq.kind != "grid" && rq.kind != "layers" && rq.kind != "diff" &&
        rq.kind != "tokens")
        throw UsageError("--kind '" + rq.kind + "': use one of " + plots::plotKinds());
    if (vm.count("run")) rq.run = vm["run"].as<std::string>();
    if (vm.count("run-b")) rq.runB = vm["run-b"].as<std::string>();
    if (vm.count("metrics")) rq.metricsFile = vm["metrics"].as<std::string>();
    if (vm.count("metric")) rq.metric = vm["metric"].as<std::string>();
    if (vm.count("title")) rq.title = vm["title"].as<std::string>();
    rq.prompt = vm["prompt"].as<std::int64_t>();
    rq.layer = vm["layer"].as<int>();
    rq.head = vm["head"].as<int>();
    if (vm.count("heads")) rq.heads = probes::parse_index_list(vm["heads"].as<std::string>(), "--heads");
    rq.token = vm["token"].as<int>();
    rq.toQuery = vm.count("to-query") > 0;
    rq.sort = vm.count("sort") > 0;
    rq.log = vm.count("log") > 0;
    rq.colormap = vm["colormap"].as<std::string>();
    if (vm.count("size")) {
        const std::string s = vm["size"].as<std::string>();
        const auto x = s.find('x');
        try {
            if (x == std::string::npos) throw std::invalid_argument(s);
            std::size_t used = 0;
            rq.width = std::stoi(s.substr(0, x), &used);
            if (used != x) throw std::invalid_argument(s);
            rq.height = std::stoi(s.substr(x + 1), &used);
            if (used != s.size() - x - 1) throw std::invalid_argument(s);
        } catch (const std::logic_error&) {
            throw UsageError("--size '" + s + "': expected WIDTHxHEIGHT, e.g. 900x800");
        }
    }
    const plots::PlotReport rep = plots::runPlot(rq);
    out << "wrote " << rep.out << " (" << rep.width << "x" << rep.height << "): " << rep.description
        << "\n";
    return kExitOk;
}

}  // namespace attnscope::cli
