// Interactive shells around the plots/ painters.
#include "gui/views.h"

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>
#include <QWheelEvent>

#include <algorithm>
#include <cmath>

#include "gui/models/head_grid_model.h"
#include "gui/tile_source.h"

namespace attnscope::gui {

// --- HeatmapWidget ----------------------------------------------------------------------------

HeatmapWidget::HeatmapWidget(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true);
    setFocusPolicy(Qt::StrongFocus);
    setAutoFillBackground(true);
    QPalette pal = palette();
    pal.setColor(QPalette::Window, Qt::white);
    setPalette(pal);
}

void HeatmapWidget::setCells(std::shared_ptr<plots::CellSource> cells,
                             const plots::HeatmapSpec& spec) {
    if (auto* old = dynamic_cast<TiledMapSource*>(m_cells.get())) old->disconnect(this);
    m_cells = std::move(cells);
    m_message.clear();
    m_spec = spec;
    m_spec.highlightRow = m_spec.highlightCol = -1;
    if (auto* tiles = dynamic_cast<TiledMapSource*>(m_cells.get()))
        connect(tiles, &TiledMapSource::tilesArrived, this, qOverload<>(&QWidget::update));
    resetView();
}

void HeatmapWidget::showMessage(const QString& text) {
    setCells(nullptr, {});
    m_message = text;
    update();
}

void HeatmapWidget::setScale(const plots::ColorScale& scale) {
    m_spec.scale = scale;
    update();
}

void HeatmapWidget::resetView() {
    m_view = m_cells ? plots::CellRange{0, double(m_cells->rows()), 0, double(m_cells->cols())}
                     : plots::CellRange{};
    update();
}

void HeatmapWidget::setView(const plots::CellRange& view) {
    m_view = view;
    clampView();
    update();
}

void HeatmapWidget::clampView() {
    if (!m_cells) return;
    const double R = double(m_cells->rows()), C = double(m_cells->cols());
    // At most the whole map, at least 4 cells across.
    const double h = std::clamp(m_view.rows(), std::min(4.0, R), R),
                 w = std::clamp(m_view.cols(), std::min(4.0, C), C);
    const double r0 = std::clamp(m_view.r0, 0.0, R - h), c0 = std::clamp(m_view.c0, 0.0, C - w);
    m_view = {r0, r0 + h, c0, c0 + w};
}

void HeatmapWidget::zoomAt(double factor, double row, double col) {
    if (!m_cells || factor <= 0) return;
    plots::CellRange v = m_view;
    v.r0 = row - (row - v.r0) / factor;
    v.r1 = row + (v.r1 - row) / factor;
    v.c0 = col - (col - v.c0) / factor;
    v.c1 = col + (v.c1 - col) / factor;
    m_view = v;
    clampView();
    update();
}

void HeatmapWidget::setHighlight(std::int64_t row, std::int64_t col) {
    m_spec.highlightRow = row;
    m_spec.highlightCol = col;
    Q_EMIT highlightChanged(row, col);
    update();
}

QString HeatmapWidget::readout(std::int64_t row, std::int64_t col) const {
    if (!m_cells) return {};
    float v = m_cells->value(row, col);
    if (std::isnan(v))
        if (auto* tiles = dynamic_cast<TiledMapSource*>(m_cells.get()))
            v = tiles->readValue(row, col);
    auto tok = [](const QStringList& l, std::int64_t i) {
        return i < l.size() ? QStringLiteral(" '%1'").arg(plots::axisLabel(l[int(i)], 24))
                            : QString();
    };
    return QStringLiteral("%1 %2%3 → %4 %5%6: %7")
        .arg(m_spec.rowAxis)
        .arg(row)
        .arg(tok(m_spec.rowLabels, row), m_spec.colAxis)
        .arg(col)
        .arg(tok(m_spec.colLabels, col))
        .arg(std::isnan(v) ? QStringLiteral("n/a") : QString::number(double(v), 'g', 5));
}

void HeatmapWidget::paintEvent(QPaintEvent*) {
    QPainter p(this);
    paintFigure(p, QRectF(rect()));
}

void HeatmapWidget::paintFigure(QPainter& p, const QRectF& r) {
    p.fillRect(r, Qt::white);
    if (!m_cells) {
        p.setPen(Qt::gray);
        p.drawText(r.adjusted(20, 20, -20, -20), Qt::AlignCenter | Qt::TextWordWrap,
                   m_message.isEmpty() ? QStringLiteral("No attention map for this selection")
                                       : m_message);
        return;
    }
    plots::HeatmapSpec spec = m_spec;
    spec.view = m_view;
    m_layout = plots::paintHeatmap(p, r, spec, *m_cells);
}

