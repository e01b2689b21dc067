// plots/: colormaps, the heatmap painter (pixel checks: a known cell has the expected colour,
// max pooling keeps a single peak visible), grid and token-view geometry, and `attnscope plot`
// (runPlot) end to end on synthetic captures: every kind, PNG and SVG, sizes, and its errors.
#include "tests/catch.h"
#include "tests/gui/fixture.h"
#include "tests/remove_tree.h"

#include <QFile>
#include <QImage>

#include <cmath>

#include "core/base/error.h"
#include "core/store/reader.h"
#include "plots/capture_data.h"
#include "plots/colormap.h"
#include "plots/figures.h"
#include "plots/heatmap.h"
#include "plots/plot.h"
#include "plots/render.h"

using namespace attnscope;
using namespace attnscope::plots;
using attnscope::test::colorDistance;
using attnscope::test::TempDir;

namespace {

// Centre of cell (r, c) in a heatmap layout.
QPoint cellCentre(const HeatmapLayout& lay, double r, double c) {
    const CellRange& v = lay.view;
    return QPoint(int(lay.plot.left() + (c + 0.5 - v.c0) / v.cols() * lay.plot.width()),
                  int(lay.plot.top() + (r + 0.5 - v.r0) / v.rows() * lay.plot.height()));
}

}  // namespace

TEST_CASE("colormaps: endpoints, log scale, names", "[unit][plots]") {
    test::qtApp();
    const ColorScale vir(Colormap::kViridis, 0.f, 1.f);
    // matplotlib's viridis(0) and viridis(1); the polynomial fit is within a few levels.
    CHECK(colorDistance(vir.rgb(0.f), qRgb(68, 1, 84)) <= 5);
    CHECK(colorDistance(vir.rgb(1.f), qRgb(253, 231, 37)) <= 5);
    CHECK(vir.rgb(2.f) == vir.rgb(1.f));  // clamps
    CHECK(vir.rgb(std::nanf("")) == vir.nanColor());
    const ColorScale rdbu(Colormap::kRdBu, -1.f, 1.f);
    CHECK(colorDistance(rdbu.rgb(0.f), qRgb(247, 247, 247)) <= 2);  // white middle
    CHECK(qBlue(rdbu.rgb(-1.f)) > qRed(rdbu.rgb(-1.f)));
    CHECK(qRed(rdbu.rgb(1.f)) > qBlue(rdbu.rgb(1.f)));
    const ColorScale lg(Colormap::kGray, 0.f, 1.f, true);
    CHECK(lg.position(1e-4f) == Approx(0.f));
    CHECK(lg.position(1e-2f) == Approx(0.5f));
    CHECK(lg.position(1.f) == Approx(1.f));
    CHECK(lg.valueAt(0.5f) == Approx(1e-2f));
    CHECK(parseColormap("Magma") == Colormap::kMagma);
    CHECK_THROWS_AS(parseColormap("jet"), ConfigError);
}

