#include "gui/screenshot.h"

#include <QImage>

#include <cstdio>

#include "core/base/error.h"
#include "gui/main_window.h"
#include "plots/colormap.h"

namespace attnscope::gui {

void ViewOptions::addTo(QCommandLineParser& p) {
    p.addOptions({
        {QStringLiteral("metrics"),
         QStringLiteral("metrics file written by `attnscope analyze --out`"),
         QStringLiteral("file")},
        {QStringLiteral("run"), QStringLiteral("run to show (default: the first with maps)"),
         QStringLiteral("name")},
        {QStringLiteral("run-b"), QStringLiteral("second run for the diff view"),
         QStringLiteral("name")},
        {QStringLiteral("prompt"), QStringLiteral("prompt id (default: the run's first)"),
         QStringLiteral("id")},
        {QStringLiteral("layer"), QStringLiteral("layer of the head view"), QStringLiteral("L"),
         QStringLiteral("0")},
        {QStringLiteral("head"), QStringLiteral("head of the head view"), QStringLiteral("H"),
         QStringLiteral("0")},
        {QStringLiteral("heads"), QStringLiteral("token view: heads of --layer, e.g. 0,3,5"),
         QStringLiteral("list")},
        {QStringLiteral("token"), QStringLiteral("token view: picked token"),
         QStringLiteral("pos")},
        {QStringLiteral("to-query"),
         QStringLiteral("token view: lines from --token as a key to its queries")},
        {QStringLiteral("view"), QStringLiteral("grid | head | tokens | layers | diff"),
         QStringLiteral("view"), QStringLiteral("grid")},
        {QStringLiteral("metric"),
         QStringLiteral("per-head metric for grid colours and layer curves"),
         QStringLiteral("name")},
        {QStringLiteral("sort"), QStringLiteral("grid: order heads by the metric")},
        {QStringLiteral("colormap"), QStringLiteral("viridis | magma | gray | rdbu"),
         QStringLiteral("name"), QStringLiteral("viridis")},
        {QStringLiteral("log"), QStringLiteral("logarithmic colour scale")},
        {QStringLiteral("screenshot"),
         QStringLiteral("render the view offscreen to this PNG and exit"),
         QStringLiteral("out.png")},
        {QStringLiteral("size"), QStringLiteral("screenshot size WIDTHxHEIGHT"),
         QStringLiteral("WxH"), QStringLiteral("1000x900")},
    });
}

bool ViewOptions::parse(const QCommandLineParser& p, QString* error) {
    auto toInt = [&](const QString& name, auto& out) {
        if (!p.isSet(name)) return true;
        bool ok = false;
        const qlonglong v = p.value(name).toLongLong(&ok);
        if (!ok || v < 0) {
            *error = QStringLiteral("--%1 '%2': expected a number >= 0").arg(name, p.value(name));
            return false;
        }
        out = static_cast<std::decay_t<decltype(out)>>(v);
        return true;
    };
    metricsFile = p.value(QStringLiteral("metrics"));
    run = p.value(QStringLiteral("run"));
    runB = p.value(QStringLiteral("run-b"));
    if (!toInt(QStringLiteral("prompt"), prompt) || !toInt(QStringLiteral("layer"), layer) ||
        !toInt(QStringLiteral("head"), head) || !toInt(QStringLiteral("token"), token))
        return false;
    heads.clear();
    if (p.isSet(QStringLiteral("heads")))
        for (const QString& s :
             p.value(QStringLiteral("heads")).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
            bool ok = false;
            const int h = s.trimmed().toInt(&ok);
            if (!ok || h < 0) {
                *error = QStringLiteral("--heads '%1': expected a comma list of head numbers")
                             .arg(p.value(QStringLiteral("heads")));
                return false;
            }
            heads.push_back(h);
        }
    toQuery = p.isSet(QStringLiteral("to-query"));
    view = p.value(QStringLiteral("view"));
    if (!QStringList{QStringLiteral("grid"), QStringLiteral("head"), QStringLiteral("tokens"),
                     QStringLiteral("layers"), QStringLiteral("diff")}
             .contains(view)) {
        *error = QStringLiteral("--view '%1': use grid, head, tokens, layers or diff").arg(view);
        return false;
    }
    metric = p.value(QStringLiteral("metric"));
    sort = p.isSet(QStringLiteral("sort"));
    colormap = p.value(QStringLiteral("colormap"));
    try {
        plots::parseColormap(colormap);
    } catch (const Error& e) {
        *error = QString::fromUtf8(e.what());
        return false;
    }
    log = p.isSet(QStringLiteral("log"));
    if (p.isSet(QStringLiteral("screenshot"))) screenshot = p.value(QStringLiteral("screenshot"));
    const QStringList wh = p.value(QStringLiteral("size")).split(QLatin1Char('x'));
    bool okW = false, okH = false;
    if (wh.size() == 2) size = QSize(wh[0].toInt(&okW), wh[1].toInt(&okH));
    if (!okW || !okH || size.width() < 100 || size.height() < 100 || size.width() > 16000 ||
        size.height() > 16000) {
        *error = QStringLiteral("--size '%1': expected WIDTHxHEIGHT within 100..16000")
                     .arg(p.value(QStringLiteral("size")));
        return false;
    }
    return true;
}

bool applyViewOptions(MainWindow& w, const ViewOptions& o) {
    if (!o.metricsFile.isEmpty() && !w.openMetricsFile(o.metricsFile)) return false;
    if (!o.run.isEmpty() || o.prompt >= 0)
        if (!w.selectPrompt(o.run, o.prompt)) return false;
    if (w.currentPrompt() < 0) {
        Q_EMIT w.errorReported(QStringLiteral("the file has no complete prompt to show yet"));
        return false;
    }
    w.setColormap(plots::parseColormap(o.colormap), o.log);
    if (!o.metric.isEmpty()) w.setMetric(o.metric);
    w.setSortByMetric(o.sort);
    w.selectHead(o.layer, o.head);
    if (!o.heads.empty()) w.setTokenHeads(o.heads);
    if (o.token >= 0) w.pickToken(o.token, !o.toQuery);
    if (!o.runB.isEmpty()) w.setDiffRun(o.runB);
    static const QStringList views = {QStringLiteral("grid"), QStringLiteral("head"),
                                      QStringLiteral("tokens"), QStringLiteral("layers"),
                                      QStringLiteral("diff")};
    w.setView(MainWindow::View(views.indexOf(o.view)));
    return true;
}

bool takeScreenshot(MainWindow& w, const QString& file, const ViewOptions& o) {
    bool failed = false;
    QObject::connect(&w, &MainWindow::errorReported, &w,
                     [&failed](const QString&) { failed = true; });
    if (!w.openFile(file) || !applyViewOptions(w, o) || failed) return false;
    const QImage img = w.renderView(o.size);
    if (failed) return false;
    if (!img.save(*o.screenshot, "PNG")) {
        std::fprintf(stderr, "attnscope-viewer: cannot write %s\n",
                     o.screenshot->toLocal8Bit().constData());
        return false;
    }
    return true;
}

}  // namespace attnscope::gui
