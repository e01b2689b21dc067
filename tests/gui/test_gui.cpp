// gui/: item models under QAbstractItemModelTester (Fatal), the main window on good, bad and
// newer-version files (errors are signalled, never modal, never a crash), screenshots of every
// view, lazy level-of-detail tiles on a 4096 x 4096 map, live refresh of a file a writer is
// still filling, and the capture child process (progress, cancel, result).
#include "tests/catch.h"
#include "tests/gui/fixture.h"
#include "tests/remove_tree.h"

#include <QAbstractItemModelTester>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QMimeData>
#include <QUrl>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QSignalSpy>
#include <QStandardPaths>

#include <hdf5.h>

#include <chrono>
#include <cmath>
#include <fstream>

#include "core/store/half.h"
#include "core/store/reader.h"
#include "core/store/writer.h"
#include "gui/document.h"
#include "gui/main_window.h"
#include "gui/models/capture_tree_model.h"
#include "gui/models/head_grid_model.h"
#include "gui/models/token_list_model.h"
#include "gui/run_prompt.h"
#include "gui/screenshot.h"
#include "gui/tile_source.h"
#include "gui/views.h"
#include "plots/capture_data.h"

using namespace attnscope;
using namespace attnscope::gui;
using attnscope::test::colorDistance;
using attnscope::test::TempDir;

namespace {

using Tester = QAbstractItemModelTester;

void setRootVersion(const std::filesystem::path& path, const char* value) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    if (H5Aexists(f, "schema_version") > 0) H5Adelete(f, "schema_version");
    const hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const hid_t s = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, "schema_version", t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &value);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    REQUIRE(H5Fclose(f) >= 0);
}

bool waitFor(const std::function<bool()>& done, int ms) {
    QElapsedTimer t;
    t.start();
    while (!done() && t.elapsed() < ms) {
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
        QThread::msleep(5);
    }
    return done();
}

}  // namespace

TEST_CASE("item models pass QAbstractItemModelTester", "[unit][gui]") {
    test::qtApp();
    QStandardPaths::setTestModeEnabled(true);

    SECTION("CaptureTreeModel: reset, appended prompts, appended runs") {
        CaptureTreeModel m;
        Tester tester(&m, Tester::FailureReportingMode::Fatal);
        RunEntry a{
            QStringLiteral("main"), false, QStringLiteral("{}"), {{0, 5, QStringLiteral("p0")}}};
        m.setSnapshot({a});
        CHECK(m.rowCount() == 1);
        CHECK(m.rowCount(m.index(0, 0)) == 1);
        QSignalSpy inserted(&m, &QAbstractItemModel::rowsInserted);
        QSignalSpy reset(&m, &QAbstractItemModel::modelReset);
        a.prompts.push_back({1, 7, QStringLiteral("p1")});
        a.complete = true;
        RunEntry b{
            QStringLiteral("alt"), true, QStringLiteral("{}"), {{0, 5, QStringLiteral("p0")}}};
        m.setSnapshot({a, b});
        CHECK(inserted.count() == 2);  // one prompt, one run: incremental
        CHECK(reset.count() == 0);
        CHECK(m.rowCount() == 2);
        CHECK(m.rowCount(m.index(0, 0)) == 2);
        const QModelIndex p = m.promptIndex(QStringLiteral("main"), 1);
        REQUIRE(p.isValid());
        CHECK(p.data(CaptureTreeModel::PromptIdRole).toLongLong() == 1);
        CHECK(p.data(CaptureTreeModel::RunNameRole).toString() == QStringLiteral("main"));
        CHECK(m.index(0, 1).data().toString().contains(QStringLiteral("2 prompts")));
        m.setSnapshot({b});  // not a prefix: reset
        CHECK(reset.count() == 1);
        CHECK(m.rowCount() == 1);
        m.setSnapshot({});
        CHECK(m.rowCount() == 0);
    }
    SECTION("HeadGridModel: shape, thumbnails, metric") {
        HeadGridModel m;
        Tester tester(&m, Tester::FailureReportingMode::Fatal);
        m.reset(3, 4);
        CHECK(m.rowCount() == 3);
        CHECK(m.columnCount() == 4);
        QSignalSpy changed(&m, &QAbstractItemModel::dataChanged);
        QImage img(8, 8, QImage::Format_RGB32);
        img.fill(Qt::red);
        m.setLayerThumbnails(1, std::vector<QImage>(4, img));
        CHECK(changed.count() == 1);
        CHECK(m.index(1, 2).data(Qt::DecorationRole).value<QImage>().pixel(0, 0) ==
              qRgb(255, 0, 0));
        CHECK_FALSE(m.index(0, 2).data(Qt::DecorationRole).isValid());
        std::vector<float> v(12, 0.5f);
        v[5] = std::nanf("");
        m.setMetric(QStringLiteral("entropy"), v);
        CHECK(m.index(0, 0).data(HeadGridModel::MetricRole).toDouble() == Approx(0.5));
        CHECK_FALSE(m.index(1, 1).data(HeadGridModel::MetricRole).isValid());
        m.setMetric(QStringLiteral("bad"), std::vector<float>(3, 1.f));  // wrong size: cleared
        CHECK(m.metric().empty());
        m.reset(0, 0);
        CHECK(m.rowCount() == 0);
    }
    SECTION("TokenListModel and HeadChecklistModel") {
        TokenListModel t;
        Tester t1(&t, Tester::FailureReportingMode::Fatal);
        t.setTokens({QStringLiteral("<s>"), QStringLiteral(" a\nb")});
        CHECK(t.rowCount() == 2);
        CHECK(t.index(1).data().toString() == QStringLiteral("1   a\\nb"));
        HeadChecklistModel h;
        Tester t2(&h, Tester::FailureReportingMode::Fatal);
        h.setHeads(4, {1});
        CHECK(h.checkedHeads() == std::vector<int>{1});
        QSignalSpy spy(&h, &HeadChecklistModel::checkedChanged);
        CHECK(h.setData(h.index(3), Qt::Checked, Qt::CheckStateRole));
        CHECK(h.checkedHeads() == std::vector<int>{1, 3});
        CHECK(spy.count() == 1);
        CHECK_FALSE(h.setData(h.index(3), Qt::Checked, Qt::DisplayRole));
        h.setChecked({0});
        CHECK(h.checkedHeads() == std::vector<int>{0});
        CHECK(h.index(0).data(Qt::CheckStateRole).toInt() == Qt::Checked);
    }
}

