// The heatmap painter shared by the viewer's head view and `attnscope plot`: a matrix of cells
// (an attention map, or a difference of two) with token labels on both axes, a colour bar, a
// title and optional row/column highlighting, painted with QPainter onto any device (QImage,
// QWidget, QSvgGenerator). Where the cells come from is abstracted by CellSource, so the same
// code paints a dense in-memory matrix (plots) and a lazily read, tiled one (the viewer). Not a
// widget: no events, no state beyond the arguments.
#pragma once

#include <QFont>
#include <QImage>
#include <QPainter>
#include <QPointF>
#include <QRectF>
#include <QString>
#include <QStringList>

#include <cstdint>
#include <optional>
#include <vector>

#include "plots/colormap.h"

namespace attnscope::plots {

/// The visible part of a matrix in cell units: rows [r0, r1), columns [c0, c1). Fractional
/// bounds are allowed (smooth zoom and pan). Empty (r1 <= r0) means the whole matrix.
struct CellRange {
    double r0 = 0, r1 = 0, c0 = 0, c1 = 0;
    bool empty() const { return r1 <= r0 || c1 <= c0; }
    double rows() const { return r1 - r0; }
    double cols() const { return c1 - c0; }
};

/// Where a heatmap's cells come from. Implementations: DenseCells (a matrix in memory) and the
/// viewer's lazy tiled map source.
class CellSource {
public:
    virtual ~CellSource() = default;
    virtual std::int64_t rows() const = 0;
    virtual std::int64_t cols() const = 0;
    /// Paints the cells of `view` so that the range exactly covers `target` (the painter is
    /// clipped to `target`). When several cells fall on one device pixel, the pixel shows the
    /// largest of them (max pooling keeps sharp peaks such as sinks visible at any zoom).
    /// Returns false when some cells were not available yet and a placeholder was drawn.
    virtual bool paintCells(QPainter& painter, const QRectF& target, const CellRange& view,
                            const ColorScale& scale) = 0;
    /// One cell's value, or NaN when it is not available without blocking.
    virtual float value(std::int64_t row, std::int64_t col) = 0;
};

/// A dense row-major [rows, cols] float matrix in memory.
class DenseCells final : public CellSource {
public:
    DenseCells(std::vector<float> values, std::int64_t rows, std::int64_t cols);
    std::int64_t rows() const override { return m_rows; }
    std::int64_t cols() const override { return m_cols; }
    bool paintCells(QPainter& painter, const QRectF& target, const CellRange& view,
                    const ColorScale& scale) override;
    float value(std::int64_t row, std::int64_t col) override;
    const std::vector<float>& values() const { return m_values; }

private:
    std::vector<float> m_values;
    std::int64_t m_rows, m_cols;
};

/// Colours `rows` x `cols` values (row stride `stride`) into an image of at most `maxW` x
/// `maxH` pixels, max-pooling blocks of cells that share a pixel (block size returned in
/// poolRows / poolCols). Used by every CellSource.
QImage colorize(const float* values, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                const ColorScale& scale, int maxW = 1 << 14, int maxH = 1 << 14,
                std::int64_t* poolRows = nullptr, std::int64_t* poolCols = nullptr);

/// Draws `img`, which shows the integer cell range [ir0, ir0 + nr) x [ic0, ic0 + nc), into
/// `target` showing `view`, with nearest-neighbour scaling (also in SVG output).
void drawCellImage(QPainter& painter, const QImage& img, const QRectF& target,
                   const CellRange& view, double ir0, double nr, double ic0, double nc);

/// What to paint around the cells.
struct HeatmapSpec {
    QString title;
    QString subtitle;
    QStringList rowLabels;  ///< one per row (token strings), or empty for positions
    QStringList colLabels;  ///< one per column, or empty for positions
    QString rowAxis = QStringLiteral("query");
    QString colAxis = QStringLiteral("key");
    ColorScale scale;
    QString colorbarLabel = QStringLiteral("attention weight");
    CellRange view;  ///< empty = whole matrix
    std::int64_t highlightRow = -1;
    std::int64_t highlightCol = -1;
    bool showColorbar = true;
    bool squareCells = true;  ///< keep cells square (maps are square)
    int fontPixelSize = 12;
};

/// Where paintHeatmap put things, for hit-testing in the viewer.
struct HeatmapLayout {
    QRectF plot;      ///< the cells
    QRectF colorbar;  ///< the colour bar (empty when hidden)
    CellRange view;   ///< the range shown in `plot`
};

HeatmapLayout heatmapLayout(const QRectF& bounds, const HeatmapSpec& spec, std::int64_t rows,
                            std::int64_t cols);
/// Paints the whole figure. Returns its layout and whether every cell was available.
HeatmapLayout paintHeatmap(QPainter& painter, const QRectF& bounds, const HeatmapSpec& spec,
                           CellSource& cells, bool* complete = nullptr);
/// The cell (row, column) under `pos`, or nothing outside the cells.
std::optional<std::pair<std::int64_t, std::int64_t>> heatmapCellAt(const HeatmapLayout& layout,
                                                                   std::int64_t rows,
                                                                   std::int64_t cols,
                                                                   const QPointF& pos);
/// Paints a vertical colour bar with ticks and a label into `rect` (bar plus tick labels).
void paintColorbar(QPainter& painter, const QRectF& rect, const ColorScale& scale,
                   const QString& label, int fontPixelSize);
/// Shortens a token label for an axis: escapes newlines and tabs, elides beyond `maxChars`.
QString axisLabel(const QString& token, int maxChars = 14);

}  // namespace attnscope::plots
