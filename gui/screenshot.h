// Command-line view selection shared by the interactive viewer and --screenshot: which run,
// prompt, head and view to show, and the offscreen render to a PNG that the tests and the
// README's screenshots use.
#pragma once

#include <QCommandLineParser>
#include <QSize>
#include <QString>

#include <cstdint>
#include <optional>
#include <vector>

namespace attnscope::gui {

class MainWindow;

struct ViewOptions {
    QString metricsFile;
    QString run;
    QString runB;
    std::int64_t prompt = -1;
    int layer = 0;
    int head = 0;
    std::vector<int> heads;  ///< token view heads
    int token = -1;
    bool toQuery = false;
    QString view = QStringLiteral("grid");
    QString metric;
    bool sort = false;
    QString colormap = QStringLiteral("viridis");
    bool log = false;
    std::optional<QString> screenshot;
    QSize size{1000, 900};

    static void addTo(QCommandLineParser& parser);
    /// Reads the options; false with `error` set for bad values.
    bool parse(const QCommandLineParser& parser, QString* error);
};

/// Applies run / prompt / head / view / colours to an open window. False (error signalled) when
/// a selector does not exist in the file.
bool applyViewOptions(MainWindow& window, const ViewOptions& options);
/// Opens `file`, applies `options`, renders the view at options.size and writes the PNG. Errors go
/// to stderr; returns success.
bool takeScreenshot(MainWindow& window, const QString& file, const ViewOptions& options);

}  // namespace attnscope::gui
