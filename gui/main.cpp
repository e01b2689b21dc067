// attnscope-viewer: the Qt 6 desktop viewer of capture files. Command line:
//   attnscope-viewer [FILE.h5] [--metrics M.h5] [--run R] [--prompt N] [--layer L] [--head H]
//                    [--view grid|head|tokens|layers|diff] [--screenshot OUT.png [--size WxH]]
// With --screenshot the chosen view is rendered offscreen to OUT.png and the program exits
// (exit 1 with the error on stderr when the file cannot be shown).
#include <QApplication>
#include <QCommandLineParser>
#include <QImage>

#include <cstdio>

#include "gui/main_window.h"
#include "gui/screenshot.h"
#include "plots/render.h"

int main(int argc, char** argv) {
    using attnscope::gui::MainWindow;
    const bool headless = [&] {
        for (int i = 1; i < argc; ++i)
            if (QByteArray(argv[i]) == "--screenshot") return true;
        return false;
    }();
    // Screenshots need no display: use the offscreen platform unless one was chosen.
    if (headless && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    attnscope::plots::quietQtWarnings();
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("attnscope"));
    QApplication::setApplicationName(QStringLiteral("viewer"));
    QApplication::setApplicationVersion(QStringLiteral(ATTNSCOPE_VERSION));

    QCommandLineParser cli;
    cli.setApplicationDescription(
        QStringLiteral("Desktop viewer of attnscope capture files (HDF5)."));
    cli.addHelpOption();
    cli.addVersionOption();
    cli.addPositionalArgument(QStringLiteral("file"), QStringLiteral("capture file to open"));
    attnscope::gui::ViewOptions::addTo(cli);
    cli.process(app);

    attnscope::gui::ViewOptions opts;
    QString error;
    if (!opts.parse(cli, &error)) {
        std::fprintf(stderr, "attnscope-viewer: %s\n", error.toLocal8Bit().constData());
        return 2;
    }
    MainWindow win;
    win.setInteractive(!opts.screenshot.has_value());
    const QStringList files = cli.positionalArguments();
    if (opts.screenshot) {
        if (files.isEmpty()) {
            std::fprintf(stderr, "attnscope-viewer: --screenshot needs a FILE\n");
            return 2;
        }
        return attnscope::gui::takeScreenshot(win, files.first(), opts) ? 0 : 1;
    }
    win.resize(1280, 860);
    win.show();
    if (!files.isEmpty()) {
        if (win.openFile(files.first())) attnscope::gui::applyViewOptions(win, opts);
    }
    return QApplication::exec();
}
