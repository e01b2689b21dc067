// Grid, curves and token-view painters.
#include "plots/figures.h"

#include <QFontMetricsF>
#include <QPainterPath>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "plots/heatmap.h"

namespace attnscope::plots {
namespace {

QFont fontOf(int pixelSize, bool bold = false) {
    QFont f(QStringLiteral("DejaVu Sans"));
    f.setPixelSize(std::max(4, pixelSize));
    f.setBold(bold);
    return f;
}

double drawTitle(QPainter& p, const QRectF& bounds, const QString& title, const QString& subtitle,
                 int px) {
    double y = bounds.top() + 6;
    if (!title.isEmpty()) {
        const QFont tf = fontOf(px + 3);
        p.setFont(tf);
        p.setPen(Qt::black);
        const double h = QFontMetricsF(tf).height();
        p.drawText(QRectF(bounds.left(), y, bounds.width(), h), Qt::AlignHCenter, title);
        y += h + 4;
    }
    if (!subtitle.isEmpty()) {
        const QFont f = fontOf(px);
        p.setFont(f);
        p.setPen(QColor(80, 80, 80));
        const double h = QFontMetricsF(f).height();
        p.drawText(QRectF(bounds.left(), y, bounds.width(), h), Qt::AlignHCenter, subtitle);
        y += h + 4;
    }
    return y;
}

struct GridGeom {
    double left, top, cell;
    QRectF colorbar;
};

GridGeom gridGeom(const QRectF& bounds, const GridSpec& spec) {
    GridGeom g{};
    const QFontMetricsF fm(fontOf(spec.fontPixelSize));
    double top = bounds.top() + 6;
    if (!spec.title.isEmpty()) top += QFontMetricsF(fontOf(spec.fontPixelSize + 3)).height() + 4;
    if (!spec.subtitle.isEmpty()) top += fm.height() + 4;
    top += fm.height() + 4;  // head numbers
    const double left = bounds.left() + fm.horizontalAdvance(QStringLiteral("L00")) + 12;
    const bool bar = !spec.metric.empty();
    const double right = bounds.right() - (bar ? 80 : 6);
    const int L = std::max(1, spec.nLayers), H = std::max(1, spec.nHeads);
    g.cell = std::max(4.0, std::min((right - left) / H, (bounds.bottom() - 6 - top) / L));
    g.left = left;
    g.top = top;
    if (bar) g.colorbar = QRectF(left + g.cell * H + 14, top, 66, g.cell * L);
    return g;
}

}  // namespace

QColor categoricalColor(int i) {
    static const QRgb tab10[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
    return QColor::fromRgb(tab10[((i % 10) + 10) % 10]);
}

std::vector<int> gridOrder(const GridSpec& spec, int layer) {
    std::vector<int> order(std::size_t(std::max(0, spec.nHeads)));
    std::iota(order.begin(), order.end(), 0);
    if (!spec.sortByMetric || spec.metric.empty()) return order;
    auto val = [&](int h) {
        const std::size_t i = std::size_t(layer * spec.nHeads + h);
        return i < spec.metric.size() ? spec.metric[i] : std::numeric_limits<float>::quiet_NaN();
    };
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        const float va = val(a), vb = val(b);
        if (std::isnan(va)) return false;
        if (std::isnan(vb)) return true;
        return va > vb;
    });
    return order;
}

QRectF gridCellRect(const QRectF& bounds, const GridSpec& spec, int layer, int head) {
    const GridGeom g = gridGeom(bounds, spec);
    const std::vector<int> order = gridOrder(spec, layer);
    const int slot = int(std::find(order.begin(), order.end(), head) - order.begin());
    const double gap = std::max(2.0, g.cell * 0.06);
    return QRectF(g.left + slot * g.cell + gap / 2, g.top + layer * g.cell + gap / 2, g.cell - gap,
                  g.cell - gap);
}

