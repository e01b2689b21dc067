// Reading figure data from capture files.
#include "plots/capture_data.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/base/error.h"

namespace attnscope::plots {

std::string patternHook(int layer) {
    return "blocks." + std::to_string(layer) + ".attn.hook_pattern";
}

QString displayToken(const std::string& token) { return QString::fromStdString(token); }

QStringList tokenLabels(const store::Reader& reader, std::int64_t prompt) {
    QStringList out;
    for (const std::string& s : reader.token_strings(prompt)) out << displayToken(s);
    return out;
}

std::vector<int> patternLayers(const store::Reader& reader, const std::string& run,
                               std::int64_t prompt) {
    std::vector<int> layers;
    const std::string suffix = ".attn.hook_pattern";
    for (const std::string& h : reader.hooks(run, prompt)) {
        if (h.rfind("blocks.", 0) != 0 || h.size() <= suffix.size() ||
            h.compare(h.size() - suffix.size(), suffix.size(), suffix) != 0)
            continue;
        const std::string num = h.substr(7, h.size() - 7 - suffix.size());
        if (!num.empty() &&
            std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; }))
            layers.push_back(std::stoi(num));
    }
    std::sort(layers.begin(), layers.end());
    return layers;
}

std::vector<float> readHead(const store::Reader& reader, const std::string& run,
                            std::int64_t prompt, int layer, int head, std::int64_t* T) {
    const store::ArrayInfo info = reader.array_info(run, prompt, patternHook(layer));
    if (T) *T = info.shape.at(1);
    return reader.read_map_head(run, prompt, patternHook(layer), head);
}

std::vector<float> pooledHead(const store::Reader& reader, const std::string& run,
                              std::int64_t prompt, int layer, int head, int maxSide,
                              std::int64_t* side) {
    const std::string hook = patternHook(layer);
    const std::int64_t T = reader.array_info(run, prompt, hook).shape.at(1);
    const std::int64_t s = std::max<std::int64_t>(1, (T + maxSide - 1) / std::max(1, maxSide));
    const std::int64_t n = (T + s - 1) / s;
    std::vector<float> out(std::size_t(n * n), -std::numeric_limits<float>::infinity());
    const std::int64_t band = std::max<std::int64_t>(256, s);
    for (std::int64_t q = 0; q < T; q += band) {
        const std::int64_t q1 = std::min(T, q + band);
        const std::vector<float> part = reader.read_map_tile(run, prompt, hook, head, q, q1, 0, T);
        for (std::int64_t r = q; r < q1; ++r) {
            float* o = out.data() + (r / s) * n;
            const float* in = part.data() + (r - q) * T;
            for (std::int64_t c = 0; c < T; ++c)
                if (in[c] > o[c / s] || std::isnan(in[c])) o[c / s] = in[c];
        }
    }
    if (side) *side = n;
    return out;
}

bool headStored(const store::Reader& reader, const std::string& run, std::int64_t prompt, int layer,
                int head) {
    const auto layers = patternLayers(reader, run, prompt);
    if (std::find(layers.begin(), layers.end(), layer) == layers.end()) return false;
    const auto heads = reader.array_info(run, prompt, patternHook(layer)).heads;
    return std::find(heads.begin(), heads.end(), std::int64_t(head)) != heads.end();
}

std::int64_t mapSize(const store::Reader& reader, const std::string& run, std::int64_t prompt,
                     int layer) {
    const auto layers = patternLayers(reader, run, prompt);
    if (std::find(layers.begin(), layers.end(), layer) == layers.end()) return 0;
    return reader.array_info(run, prompt, patternHook(layer)).shape.at(1);
}

// --- metrics -------------------------------------------------------------------------------------

MetricSources::MetricSources(const store::Reader& primary, const store::Reader* companion)
    : m_primary(primary), m_companion(companion) {}

std::optional<MetricSources::Hit> MetricSources::locate(const std::string& run,
                                                        std::int64_t prompt) const {
    std::int64_t n = -1;
    try {
        n = m_primary.prompt(prompt).n_tokens;
    } catch (const Error&) {
        return std::nullopt;
    }
    auto has = [&](const store::Reader& r, const std::string& rn) {
        try {
            return r.prompt(prompt).n_tokens == n && !r.metrics(rn, prompt).empty();
        } catch (const Error&) {
            return false;
        }
    };
    auto runsOf = [](const store::Reader& r) {
        std::vector<std::string> names;
        for (const auto& s : r.runs()) names.push_back(s.info.name);
        return names;
    };
    if (has(m_primary, run)) return Hit{&m_primary, run};
    if (m_companion) {
        if (has(*m_companion, run)) return Hit{m_companion, run};
        for (const std::string& rn : runsOf(*m_companion))
            if (has(*m_companion, rn)) return Hit{m_companion, rn};
    }
    for (const std::string& rn : runsOf(m_primary))
        if (rn != run && has(m_primary, rn)) return Hit{&m_primary, rn};
    return std::nullopt;
}

