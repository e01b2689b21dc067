#include "gui/models/capture_tree_model.h"

namespace attnscope::gui {

CaptureTreeModel::CaptureTreeModel(QObject* parent) : QAbstractItemModel(parent) {}

void CaptureTreeModel::setSnapshot(std::vector<RunEntry> runs) {
    // Incremental when the old snapshot is a prefix of the new one (runs and prompts appended).
    bool prefix = runs.size() >= m_runs.size();
    for (std::size_t r = 0; prefix && r < m_runs.size(); ++r) {
        const auto& a = m_runs[r];
        const auto& b = runs[r];
        prefix = a.name == b.name && b.prompts.size() >= a.prompts.size();
        for (std::size_t p = 0; prefix && p < a.prompts.size(); ++p)
            prefix =
                a.prompts[p].id == b.prompts[p].id && a.prompts[p].nTokens == b.prompts[p].nTokens;
    }
    if (!prefix) {
        beginResetModel();
        m_runs = std::move(runs);
        endResetModel();
        return;
    }
    for (std::size_t r = 0; r < m_runs.size(); ++r) {
        const QModelIndex parent = index(int(r), 0);
        const std::size_t have = m_runs[r].prompts.size(), want = runs[r].prompts.size();
        if (want > have) {
            beginInsertRows(parent, int(have), int(want - 1));
            m_runs[r].prompts.assign(runs[r].prompts.begin(), runs[r].prompts.end());
            endInsertRows();
        }
        if (m_runs[r].complete != runs[r].complete ||
            m_runs[r].intervention != runs[r].intervention) {
            m_runs[r].complete = runs[r].complete;
            m_runs[r].intervention = runs[r].intervention;
            Q_EMIT dataChanged(index(int(r), 0), index(int(r), columnCount() - 1));
        }
    }
    if (runs.size() > m_runs.size()) {
        beginInsertRows({}, int(m_runs.size()), int(runs.size() - 1));
        for (std::size_t r = m_runs.size(); r < runs.size(); ++r)
            m_runs.push_back(std::move(runs[r]));
        endInsertRows();
    }
}

QModelIndex CaptureTreeModel::runIndex(const QString& run) const {
    for (std::size_t r = 0; r < m_runs.size(); ++r)
        if (m_runs[r].name == run) return index(int(r), 0);
    return {};
}

QModelIndex CaptureTreeModel::promptIndex(const QString& run, std::int64_t prompt) const {
    const QModelIndex ri = runIndex(run);
    if (!ri.isValid()) return {};
    const auto& ps = m_runs[std::size_t(ri.row())].prompts;
    for (std::size_t p = 0; p < ps.size(); ++p)
        if (ps[p].id == prompt) return index(int(p), 0, ri);
    return {};
}

QModelIndex CaptureTreeModel::index(int row, int column, const QModelIndex& parent) const {
    if (row < 0 || column < 0 || column >= columnCount(parent)) return {};
    if (!parent.isValid()) {
        if (row >= int(m_runs.size())) return {};
        return createIndex(row, column, quintptr(0));
    }
    if (parent.internalId() != 0 || parent.row() >= int(m_runs.size())) return {};
    if (row >= int(m_runs[std::size_t(parent.row())].prompts.size())) return {};
    return createIndex(row, column, quintptr(parent.row() + 1));
}

QModelIndex CaptureTreeModel::parent(const QModelIndex& child) const {
    if (!child.isValid() || child.internalId() == 0) return {};
    return createIndex(int(child.internalId() - 1), 0, quintptr(0));
}

int CaptureTreeModel::rowCount(const QModelIndex& parent) const {
    if (!parent.isValid()) return int(m_runs.size());
    if (parent.column() != 0 || parent.internalId() != 0) return 0;
    return int(m_runs[std::size_t(parent.row())].prompts.size());
}

int CaptureTreeModel::columnCount(const QModelIndex&) const { return 2; }

QVariant CaptureTreeModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid()) return {};
    if (index.internalId() == 0) {
        const RunEntry& r = m_runs[std::size_t(index.row())];
        switch (role) {
            case Qt::DisplayRole:
                if (index.column() == 0) return r.name;
                return QStringLiteral("%1 prompts%2")
                    .arg(r.prompts.size())
                    .arg(r.complete ? QString() : QStringLiteral(", incomplete"));
            case Qt::ToolTipRole:
                return QStringLiteral("run '%1'%2\nintervention: %3")
                    .arg(r.name,
                         r.complete ? QString()
                                    : QStringLiteral(" (incomplete: still writing or interrupted)"),
                         r.intervention);
            case RunNameRole:
                return r.name;
            case IsRunRole:
                return true;
            default:
                return {};
        }
    }
    const RunEntry& r = m_runs[std::size_t(index.internalId() - 1)];
    const PromptEntry& p = r.prompts[std::size_t(index.row())];
    switch (role) {
        case Qt::DisplayRole:
            if (index.column() == 0) return QStringLiteral("%1").arg(p.id);
            return QStringLiteral("%1 tok · %2").arg(p.nTokens).arg(p.text.left(60).simplified());
        case Qt::ToolTipRole:
            return p.text;
        case RunNameRole:
            return r.name;
        case PromptIdRole:
            return qlonglong(p.id);
        case IsRunRole:
            return false;
        default:
            return {};
    }
}

QVariant CaptureTreeModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    return section == 0 ? QStringLiteral("run / prompt") : QStringLiteral("details");
}

}  // namespace attnscope::gui