TEST_CASE("heatmap: a known cell has the expected colour", "[unit][plots]") {
    test::qtApp();
    // 4 x 4, one cell at 1, one at 0.5, the rest 0.
    std::vector<float> v(16, 0.f);
    v[2 * 4 + 1] = 1.f;
    v[3 * 4 + 3] = 0.5f;
    DenseCells cells(v, 4, 4);
    HeatmapSpec spec;
    spec.title = QStringLiteral("t");
    spec.rowLabels = spec.colLabels = {QStringLiteral("a"), QStringLiteral("b"),
                                       QStringLiteral("c"), QStringLiteral("d")};
    spec.scale = ColorScale(Colormap::kViridis, 0.f, 1.f);
    HeatmapLayout lay;
    const QImage img = renderImage(QSize(500, 450), [&](QPainter& p, const QRectF& r) {
        lay = paintHeatmap(p, r, spec, cells);
    });
    REQUIRE(img.size() == QSize(500, 450));
    REQUIRE(lay.plot.width() > 100);
    CHECK(std::abs(lay.plot.width() - lay.plot.height()) < 1.0);  // square cells
    CHECK(colorDistance(img.pixel(cellCentre(lay, 2, 1)), spec.scale.rgb(1.f)) <= 2);
    CHECK(colorDistance(img.pixel(cellCentre(lay, 3, 3)), spec.scale.rgb(0.5f)) <= 2);
    CHECK(colorDistance(img.pixel(cellCentre(lay, 0, 0)), spec.scale.rgb(0.f)) <= 2);
    // The colour bar's top is the top colour.
    CHECK(
        colorDistance(img.pixel(QPoint(int(lay.colorbar.left() + 7), int(lay.colorbar.top() + 2))),
                      spec.scale.rgbAt(1.f)) <= 6);
    // Hit-testing agrees with the painting.
    const auto hit = heatmapCellAt(lay, 4, 4, QPointF(cellCentre(lay, 2, 1)));
    REQUIRE(hit);
    CHECK(hit->first == 2);
    CHECK(hit->second == 1);
    CHECK_FALSE(heatmapCellAt(lay, 4, 4, QPointF(1, 1)));

    SECTION("zoomed view: the cell fills its share of the plot") {
        spec.view = CellRange{2, 4, 0, 2};
        const QImage z = renderImage(QSize(500, 450), [&](QPainter& p, const QRectF& r) {
            lay = paintHeatmap(p, r, spec, cells);
        });
        CHECK(colorDistance(z.pixel(cellCentre(lay, 2, 1)), spec.scale.rgb(1.f)) <= 2);
        CHECK(colorDistance(z.pixel(cellCentre(lay, 3, 0)), spec.scale.rgb(0.f)) <= 2);
    }
    SECTION("a wrong value would be caught") {
        // The check is not vacuous: 0 and 1 are far apart in viridis.
        CHECK(colorDistance(spec.scale.rgb(0.f), spec.scale.rgb(1.f)) > 100);
    }
}

TEST_CASE("heatmap: max pooling keeps a single peak visible", "[unit][plots]") {
    test::qtApp();
    const std::int64_t n = 2000;
    std::vector<float> v(std::size_t(n * n), 0.f);
    v[std::size_t(1234 * n + 777)] = 1.f;
    DenseCells cells(std::move(v), n, n);
    HeatmapSpec spec;
    spec.scale = ColorScale(Colormap::kGray, 0.f, 1.f);
    spec.showColorbar = false;
    HeatmapLayout lay;
    const QImage img = renderImage(QSize(400, 400), [&](QPainter& p, const QRectF& r) {
        lay = paintHeatmap(p, r, spec, cells);
    });
    int white = 0;
    for (int y = int(lay.plot.top()) + 1; y < int(lay.plot.bottom()) - 1; ++y)
        for (int x = int(lay.plot.left()) + 1; x < int(lay.plot.right()) - 1; ++x)
            if (colorDistance(img.pixel(x, y), qRgb(255, 255, 255)) < 10) ++white;
    CHECK(white >= 1);
    CHECK(white < 20);
    const QPoint c = cellCentre(lay, 1234, 777);
    int near = 0;
    for (int dy = -2; dy <= 2; ++dy)
        for (int dx = -2; dx <= 2; ++dx)
            if (colorDistance(img.pixel(c + QPoint(dx, dy)), qRgb(255, 255, 255)) < 10) ++near;
    CHECK(near >= 1);
}

TEST_CASE("grid: geometry, metric frame colour and sorting", "[unit][plots]") {
    test::qtApp();
    GridSpec g;
    g.nLayers = 2;
    g.nHeads = 3;
    g.thumbs.resize(6);
    g.metric = {0.1f, 0.9f, 0.5f, std::nanf(""), 0.2f, 0.3f};
    g.metricName = QStringLiteral("m");
    g.metricScale = ColorScale(Colormap::kMagma, 0.f, 1.f);
    const QRectF bounds(0, 0, 600, 420);
    const QImage img = renderImage(bounds.size().toSize(),
                                   [&](QPainter& p, const QRectF& r) { paintGrid(p, r, g); });
    const QRectF cell = gridCellRect(bounds, g, 0, 1);
    CHECK(colorDistance(img.pixel(QPoint(int(cell.left() + 2), int(cell.center().y()))),
                        g.metricScale.rgb(0.9f)) <= 3);
    const auto hit = gridCellAt(bounds, g, cell.center());
    REQUIRE(hit);
    CHECK(*hit == std::make_pair(0, 1));
    g.sortByMetric = true;
    CHECK(gridOrder(g, 0) == std::vector<int>{1, 2, 0});
    CHECK(gridOrder(g, 1) == std::vector<int>{2, 1, 0});  // NaN last
    const QRectF first = gridCellRect(bounds, g, 0, 1);
    CHECK(first.left() < gridCellRect(bounds, g, 0, 0).left());
    CHECK(*gridCellAt(bounds, g, first.center()) == std::make_pair(0, 1));
}

