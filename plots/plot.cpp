// runPlot: request -> figure spec (capture_data.h builders) -> painter -> file.
#include "plots/plot.h"

#include <QString>

#include <algorithm>
#include <memory>

#include "core/base/error.h"
#include "core/store/reader.h"
#include "plots/capture_data.h"
#include "plots/render.h"

namespace attnscope::plots {
namespace {

std::string firstRunWithMaps(const store::Reader& r) {
    // "main" (capture's default run name) first, then the others by name.
    auto runs = r.runs();
    std::stable_partition(runs.begin(), runs.end(),
                          [](const store::RunSummary& s) { return s.info.name == "main"; });
    for (const auto& run : runs)
        for (std::int64_t p : r.run_prompts(run.info.name))
            if (!patternLayers(r, run.info.name, p).empty()) return run.info.name;
    throw ConfigError(r.path().string() +
                      ": no run stores attention maps (hook_pattern); capture with "
                      "--hooks 'blocks.*.attn.hook_pattern'");
}

std::int64_t pickPrompt(const store::Reader& r, const std::string& run, std::int64_t want) {
    const auto ids = r.run_prompts(run);
    if (ids.empty()) throw ConfigError("run '" + run + "' has no complete prompts");
    if (want < 0) return ids.front();
    if (std::find(ids.begin(), ids.end(), want) == ids.end())
        throw ConfigError("run '" + run + "' has no prompt " + std::to_string(want) + " (it has " +
                          std::to_string(ids.size()) + " prompts, first " +
                          std::to_string(ids.front()) + ", last " + std::to_string(ids.back()) +
                          ")");
    return want;
}

void checkHead(const store::Reader& r, const std::string& run, std::int64_t prompt, int layer,
               int head) {
    const auto layers = patternLayers(r, run, prompt);
    if (std::find(layers.begin(), layers.end(), layer) == layers.end()) {
        std::string have;
        for (int l : layers) have += (have.empty() ? "" : ",") + std::to_string(l);
        throw ConfigError("--layer " + std::to_string(layer) + ": run '" + run + "' prompt " +
                          std::to_string(prompt) + " has maps of layers " +
                          (have.empty() ? "none" : have));
    }
    const auto heads = r.array_info(run, prompt, patternHook(layer)).heads;
    if (std::find(heads.begin(), heads.end(), head) == heads.end())
        throw ConfigError("--head " + std::to_string(head) + " is not stored for layer " +
                          std::to_string(layer) + " (" + std::to_string(heads.size()) +
                          " heads stored)");
}

}  // namespace

const char* plotKinds() { return "heatmap|grid|layers|diff|tokens"; }

PlotReport runPlot(const PlotRequest& rq) {
    static const std::vector<std::string> kinds = {"heatmap", "grid", "layers", "diff", "tokens"};
    if (std::find(kinds.begin(), kinds.end(), rq.kind) == kinds.end())
        throw ConfigError("--kind '" + rq.kind + "': use one of " + plotKinds());
    ensureGuiApplication();
    const Colormap cmap = parseColormap(QString::fromStdString(rq.colormap));
    store::Reader reader(rq.in);
    std::unique_ptr<store::Reader> companion;
    if (!rq.metricsFile.empty()) companion = std::make_unique<store::Reader>(rq.metricsFile);
    const MetricSources metrics(reader, companion.get());
    const std::string run =
        rq.run.empty() ? firstRunWithMaps(reader) : reader.run(rq.run).info.name;
    const std::int64_t prompt = pickPrompt(reader, run, rq.prompt);

    PlotReport rep;
    rep.out = rq.out.string();
    QSize size;
    PaintFn paint;
    const QString title = QString::fromStdString(rq.title);

    if (rq.kind == "heatmap" || rq.kind == "diff") {
        checkHead(reader, run, prompt, rq.layer, rq.head);
        HeatmapSpec spec = headSpec(reader, run, prompt, rq.layer, rq.head);
        std::int64_t T = 0;
        std::vector<float> values;
        if (rq.kind == "heatmap") {
            values = readHead(reader, run, prompt, rq.layer, rq.head, &T);
            spec.scale = autoScale(values, cmap, rq.log, false);
            rep.description =
                "layer " + std::to_string(rq.layer) + " head " + std::to_string(rq.head);
        } else {
            std::string runB = rq.runB;
            if (runB.empty()) {
                for (const auto& r : reader.runs())
                    if (r.info.name != run) {
                        const auto ids = reader.run_prompts(r.info.name);
                        if (std::find(ids.begin(), ids.end(), prompt) != ids.end()) {
                            runB = r.info.name;
                            break;
                        }
                    }
                if (runB.empty())
                    throw ConfigError("diff needs a second run of prompt " +
                                      std::to_string(prompt) + " (--run-b)");
            }
            reader.run(runB);
            if (runB == run)
                throw ConfigError("diff: --run-b names the same run as --run ('" + run +
                                  "'); pick another run");
            checkHead(reader, runB, prompt, rq.layer, rq.head);
            values = diffHead(reader, run, runB, prompt, rq.layer, rq.head, &T);
            spec.scale =
                autoScale(values, rq.colormap == "viridis" ? Colormap::kRdBu : cmap, false, true);
            spec.title = QStringLiteral("difference '%1' − '%2' — layer %3, head %4")
                             .arg(QString::fromStdString(run), QString::fromStdString(runB))
                             .arg(rq.layer)
                             .arg(rq.head);
            spec.colorbarLabel = QStringLiteral("weight difference");
            rep.description = "diff " + run + " - " + runB + ", layer " + std::to_string(rq.layer) +
                              " head " + std::to_string(rq.head);
        }
        if (!title.isEmpty()) spec.title = title;
        size = QSize(rq.width > 0 ? rq.width : 900, rq.height > 0 ? rq.height : 860);
        auto cells = std::make_shared<DenseCells>(std::move(values), T, T);
        paint = [spec, cells](QPainter& p, const QRectF& r) { paintHeatmap(p, r, spec, *cells); };
    } else if (rq.kind == "grid") {
        std::string metric = rq.metric;
        if (metric.empty()) metric = defaultHeadMetric(metrics.headMetricNames(run, prompt));
        GridSpec spec = gridSpec(reader, metrics, run, prompt, metric, rq.sort, 96,
                                 ColorScale(cmap, 0, 1, rq.log));
        if (!title.isEmpty()) spec.title = title;
        size = QSize(rq.width > 0 ? rq.width : 1000, rq.height > 0 ? rq.height : 960);
        paint = [spec](QPainter& p, const QRectF& r) { paintGrid(p, r, spec); };
        rep.description = "grid " + std::to_string(spec.nLayers) + "x" +
                          std::to_string(spec.nHeads) +
                          (metric.empty() ? "" : ", metric " + metric);
    } else if (rq.kind == "layers") {
        std::string metric = rq.metric;
        const auto names = metrics.headMetricNames(run, prompt);
        if (metric.empty()) metric = defaultHeadMetric(names);
        if (metric.empty())
            throw ConfigError(
                "layers: prompt " + std::to_string(prompt) + " of run '" + run +
                "' has no per-head metrics; run `attnscope analyze --in FILE --out METRICS.h5` "
                "and pass --metrics METRICS.h5");
        const auto m = metrics.headMetric(run, prompt, metric);
        if (!m) {
            std::string have;
            for (const auto& n : names) have += (have.empty() ? "" : ", ") + n;
            throw ConfigError("layers: no per-head metric '" + metric + "'; available: " + have);
        }
        CurvesSpec spec = layerCurves(*m, promptCaption(reader, prompt));
        if (!title.isEmpty()) spec.title = title;
        size = QSize(rq.width > 0 ? rq.width : 900, rq.height > 0 ? rq.height : 520);
        paint = [spec](QPainter& p, const QRectF& r) { paintCurves(p, r, spec); };
        rep.description = "layers, metric " + metric;
    } else {  // tokens
        std::vector<int> heads = rq.heads.empty() ? std::vector<int>{rq.head} : rq.heads;
        for (int h : heads) checkHead(reader, run, prompt, rq.layer, h);
        TokensSpec spec = tokensSpec(reader, run, prompt, rq.layer, heads, rq.token, !rq.toQuery);
        addTokenMetric(spec, metrics, run, prompt, rq.metric);
        if (rq.token >= spec.tokens.size())
            throw ConfigError("--token " + std::to_string(rq.token) + ": the prompt has " +
                              std::to_string(spec.tokens.size()) + " tokens");
        if (!title.isEmpty()) spec.title = title;
        const int h = int(spec.tokens.size()) * 18 + 140;
        size = QSize(rq.width > 0 ? rq.width : 760,
                     rq.height > 0 ? rq.height : std::clamp(h, 300, 4000));
        paint = [spec](QPainter& p, const QRectF& r) { paintTokens(p, r, spec); };
        rep.description = "tokens, layer " + std::to_string(rq.layer) + ", " +
                          std::to_string(heads.size()) + " head(s)";
    }
    if (size.width() < 100 || size.height() < 100 || size.width() > 20000 || size.height() > 20000)
        throw ConfigError("--size: width and height must be within 100..20000 pixels");
    saveFigure(rq.out, size, paint);
    rep.width = size.width();
    rep.height = size.height();
    rep.description += ", run '" + run + "', prompt " + std::to_string(prompt);
    return rep;
}

}  // namespace attnscope::plots
