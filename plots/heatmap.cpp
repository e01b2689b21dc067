// Heatmap painting: colouring with max pooling, nearest-neighbour placement, axes with token
// labels, colour bar.
#include "plots/heatmap.h"

#include <QFontMetricsF>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/base/error.h"

namespace attnscope::plots {

DenseCells::DenseCells(std::vector<float> values, std::int64_t rows, std::int64_t cols)
    : m_values(std::move(values)), m_rows(rows), m_cols(cols) {
    if (rows < 0 || cols < 0 || std::int64_t(m_values.size()) != rows * cols)
        throw ShapeError("DenseCells: " + std::to_string(m_values.size()) + " values for a [" +
                         std::to_string(rows) + ", " + std::to_string(cols) + "] matrix");
}

float DenseCells::value(std::int64_t row, std::int64_t col) {
    if (row < 0 || col < 0 || row >= m_rows || col >= m_cols)
        return std::numeric_limits<float>::quiet_NaN();
    return m_values[std::size_t(row * m_cols + col)];
}

QImage colorize(const float* values, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                const ColorScale& scale, int maxW, int maxH, std::int64_t* poolRows,
                std::int64_t* poolCols) {
    if (rows <= 0 || cols <= 0) return {};
    const std::int64_t sr = std::max<std::int64_t>(1, (rows + maxH - 1) / maxH);
    const std::int64_t sc = std::max<std::int64_t>(1, (cols + maxW - 1) / maxW);
    const int h = int((rows + sr - 1) / sr), w = int((cols + sc - 1) / sc);
    if (poolRows) *poolRows = sr;
    if (poolCols) *poolCols = sc;
    QImage img(w, h, QImage::Format_RGB32);
    for (int y = 0; y < h; ++y) {
        auto* line = reinterpret_cast<QRgb*>(img.scanLine(y));
        const std::int64_t ra = y * sr, rb = std::min(rows, ra + sr);
        for (int x = 0; x < w; ++x) {
            const std::int64_t ca = x * sc, cb = std::min(cols, ca + sc);
            float m = -std::numeric_limits<float>::infinity();
            bool nan = true;
            for (std::int64_t r = ra; r < rb; ++r)
                for (std::int64_t c = ca; c < cb; ++c) {
                    const float v = values[r * stride + c];
                    if (!std::isnan(v)) {
                        nan = false;
                        m = std::max(m, v);
                    }
                }
            line[x] = nan ? scale.nanColor() : scale.rgb(m);
        }
    }
    return img;
}

void drawCellImage(QPainter& painter, const QImage& img, const QRectF& target,
                   const CellRange& view, double ir0, double nr, double ic0, double nc) {
    if (img.isNull()) return;
    const double sx = target.width() / view.cols(), sy = target.height() / view.rows();
    const QRectF dst(target.left() + (ic0 - view.c0) * sx, target.top() + (ir0 - view.r0) * sy,
                     nc * sx, nr * sy);
    // Scale to device pixels ourselves with nearest-neighbour, so that neither the raster engine
    // nor an SVG viewer blurs the cells. Huge zooms scale only the visible part.
    const QRectF vis = dst.intersected(target);
    if (vis.isEmpty()) return;
    const double px = img.width() / dst.width(), py = img.height() / dst.height();
    const QRectF srcVis((vis.left() - dst.left()) * px, (vis.top() - dst.top()) * py,
                        vis.width() * px, vis.height() * py);
    // Whole source pixels covering the visible part, and where they land.
    const int sx0 = std::max(0, int(std::floor(srcVis.left())));
    const int sy0 = std::max(0, int(std::floor(srcVis.top())));
    const int sx1 = std::min(img.width(), int(std::ceil(srcVis.right())));
    const int sy1 = std::min(img.height(), int(std::ceil(srcVis.bottom())));
    if (sx1 <= sx0 || sy1 <= sy0) return;
    const QRectF land(dst.left() + sx0 / px, dst.top() + sy0 / py, (sx1 - sx0) / px,
                      (sy1 - sy0) / py);
    const QSize devSize(std::max(1, int(std::lround(land.width()))),
                        std::max(1, int(std::lround(land.height()))));
    const QImage part = img.copy(sx0, sy0, sx1 - sx0, sy1 - sy0)
                            .scaled(devSize, Qt::IgnoreAspectRatio, Qt::FastTransformation);
    painter.save();
    painter.setClipRect(target, Qt::IntersectClip);
    painter.setRenderHint(QPainter::SmoothPixmapTransform, false);
    painter.drawImage(land, part);
    painter.restore();
}

bool DenseCells::paintCells(QPainter& painter, const QRectF& target, const CellRange& view,
                            const ColorScale& scale) {
    const std::int64_t r0 = std::clamp<std::int64_t>(std::int64_t(std::floor(view.r0)), 0, m_rows);
    const std::int64_t r1 = std::clamp<std::int64_t>(std::int64_t(std::ceil(view.r1)), 0, m_rows);
    const std::int64_t c0 = std::clamp<std::int64_t>(std::int64_t(std::floor(view.c0)), 0, m_cols);
    const std::int64_t c1 = std::clamp<std::int64_t>(std::int64_t(std::ceil(view.c1)), 0, m_cols);
    if (r1 <= r0 || c1 <= c0) return true;
    const int maxW = std::max(1, int(std::ceil(target.width())));
    const int maxH = std::max(1, int(std::ceil(target.height())));
    std::int64_t sr = 1, sc = 1;
    const QImage img = colorize(m_values.data() + r0 * m_cols + c0, r1 - r0, c1 - c0, m_cols, scale,
                                maxW, maxH, &sr, &sc);
    // Pooled images cover whole blocks; the last block may be partial, which only matters for
    // the last pixel row/column.
    const double nr = double(img.height() * sr), nc = double(img.width() * sc);
    drawCellImage(painter, img, target, view, double(r0), nr, double(c0), nc);
    return true;
}

QString axisLabel(const QString& token, int maxChars) {
    QString s = token;
    s.replace(QLatin1Char('\n'), QStringLiteral("\\n"));
    s.replace(QLatin1Char('\t'), QStringLiteral("\\t"));
    s.replace(QLatin1Char('\r'), QStringLiteral("\\r"));
    if (s.size() > maxChars) s = s.left(maxChars - 1) + QChar(0x2026);
    return s;
}

namespace {

QFont fontOf(int pixelSize) {
    QFont f(QStringLiteral("DejaVu Sans"));
    f.setPixelSize(std::max(4, pixelSize));
    return f;
}

CellRange fullOr(const CellRange& v, std::int64_t rows, std::int64_t cols) {
    if (!v.empty()) return v;
    return {0, double(rows), 0, double(cols)};
}

QString formatTick(float v) {
    if (v == 0) return QStringLiteral("0");
    const float a = std::fabs(v);
    if (a >= 1000 || a < 0.01f) return QString::number(double(v), 'g', 2);
    if (a >= 10) return QString::number(double(v), 'f', 0);
    if (a >= 1) return QString::number(double(v), 'f', 1);
    return QString::number(double(v), 'f', 2);
}

}  // namespace

HeatmapLayout heatmapLayout(const QRectF& bounds, const HeatmapSpec& spec, std::int64_t rows,
                            std::int64_t cols) {
    HeatmapLayout lay;
    lay.view = fullOr(spec.view, rows, cols);
    const QFontMetricsF fm(fontOf(spec.fontPixelSize));
    const QFontMetricsF fmTitle(fontOf(spec.fontPixelSize + 3));
    double top = bounds.top() + 6;
    if (!spec.title.isEmpty()) top += fmTitle.height() + 4;
    if (!spec.subtitle.isEmpty()) top += fm.height() + 2;
    // Room for labels: the widest label shown, capped.
    auto widest = [&](const QStringList& labels, std::int64_t n) {
        double w = fm.horizontalAdvance(QString::number(std::max<std::int64_t>(n - 1, 0))) + 4;
        for (const QString& l : labels) w = std::max(w, fm.horizontalAdvance(axisLabel(l)));
        return std::min(w, fm.averageCharWidth() * 22) + fm.averageCharWidth() * 5;
    };
    const double left = bounds.left() + fm.height() + 4 + widest(spec.rowLabels, rows) + 6;
    const double bottomRoom = fm.height() + 4 + widest(spec.colLabels, cols) + 6;
    const double cbarW =
        spec.showColorbar
            ? 16 + 8 + fm.horizontalAdvance(QStringLiteral("0.0001")) + fm.height() + 14
            : 8;
    QRectF plot(left, top, bounds.right() - cbarW - left, bounds.bottom() - bottomRoom - top);
    if (plot.width() < 10) plot.setWidth(10);
    if (plot.height() < 10) plot.setHeight(10);
    if (spec.squareCells && lay.view.rows() > 0 && lay.view.cols() > 0) {
        const double cell =
            std::min(plot.width() / lay.view.cols(), plot.height() / lay.view.rows());
        plot.setWidth(cell * lay.view.cols());
        plot.setHeight(cell * lay.view.rows());
    }
    lay.plot = plot;
    if (spec.showColorbar)
        lay.colorbar = QRectF(plot.right() + 14, plot.top(), cbarW - 14, plot.height());
    return lay;
}

void paintColorbar(QPainter& painter, const QRectF& rect, const ColorScale& scale,
                   const QString& label, int fontPixelSize) {
    const QFont font = fontOf(fontPixelSize - 1);
    const QFontMetricsF fm(font);
    const QRectF bar(rect.left(), rect.top(), 14, rect.height());
    const int h = std::max(2, int(bar.height()));
    QImage img(1, h, QImage::Format_RGB32);
    for (int y = 0; y < h; ++y) img.setPixel(0, y, scale.rgbAt(1.f - float(y) / float(h - 1)));
    painter.save();
    painter.setRenderHint(QPainter::SmoothPixmapTransform, false);
    painter.drawImage(bar, img.scaled(int(bar.width()), h));
    painter.setPen(QPen(Qt::black, 0));
    painter.setBrush(Qt::NoBrush);
    painter.drawRect(bar);
    painter.setFont(font);
    std::vector<float> ticks;
    if (scale.isLog()) {
        const float lo = std::max(scale.vmin(), scale.logFloor());
        for (float d = std::pow(10.f, std::ceil(std::log10(lo) - 1e-6f));
             d <= scale.vmax() * 1.0001f; d *= 10)
            ticks.push_back(d);
    } else {
        for (int i = 0; i <= 4; ++i) ticks.push_back(scale.valueAt(float(i) / 4.f));
    }
    for (float v : ticks) {
        const double y = bar.bottom() - double(scale.position(v)) * bar.height();
        painter.drawLine(QPointF(bar.right(), y), QPointF(bar.right() + 4, y));
        painter.drawText(QPointF(bar.right() + 6, y + fm.ascent() / 2 - 1), formatTick(v));
    }
    if (!label.isEmpty()) {
        painter.translate(rect.right() - 2, bar.center().y());
        painter.rotate(-90);
        const double w = fm.horizontalAdvance(label);
        painter.drawText(QPointF(-w / 2, 0), label);
    }
    painter.restore();
}

HeatmapLayout paintHeatmap(QPainter& painter, const QRectF& bounds, const HeatmapSpec& spec,
                           CellSource& cells, bool* complete) {
    const std::int64_t rows = cells.rows(), cols = cells.cols();
    const HeatmapLayout lay = heatmapLayout(bounds, spec, rows, cols);
    const CellRange& v = lay.view;
    const QFont font = fontOf(spec.fontPixelSize);
    const QFontMetricsF fm(font);
    painter.save();
    painter.setRenderHint(QPainter::Antialiasing, false);
    painter.setRenderHint(QPainter::TextAntialiasing, true);

    // Title.
    double y = bounds.top() + 6;
    if (!spec.title.isEmpty()) {
        const QFont tf = fontOf(spec.fontPixelSize + 3);
        painter.setFont(tf);
        painter.setPen(Qt::black);
        const QFontMetricsF tfm(tf);
        painter.drawText(QRectF(bounds.left(), y, bounds.width(), tfm.height()), Qt::AlignHCenter,
                         spec.title);
        y += tfm.height() + 4;
    }
    painter.setFont(font);
    if (!spec.subtitle.isEmpty()) {
        painter.setPen(QColor(80, 80, 80));
        painter.drawText(QRectF(bounds.left(), y, bounds.width(), fm.height()), Qt::AlignHCenter,
                         spec.subtitle);
    }

    // Cells.
    painter.fillRect(lay.plot, QColor(230, 230, 230));
    const bool ok = cells.paintCells(painter, lay.plot, v, spec.scale);
    if (complete) *complete = ok;
    const double cw = lay.plot.width() / v.cols(), ch = lay.plot.height() / v.rows();

    // Highlighted row / column: a white band outline plus a dark one, visible on any colour.
    auto band = [&](bool row, std::int64_t i) {
        QRectF r = row ? QRectF(lay.plot.left(), lay.plot.top() + (double(i) - v.r0) * ch,
                                lay.plot.width(), ch)
                       : QRectF(lay.plot.left() + (double(i) - v.c0) * cw, lay.plot.top(), cw,
                                lay.plot.height());
        r = r.intersected(lay.plot);
        if (r.isEmpty()) return;
        painter.setBrush(QColor(255, 255, 255, 50));
        painter.setPen(QPen(QColor(255, 255, 255), 1.5));
        painter.drawRect(r);
        painter.setBrush(Qt::NoBrush);
        painter.setPen(QPen(QColor(0, 0, 0, 160), 1, Qt::DashLine));
        painter.drawRect(r.adjusted(-1.5, -1.5, 1.5, 1.5));
    };
    painter.save();
    painter.setClipRect(lay.plot.adjusted(-3, -3, 3, 3));
    if (spec.highlightRow >= 0) band(true, spec.highlightRow);
    if (spec.highlightCol >= 0) band(false, spec.highlightCol);
    painter.restore();
    painter.setPen(QPen(QColor(60, 60, 60), 0));
    painter.setBrush(Qt::NoBrush);
    painter.drawRect(lay.plot);

    // Axis labels: every row/column when they fit, else every k-th with its position.
    painter.setPen(Qt::black);
    const double lh = fm.height();
    auto labelFor = [](const QStringList& labels, std::int64_t i, bool stepped) {
        const QString pos = QString::number(i);
        if (i >= labels.size()) return pos;
        const QString tok = axisLabel(labels[int(i)]);
        return stepped ? pos + QLatin1Char(' ') + tok : tok;
    };
    auto steps = [&](double cell) {
        std::int64_t k = std::max<std::int64_t>(1, std::int64_t(std::ceil(lh * 0.95 / cell)));
        // round up to 1, 2, 5 x 10^n for readable positions
        std::int64_t p = 1;
        while (true) {
            for (std::int64_t m : {1, 2, 5})
                if (m * p >= k) return m * p;
            p *= 10;
        }
    };
    const std::int64_t rs = steps(ch), cs = steps(cw);
    const std::int64_t ir0 = std::max<std::int64_t>(0, std::int64_t(std::ceil(v.r0 - 0.5)));
    const std::int64_t ir1 = std::min<std::int64_t>(rows, std::int64_t(std::ceil(v.r1)));
    for (std::int64_t i = (ir0 + rs - 1) / rs * rs; i < ir1; i += rs) {
        const double cy = lay.plot.top() + (double(i) + 0.5 - v.r0) * ch;
        if (cy < lay.plot.top() - 1 || cy > lay.plot.bottom() + 1) continue;
        const QString t = labelFor(spec.rowLabels, i, rs > 1);
        painter.setPen(i == spec.highlightRow ? QColor(200, 0, 0) : QColor(0, 0, 0));
        painter.drawText(
            QRectF(bounds.left(), cy - lh / 2, lay.plot.left() - bounds.left() - 4, lh),
            Qt::AlignRight | Qt::AlignVCenter, t);
    }
    const std::int64_t ic0 = std::max<std::int64_t>(0, std::int64_t(std::ceil(v.c0 - 0.5)));
    const std::int64_t ic1 = std::min<std::int64_t>(cols, std::int64_t(std::ceil(v.c1)));
    for (std::int64_t j = (ic0 + cs - 1) / cs * cs; j < ic1; j += cs) {
        const double cx = lay.plot.left() + (double(j) + 0.5 - v.c0) * cw;
        if (cx < lay.plot.left() - 1 || cx > lay.plot.right() + 1) continue;
        const QString t = labelFor(spec.colLabels, j, cs > 1);
        painter.save();
        painter.setPen(j == spec.highlightCol ? QColor(200, 0, 0) : QColor(0, 0, 0));
        painter.translate(cx, lay.plot.bottom() + 4);
        painter.rotate(-90);
        painter.drawText(QRectF(-(bounds.bottom() - lay.plot.bottom()), -lh / 2,
                                bounds.bottom() - lay.plot.bottom() - 4 - lh - 4, lh),
                         Qt::AlignRight | Qt::AlignVCenter, t);
        painter.restore();
    }
    // Axis titles.
    painter.setPen(QColor(40, 40, 40));
    painter.drawText(QRectF(lay.plot.left(), bounds.bottom() - lh - 2, lay.plot.width(), lh),
                     Qt::AlignHCenter, spec.colAxis + QStringLiteral(" →"));
    painter.save();
    painter.translate(bounds.left() + 2, lay.plot.center().y());
    painter.rotate(-90);
    painter.drawText(QRectF(-lay.plot.height() / 2, 0, lay.plot.height(), lh), Qt::AlignHCenter,
                     spec.rowAxis + QStringLiteral(" →"));
    painter.restore();

    if (spec.showColorbar)
        paintColorbar(painter, lay.colorbar, spec.scale, spec.colorbarLabel, spec.fontPixelSize);
    painter.restore();
    return lay;
}

std::optional<std::pair<std::int64_t, std::int64_t>> heatmapCellAt(const HeatmapLayout& layout,
                                                                   std::int64_t rows,
                                                                   std::int64_t cols,
                                                                   const QPointF& pos) {
    if (!layout.plot.contains(pos)) return std::nullopt;
    const CellRange& v = layout.view;
    const double r = v.r0 + (pos.y() - layout.plot.top()) / layout.plot.height() * v.rows();
    const double c = v.c0 + (pos.x() - layout.plot.left()) / layout.plot.width() * v.cols();
    const auto ri = std::int64_t(std::floor(r)), ci = std::int64_t(std::floor(c));
    if (ri < 0 || ci < 0 || ri >= rows || ci >= cols) return std::nullopt;
    return std::make_pair(ri, ci);
}

}  // namespace attnscope::plots
