#include "gui/models/token_list_model.h"

#include "plots/heatmap.h"

namespace attnscope::gui {

TokenListModel::TokenListModel(QObject* parent) : QAbstractListModel(parent) {}

void TokenListModel::setTokens(const QStringList& tokens) {
    beginResetModel();
    m_tokens = tokens;
    endResetModel();
}

int TokenListModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(m_tokens.size());
}

QVariant TokenListModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const QString& t = m_tokens[index.row()];
    switch (role) {
        case Qt::DisplayRole:
            return QStringLiteral("%1  %2").arg(index.row()).arg(plots::axisLabel(t, 24));
        case Qt::ToolTipRole:
            return QStringLiteral("position %1: '%2'").arg(index.row()).arg(t);
        case PositionRole:
            return index.row();
        case TokenRole:
            return t;
        default:
            return {};
    }
}

HeadChecklistModel::HeadChecklistModel(QObject* parent) : QAbstractListModel(parent) {}

void HeadChecklistModel::setHeads(int n, const std::vector<int>& checked) {
    beginResetModel();
    m_checked.assign(std::size_t(std::max(0, n)), false);
    for (int h : checked)
        if (h >= 0 && h < n) m_checked[std::size_t(h)] = true;
    endResetModel();
    Q_EMIT checkedChanged();
}

std::vector<int> HeadChecklistModel::checkedHeads() const {
    std::vector<int> out;
    for (std::size_t i = 0; i < m_checked.size(); ++i)
        if (m_checked[i]) out.push_back(int(i));
    return out;
}

void HeadChecklistModel::setChecked(const std::vector<int>& heads) {
    std::vector<bool> next(m_checked.size(), false);
    for (int h : heads)
        if (h >= 0 && h < int(next.size())) next[std::size_t(h)] = true;
    if (next == m_checked) return;
    m_checked = next;
    if (!m_checked.empty())
        Q_EMIT dataChanged(index(0), index(int(m_checked.size()) - 1), {Qt::CheckStateRole});
    Q_EMIT checkedChanged();
}

int HeadChecklistModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(m_checked.size());
}

QVariant HeadChecklistModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    switch (role) {
        case Qt::DisplayRole:
            return QStringLiteral("head %1").arg(index.row());
        case Qt::CheckStateRole:
            return m_checked[std::size_t(index.row())] ? Qt::Checked : Qt::Unchecked;
        default:
            return {};
    }
}

bool HeadChecklistModel::setData(const QModelIndex& index, const QVariant& value, int role) {
    if (role != Qt::CheckStateRole ||
        !checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return false;
    const bool on = value.toInt() == Qt::Checked;
    if (m_checked[std::size_t(index.row())] == on) return true;
    m_checked[std::size_t(index.row())] = on;
    Q_EMIT dataChanged(index, index, {Qt::CheckStateRole});
    Q_EMIT checkedChanged();
    return true;
}

Qt::ItemFlags HeadChecklistModel::flags(const QModelIndex& index) const {
    if (!index.isValid()) return Qt::NoItemFlags;
    return Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsUserCheckable |
           Qt::ItemNeverHasChildren;
}

}  // namespace attnscope::gui