TEST_CASE("token view: lines follow the weights, hit-testing finds tokens", "[unit][plots]") {
    test::qtApp();
    TokensSpec s;
    s.tokens = {QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("c")};
    TokenHead h;
    h.color = QColor(255, 0, 0);
    h.weights = {1, 0, 0, 1, 0, 0, 0, 0, 1};  // query 1 -> key 0 only
    s.heads = {h};
    s.selected = 1;
    s.fromQuery = true;
    const QRectF bounds(0, 0, 500, 300);
    TokensLayout lay;
    const QImage img = renderImage(
        bounds.size().toSize(), [&](QPainter& p, const QRectF& r) { lay = paintTokens(p, r, s); });
    const double y1 = lay.left.top() + 1.5 * lay.rowHeight,
                 y0 = lay.right.top() + 0.5 * lay.rowHeight;
    const double y2 = lay.right.top() + 2.5 * lay.rowHeight;
    const double x0 = lay.left.right() + 4, x1 = lay.right.left() - 4;
    const QPoint onLine(int((x0 + x1) / 2), int((y1 + y0) / 2));
    const QPoint offLine(int((x0 + x1) / 2), int((y1 + y2) / 2));
    auto reddish = [&](QPoint pt) {
        bool any = false;
        for (int dy = -1; dy <= 1; ++dy) {
            const QRgb c = img.pixel(pt + QPoint(0, dy));
            any = any || (qRed(c) > 200 && qGreen(c) < 150);
        }
        return any;
    };
    CHECK(reddish(onLine));
    CHECK_FALSE(reddish(offLine));
    const auto t = tokenAt(lay, QPointF(lay.right.left() + 3, y2));
    REQUIRE(t);
    CHECK(t->first == 2);
    CHECK_FALSE(t->second);
    CHECK(lay.bars.isEmpty());

    // A per-token metric: bar lengths proportional to the values (token 1 full, token 0 none).
    s.tokenMetric = {0.f, 2.f, 1.f};
    s.tokenMetricName = QStringLiteral("FAI");
    const QImage img2 = renderImage(
        bounds.size().toSize(), [&](QPainter& p, const QRectF& r) { lay = paintTokens(p, r, s); });
    REQUIRE_FALSE(lay.bars.isEmpty());
    auto barAt = [&](int row, double frac) {
        const QPoint pt(int(lay.bars.left() + frac * lay.bars.width()),
                        int(lay.bars.top() + (row + 0.5) * lay.rowHeight));
        return colorDistance(img2.pixel(pt), qRgb(120, 120, 120)) <= 2;
    };
    CHECK(barAt(1, 0.9));
    CHECK(barAt(2, 0.4));
    CHECK_FALSE(barAt(2, 0.6));
    CHECK_FALSE(barAt(0, 0.1));
}