namespace {

std::vector<int> paramLayers(const std::string& params) {
    std::vector<int> out;
    const QJsonDocument doc = QJsonDocument::fromJson(QByteArray::fromStdString(params));
    if (!doc.isObject()) return out;
    for (const QJsonValue& v : doc.object().value(QStringLiteral("layers")).toArray())
        out.push_back(v.toInt(-1));
    return out;
}

}  // namespace

std::vector<std::string> MetricSources::headMetricNames(const std::string& run,
                                                        std::int64_t prompt) const {
    std::vector<std::string> out;
    const auto hit = locate(run, prompt);
    if (!hit) return out;
    for (const std::string& name : hit->reader->metrics(hit->run, prompt))
        if (headMetric(run, prompt, name)) out.push_back(name);
    return out;
}

std::vector<std::string> MetricSources::tokenMetricNames(const std::string& run,
                                                         std::int64_t prompt) const {
    std::vector<std::string> out;
    const auto hit = locate(run, prompt);
    if (!hit) return out;
    for (const std::string& name : hit->reader->metrics(hit->run, prompt))
        if (tokenMetric(run, prompt, name)) out.push_back(name);
    return out;
}

std::optional<HeadMetric> MetricSources::headMetric(const std::string& run, std::int64_t prompt,
                                                    const std::string& name) const {
    const auto hit = locate(run, prompt);
    if (!hit) return std::nullopt;
    store::MetricData d;
    try {
        d = hit->reader->read_metric(hit->run, prompt, name);
    } catch (const Error&) {
        return std::nullopt;
    }
    const int L = int(m_primary.model().n_layers), H = int(m_primary.model().n_heads);
    if (d.info.dims != "layer,head" || d.shape.size() != 2 || d.shape[1] != H) return std::nullopt;
    std::vector<int> rows;
    if (d.shape[0] == L) {
        for (int l = 0; l < L; ++l) rows.push_back(l);
    } else {
        rows = paramLayers(d.info.params_json);
        if (std::int64_t(rows.size()) != d.shape[0]) return std::nullopt;
    }
    HeadMetric m;
    m.name = name;
    m.nLayers = L;
    m.nHeads = H;
    m.units = d.info.units;
    m.values.assign(std::size_t(L) * H, std::numeric_limits<float>::quiet_NaN());
    for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r] < 0 || rows[r] >= L) return std::nullopt;
        for (int h = 0; h < H; ++h)
            m.values[std::size_t(rows[r]) * H + h] = d.data[r * std::size_t(H) + h];
    }
    const bool same = hit->reader == &m_primary;
    m.where = (same ? QString()
                    : QString::fromStdString(hit->reader->path().filename().string()) +
                          QStringLiteral(", ")) +
              QStringLiteral("run '%1'").arg(QString::fromStdString(hit->run));
    return m;
}

std::optional<std::vector<float>> MetricSources::tokenMetric(const std::string& run,
                                                             std::int64_t prompt,
                                                             const std::string& name) const {
    const auto hit = locate(run, prompt);
    if (!hit) return std::nullopt;
    try {
        store::MetricData d = hit->reader->read_metric(hit->run, prompt, name);
        if (d.info.dims != "pos" || d.shape.size() != 1 ||
            d.shape[0] != m_primary.prompt(prompt).n_tokens)
            return std::nullopt;
        return d.data;
    } catch (const Error&) {
        return std::nullopt;
    }
}

QString metricLabel(const std::string& name) {
    static const std::pair<const char*, const char*> names[] = {
        {"entropy_norm_mean", "entropy (normalised)"},
        {"entropy_nats_mean", "entropy (nats)"},
        {"sink_alpha0", "sink score α₀"},
        {"sink_flags", "sink head"},
        {"distance", "mean distance (tokens)"},
        {"preplan_distance", "distance, WAAD/FAI layers"},
        {"head_class", "head class (1 local, 2 global)"},
        {"waad", "WAAD (tokens)"},
        {"waad_delta", "WAAD change Δ"},
        {"fai", "FAI"},
    };
    for (const auto& [key, label] : names)
        if (name == key) return QString::fromUtf8(label);
    return QString::fromStdString(name);
}

std::string defaultHeadMetric(const std::vector<std::string>& names) {
    for (const char* pref : {"entropy_norm_mean", "sink_alpha0"})
        if (std::find(names.begin(), names.end(), pref) != names.end()) return pref;
    return names.empty() ? std::string() : names.front();
}