TEST_CASE("viewer window: opens captures, browses runs and prompts", "[unit][gui]") {
    test::qtApp();
    QStandardPaths::setTestModeEnabled(true);
    TempDir dir("gui");
    const auto file = dir.path() / "cap.h5";
    test::makeCapture(file, 6);
    MainWindow w;
    w.setInteractive(false);
    Tester t1(w.treeModel(), Tester::FailureReportingMode::Fatal);
    Tester t2(w.gridModel(), Tester::FailureReportingMode::Fatal);
    Tester t3(w.headsModel(), Tester::FailureReportingMode::Fatal);
    QSignalSpy errors(&w, &MainWindow::errorReported);
    REQUIRE(w.openFile(QString::fromStdString(file.string())));
    CHECK(errors.count() == 0);
    CHECK(w.treeModel()->rowCount() == 2);
    CHECK(w.currentRun() == QStringLiteral("main"));
    CHECK(w.currentPrompt() == 0);
    CHECK(w.gridModel()->rowCount() == 2);
    CHECK(w.gridModel()->metricName() == QStringLiteral("entropy (normalised)"));
    CHECK(w.recentFiles().value(0).endsWith(QStringLiteral("cap.h5")));
    w.waitForIdle();
    CHECK_FALSE(w.gridModel()->index(1, 1).data(Qt::DecorationRole).value<QImage>().isNull());
    REQUIRE(w.selectPrompt(QStringLiteral("alt"), 1));
    CHECK(w.currentRun() == QStringLiteral("alt"));
    CHECK(w.gridModel()->metric().empty() == false);  // found in run main of the same file
    w.selectHead(1, 1);
    REQUIRE(w.headView()->cells());
    CHECK(w.headView()->cells()->rows() == 6);
    // Hover readout: exact weight of (query 3, key 2) of the previous-token head.
    CHECK(w.headView()->readout(3, 2) == QStringLiteral("query 3 ' tok3' → key 2 ' tok2': 1"));
    CHECK(w.headView()->readout(3, 1).endsWith(QStringLiteral(": 0")));
    // Zoom keeps at least 4 cells and stays inside the map.
    w.headView()->zoomAt(100, 5, 5);
    CHECK(w.headView()->view().rows() == Approx(4));
    CHECK(w.headView()->view().r1 <= 6);
    // Selecting a missing prompt reports, does not throw.
    CHECK_FALSE(w.selectPrompt(QStringLiteral("main"), 42));
    CHECK(errors.count() == 1);

    // Drag and drop of a file onto the window opens it.
    const auto other = dir.path() / "other.h5";
    test::writeRun(other, "dropped", 1, 4, 0, false);
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(QString::fromStdString(other.string()))});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(&w, &enter);
    CHECK(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(&w, &drop);
    CHECK(w.document()->path().endsWith(QStringLiteral("other.h5")));
    CHECK(w.currentRun() == QStringLiteral("dropped"));
    CHECK(w.recentFiles().size() >= 2);
    CHECK(w.recentFiles().value(0).endsWith(QStringLiteral("other.h5")));
}