TEST_CASE("attnscope plot: every kind, PNG and SVG", "[unit][plots]") {
    test::qtApp();
    TempDir dir("plot");
    const auto file = dir.path() / "cap.h5";
    test::makeCapture(file, 6);

    PlotRequest rq;
    rq.in = file;
    rq.layer = 0;
    rq.head = 1;  // the diagonal
    rq.prompt = 1;
    rq.run = "main";
    for (const char* kind : {"heatmap", "grid", "layers", "diff", "tokens"}) {
        INFO("kind " << kind);
        rq.kind = kind;
        rq.out = dir.path() / (std::string(kind) + ".png");
        const PlotReport rep = runPlot(rq);
        QImage img(QString::fromStdString(rq.out.string()));
        REQUIRE_FALSE(img.isNull());
        CHECK(img.width() == rep.width);
        CHECK(img.height() == rep.height);
    }
    SECTION("heatmap pixels: the diagonal head has its diagonal in the top colour") {
        rq.kind = "heatmap";
        rq.width = 700;
        rq.height = 650;
        rq.out = dir.path() / "h.png";
        runPlot(rq);
        const QImage img(QString::fromStdString(rq.out.string()));
        const store::Reader r(file);
        HeatmapSpec spec = headSpec(r, "main", 1, 0, 1);
        const HeatmapLayout lay = heatmapLayout(QRectF(0, 0, 700, 650), spec, 6, 6);
        const ColorScale sc(Colormap::kViridis, 0.f, 1.f);
        for (int q = 0; q < 6; ++q) {
            CHECK(colorDistance(img.pixel(cellCentre(lay, q, q)), sc.rgb(1.f)) <= 3);
            if (q > 0) CHECK(colorDistance(img.pixel(cellCentre(lay, q, 0)), sc.rgb(0.f)) <= 3);
        }
    }
    SECTION("diff: run main minus run alt differs exactly at layer 0 head 0") {
        rq.kind = "diff";
        rq.head = 0;
        rq.runB = "alt";
        rq.width = 700;
        rq.height = 650;
        rq.out = dir.path() / "d.png";
        runPlot(rq);
        const QImage img(QString::fromStdString(rq.out.string()));
        const store::Reader r(file);
        const HeatmapLayout lay =
            heatmapLayout(QRectF(0, 0, 700, 650), headSpec(r, "main", 1, 0, 0), 6, 6);
        const ColorScale sc(Colormap::kRdBu, -1.f, 1.f);
        CHECK(colorDistance(img.pixel(cellCentre(lay, 3, 0)), sc.rgb(1.f)) <=
              3);  // main has 1, alt 0
        CHECK(colorDistance(img.pixel(cellCentre(lay, 3, 3)), sc.rgb(-1.f)) <= 3);  // main 0, alt 1
        CHECK(colorDistance(img.pixel(cellCentre(lay, 0, 0)), sc.rgb(0.f)) <= 3);   // both 1
    }
    SECTION("SVG output") {
        rq.kind = "grid";
        rq.out = dir.path() / "g.svg";
        runPlot(rq);
        QFile f(QString::fromStdString(rq.out.string()));
        REQUIRE(f.open(QIODevice::ReadOnly));
        const QByteArray svg = f.readAll();
        CHECK(svg.contains("<svg"));
        CHECK(svg.contains("attention heads"));
    }
}

TEST_CASE("attnscope plot: errors name what is wrong", "[unit][plots]") {
    test::qtApp();
    TempDir dir("plot-err");
    const auto file = dir.path() / "cap.h5";
    test::writeRun(file, "main", 1, 5, 0, false);
    PlotRequest rq;
    rq.in = file;
    rq.out = dir.path() / "x.png";
    rq.kind = "pie";
    CHECK_THROWS_AS(runPlot(rq), ConfigError);
    rq.kind = "heatmap";
    rq.layer = 7;
    try {
        runPlot(rq);
        FAIL("expected ConfigError");
    } catch (const ConfigError& e) {
        CHECK_CONTAINS(e.what(), "layers 0,1");
    }
    rq.layer = 0;
    rq.out = dir.path() / "x.bmp";
    CHECK_THROWS_AS(runPlot(rq), ConfigError);
    rq.out = dir.path() / "x.png";
    rq.kind = "layers";  // no metrics in this file
    try {
        runPlot(rq);
        FAIL("expected ConfigError");
    } catch (const ConfigError& e) {
        CHECK_CONTAINS(e.what(), "attnscope analyze");
    }
    rq.kind = "diff";  // only one run
    CHECK_THROWS_AS(runPlot(rq), ConfigError);
    rq.kind = "heatmap";
    rq.in = dir.path() / "missing.h5";
    CHECK_THROWS_AS(runPlot(rq), IoError);
}

TEST_CASE("metrics are found in a companion analysis file", "[unit][plots]") {
    test::qtApp();
    TempDir dir("plot-met");
    const auto cap = dir.path() / "cap.h5", ana = dir.path() / "ana.h5";
    test::writeRun(cap, "main", 1, 5, 0, false);
    test::writeRun(ana, "analysis", 1, 5, 0, true);
    const store::Reader r(cap), a(ana);
    CHECK(MetricSources(r).headMetricNames("main", 0).empty());
    const MetricSources both(r, &a);
    CHECK(both.headMetricNames("main", 0) == std::vector<std::string>{"entropy_norm_mean"});
    CHECK(both.tokenMetricNames("main", 0) == std::vector<std::string>{"fai"});
    const auto m = both.headMetric("main", 0, "entropy_norm_mean");
    REQUIRE(m);
    CHECK(m->values == std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f});
    CHECK(m->where.contains(QStringLiteral("ana.h5")));
}