void paintGrid(QPainter& p, const QRectF& bounds, const GridSpec& spec) {
    p.save();
    p.setRenderHint(QPainter::TextAntialiasing, true);
    drawTitle(p, bounds, spec.title, spec.subtitle, spec.fontPixelSize);
    const GridGeom g = gridGeom(bounds, spec);
    const QFont font = fontOf(spec.fontPixelSize);
    const QFont small = fontOf(std::max(8, std::min(spec.fontPixelSize - 2, int(g.cell / 5))));
    const QFontMetricsF fm(font);
    const bool metric = !spec.metric.empty();
    p.setFont(font);
    p.setPen(Qt::black);
    const bool sorted = spec.sortByMetric && metric;
    for (int h = 0; h < spec.nHeads; ++h)
        p.drawText(QRectF(g.left + h * g.cell, g.top - fm.height() - 2, g.cell, fm.height()),
                   Qt::AlignHCenter,
                   sorted ? QStringLiteral("#%1").arg(h + 1) : QStringLiteral("H%1").arg(h));
    for (int l = 0; l < spec.nLayers; ++l) {
        p.setFont(font);
        p.setPen(Qt::black);
        p.drawText(QRectF(bounds.left(), g.top + l * g.cell, g.left - bounds.left() - 6, g.cell),
                   Qt::AlignRight | Qt::AlignVCenter, QStringLiteral("L%1").arg(l));
        for (int h = 0; h < spec.nHeads; ++h) {
            const QRectF r = gridCellRect(bounds, spec, l, h);
            const std::size_t i = std::size_t(l * spec.nHeads + h);
            const float mv = metric && i < spec.metric.size()
                                 ? spec.metric[i]
                                 : std::numeric_limits<float>::quiet_NaN();
            QRectF inner = r;
            if (metric) {
                // Frame in the metric's colour (grey when the head has no value).
                p.fillRect(r, std::isnan(mv) ? QColor(200, 200, 200) : spec.metricScale.color(mv));
                const double fw = std::max(2.0, r.width() * 0.08);
                inner = r.adjusted(fw, fw, -fw, -fw);
            }
            if (i < spec.thumbs.size() && !spec.thumbs[i].isNull()) {
                p.setRenderHint(QPainter::SmoothPixmapTransform, false);
                p.drawImage(inner, spec.thumbs[i]);
            } else {
                p.fillRect(inner, QColor(235, 235, 235));
            }
            if (sorted || metric) {
                p.setFont(small);
                const QFontMetricsF sfm(small);
                QString txt = sorted ? QStringLiteral("H%1").arg(h) : QString();
                if (metric && !std::isnan(mv))
                    txt += (txt.isEmpty() ? QString() : QStringLiteral(" ")) +
                           QString::number(double(mv), 'g', 2);
                if (!txt.isEmpty()) {
                    const QRectF tr(inner.left(), inner.bottom() - sfm.height(),
                                    std::min(inner.width(), sfm.horizontalAdvance(txt) + 4),
                                    sfm.height());
                    p.fillRect(tr, QColor(255, 255, 255, 200));
                    p.setPen(Qt::black);
                    p.drawText(tr, Qt::AlignCenter, txt);
                }
            }
            if (l == spec.selectedLayer && h == spec.selectedHead) {
                p.setPen(QPen(QColor(220, 0, 0), 3));
                p.setBrush(Qt::NoBrush);
                p.drawRect(r.adjusted(-1, -1, 1, 1));
            }
        }
    }
    if (metric) paintColorbar(p, g.colorbar, spec.metricScale, spec.metricName, spec.fontPixelSize);
    p.restore();
}

std::optional<std::pair<int, int>> gridCellAt(const QRectF& bounds, const GridSpec& spec,
                                              const QPointF& pos) {
    const GridGeom g = gridGeom(bounds, spec);
    const int l = int(std::floor((pos.y() - g.top) / g.cell));
    const int slot = int(std::floor((pos.x() - g.left) / g.cell));
    if (pos.x() < g.left || pos.y() < g.top || l < 0 || l >= spec.nLayers || slot < 0 ||
        slot >= spec.nHeads)
        return std::nullopt;
    return std::make_pair(l, gridOrder(spec, l)[std::size_t(slot)]);
}