TEST_CASE("viewer on the archived sample: partial heads, incomplete runs", "[unit][gui]") {
    test::qtApp();
    QStandardPaths::setTestModeEnabled(true);
    MainWindow w;
    w.setInteractive(false);
    Tester t1(w.treeModel(), Tester::FailureReportingMode::Fatal);
    Tester t2(w.gridModel(), Tester::FailureReportingMode::Fatal);
    QSignalSpy errors(&w, &MainWindow::errorReported);
    REQUIRE(w.openFile(QStringLiteral(ATTNSCOPE_SOURCE_DIR "/samples/store/capture-v1.h5")));
    CHECK(w.currentRun() == QStringLiteral("main"));
    CHECK(w.treeModel()->rowCount() == 3);  // ablate, crashed, main
    const QModelIndex crashed = w.treeModel()->runIndex(QStringLiteral("crashed"));
    CHECK(
        crashed.sibling(crashed.row(), 1).data().toString().contains(QStringLiteral("incomplete")));
    CHECK(w.treeModel()->rowCount(crashed) == 1);  // only the complete prompt
    REQUIRE(w.selectPrompt(QStringLiteral("ablate"), 0));
    w.selectHead(0, 0);  // not stored in this run (heads 1, 3)
    CHECK(w.headView()->cells() == nullptr);
    w.selectHead(0, 3);
    REQUIRE(w.headView()->cells() != nullptr);
    w.setView(MainWindow::View::Diff);
    w.waitForIdle();
    CHECK(errors.count() == 0);
    const QImage img = w.renderView(QSize(400, 400));
    CHECK(img.size() == QSize(400, 400));
}

TEST_CASE("viewer: bad and newer-version files give a message, not a crash", "[unit][gui]") {
    test::qtApp();
    QStandardPaths::setTestModeEnabled(true);
    TempDir dir("gui-bad");
    MainWindow w;
    w.setInteractive(false);
    QSignalSpy errors(&w, &MainWindow::errorReported);

    const auto junk = dir.path() / "junk.h5";
    std::ofstream(junk) << "this is not HDF5";
    CHECK_FALSE(w.openFile(QString::fromStdString(junk.string())));
    REQUIRE(errors.count() == 1);
    CHECK(errors.at(0).at(0).toString().contains(QStringLiteral("Cannot open junk.h5")));

    CHECK_FALSE(w.openFile(QString::fromStdString((dir.path() / "missing.h5").string())));
    REQUIRE(errors.count() == 2);

    const auto newer = dir.path() / "newer.h5";
    test::writeRun(newer, "main", 1, 4, 0, false);
    setRootVersion(newer, "2.0");
    CHECK_FALSE(w.openFile(QString::fromStdString(newer.string())));
    REQUIRE(errors.count() == 3);
    const QString msg = errors.at(2).at(0).toString();
    INFO(msg.toStdString());
    CHECK(msg.contains(QStringLiteral("2.0")));
    CHECK(msg.contains(QStringLiteral("newer")));
    CHECK(msg.contains(QStringLiteral("not a capture this viewer can read")));

    // A minor bump is fine.
    setRootVersion(newer, "1.7");
    CHECK(w.openFile(QString::fromStdString(newer.string())));
    CHECK(errors.count() == 3);

    // Screenshot mode on a bad file fails cleanly.
    ViewOptions o;
    o.screenshot = QString::fromStdString((dir.path() / "s.png").string());
    MainWindow w2;
    w2.setInteractive(false);
    CHECK_FALSE(takeScreenshot(w2, QString::fromStdString(junk.string()), o));
    CHECK_FALSE(QFile::exists(*o.screenshot));
}

