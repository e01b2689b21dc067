// Runs and their prompts of an open capture, as a two-level tree (run -> prompt) for the
// viewer's browser. A thin model over an immutable snapshot: setSnapshot() replaces it, and when
// the new snapshot only appends prompts or runs (a capture still writing), rows are inserted so
// that selections survive live refreshes.
#pragma once

#include <QAbstractItemModel>
#include <QString>

#include <cstdint>
#include <vector>

namespace attnscope::gui {

struct PromptEntry {
    std::int64_t id = 0;
    std::int64_t nTokens = 0;
    QString text;
};

struct RunEntry {
    QString name;
    bool complete = false;
    QString intervention;  ///< JSON, "{}" when none
    std::vector<PromptEntry> prompts;
};

class CaptureTreeModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Roles { RunNameRole = Qt::UserRole + 1, PromptIdRole, IsRunRole };
    explicit CaptureTreeModel(QObject* parent = nullptr);

    void setSnapshot(std::vector<RunEntry> runs);
    const std::vector<RunEntry>& snapshot() const { return m_runs; }
    /// Index of a run's prompt, or invalid.
    QModelIndex promptIndex(const QString& run, std::int64_t prompt) const;
    QModelIndex runIndex(const QString& run) const;

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;

private:
    // Internal id: 0 for runs, run row + 1 for prompts.
    std::vector<RunEntry> m_runs;
};

}  // namespace attnscope::gui
