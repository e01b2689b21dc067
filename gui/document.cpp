#include "gui/document.h"

#include <QFileInfo>

#include "core/base/error.h"

namespace attnscope::gui {

QString describeOpenError(const QString& path, const std::exception& e) {
    QString heading = QStringLiteral("Cannot open %1").arg(QFileInfo(path).fileName());
    if (dynamic_cast<const SchemaError*>(&e))
        heading += QStringLiteral(": not a capture this viewer can read");
    else if (dynamic_cast<const IoError*>(&e))
        heading += QStringLiteral(": the file is missing, unreadable or damaged");
    return heading + QStringLiteral("\n\n") + QString::fromUtf8(e.what());
}

CaptureDocument::CaptureDocument(QObject* parent) : QObject(parent) {
    m_poll.setInterval(1000);
    connect(&m_poll, &QTimer::timeout, this, [this] { checkForChanges(); });
}

bool CaptureDocument::open(const QString& path) {
    try {
        auto reader = std::make_shared<const store::Reader>(path.toStdString());
        // Touch what the views will need first, so that a malformed file fails here, not later.
        (void)reader->runs();
        (void)reader->prompts();
        m_reader = std::move(reader);
        m_metrics.reset();
        m_path = path;
        const QFileInfo fi(path);
        m_size = fi.size();
        m_mtime = fi.lastModified();
        if (m_poll.interval() > 0) m_poll.start();
        Q_EMIT opened(path);
        return true;
    } catch (const std::exception& e) {
        Q_EMIT failed(describeOpenError(path, e));
        return false;
    }
}

bool CaptureDocument::openMetrics(const QString& path) {
    try {
        auto reader = std::make_shared<const store::Reader>(path.toStdString());
        if (m_reader && (reader->model().n_layers != m_reader->model().n_layers ||
                         reader->model().n_heads != m_reader->model().n_heads))
            throw SchemaError(path.toStdString() + ": its model (" +
                              std::to_string(reader->model().n_layers) + " layers x " +
                              std::to_string(reader->model().n_heads) +
                              " heads) differs from the open capture's");
        m_metrics = std::move(reader);
        Q_EMIT metricsOpened(path);
        return true;
    } catch (const std::exception& e) {
        Q_EMIT failed(describeOpenError(path, e));
        return false;
    }
}

void CaptureDocument::close() {
    m_poll.stop();
    m_reader.reset();
    m_metrics.reset();
    m_path.clear();
}

void CaptureDocument::setPollInterval(int ms) {
    m_poll.setInterval(std::max(0, ms));
    if (ms <= 0)
        m_poll.stop();
    else if (m_reader)
        m_poll.start();
}

bool CaptureDocument::checkForChanges() {
    if (!m_reader) return false;
    const QFileInfo fi(m_path);
    if (!fi.exists() || (fi.size() == m_size && fi.lastModified() == m_mtime)) return false;
    m_size = fi.size();
    m_mtime = fi.lastModified();
    try {
        // A new Reader rather than refresh(): loads in flight keep using the old one.
        m_reader = std::make_shared<const store::Reader>(m_path.toStdString());
        Q_EMIT refreshed();
        return true;
    } catch (const std::exception&) {
        // A writer in the middle of a flush: try again on the next tick.
        m_size = -1;
        return false;
    }
}

std::vector<RunEntry> CaptureDocument::snapshot() const {
    std::vector<RunEntry> out;
    if (!m_reader) return out;
    for (const store::RunSummary& r : m_reader->runs()) {
        RunEntry e;
        e.name = QString::fromStdString(r.info.name);
        e.complete = r.complete;
        e.intervention = QString::fromStdString(r.info.intervention_json);
        try {
            for (const std::int64_t id : m_reader->run_prompts(r.info.name)) {
                const store::PromptSummary p = m_reader->prompt(id);
                e.prompts.push_back({id, p.n_tokens, QString::fromStdString(p.text)});
            }
        } catch (const Error&) {
            // A malformed prompt: list the run without it rather than failing the whole file.
        }
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace attnscope::gui