TEST_CASE("viewer screenshots of every view", "[unit][gui]") {
    test::qtApp();
    QStandardPaths::setTestModeEnabled(true);
    TempDir dir("gui-shot");
    const auto file = dir.path() / "cap.h5";
    test::makeCapture(file, 6);
    for (const char* view : {"grid", "head", "tokens", "layers", "diff"}) {
        INFO("view " << view);
        MainWindow w;
        w.setInteractive(false);
        ViewOptions o;
        o.view = QString::fromLatin1(view);
        o.layer = 0;
        o.head = 1;
        o.runB = QStringLiteral("alt");
        o.size = QSize(640, 600);
        o.screenshot = QString::fromStdString((dir.path() / (std::string(view) + ".png")).string());
        REQUIRE(takeScreenshot(w, QString::fromStdString(file.string()), o));
        const QImage img(*o.screenshot);
        REQUIRE(img.size() == QSize(640, 600));
        // Not blank: a figure has many colours.
        QSet<QRgb> colours;
        for (int y = 0; y < img.height(); y += 4)
            for (int x = 0; x < img.width(); x += 4) colours.insert(img.pixel(x, y));
        CHECK(colours.size() > 5);
        if (std::string(view) == "head") {
            // The diagonal head: diagonal cells in the top colour, same painter as `plot`.
            const store::Reader r(file);
            plots::HeatmapSpec spec = plots::headSpec(r, "main", 0, 0, 1);
            const auto lay = plots::heatmapLayout(QRectF(0, 0, 640, 600), spec, 6, 6);
            const plots::ColorScale sc(plots::Colormap::kViridis, 0.f, 1.f);
            for (int q = 0; q < 6; ++q) {
                const QPoint c(int(lay.plot.left() + (q + 0.5) / 6 * lay.plot.width()),
                               int(lay.plot.top() + (q + 0.5) / 6 * lay.plot.height()));
                CHECK(colorDistance(img.pixel(c), sc.rgb(1.f)) <= 3);
            }
        }
    }
}

