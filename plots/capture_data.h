// What the figures need from a capture file, read through store::Reader: token labels, which
// layers have maps, one head's map, per-head and per-token metrics (looked up in the run itself,
// in a companion analysis file written by `attnscope analyze --out`, or in another run of the
// same prompt), and the figure specs both front ends start from. Shared by `attnscope plot` and
// the viewer so that they label and scale things the same way. Reads; never writes.
#pragma once

#include <QImage>
#include <QString>
#include <QStringList>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/store/reader.h"
#include "plots/colormap.h"
#include "plots/figures.h"
#include "plots/heatmap.h"

namespace attnscope::plots {

/// "blocks.{layer}.attn.hook_pattern".
std::string patternHook(int layer);
/// A token string for display (UTF-8 as stored; control characters escaped by axisLabel).
QString displayToken(const std::string& token);
/// [pos] display strings of a prompt's tokens.
QStringList tokenLabels(const store::Reader& reader, std::int64_t prompt);
/// Layers (ascending) that have hook_pattern stored for the prompt in the run.
std::vector<int> patternLayers(const store::Reader& reader, const std::string& run,
                               std::int64_t prompt);
/// One head's [T, T] map as float32, with T. Throws as Reader::read_map_head.
std::vector<float> readHead(const store::Reader& reader, const std::string& run,
                            std::int64_t prompt, int layer, int head, std::int64_t* T = nullptr);
/// One head's map max-pooled to at most `maxSide` x `maxSide` cells (square blocks of
/// ceil(T / maxSide)), read in bands of 256 rows so that memory stays O(256 T) even for 8k maps.
/// `side` receives the pooled side length.
std::vector<float> pooledHead(const store::Reader& reader, const std::string& run,
                              std::int64_t prompt, int layer, int head, int maxSide,
                              std::int64_t* side);
/// Whether the run stores `head` of layer `layer`'s map for the prompt (runs captured with
/// --heads keep a subset).
bool headStored(const store::Reader& reader, const std::string& run, std::int64_t prompt, int layer,
                int head);
/// Side length of the maps of one layer (0 when the layer has none).
std::int64_t mapSize(const store::Reader& reader, const std::string& run, std::int64_t prompt,
                     int layer);

/// A per-head metric laid out [n_layers, n_heads] (NaN where the metric has no row).
struct HeadMetric {
    std::string name;
    std::vector<float> values;
    int nLayers = 0;
    int nHeads = 0;
    std::string units;
    QString where;  ///< "run 'main'" or "analysis.h5, run 'main'"
};

/// Finds metrics for (run, prompt): the run itself, then the companion file's run of the same
/// name, then any other run there, then the other runs of the primary file, taking the first
/// that stores metrics for the prompt with the same number of tokens.
class MetricSources {
public:
    MetricSources(const store::Reader& primary, const store::Reader* companion = nullptr);
    /// Names of metrics with dims "layer,head" (rows are layers, or the `layers` of params).
    std::vector<std::string> headMetricNames(const std::string& run, std::int64_t prompt) const;
    /// Names of metrics with dims "pos".
    std::vector<std::string> tokenMetricNames(const std::string& run, std::int64_t prompt) const;
    std::optional<HeadMetric> headMetric(const std::string& run, std::int64_t prompt,
                                         const std::string& name) const;
    std::optional<std::vector<float>> tokenMetric(const std::string& run, std::int64_t prompt,
                                                  const std::string& name) const;

private:
    struct Hit {
        const store::Reader* reader;
        std::string run;
    };
    std::optional<Hit> locate(const std::string& run, std::int64_t prompt) const;
    const store::Reader& m_primary;
    const store::Reader* m_companion;
};

/// Human name of a metric ("entropy_norm_mean" -> "entropy (normalised, mean)").
QString metricLabel(const std::string& name);
/// The metric to colour the grid by when the user has not chosen: entropy, else sink score,
/// else the first one; empty when none.
std::string defaultHeadMetric(const std::vector<std::string>& names);

/// A scale over [0, max of values] (attention weights: [0, 1]) or, with `symmetric`, over
/// [-m, m] with m = max |v| for diverging maps.
ColorScale autoScale(const std::vector<float>& values, Colormap map, bool log, bool symmetric);

/// A size x size thumbnail of a [T, T] map (max pooling when T > size).
QImage thumbnail(const std::vector<float>& map, std::int64_t T, int size, const ColorScale& scale);

/// Title, subtitle and labels of a head's heatmap.
HeatmapSpec headSpec(const store::Reader& reader, const std::string& run, std::int64_t prompt,
                     int layer, int head);
/// Short description of a prompt: "prompt 3 (22 tokens): In the beginning…".
QString promptCaption(const store::Reader& reader, std::int64_t prompt);

// --- figure builders shared by `attnscope plot` and the viewer --------------------------------

/// Grid of the prompt's heads: title, metric (by name; empty = none) and, with `thumbSize` > 0,
/// thumbnails of every stored head (reads every map: the viewer loads them in the background).
GridSpec gridSpec(const store::Reader& reader, const MetricSources& metrics, const std::string& run,
                  std::int64_t prompt, const std::string& metric, bool sort, int thumbSize,
                  const ColorScale& mapScale);
/// Thumbnails of one layer's heads (null images for heads not stored).
std::vector<QImage> layerThumbnails(const store::Reader& reader, const std::string& run,
                                    std::int64_t prompt, int layer, int thumbSize,
                                    const ColorScale& mapScale);
/// Curves of a per-head metric over layers: one thin line per head, the mean over heads bold.
CurvesSpec layerCurves(const HeadMetric& metric, const QString& caption);
/// Lines of `heads` of `layer` in the token view.
TokensSpec tokensSpec(const store::Reader& reader, const std::string& run, std::int64_t prompt,
                      int layer, const std::vector<int>& heads, int token, bool fromQuery);
/// Adds the per-token metric `name` (default: fai, else waad) to the token view when the
/// metrics have it; leaves the spec alone otherwise.
void addTokenMetric(TokensSpec& spec, const MetricSources& metrics, const std::string& run,
                    std::int64_t prompt, std::string name = {});
/// a - b of two runs' maps of one head (same prompt). ShapeError when the sizes differ.
std::vector<float> diffHead(const store::Reader& reader, const std::string& runA,
                            const std::string& runB, std::int64_t prompt, int layer, int head,
                            std::int64_t* T = nullptr);

}  // namespace attnscope::plots