ColorScale autoScale(const std::vector<float>& values, Colormap map, bool log, bool symmetric) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo, amax = 0;
    for (float v : values)
        if (std::isfinite(v))
            lo = std::min(lo, v), hi = std::max(hi, v), amax = std::max(amax, std::fabs(v));
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (symmetric) {
        if (amax == 0) amax = 1e-6f;
        return ColorScale(map, -amax, amax, false);
    }
    if (lo >= 0 && hi <= 1 && hi > 0.f) return ColorScale(map, 0.f, hi, log);  // weights
    if (hi <= lo) hi = lo + 1;
    return ColorScale(map, lo, hi, log);
}

QImage thumbnail(const std::vector<float>& map, std::int64_t T, int size, const ColorScale& scale) {
    if (T <= 0 || std::int64_t(map.size()) != T * T) return {};
    const QImage img = colorize(map.data(), T, T, T, scale, size, size);
    return img.scaled(size, size, Qt::IgnoreAspectRatio, Qt::FastTransformation);
}

QString promptCaption(const store::Reader& reader, std::int64_t prompt) {
    const store::PromptSummary p = reader.prompt(prompt);
    QString text = QString::fromStdString(p.text).simplified();
    if (text.size() > 60) text = text.left(59) + QChar(0x2026);
    return QStringLiteral("prompt %1 (%2 tokens): %3").arg(prompt).arg(p.n_tokens).arg(text);
}

HeatmapSpec headSpec(const store::Reader& reader, const std::string& run, std::int64_t prompt,
                     int layer, int head) {
    HeatmapSpec s;
    s.title = QStringLiteral("layer %1, head %2 — run '%3'")
                  .arg(layer)
                  .arg(head)
                  .arg(QString::fromStdString(run));
    s.subtitle = promptCaption(reader, prompt);
    s.rowLabels = tokenLabels(reader, prompt);
    s.colLabels = s.rowLabels;
    return s;
}

// --- builders ----------------------------------------------------------------------------------

std::vector<QImage> layerThumbnails(const store::Reader& reader, const std::string& run,
                                    std::int64_t prompt, int layer, int thumbSize,
                                    const ColorScale& mapScale) {
    const int H = int(reader.model().n_heads);
    std::vector<QImage> out(static_cast<std::size_t>(H));
    const auto layers = patternLayers(reader, run, prompt);
    if (std::find(layers.begin(), layers.end(), layer) == layers.end()) return out;
    const store::ArrayInfo info = reader.array_info(run, prompt, patternHook(layer));
    for (const std::int64_t h : info.heads) {
        if (h < 0 || h >= H) continue;
        std::int64_t n = 0;
        const std::vector<float> m = pooledHead(reader, run, prompt, layer, int(h), thumbSize, &n);
        out[std::size_t(h)] = thumbnail(m, n, thumbSize, mapScale);
    }
    return out;
}

GridSpec gridSpec(const store::Reader& reader, const MetricSources& metrics, const std::string& run,
                  std::int64_t prompt, const std::string& metric, bool sort, int thumbSize,
                  const ColorScale& mapScale) {
    GridSpec g;
    g.nLayers = int(reader.model().n_layers);
    g.nHeads = int(reader.model().n_heads);
    g.title = QStringLiteral("attention heads — run '%1'").arg(QString::fromStdString(run));
    g.subtitle = promptCaption(reader, prompt);
    g.thumbs.resize(std::size_t(g.nLayers) * std::size_t(g.nHeads));
    if (thumbSize > 0)
        for (int l = 0; l < g.nLayers; ++l) {
            auto t = layerThumbnails(reader, run, prompt, l, thumbSize, mapScale);
            for (int h = 0; h < g.nHeads; ++h)
                g.thumbs[std::size_t(l * g.nHeads + h)] = t[std::size_t(h)];
        }
    if (!metric.empty()) {
        const auto m = metrics.headMetric(run, prompt, metric);
        if (!m) {
            std::string names;
            for (const auto& n : metrics.headMetricNames(run, prompt))
                names += (names.empty() ? "" : ", ") + n;
            throw ConfigError(
                "no per-head metric '" + metric + "' for prompt " + std::to_string(prompt) +
                " of run '" + run + "'; available: " +
                (names.empty() ? "none (run attnscope analyze and pass its file)" : names));
        }
        g.metric = m->values;
        g.metricName = metricLabel(metric);
        g.metricScale = autoScale(m->values, Colormap::kMagma, false, false);
        g.sortByMetric = sort;
        g.subtitle += QStringLiteral(" · colour: %1 (%2)").arg(g.metricName, m->where);
    }
    return g;
}