TEST_CASE("lazy tiles: a 4096 x 4096 map opens without reading it, LOD reads", "[unit][gui]") {
    test::qtApp();
    TempDir dir("gui-lod");
    const auto file = dir.path() / "big.h5";
    const std::int64_t T = 4096;
    {
        // One head, f16: the diagonal at 1 and key 0 at 0.5, as binary16 bits (32 MiB input).
        store::RunInfo ri;
        store::Writer wr(file, test::tinyModel(), ri);
        store::Prompt p = test::tinyPrompt(0, T);
        wr.begin_prompt(p);
        std::vector<std::uint16_t> bits(std::size_t(T * T), 0);
        const std::uint16_t one = store::float_to_half(1.f), half = store::float_to_half(0.5f);
        for (std::int64_t q = 0; q < T; ++q) {
            bits[std::size_t(q * T)] = half;
            bits[std::size_t(q * T + q)] = one;
        }
        store::HookOptions ho;
        ho.heads = {0};
        wr.write_hook("blocks.0.attn.hook_pattern",
                      store::FloatRef::f16_bits(bits.data(), {1, T, T}), ho);
        wr.end_prompt();
        wr.close();
    }
    auto reader = std::make_shared<const store::Reader>(file);
    QElapsedTimer timer;
    timer.start();
    TiledMapSource src(reader, "main", 0, "blocks.0.attn.hook_pattern", 0, T);
    const plots::ColorScale sc(plots::Colormap::kGray, 0.f, 1.f);
    QImage img(512, 512, QImage::Format_RGB32);
    bool complete = true;
    {
        QPainter p(&img);
        complete = src.paintCells(p, QRectF(0, 0, 512, 512), {0, double(T), 0, double(T)}, sc);
    }
    const auto firstPaintMs = timer.elapsed();
    CHECK_FALSE(complete);       // nothing was there yet ...
    CHECK(firstPaintMs < 1000);  // ... and the GUI thread did not wait for it
    CHECK(src.levelFor(double(T) / 512) == 3);
    src.waitForIdle();
    CHECK(src.lastError().isEmpty());
    CHECK(src.cellsRead() <= T * T);  // the overview reads each cell at most once
    CHECK(src.tilesCached() == 4);    // 2 x 2 tiles of 256 pooled cells
    {
        QPainter p(&img);
        img.fill(Qt::black);
        complete = src.paintCells(p, QRectF(0, 0, 512, 512), {0, double(T), 0, double(T)}, sc);
    }
    CHECK(complete);
    // Max pooling: the diagonal is white at every zoom, off-diagonal black, column 0 grey.
    CHECK(colorDistance(img.pixel(300, 300), qRgb(255, 255, 255)) <= 2);
    CHECK(colorDistance(img.pixel(300, 100), qRgb(0, 0, 0)) <= 2);
    CHECK(colorDistance(img.pixel(0, 400), sc.rgb(0.5f)) <= 2);

    // Zoom to 100 x 100 cells: full resolution, reading only the 2 x 2 level-0 tiles it touches.
    const std::int64_t before = src.cellsRead();
    const plots::CellRange zoom{1000, 1100, 1000, 1100};
    {
        QPainter p(&img);
        complete = src.paintCells(p, QRectF(0, 0, 512, 512), zoom, sc);
    }
    CHECK_FALSE(complete);
    src.waitForIdle();
    const std::int64_t zoomRead = src.cellsRead() - before;
    CHECK(zoomRead > 0);
    CHECK(zoomRead <= 4 * 256 * 256);
    CHECK(src.value(1050, 1050) == 1.f);
    CHECK(src.value(1050, 1049) == 0.f);
    CHECK(src.readValue(2000, 0) == 0.5f);
    {
        QPainter p(&img);
        complete = src.paintCells(p, QRectF(0, 0, 512, 512), zoom, sc);
    }
    CHECK(complete);
    const int cell = int(512.0 / 100 * 50.5);  // cell (1050, 1050) centre
    CHECK(colorDistance(img.pixel(cell, cell), qRgb(255, 255, 255)) <= 2);
    CHECK(colorDistance(img.pixel(cell + 10, cell), qRgb(0, 0, 0)) <= 2);

    // The widget: a thumbnail of the grid also never reads the map whole at once.
    std::int64_t side = 0;
    const auto pooled = plots::pooledHead(*reader, "main", 0, 0, 0, 96, &side);
    CHECK(side == 96);  // blocks of ceil(4096 / 96) = 43 cells -> ceil(4096 / 43) = 96
    CHECK(pooled[std::size_t(50 * side + 50)] == 1.f);
}

TEST_CASE("live refresh: a capture still being written shows new prompts", "[unit][gui]") {
    test::qtApp();
    QStandardPaths::setTestModeEnabled(true);
    TempDir dir("gui-live");
    const auto file = dir.path() / "live.h5";
    store::RunInfo ri;
    store::Writer wr(file, test::tinyModel(), ri);
    auto addPrompt = [&](int id) {
        wr.begin_prompt(test::tinyPrompt(id, 5));
        for (int l = 0; l < 2; ++l) {
            std::vector<float> a;
            for (int h = 0; h < 2; ++h) {
                const auto m = test::knownMap(l, h, 5);
                a.insert(a.end(), m.begin(), m.end());
            }
            wr.write_hook("blocks." + std::to_string(l) + ".attn.hook_pattern",
                          store::FloatRef::f32(a.data(), {2, 5, 5}));
        }
        wr.end_prompt();
    };
    addPrompt(0);
    MainWindow w;
    w.setInteractive(false);
    w.document()->setPollInterval(0);  // the test drives the polling
    Tester t1(w.treeModel(), Tester::FailureReportingMode::Fatal);
    REQUIRE(w.openFile(QString::fromStdString(file.string())));
    const QModelIndex run = w.treeModel()->index(0, 0);
    CHECK(w.treeModel()->rowCount(run) == 1);
    CHECK(run.data(Qt::DisplayRole).toString() == QStringLiteral("main"));
    CHECK(w.treeModel()->index(0, 1).data().toString().contains(QStringLiteral("incomplete")));
    QSignalSpy refreshed(w.document(), &CaptureDocument::refreshed);
    addPrompt(1);
    addPrompt(2);
    CHECK(w.document()->checkForChanges());
    CHECK(refreshed.count() == 1);
    CHECK(w.treeModel()->rowCount(w.treeModel()->index(0, 0)) == 3);
    CHECK(w.currentPrompt() == 0);  // the selection stays
    wr.close();
    CHECK(w.document()->checkForChanges());
    CHECK_FALSE(
        w.treeModel()->index(0, 1).data().toString().contains(QStringLiteral("incomplete")));
    CHECK_FALSE(w.document()->checkForChanges());  // nothing new
}