// --- curves ------------------------------------------------------------------------------------

void paintCurves(QPainter& p, const QRectF& bounds, const CurvesSpec& spec) {
    p.save();
    p.setRenderHint(QPainter::Antialiasing, true);
    p.setRenderHint(QPainter::TextAntialiasing, true);
    const double top = drawTitle(p, bounds, spec.title, spec.subtitle, spec.fontPixelSize);
    const QFont font = fontOf(spec.fontPixelSize);
    const QFontMetricsF fm(font);
    p.setFont(font);
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    std::size_t n = std::size_t(spec.xTicks.size());
    for (const Series& s : spec.series) {
        n = std::max(n, s.y.size());
        for (double v : s.y)
            if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) hi = lo + 1;
    const double pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    // Legend to the right.
    double legendW = 0;
    for (const Series& s : spec.series)
        if (s.inLegend) legendW = std::max(legendW, fm.horizontalAdvance(s.name) + 34);
    const QRectF plot(
        bounds.left() + fm.height() + fm.horizontalAdvance(QStringLiteral("-0.000")) + 14, top + 6,
        bounds.width() - legendW - fm.height() - fm.horizontalAdvance(QStringLiteral("-0.000")) -
            30,
        bounds.bottom() - top - 2 * fm.height() - 22);
    p.fillRect(plot, QColor(250, 250, 250));
    p.setPen(QPen(QColor(60, 60, 60), 1));
    p.drawRect(plot);
    auto X = [&](double i) {
        return n <= 1 ? plot.center().x()
                      : plot.left() + 10 + i * (plot.width() - 20) / double(n - 1);
    };
    auto Y = [&](double v) { return plot.bottom() - (v - lo) / (hi - lo) * plot.height(); };
    // y ticks
    for (int k = 0; k <= 4; ++k) {
        const double v = lo + (hi - lo) * k / 4.0, y = Y(v);
        p.setPen(QPen(QColor(225, 225, 225), 1));
        p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y));
        p.setPen(Qt::black);
        p.drawText(QRectF(bounds.left(), y - fm.height() / 2, plot.left() - bounds.left() - 4,
                          fm.height()),
                   Qt::AlignRight | Qt::AlignVCenter, QString::number(v, 'g', 3));
    }
    for (std::size_t i = 0; i < n; ++i) {
        const QString t =
            i < std::size_t(spec.xTicks.size()) ? spec.xTicks[int(i)] : QString::number(i);
        p.drawText(QRectF(X(double(i)) - 30, plot.bottom() + 3, 60, fm.height()), Qt::AlignHCenter,
                   t);
    }
    p.drawText(QRectF(plot.left(), plot.bottom() + fm.height() + 6, plot.width(), fm.height()),
               Qt::AlignHCenter, spec.xLabel);
    p.save();
    p.translate(bounds.left() + 2, plot.center().y());
    p.rotate(-90);
    p.drawText(QRectF(-plot.height() / 2, 0, plot.height(), fm.height()), Qt::AlignHCenter,
               spec.yLabel);
    p.restore();
    for (const Series& s : spec.series) {
        QPainterPath path;
        bool pen = false;
        for (std::size_t i = 0; i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i])) {
                pen = false;
                continue;
            }
            const QPointF pt(X(double(i)), Y(s.y[i]));
            if (pen)
                path.lineTo(pt);
            else
                path.moveTo(pt);
            pen = true;
        }
        p.setPen(QPen(s.color, s.width));
        p.setBrush(Qt::NoBrush);
        p.drawPath(path);
        if (s.markers) {
            p.setBrush(s.color);
            for (std::size_t i = 0; i < s.y.size(); ++i)
                if (std::isfinite(s.y[i]))
                    p.drawEllipse(QPointF(X(double(i)), Y(s.y[i])), s.width + 1, s.width + 1);
        }
    }
    double ly = plot.top() + 4;
    for (const Series& s : spec.series) {
        if (!s.inLegend) continue;
        const double lx = plot.right() + 10;
        p.setPen(QPen(s.color, s.width));
        p.drawLine(QPointF(lx, ly + fm.height() / 2), QPointF(lx + 20, ly + fm.height() / 2));
        p.setPen(Qt::black);
        p.drawText(QPointF(lx + 24, ly + fm.ascent()), s.name);
        ly += fm.height() + 2;
    }
    p.restore();
}