void HeatmapWidget::wheelEvent(QWheelEvent* event) {
    const auto cell = [&]() -> std::pair<double, double> {
        const QPointF pos = event->position();
        if (!m_layout.plot.contains(pos))
            return {(m_view.r0 + m_view.r1) / 2, (m_view.c0 + m_view.c1) / 2};
        return {
            m_view.r0 + (pos.y() - m_layout.plot.top()) / m_layout.plot.height() * m_view.rows(),
            m_view.c0 + (pos.x() - m_layout.plot.left()) / m_layout.plot.width() * m_view.cols()};
    }();
    const double steps = event->angleDelta().y() / 120.0;
    zoomAt(std::pow(1.25, steps), cell.first, cell.second);
    event->accept();
}

void HeatmapWidget::mousePressEvent(QMouseEvent* event) {
    m_pressPos = m_lastPos = event->position().toPoint();
    m_dragging = false;
    if (event->button() == Qt::RightButton) setHighlight(-1, -1);
}

void HeatmapWidget::mouseMoveEvent(QMouseEvent* event) {
    const QPoint pos = event->position().toPoint();
    if (event->buttons() & Qt::LeftButton) {
        if ((pos - m_pressPos).manhattanLength() > 3) m_dragging = true;
        if (m_dragging && m_layout.plot.width() > 0) {
            const QPoint d = pos - m_lastPos;
            const double dr = -d.y() / m_layout.plot.height() * m_view.rows();
            const double dc = -d.x() / m_layout.plot.width() * m_view.cols();
            m_view = {m_view.r0 + dr, m_view.r1 + dr, m_view.c0 + dc, m_view.c1 + dc};
            clampView();
            update();
        }
        m_lastPos = pos;
        return;
    }
    if (!m_cells) return;
    if (const auto c =
            plots::heatmapCellAt(m_layout, m_cells->rows(), m_cells->cols(), event->position()))
        Q_EMIT hovered(readout(c->first, c->second));
}

void HeatmapWidget::mouseReleaseEvent(QMouseEvent* event) {
    if (event->button() == Qt::LeftButton && !m_dragging && m_cells) {
        if (const auto c = plots::heatmapCellAt(m_layout, m_cells->rows(), m_cells->cols(),
                                                event->position())) {
            if (c->first == m_spec.highlightRow && c->second == m_spec.highlightCol)
                setHighlight(-1, -1);
            else
                setHighlight(c->first, c->second);
        }
    }
    m_dragging = false;
}

void HeatmapWidget::mouseDoubleClickEvent(QMouseEvent*) { resetView(); }

void HeatmapWidget::keyPressEvent(QKeyEvent* event) {
    const double cr = (m_view.r0 + m_view.r1) / 2, cc = (m_view.c0 + m_view.c1) / 2;
    const double pr = m_view.rows() * 0.1, pc = m_view.cols() * 0.1;
    switch (event->key()) {
        case Qt::Key_Plus:
        case Qt::Key_Equal:
            zoomAt(1.5, cr, cc);
            break;
        case Qt::Key_Minus:
            zoomAt(1 / 1.5, cr, cc);
            break;
        case Qt::Key_0:
        case Qt::Key_Home:
            resetView();
            break;
        case Qt::Key_Left:
            setView({m_view.r0, m_view.r1, m_view.c0 - pc, m_view.c1 - pc});
            break;
        case Qt::Key_Right:
            setView({m_view.r0, m_view.r1, m_view.c0 + pc, m_view.c1 + pc});
            break;
        case Qt::Key_Up:
            setView({m_view.r0 - pr, m_view.r1 - pr, m_view.c0, m_view.c1});
            break;
        case Qt::Key_Down:
            setView({m_view.r0 + pr, m_view.r1 + pr, m_view.c0, m_view.c1});
            break;
        case Qt::Key_Escape:
            setHighlight(-1, -1);
            break;
        default:
            QWidget::keyPressEvent(event);
            return;
    }
    event->accept();
}

// --- GridWidget -------------------------------------------------------------------------------

GridWidget::GridWidget(HeadGridModel* model, QWidget* parent) : QWidget(parent), m_model(model) {
    setMouseTracking(true);
    auto repaint = [this] { update(); };
    connect(m_model, &QAbstractItemModel::dataChanged, this, repaint);
    connect(m_model, &QAbstractItemModel::modelReset, this, repaint);
}