TEST_CASE("Run prompt: the capture child process", "[unit][gui]") {
    test::qtApp();
    TempDir dir("gui-run");
    SECTION("a missing program is reported") {
        CaptureJob job;
        QSignalSpy failed(&job, &CaptureJob::failed);
        job.start(QString(), {QStringLiteral("hello")},
                  QString::fromStdString((dir.path() / "o.h5").string()), QStringLiteral("main"),
                  QString(), {});
        REQUIRE(failed.count() == 1);
        CHECK(failed.at(0).at(0).toString().contains(QStringLiteral("Cannot find")));
    }
    SECTION("cancel stops a running capture") {
        const auto script = dir.path() / "slow.sh";
        std::ofstream(script) << "#!/bin/sh\nsleep 30\n";
        std::filesystem::permissions(script, std::filesystem::perms::owner_all);
        CaptureJob job;
        QSignalSpy failed(&job, &CaptureJob::failed);
        QSignalSpy done(&job, &CaptureJob::captured);
        job.start(QString::fromStdString(script.string()),
                  {QStringLiteral("a"), QStringLiteral(""), QStringLiteral("b")},
                  QString::fromStdString((dir.path() / "o.h5").string()), QStringLiteral("r1"),
                  QString(), {});
        CHECK(job.arguments().count(QStringLiteral("--prompt")) == 2);
        REQUIRE(waitFor([&] { return job.isRunning(); }, 5000));
        QElapsedTimer t;
        t.start();
        job.cancel();
        REQUIRE(waitFor([&] { return failed.count() > 0; }, 5000));
        CHECK(t.elapsed() < 5000);
        CHECK(failed.at(0).at(0).toString() == QStringLiteral("Capture cancelled."));
        CHECK(done.count() == 0);
    }
    SECTION("a failing capture reports its stderr") {
        const auto script = dir.path() / "fail.sh";
        std::ofstream(script)
            << "#!/bin/sh\necho 'attnscope capture: error: no such model' >&2\nexit 1\n";
        std::filesystem::permissions(script, std::filesystem::perms::owner_all);
        CaptureJob job;
        QSignalSpy failed(&job, &CaptureJob::failed);
        job.start(QString::fromStdString(script.string()), {QStringLiteral("a")},
                  QString::fromStdString((dir.path() / "o.h5").string()), QStringLiteral("main"),
                  QString(), {});
        REQUIRE(waitFor([&] { return failed.count() > 0; }, 10000));
        CHECK(failed.at(0).at(0).toString().contains(QStringLiteral("no such model")));
    }
#ifdef ATTNSCOPE_BIN
    SECTION("a real capture with the sample model, then opened") {
        if (!QFileInfo(QStringLiteral(ATTNSCOPE_BIN)).isExecutable()) {
            WARN("skipped: " ATTNSCOPE_BIN " is not built in this build tree");
            return;
        }
        CaptureJob job;
        QSignalSpy failed(&job, &CaptureJob::failed);
        QSignalSpy done(&job, &CaptureJob::captured);
        QSignalSpy progress(&job, &CaptureJob::progress);
        const QString out = QString::fromStdString((dir.path() / "real.h5").string());
        job.start(QStringLiteral(ATTNSCOPE_BIN),
                  {QStringLiteral("In the beginning God created the heaven and the earth.")}, out,
                  QStringLiteral("viewer"), QString(),
                  {QStringLiteral("--layers"), QStringLiteral("0-1")});
        REQUIRE(waitFor([&] { return done.count() + failed.count() > 0; }, 120000));
        INFO((failed.count() ? failed.at(0).at(0).toString().toStdString() : std::string()));
        REQUIRE(done.count() == 1);
        CHECK(done.at(0).at(1).toString() == QStringLiteral("viewer"));
        CHECK(progress.count() >= 1);
        CHECK(progress.last().at(0).toInt() == 1);
        MainWindow w;
        w.setInteractive(false);
        REQUIRE(w.openFile(out));
        CHECK(w.currentRun() == QStringLiteral("viewer"));
        CHECK(w.headView()->cells() != nullptr);
    }
#endif
}

