// PNG / SVG output and the headless QGuiApplication.
#include "plots/render.h"

#include <QFile>
#include <QGuiApplication>
#include <QSvgGenerator>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>

#include "core/base/error.h"

namespace attnscope::plots {

QImage renderImage(QSize size, const PaintFn& paint) {
    QImage img(size, QImage::Format_ARGB32_Premultiplied);
    img.fill(Qt::white);
    QPainter p(&img);
    paint(p, QRectF(0, 0, size.width(), size.height()));
    p.end();
    return img;
}

void saveFigure(const std::filesystem::path& out, QSize size, const PaintFn& paint) {
    std::string ext = out.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    const QString path = QString::fromStdString(out.string());
    if (ext == ".png") {
        const QImage img = renderImage(size, paint);
        if (!img.save(path, "PNG"))
            throw IoError(out.string() +
                          ": cannot write the PNG (check the folder exists and is writable)");
        return;
    }
    if (ext == ".svg") {
        {
            QFile probe(path);
            if (!probe.open(QIODevice::WriteOnly))
                throw IoError(out.string() +
                              ": cannot write the SVG: " + probe.errorString().toStdString());
        }
        QSvgGenerator gen;
        gen.setFileName(path);
        gen.setSize(size);
        gen.setViewBox(QRect(QPoint(0, 0), size));
        gen.setTitle(QStringLiteral("attnscope plot"));
        QPainter p(&gen);
        p.fillRect(QRectF(0, 0, size.width(), size.height()), Qt::white);
        paint(p, QRectF(0, 0, size.width(), size.height()));
        p.end();
        return;
    }
    throw ConfigError(out.string() + ": unknown figure format '" + ext + "'; use .png or .svg");
}

namespace {

// Headless runs in containers have no XDG_RUNTIME_DIR; Qt warns about it on every start, which
// is noise on a CLI's stderr. Everything else goes through unchanged.
QtMessageHandler previousHandler = nullptr;
void quietHandler(QtMsgType type, const QMessageLogContext& ctx, const QString& msg) {
    if (type == QtWarningMsg && msg.startsWith(QLatin1String("QStandardPaths: XDG_RUNTIME_DIR")))
        return;
    if (previousHandler)
        previousHandler(type, ctx, msg);
    else
        std::fprintf(stderr, "%s\n", msg.toLocal8Bit().constData());
}

}  // namespace

void quietQtWarnings() {
    static bool installed = false;
    if (installed) return;
    installed = true;
    previousHandler = qInstallMessageHandler(quietHandler);
}

void ensureGuiApplication() {
    if (QGuiApplication::instance()) return;
    quietQtWarnings();
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", QByteArrayLiteral("offscreen"));
    static int argc = 1;
    static char name[] = "attnscope";
    static char* argv[] = {name, nullptr};
    // Deliberately never destroyed: a QGuiApplication torn down during static destruction (after
    // Qt's own statics) can crash at exit; the process ends right after the plot anyway.
    static QGuiApplication* app = new QGuiApplication(argc, argv);
    Q_UNUSED(app);
}

}  // namespace attnscope::plots
