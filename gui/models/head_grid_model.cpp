#include "gui/models/head_grid_model.h"

#include <cmath>

namespace attnscope::gui {

HeadGridModel::HeadGridModel(QObject* parent) : QAbstractTableModel(parent) {}

void HeadGridModel::reset(int nLayers, int nHeads) {
    beginResetModel();
    m_layers = std::max(0, nLayers);
    m_heads = std::max(0, nHeads);
    m_thumbs.assign(std::size_t(m_layers) * std::size_t(m_heads), QImage());
    m_metric.clear();
    m_metricName.clear();
    endResetModel();
}

void HeadGridModel::setLayerThumbnails(int layer, const std::vector<QImage>& thumbs) {
    if (layer < 0 || layer >= m_layers) return;
    for (int h = 0; h < m_heads && h < int(thumbs.size()); ++h)
        m_thumbs[std::size_t(layer * m_heads + h)] = thumbs[std::size_t(h)];
    if (m_heads > 0)
        Q_EMIT dataChanged(index(layer, 0), index(layer, m_heads - 1), {Qt::DecorationRole});
}

void HeadGridModel::setMetric(const QString& name, std::vector<float> values) {
    if (!values.empty() && values.size() != m_thumbs.size()) values.clear();
    m_metric = std::move(values);
    m_metricName = m_metric.empty() ? QString() : name;
    if (m_layers > 0 && m_heads > 0)
        Q_EMIT dataChanged(index(0, 0), index(m_layers - 1, m_heads - 1),
                           {Qt::DisplayRole, Qt::ToolTipRole, MetricRole});
}

int HeadGridModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : m_layers;
}
int HeadGridModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : m_heads;
}

QVariant HeadGridModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const std::size_t i = std::size_t(index.row() * m_heads + index.column());
    const bool hasMetric = i < m_metric.size() && !std::isnan(m_metric[i]);
    switch (role) {
        case Qt::DisplayRole:
            return hasMetric ? QString::number(double(m_metric[i]), 'g', 3)
                             : QStringLiteral("L%1 H%2").arg(index.row()).arg(index.column());
        case Qt::DecorationRole:
            return m_thumbs[i].isNull() ? QVariant() : QVariant(m_thumbs[i]);
        case Qt::ToolTipRole:
            return QStringLiteral("layer %1, head %2%3")
                .arg(index.row())
                .arg(index.column())
                .arg(hasMetric ? QStringLiteral("\n%1 = %2")
                                     .arg(m_metricName)
                                     .arg(double(m_metric[i]), 0, 'g', 4)
                               : QString());
        case MetricRole:
            return hasMetric ? QVariant(double(m_metric[i])) : QVariant();
        case LayerRole:
            return index.row();
        case HeadRole:
            return index.column();
        default:
            return {};
    }
}

QVariant HeadGridModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (role != Qt::DisplayRole || section < 0) return {};
    if (orientation == Qt::Horizontal)
        return section < m_heads ? QVariant(QStringLiteral("H%1").arg(section)) : QVariant();
    return section < m_layers ? QVariant(QStringLiteral("L%1").arg(section)) : QVariant();
}

}  // namespace attnscope::gui