// Not run by default ("[.]"): numbers for docs/viewer.md. Writes an 8192 x 8192 float16 map
// (~68 MiB on disk, causal) and times the head view's first paint, the overview and a zoom.
TEST_CASE("bench: lazy tiles on an 8192 x 8192 map", "[.][bench]") {
    test::qtApp();
    TempDir dir("gui-bench");
    const auto file = dir.path() / "big8k.h5";
    const std::int64_t T = 8192;
    {
        store::RunInfo ri;
        store::Writer wr(file, test::tinyModel(), ri);
        wr.begin_prompt(test::tinyPrompt(0, T));
        std::vector<std::uint16_t> bits(std::size_t(T * T), 0);
        for (std::int64_t q = 0; q < T; ++q)
            for (std::int64_t k = 0; k <= q; ++k)
                bits[std::size_t(q * T + k)] = store::float_to_half(k == 0   ? 0.5f
                                                                    : k == q ? 0.3f
                                                                             : 0.2f / float(q));
        store::HookOptions ho;
        ho.heads = {0};
        wr.write_hook("blocks.0.attn.hook_pattern",
                      store::FloatRef::f16_bits(bits.data(), {1, T, T}), ho);
        wr.end_prompt();
        wr.close();
    }
    auto reader = std::make_shared<const store::Reader>(file);
    const plots::ColorScale sc(plots::Colormap::kViridis, 0.f, 1.f);
    QImage img(900, 900, QImage::Format_RGB32);
    QElapsedTimer t;
    t.start();
    TiledMapSource src(reader, "main", 0, "blocks.0.attn.hook_pattern", 0, T);
    {
        QPainter p(&img);
        src.paintCells(p, QRectF(0, 0, 900, 900), {0, double(T), 0, double(T)}, sc);
    }
    const double firstPaint = double(t.nsecsElapsed()) / 1e6;
    src.waitForIdle();
    const double overview = double(t.nsecsElapsed()) / 1e6;
    const std::int64_t overviewCells = src.cellsRead();
    t.restart();
    {
        QPainter p(&img);
        src.paintCells(p, QRectF(0, 0, 900, 900), {5000, 5200, 3000, 3200}, sc);
    }
    src.waitForIdle();
    const double zoom = double(t.nsecsElapsed()) / 1e6;
    WARN("8192 x 8192 f16 map, 900 px view: first paint "
         << firstPaint << " ms (no I/O), overview (level " << src.levelFor(double(T) / 900)
         << ") ready after " << overview << " ms reading " << overviewCells
         << " cells; zoom to 200 x 200 cells: " << zoom << " ms reading "
         << (src.cellsRead() - overviewCells) << " cells");
}

// Not run by default: the whole window (browser dock, toolbar, tabs) as a PNG, for the README:
//   ATTNSCOPE_WINDOW_SHOT=out.png ATTNSCOPE_WINDOW_FILE=cap.h5 [ATTNSCOPE_WINDOW_METRICS=m.h5]
//   attnscope_tests_gui "[window]"
TEST_CASE("window screenshot", "[.][window]") {
    test::qtApp();
    QStandardPaths::setTestModeEnabled(true);
    const QString out = qEnvironmentVariable("ATTNSCOPE_WINDOW_SHOT");
    const QString file = qEnvironmentVariable("ATTNSCOPE_WINDOW_FILE");
    REQUIRE_FALSE(out.isEmpty());
    REQUIRE_FALSE(file.isEmpty());
    MainWindow w;
    w.setInteractive(false);
    w.resize(1400, 900);
    w.show();
    REQUIRE(w.openFile(file));
    const QString metrics = qEnvironmentVariable("ATTNSCOPE_WINDOW_METRICS");
    if (!metrics.isEmpty()) REQUIRE(w.openMetricsFile(metrics));
    REQUIRE(w.selectPrompt(QStringLiteral("main"), 3));
    w.selectHead(2, 3);
    w.setView(MainWindow::View::Head);
    w.headView()->setHighlight(8, 0);
    for (int i = 0; i < 3; ++i) {
        QCoreApplication::processEvents();
        w.headView()->repaint();
        w.waitForIdle();
    }
    QCoreApplication::processEvents();
    CHECK(w.grab().save(out));
}