void GridWidget::setSortByMetric(bool on) {
    m_sort = on;
    update();
}
void GridWidget::setSelected(int layer, int head) {
    m_layer = layer;
    m_head = head;
    update();
}
void GridWidget::setCaption(const QString& title, const QString& subtitle) {
    m_title = title;
    m_subtitle = subtitle;
    update();
}
void GridWidget::setMetricScale(const plots::ColorScale& scale) {
    m_metricScale = scale;
    update();
}

plots::GridSpec GridWidget::spec() const {
    plots::GridSpec g;
    g.title = m_title;
    g.subtitle = m_subtitle;
    g.nLayers = m_model->layers();
    g.nHeads = m_model->heads();
    g.thumbs = m_model->thumbnails();
    g.metric = m_model->metric();
    g.metricName = m_model->metricName();
    g.metricScale = m_metricScale;
    g.sortByMetric = m_sort;
    g.selectedLayer = m_layer;
    g.selectedHead = m_head;
    return g;
}

void GridWidget::paintEvent(QPaintEvent*) {
    QPainter p(this);
    paintFigure(p, QRectF(rect()));
}

void GridWidget::paintFigure(QPainter& p, const QRectF& r) {
    p.fillRect(r, Qt::white);
    if (m_model->layers() == 0) {
        p.setPen(Qt::gray);
        p.drawText(r, Qt::AlignCenter, QStringLiteral("Open a capture and pick a prompt"));
        return;
    }
    plots::paintGrid(p, r, spec());
}

void GridWidget::mousePressEvent(QMouseEvent* event) {
    if (const auto c = plots::gridCellAt(QRectF(rect()), spec(), event->position())) {
        setSelected(c->first, c->second);
        Q_EMIT headActivated(c->first, c->second);
    }
}

void GridWidget::mouseMoveEvent(QMouseEvent* event) {
    if (const auto c = plots::gridCellAt(QRectF(rect()), spec(), event->position()))
        QToolTip::showText(
            event->globalPosition().toPoint(),
            m_model->data(m_model->index(c->first, c->second), Qt::ToolTipRole).toString(), this);
}

// --- TokensWidget -----------------------------------------------------------------------------

TokensWidget::TokensWidget(QWidget* parent) : QWidget(parent) {}

void TokensWidget::setSpec(const plots::TokensSpec& spec) {
    m_spec = spec;
    update();
}

void TokensWidget::pick(int token, bool fromQuery) {
    m_spec.selected = token;
    m_spec.fromQuery = fromQuery;
    Q_EMIT tokenPicked(token, fromQuery);
    update();
}

void TokensWidget::paintEvent(QPaintEvent*) {
    QPainter p(this);
    paintFigure(p, QRectF(rect()));
}

void TokensWidget::paintFigure(QPainter& p, const QRectF& r) {
    p.fillRect(r, Qt::white);
    if (m_spec.tokens.isEmpty()) {
        p.setPen(Qt::gray);
        p.drawText(r, Qt::AlignCenter, QStringLiteral("Open a capture and pick a prompt"));
        return;
    }
    m_layout = plots::paintTokens(p, r, m_spec, m_first);
}

void TokensWidget::mousePressEvent(QMouseEvent* event) {
    if (const auto t = plots::tokenAt(m_layout, event->position())) {
        if (t->first == m_spec.selected && t->second == m_spec.fromQuery)
            pick(-1, m_spec.fromQuery);
        else
            pick(t->first, t->second);
    }
}

void TokensWidget::wheelEvent(QWheelEvent* event) {
    m_first = std::max(0, m_first - event->angleDelta().y() / 40);
    m_first = std::min(m_first, std::max(0, int(m_spec.tokens.size()) - m_layout.count));
    update();
}

// --- CurvesWidget -----------------------------------------------------------------------------

CurvesWidget::CurvesWidget(QWidget* parent) : QWidget(parent) {}

void CurvesWidget::setSpec(const plots::CurvesSpec& spec) {
    m_spec = spec;
    m_message.clear();
    update();
}

void CurvesWidget::setMessage(const QString& message) {
    m_message = message;
    update();
}

void CurvesWidget::paintEvent(QPaintEvent*) {
    QPainter p(this);
    paintFigure(p, QRectF(rect()));
}

void CurvesWidget::paintFigure(QPainter& p, const QRectF& r) {
    p.fillRect(r, Qt::white);
    if (!m_message.isEmpty() || m_spec.series.empty()) {
        p.setPen(Qt::darkGray);
        p.drawText(r.adjusted(20, 20, -20, -20), Qt::AlignCenter | Qt::TextWordWrap,
                   m_message.isEmpty() ? QStringLiteral("No metrics") : m_message);
        return;
    }
    plots::paintCurves(p, r, m_spec);
}

}  // namespace attnscope::gui