// --- tokens ------------------------------------------------------------------------------------

TokensLayout tokensLayout(const QRectF& bounds, const TokensSpec& spec, int firstToken) {
    TokensLayout lay;
    const QFontMetricsF fm(fontOf(spec.fontPixelSize));
    double top = bounds.top() + 6;
    if (!spec.title.isEmpty()) top += QFontMetricsF(fontOf(spec.fontPixelSize + 3)).height() + 4;
    if (!spec.subtitle.isEmpty()) top += fm.height() + 4;
    top += fm.height() + 4;  // column headers
    const int T = int(spec.tokens.size());
    lay.rowHeight = std::max(fm.height() + 2, 6.0);
    const int fit = std::max(1, int((bounds.bottom() - 4 - top) / lay.rowHeight));
    lay.first = std::clamp(firstToken, 0, std::max(0, T - fit));
    lay.count = std::min(fit, T - lay.first);
    double colW = fm.averageCharWidth() * 6;
    for (const QString& t : spec.tokens)
        colW = std::max(colW, fm.horizontalAdvance(axisLabel(t, 18)) + 10);
    colW = std::min(colW, bounds.width() / 3);
    const double barW = spec.tokenMetric.empty() ? 0.0 : 90.0;
    const double gap = std::clamp(bounds.width() - 2 * colW - barW - 20, 120.0, 420.0);
    const double left = bounds.center().x() - (2 * colW + gap + barW) / 2;
    lay.left = QRectF(left, top, colW, lay.count * lay.rowHeight);
    lay.right = QRectF(left + colW + gap, top, colW, lay.count * lay.rowHeight);
    if (barW > 0)
        lay.bars = QRectF(lay.right.right() + 6, top, barW - 6, lay.count * lay.rowHeight);
    return lay;
}

