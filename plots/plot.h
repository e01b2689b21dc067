// `attnscope plot` as a library call, with a Qt-free interface so the CLI (which must not include
// Qt) can call it: read a capture, build one figure with the painters the viewer uses, write it
// as PNG or SVG. Kinds: heatmap (one head), grid (layers x heads thumbnails), layers (per-head
// metric curves over layers), diff (two runs of one prompt, diverging), tokens (BertViz-style
// lines).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace attnscope::plots {

struct PlotRequest {
    std::filesystem::path in;           ///< capture file
    std::filesystem::path out;          ///< .png or .svg
    std::filesystem::path metricsFile;  ///< optional `attnscope analyze --out` file
    std::string kind = "heatmap";       ///< heatmap | grid | layers | diff | tokens
    std::string run;                    ///< empty: the first run with maps
    std::string runB;                   ///< diff: the run subtracted (empty: the next run)
    std::int64_t prompt = -1;           ///< -1: the run's first prompt
    int layer = 0;
    int head = 0;
    std::vector<int> heads;  ///< tokens: heads of `layer` to draw (empty: `head`)
    int token = -1;          ///< tokens: picked token (-1: all lines)
    bool toQuery = false;    ///< tokens: lines from key `token` to the queries attending to it
    std::string metric;      ///< grid / layers: metric name (empty: a default)
    bool sort = false;       ///< grid: order heads by the metric
    std::string colormap = "viridis";
    bool log = false;
    int width = 0;  ///< 0: the kind's default size
    int height = 0;
    std::string title;  ///< replaces the default title
};

/// What was plotted, for the CLI to print.
struct PlotReport {
    std::string out;
    int width = 0;
    int height = 0;
    std::string description;
};

/// Renders the request. Throws ConfigError for bad kinds, names and selectors (naming the valid
/// values), SchemaError / IoError / ShapeError from reading the file, IoError when the output
/// cannot be written.
PlotReport runPlot(const PlotRequest& request);

/// The valid kinds, "heatmap|grid|layers|diff|tokens".
const char* plotKinds();

}  // namespace attnscope::plots