CurvesSpec layerCurves(const HeadMetric& metric, const QString& caption) {
    CurvesSpec s;
    s.title = metricLabel(metric.name) + QStringLiteral(" per layer");
    s.subtitle = caption + QStringLiteral(" · ") + metric.where;
    const QString units = QString::fromStdString(metric.units);
    s.yLabel = metricLabel(metric.name);
    if (!units.isEmpty() && !s.yLabel.contains(units.left(6)))
        s.yLabel += QStringLiteral(" [%1]").arg(units);
    for (int l = 0; l < metric.nLayers; ++l) s.xTicks << QString::number(l);
    for (int h = 0; h < metric.nHeads; ++h) {
        Series sr;
        sr.name = QStringLiteral("head %1").arg(h);
        QColor c = categoricalColor(h);
        c.setAlpha(150);
        sr.color = c;
        sr.width = 1.2;
        sr.inLegend = metric.nHeads <= 16;
        for (int l = 0; l < metric.nLayers; ++l)
            sr.y.push_back(metric.values[std::size_t(l * metric.nHeads + h)]);
        s.series.push_back(std::move(sr));
    }
    Series mean;
    mean.name = QStringLiteral("mean over heads");
    mean.color = Qt::black;
    mean.width = 3;
    for (int l = 0; l < metric.nLayers; ++l) {
        double sum = 0;
        int n = 0;
        for (int h = 0; h < metric.nHeads; ++h) {
            const float v = metric.values[std::size_t(l * metric.nHeads + h)];
            if (std::isfinite(v)) sum += v, ++n;
        }
        mean.y.push_back(n ? sum / n : std::numeric_limits<double>::quiet_NaN());
    }
    s.series.push_back(std::move(mean));
    return s;
}

TokensSpec tokensSpec(const store::Reader& reader, const std::string& run, std::int64_t prompt,
                      int layer, const std::vector<int>& heads, int token, bool fromQuery) {
    TokensSpec s;
    s.tokens = tokenLabels(reader, prompt);
    s.selected = token;
    s.fromQuery = fromQuery;
    QStringList hs;
    for (std::size_t i = 0; i < heads.size(); ++i) {
        TokenHead th;
        th.layer = layer;
        th.head = heads[i];
        th.color = categoricalColor(int(i));
        std::int64_t T = 0;
        th.weights = readHead(reader, run, prompt, layer, heads[i], &T);
        if (T != s.tokens.size())
            throw ShapeError("map of layer " + std::to_string(layer) + " covers " +
                             std::to_string(T) + " tokens, the prompt has " +
                             std::to_string(s.tokens.size()));
        s.heads.push_back(std::move(th));
        hs << QString::number(heads[i]);
    }
    s.title = QStringLiteral("token view — layer %1, head%2 %3")
                  .arg(layer)
                  .arg(heads.size() == 1 ? QString() : QStringLiteral("s"),
                       hs.join(QStringLiteral(", ")));
    s.subtitle = promptCaption(reader, prompt);
    if (token >= 0 && token < s.tokens.size())
        s.subtitle += fromQuery ? QStringLiteral(" · what '%1' (%2) attends to")
                                      .arg(axisLabel(s.tokens[token]))
                                      .arg(token)
                                : QStringLiteral(" · who attends to '%1' (%2)")
                                      .arg(axisLabel(s.tokens[token]))
                                      .arg(token);
    return s;
}

void addTokenMetric(TokensSpec& spec, const MetricSources& metrics, const std::string& run,
                    std::int64_t prompt, std::string name) {
    const auto names = metrics.tokenMetricNames(run, prompt);
    if (name.empty())
        for (const char* pref : {"fai", "waad"})
            if (std::find(names.begin(), names.end(), pref) != names.end()) {
                name = pref;
                break;
            }
    if (name.empty()) return;
    if (auto v = metrics.tokenMetric(run, prompt, name)) {
        spec.tokenMetric = std::move(*v);
        spec.tokenMetricName = metricLabel(name);
    }
}

std::vector<float> diffHead(const store::Reader& reader, const std::string& runA,
                            const std::string& runB, std::int64_t prompt, int layer, int head,
                            std::int64_t* T) {
    std::int64_t ta = 0, tb = 0;
    std::vector<float> a = readHead(reader, runA, prompt, layer, head, &ta);
    const std::vector<float> b = readHead(reader, runB, prompt, layer, head, &tb);
    if (ta != tb)
        throw ShapeError("diff: run '" + runA + "' has a [" + std::to_string(ta) + ", " +
                         std::to_string(ta) + "] map, run '" + runB + "' a [" + std::to_string(tb) +
                         ", " + std::to_string(tb) + "] one for prompt " + std::to_string(prompt) +
                         " (same prompt, same token count needed)");
    for (std::size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
    if (T) *T = ta;
    return a;
}

}  // namespace attnscope::plots
