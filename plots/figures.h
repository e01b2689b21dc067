// The other figures shared by viewer and `attnscope plot`: the layers x heads overview grid of
// map thumbnails (coloured or sorted by a per-head metric), metric curves per layer, and the
// BertViz-style token view (lines from a token to the tokens it attends to, opacity = weight).
// Painters take plain value specs and a rectangle; hit-testing helpers let the viewer map mouse
// positions back to heads and tokens with the same geometry. No data loading here.
#pragma once

#include <QColor>
#include <QImage>
#include <QPainter>
#include <QRectF>
#include <QString>
#include <QStringList>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "plots/colormap.h"

namespace attnscope::plots {

/// Ten well-separated colours (matplotlib's tab10) for heads and series.
QColor categoricalColor(int i);

// --- layers x heads grid ------------------------------------------------------------------------

struct GridSpec {
    QString title;
    QString subtitle;
    int nLayers = 0;
    int nHeads = 0;
    /// layer * nHeads + head -> thumbnail of the map (null image: not loaded / not stored).
    std::vector<QImage> thumbs;
    /// layer * nHeads + head -> metric value (NaN: none); empty when no metric is chosen.
    std::vector<float> metric;
    QString metricName;
    ColorScale metricScale{Colormap::kMagma};
    /// Order the heads of each layer by the metric, largest first (labels keep head numbers).
    bool sortByMetric = false;
    int selectedLayer = -1;
    int selectedHead = -1;
    int fontPixelSize = 12;
};

/// Head order of one row (layer) of the grid: identity, or by descending metric (NaN last).
std::vector<int> gridOrder(const GridSpec& spec, int layer);
void paintGrid(QPainter& painter, const QRectF& bounds, const GridSpec& spec);
/// (layer, head) under `pos`, respecting the sort order.
std::optional<std::pair<int, int>> gridCellAt(const QRectF& bounds, const GridSpec& spec,
                                              const QPointF& pos);
/// Rectangle of one head's thumbnail (for the viewer's hover and tests).
QRectF gridCellRect(const QRectF& bounds, const GridSpec& spec, int layer, int head);

// --- curves ----------------------------------------------------------------------------------

struct Series {
    QString name;
    std::vector<double> y;  ///< one value per x position, NaN = gap
    QColor color;
    double width = 2.0;
    bool markers = true;
    bool inLegend = true;
};

struct CurvesSpec {
    QString title;
    QString subtitle;
    QString xLabel = QStringLiteral("layer");
    QString yLabel;
    QStringList xTicks;  ///< one label per x position
    std::vector<Series> series;
    int fontPixelSize = 12;
};

void paintCurves(QPainter& painter, const QRectF& bounds, const CurvesSpec& spec);

// --- token view ---------------------------------------------------------------------------------

/// One head's [T, T] map (row = query) drawn in the token view.
struct TokenHead {
    int layer = 0;
    int head = 0;
    QColor color;
    std::vector<float> weights;  ///< [query_pos, key_pos], T * T
};

struct TokensSpec {
    QString title;
    QString subtitle;
    QStringList tokens;
    std::vector<TokenHead> heads;
    /// The picked token, or -1 for all lines at once (faint).
    int selected = -1;
    /// true: lines from query `selected` (left) to the keys it attends to (right); false: lines
    /// from key `selected` (right) to the queries attending to it (left).
    bool fromQuery = true;
    /// Weights below this are not drawn.
    float minWeight = 0.01f;
    /// Optional per-token metric (e.g. FAI, WAAD from `attnscope analyze`), one value per token,
    /// drawn as bars right of the key column, scaled to the largest value; empty: none.
    std::vector<float> tokenMetric;
    QString tokenMetricName;
    int fontPixelSize = 12;
};

struct TokensLayout {
    QRectF left, right;  ///< the two token columns
    QRectF bars;         ///< the token metric's bars (empty when none)
    double rowHeight = 0;
    int first = 0;  ///< first token shown (long prompts scroll in the viewer)
    int count = 0;
};

TokensLayout tokensLayout(const QRectF& bounds, const TokensSpec& spec, int firstToken = 0);
TokensLayout paintTokens(QPainter& painter, const QRectF& bounds, const TokensSpec& spec,
                         int firstToken = 0);
/// The token under `pos`: (index, true for the left (query) column).
std::optional<std::pair<int, bool>> tokenAt(const TokensLayout& layout, const QPointF& pos);

}  // namespace attnscope::plots