TokensLayout paintTokens(QPainter& p, const QRectF& bounds, const TokensSpec& spec,
                         int firstToken) {
    p.save();
    p.setRenderHint(QPainter::Antialiasing, true);
    p.setRenderHint(QPainter::TextAntialiasing, true);
    drawTitle(p, bounds, spec.title, spec.subtitle, spec.fontPixelSize);
    const TokensLayout lay = tokensLayout(bounds, spec, firstToken);
    const QFont font = fontOf(spec.fontPixelSize);
    const QFontMetricsF fm(font);
    p.setFont(font);
    p.setPen(QColor(80, 80, 80));
    p.drawText(
        QRectF(lay.left.left(), lay.left.top() - fm.height() - 4, lay.left.width(), fm.height()),
        Qt::AlignRight, QStringLiteral("query"));
    p.drawText(
        QRectF(lay.right.left(), lay.right.top() - fm.height() - 4, lay.right.width(), fm.height()),
        Qt::AlignLeft, QStringLiteral("key"));
    const int T = int(spec.tokens.size());
    auto rowY = [&](int i) { return lay.left.top() + (i - lay.first + 0.5) * lay.rowHeight; };
    auto visible = [&](int i) { return i >= lay.first && i < lay.first + lay.count; };
    // Lines: additive over heads, one colour per head, alpha = weight.
    const double x0 = lay.left.right() + 4, x1 = lay.right.left() - 4;
    for (const TokenHead& h : spec.heads) {
        if (std::int64_t(h.weights.size()) != std::int64_t(T) * T) continue;
        auto line = [&](int q, int k, float w, double scale) {
            if (!(w >= spec.minWeight) || !visible(q) || !visible(k)) return;
            // sqrt: weights of 0.05-0.3 stay visible next to a sink's 0.9 (BertViz uses the
            // weight directly, which hides everything but the largest).
            QColor c = h.color;
            c.setAlphaF(std::clamp(std::sqrt(double(w)) * scale, 0.0, 1.0));
            p.setPen(QPen(c, 1.0 + 2.0 * double(w)));
            p.drawLine(QPointF(x0, rowY(q)), QPointF(x1, rowY(k)));
        };
        if (spec.selected < 0) {
            for (int q = 0; q < T; ++q)
                for (int k = 0; k <= q; ++k) line(q, k, h.weights[std::size_t(q) * T + k], 0.35);
        } else if (spec.fromQuery) {
            const int q = spec.selected;
            for (int k = 0; k < T; ++k) line(q, k, h.weights[std::size_t(q) * T + k], 1.0);
        } else {
            const int k = spec.selected;
            for (int q = 0; q < T; ++q) line(q, k, h.weights[std::size_t(q) * T + k], 1.0);
        }
    }
    // Token columns; the picked token on its side is highlighted, and its partners are shaded by
    // the summed weight of the first head.
    for (int i = lay.first; i < lay.first + lay.count; ++i) {
        const double y = rowY(i) - lay.rowHeight / 2;
        const QString t = axisLabel(spec.tokens[i], 18);
        const QRectF lr(lay.left.left(), y, lay.left.width(), lay.rowHeight);
        const QRectF rr(lay.right.left(), y, lay.right.width(), lay.rowHeight);
        if (spec.selected == i) p.fillRect(spec.fromQuery ? lr : rr, QColor(255, 220, 120));
        p.setPen(Qt::black);
        p.drawText(lr.adjusted(0, 0, -4, 0), Qt::AlignRight | Qt::AlignVCenter, t);
        p.drawText(rr.adjusted(4, 0, 0, 0), Qt::AlignLeft | Qt::AlignVCenter, t);
    }
    // Per-token metric bars.
    if (!lay.bars.isEmpty()) {
        float vmax = 0.f;
        for (float v : spec.tokenMetric)
            if (std::isfinite(v)) vmax = std::max(vmax, v);
        p.setPen(QColor(80, 80, 80));
        p.drawText(QRectF(lay.bars.left(), lay.bars.top() - fm.height() - 4, lay.bars.width() + 40,
                          fm.height()),
                   Qt::AlignLeft, spec.tokenMetricName);
        for (int i = lay.first; i < lay.first + lay.count && i < int(spec.tokenMetric.size());
             ++i) {
            const float v = spec.tokenMetric[std::size_t(i)];
            if (!std::isfinite(v) || vmax <= 0.f) continue;
            const double y = rowY(i) - lay.rowHeight / 2 + 2;
            p.fillRect(
                QRectF(lay.bars.left(), y, lay.bars.width() * double(std::max(0.f, v) / vmax),
                       lay.rowHeight - 4),
                QColor(120, 120, 120));
        }
    }
    // Head legend along the bottom.
    double lx = bounds.left() + 8;
    const double ly = bounds.bottom() - fm.height() - 2;
    if (lay.left.bottom() < ly - 2) {
        for (const TokenHead& h : spec.heads) {
            const QString name = QStringLiteral("L%1 H%2").arg(h.layer).arg(h.head);
            p.fillRect(QRectF(lx, ly + 3, 12, fm.height() - 6), h.color);
            p.setPen(Qt::black);
            p.drawText(QPointF(lx + 15, ly + fm.ascent()), name);
            lx += fm.horizontalAdvance(name) + 28;
        }
    }
    p.restore();
    return lay;
}

std::optional<std::pair<int, bool>> tokenAt(const TokensLayout& lay, const QPointF& pos) {
    for (const bool left : {true, false}) {
        const QRectF& col = left ? lay.left : lay.right;
        if (!col.contains(pos)) continue;
        const int i = lay.first + int((pos.y() - col.top()) / lay.rowHeight);
        if (i >= lay.first && i < lay.first + lay.count) return std::make_pair(i, left);
    }
    return std::nullopt;
}

}  // namespace attnscope::plots
