// Tokens of a prompt for the token view's picker, and a checkable list of heads (which heads the
// token view draws). Both are small flat lists over plain vectors.
#pragma once

#include <QAbstractListModel>
#include <QStringList>

#include <vector>

namespace attnscope::gui {

class TokenListModel : public QAbstractListModel {
    Q_OBJECT
public:
    enum Roles { PositionRole = Qt::UserRole + 1, TokenRole };
    explicit TokenListModel(QObject* parent = nullptr);
    void setTokens(const QStringList& tokens);
    const QStringList& tokens() const { return m_tokens; }
    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;

private:
    QStringList m_tokens;
};

class HeadChecklistModel : public QAbstractListModel {
    Q_OBJECT
public:
    explicit HeadChecklistModel(QObject* parent = nullptr);
    /// n heads; `checked` are ticked (others not).
    void setHeads(int n, const std::vector<int>& checked);
    std::vector<int> checkedHeads() const;
    void setChecked(const std::vector<int>& heads);
    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
Q_SIGNALS:
    void checkedChanged();

private:
    std::vector<bool> m_checked;
};

}  // namespace attnscope::gui
