// The viewer's figure widgets. Each is a thin interactive shell around a plots/ painter (the same
// code `attnscope plot` uses): it keeps the view state (zoom, pan, selection), turns mouse and
// keys into changes of that state, and repaints. No file access here except through the cell
// source handed in.
#pragma once

#include <QPainter>
#include <QPoint>
#include <QWidget>

#include <memory>

#include "plots/figures.h"
#include "plots/heatmap.h"

namespace attnscope::gui {

class HeadGridModel;

/// Large heatmap: wheel zooms at the cursor, drag pans, click highlights the clicked cell's
/// query row and key column (click again to clear), double-click or 0 resets; +/- and arrow keys
/// zoom and pan; hovering reports query token, key token and weight.
class HeatmapWidget : public QWidget {
    Q_OBJECT
public:
    explicit HeatmapWidget(QWidget* parent = nullptr);
    /// Shows `cells` with `spec` (labels, scale, title); resets zoom and highlights.
    void setCells(std::shared_ptr<plots::CellSource> cells, const plots::HeatmapSpec& spec);
    /// Shows `text` instead of a map.
    void showMessage(const QString& text);
    /// Changes colours only (colormap, log), keeping zoom and highlights.
    void setScale(const plots::ColorScale& scale);
    void setView(const plots::CellRange& view);
    plots::CellRange view() const { return m_view; }
    void resetView();
    /// Zooms by `factor` (> 1 zooms in) around cell position (row, col).
    void zoomAt(double factor, double row, double col);
    void setHighlight(std::int64_t row, std::int64_t col);
    const plots::HeatmapSpec& spec() const { return m_spec; }
    plots::CellSource* cells() const { return m_cells.get(); }
    /// Where the last paint put the cells.
    const plots::HeatmapLayout& layout() const { return m_layout; }
    /// Text of the readout for a cell ("query 5 'the' → key 2 'cat': 0.1234").
    QString readout(std::int64_t row, std::int64_t col) const;
    QSize sizeHint() const override { return {800, 760}; }
    /// Paints the figure into `r` of any device (screenshots render at any size this way).
    void paintFigure(QPainter& p, const QRectF& r);

Q_SIGNALS:
    void hovered(const QString& text);
    void highlightChanged(std::int64_t row, std::int64_t col);

protected:
    void paintEvent(QPaintEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void keyPressEvent(QKeyEvent* event) override;

private:
    void clampView();
    std::shared_ptr<plots::CellSource> m_cells;
    QString m_message;
    plots::HeatmapSpec m_spec;
    plots::CellRange m_view;
    plots::HeatmapLayout m_layout;
    QPoint m_pressPos, m_lastPos;
    bool m_dragging = false;
};

/// Layers x heads overview painted from a HeadGridModel; click opens a head.
class GridWidget : public QWidget {
    Q_OBJECT
public:
    explicit GridWidget(HeadGridModel* model, QWidget* parent = nullptr);
    void setSortByMetric(bool on);
    void setSelected(int layer, int head);
    void setCaption(const QString& title, const QString& subtitle);
    void setMetricScale(const plots::ColorScale& scale);
    plots::GridSpec spec() const;
    QSize sizeHint() const override { return {800, 760}; }
    void paintFigure(QPainter& p, const QRectF& r);

Q_SIGNALS:
    void headActivated(int layer, int head);

protected:
    void paintEvent(QPaintEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;

private:
    HeadGridModel* m_model;
    bool m_sort = false;
    int m_layer = -1, m_head = -1;
    QString m_title, m_subtitle;
    plots::ColorScale m_metricScale{plots::Colormap::kMagma};
};

/// BertViz-style token view: click a token on the left (query) or right (key) to see its lines;
/// click it again for all lines; the wheel scrolls long prompts.
class TokensWidget : public QWidget {
    Q_OBJECT
public:
    explicit TokensWidget(QWidget* parent = nullptr);
    void setSpec(const plots::TokensSpec& spec);
    const plots::TokensSpec& spec() const { return m_spec; }
    void pick(int token, bool fromQuery);
    QSize sizeHint() const override { return {700, 760}; }
    void paintFigure(QPainter& p, const QRectF& r);

Q_SIGNALS:
    void tokenPicked(int token, bool fromQuery);

protected:
    void paintEvent(QPaintEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;

private:
    plots::TokensSpec m_spec;
    plots::TokensLayout m_layout;
    int m_first = 0;
};

/// Metric curves per layer.
class CurvesWidget : public QWidget {
    Q_OBJECT
public:
    explicit CurvesWidget(QWidget* parent = nullptr);
    void setSpec(const plots::CurvesSpec& spec);
    void setMessage(const QString& message);
    QSize sizeHint() const override { return {800, 500}; }
    void paintFigure(QPainter& p, const QRectF& r);

protected:
    void paintEvent(QPaintEvent* event) override;

private:
    plots::CurvesSpec m_spec;
    QString m_message;
};

}  // namespace attnscope::gui
