// An open capture file in the viewer: the store::Reader (shared with background loads), an
// optional companion metrics file (`attnscope analyze --out`), and live refresh for files a
// capture is still writing (the file is polled; on change a fresh Reader replaces the old one,
// which stays valid for loads still using it). Errors never throw out of here: they become
// failed(QString) with the store's message (what is wrong, the versions involved, what to do).
#pragma once

#include <QDateTime>
#include <QObject>
#include <QString>
#include <QTimer>

#include <memory>

#include "core/store/reader.h"
#include "gui/models/capture_tree_model.h"

namespace attnscope::gui {

class CaptureDocument : public QObject {
    Q_OBJECT
public:
    explicit CaptureDocument(QObject* parent = nullptr);

    /// Opens `path`; on failure emits failed() and keeps the previous file. Returns success.
    bool open(const QString& path);
    /// Attaches an analysis file holding metrics for the same prompts; failed() on error.
    bool openMetrics(const QString& path);
    void close();
    bool isOpen() const { return m_reader != nullptr; }
    QString path() const { return m_path; }
    std::shared_ptr<const store::Reader> reader() const { return m_reader; }
    std::shared_ptr<const store::Reader> metricsReader() const { return m_metrics; }

    /// Snapshot of runs and prompts for the browser (complete prompts only).
    std::vector<RunEntry> snapshot() const;
    /// Polling interval for live refresh in ms (0 = off). Default 1000.
    void setPollInterval(int ms);
    /// Re-reads the file when it changed on disk since the last look; returns true if it did.
    bool checkForChanges();

Q_SIGNALS:
    void opened(const QString& path);
    /// The file changed on disk and was re-read (new prompts may be there).
    void refreshed();
    void failed(const QString& message);
    /// A metrics file was attached.
    void metricsOpened(const QString& path);

private:
    QString m_path;
    std::shared_ptr<const store::Reader> m_reader;
    std::shared_ptr<const store::Reader> m_metrics;
    qint64 m_size = -1;
    QDateTime m_mtime;
    QTimer m_poll;
};

/// "why" of an exception from the store, for the error dialog: the message plus a heading.
QString describeOpenError(const QString& path, const std::exception& e);

}  // namespace attnscope::gui
