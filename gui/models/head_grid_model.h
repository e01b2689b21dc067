// The layers x heads table behind the head overview: a thumbnail (DecorationRole) and an
// optional metric value (MetricRole, DisplayRole) per head. Thumbnails arrive layer by layer
// from background loads; each arrival emits dataChanged for that row only.
#pragma once

#include <QAbstractTableModel>
#include <QImage>
#include <QString>

#include <vector>

namespace attnscope::gui {

class HeadGridModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Roles { MetricRole = Qt::UserRole + 1, LayerRole, HeadRole };
    explicit HeadGridModel(QObject* parent = nullptr);

    /// New shape; clears thumbnails and metric.
    void reset(int nLayers, int nHeads);
    void setLayerThumbnails(int layer, const std::vector<QImage>& thumbs);
    /// [nLayers * nHeads] values (NaN = none), or empty to clear.
    void setMetric(const QString& name, std::vector<float> values);
    const std::vector<float>& metric() const { return m_metric; }
    const QString& metricName() const { return m_metricName; }
    const std::vector<QImage>& thumbnails() const { return m_thumbs; }
    int layers() const { return m_layers; }
    int heads() const { return m_heads; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;

private:
    int m_layers = 0, m_heads = 0;
    std::vector<QImage> m_thumbs;
    std::vector<float> m_metric;
    QString m_metricName;
};

}  // namespace attnscope::gui
