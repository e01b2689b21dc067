// Tiled LOD reading and drawing of one head's map.
#include "gui/tile_source.h"

#include <QCoreApplication>
#include <QMetaObject>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/base/error.h"

namespace attnscope::gui {

TiledMapSource::TiledMapSource(std::shared_ptr<const store::Reader> reader, std::string run,
                               std::int64_t prompt, std::string hook, std::int64_t head,
                               std::int64_t T, QObject* parent)
    : QObject(parent),
      m_reader(std::move(reader)),
      m_run(std::move(run)),
      m_hook(std::move(hook)),
      m_prompt(prompt),
      m_head(head),
      m_T(T) {
    while ((std::int64_t(kTile) << m_maxLevel) < m_T) ++m_maxLevel;
    m_pool.setMaxThreadCount(2);
}

TiledMapSource::~TiledMapSource() {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_wanted.clear();  // queued jobs then return at once
    }
    m_pool.clear();
    m_pool.waitForDone();
}

TiledMapSource::Key TiledMapSource::key(int level, std::int64_t ti, std::int64_t tj) {
    return (Key(level) << 58) | (Key(ti) << 29) | Key(tj);
}

int TiledMapSource::levelFor(double cellsPerPixel) const {
    if (!(cellsPerPixel > 1.0)) return 0;
    return std::min(m_maxLevel, int(std::ceil(std::log2(cellsPerPixel) - 1e-9)));
}

int TiledMapSource::tilesCached() const { return int(m_cache.size()); }

QString TiledMapSource::lastError() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_lastError;
}

std::shared_ptr<TiledMapSource::Tile> TiledMapSource::cached(int level, std::int64_t ti,
                                                             std::int64_t tj) {
    const auto it = m_cache.find(key(level, ti, tj));
    if (it == m_cache.end()) return nullptr;
    it->second->lastUse = ++m_clock;
    return it->second;
}

std::shared_ptr<TiledMapSource::Tile> TiledMapSource::load(int level, std::int64_t ti,
                                                           std::int64_t tj) const {
    // [span x span] cells pooled by s x s into [h, w]; read in bands of kTile rows (the store's
    // chunk height), so one band touches one row of chunks and memory stays ~kTile * span.
    const std::int64_t s = std::int64_t(1) << level, span = std::int64_t(kTile) * s;
    auto tile = std::make_shared<Tile>();
    tile->level = level;
    tile->r0 = ti * span;
    tile->c0 = tj * span;
    const std::int64_t r1 = std::min(m_T, tile->r0 + span), c1 = std::min(m_T, tile->c0 + span);
    tile->h = int((r1 - tile->r0 + s - 1) / s);
    tile->w = int((c1 - tile->c0 + s - 1) / s);
    tile->values.assign(std::size_t(tile->h) * std::size_t(tile->w),
                        -std::numeric_limits<float>::infinity());
    const std::int64_t band = std::max<std::int64_t>(kTile, s);
    for (std::int64_t q = tile->r0; q < r1; q += band) {
        const std::int64_t q1 = std::min(r1, q + band);
        const std::vector<float> part =
            m_reader->read_map_tile(m_run, m_prompt, m_hook, m_head, q, q1, tile->c0, c1);
        m_cellsRead += std::int64_t(part.size());
        const std::int64_t w = c1 - tile->c0;
        for (std::int64_t r = q; r < q1; ++r) {
            float* out =
                tile->values.data() + std::size_t((r - tile->r0) / s) * std::size_t(tile->w);
            const float* in = part.data() + (r - q) * w;
            for (std::int64_t c = 0; c < w; ++c) {
                float& o = out[c / s];
                if (in[c] > o || std::isnan(in[c])) o = in[c];
            }
        }
    }
    return tile;
}

void TiledMapSource::request(int level, std::int64_t ti, std::int64_t tj) {
    const Key k = key(level, ti, tj);
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_wanted.insert(k);
        if (!m_pending.insert(k).second) return;
    }
    m_pool.start([this, k, level, ti, tj] {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            if (!m_wanted.count(k)) {  // scrolled away before we started
                m_pending.erase(k);
                return;
            }
        }
        std::shared_ptr<Tile> tile;
        QString error;
        try {
            tile = load(level, ti, tj);
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what());
        }
        // Deliver on the GUI thread; dropped by Qt if the source is gone by then.
        QMetaObject::invokeMethod(
            this, [this, k, tile, error] { deliver(k, tile, error); }, Qt::QueuedConnection);
    });
}

void TiledMapSource::deliver(Key k, std::shared_ptr<Tile> tile, const QString& error) {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_pending.erase(k);
        if (!error.isEmpty()) m_lastError = error;
    }
    if (!error.isEmpty()) {
        Q_EMIT failed(error);
        return;
    }
    tile->lastUse = ++m_clock;
    m_cache[k] = std::move(tile);
    while (m_cache.size() > m_maxTiles) {
        auto oldest = std::min_element(
            m_cache.begin(), m_cache.end(),
            [](const auto& a, const auto& b) { return a.second->lastUse < b.second->lastUse; });
        m_cache.erase(oldest);
    }
    Q_EMIT tilesArrived();
}

void TiledMapSource::waitForIdle() {
    for (int round = 0; round < 1000; ++round) {
        m_pool.waitForDone();
        // Deliveries are queued calls to this object: run them now.
        QCoreApplication::sendPostedEvents(this, QEvent::MetaCall);
        QCoreApplication::processEvents();
        std::lock_guard<std::mutex> lock(m_mutex);
        if (m_pending.empty()) return;
    }
}

void TiledMapSource::drawTile(QPainter& painter, Tile& tile, const QRectF& target,
                              const plots::CellRange& view, const plots::ColorScale& scale,
                              const QRectF& clip) {
    if (!tile.hasImage || tile.imageScale != scale) {
        tile.image = plots::colorize(tile.values.data(), tile.h, tile.w, tile.w, scale);
        tile.imageScale = scale;
        tile.hasImage = true;
    }
    const double s = double(std::int64_t(1) << tile.level);
    painter.save();
    painter.setClipRect(clip, Qt::IntersectClip);
    plots::drawCellImage(painter, tile.image, target, view, double(tile.r0), tile.h * s,
                         double(tile.c0), tile.w * s);
    painter.restore();
}

bool TiledMapSource::paintCells(QPainter& painter, const QRectF& target,
                                const plots::CellRange& view, const plots::ColorScale& scale) {
    const double dpr = painter.device() ? painter.device()->devicePixelRatioF() : 1.0;
    const double cellsPerPixel =
        std::max(view.cols() / (target.width() * dpr), view.rows() / (target.height() * dpr));
    const int level = levelFor(cellsPerPixel);
    const std::int64_t span = std::int64_t(kTile) << level;
    const auto first = [&](double v) {
        return std::max<std::int64_t>(0, std::int64_t(std::floor(v)) / span);
    };
    const auto last = [&](double v) {
        return std::min<std::int64_t>((m_T - 1) / span, std::int64_t(std::ceil(v) - 1) / span);
    };
    const std::int64_t ti0 = first(view.r0), ti1 = last(view.r1), tj0 = first(view.c0),
                       tj1 = last(view.c1);
    {
        // Only what is visible now is wanted; queued reads of other tiles are skipped.
        std::lock_guard<std::mutex> lock(m_mutex);
        m_wanted.clear();
    }
    const double sx = target.width() / view.cols(), sy = target.height() / view.rows();
    bool complete = true;
    painter.save();
    painter.setClipRect(target, Qt::IntersectClip);
    for (std::int64_t ti = ti0; ti <= ti1; ++ti)
        for (std::int64_t tj = tj0; tj <= tj1; ++tj) {
            const QRectF cell(target.left() + (double(tj * span) - view.c0) * sx,
                              target.top() + (double(ti * span) - view.r0) * sy, double(span) * sx,
                              double(span) * sy);
            if (auto t = cached(level, ti, tj)) {
                drawTile(painter, *t, target, view, scale, cell);
                continue;
            }
            complete = false;
            request(level, ti, tj);
            // Stand-in: the nearest coarser tile already cached, else a neutral fill.
            bool drawn = false;
            for (int l = level + 1; l <= m_maxLevel && !drawn; ++l) {
                const int d = l - level;
                if (auto t = cached(l, ti >> d, tj >> d)) {
                    drawTile(painter, *t, target, view, scale, cell);
                    drawn = true;
                }
            }
            if (!drawn) painter.fillRect(cell, QColor(215, 215, 215));
        }
    painter.restore();
    return complete;
}

float TiledMapSource::value(std::int64_t row, std::int64_t col) {
    if (row < 0 || col < 0 || row >= m_T || col >= m_T)
        return std::numeric_limits<float>::quiet_NaN();
    if (auto t = cached(0, row / kTile, col / kTile))
        return t->values[std::size_t(row - t->r0) * std::size_t(t->w) + std::size_t(col - t->c0)];
    return std::numeric_limits<float>::quiet_NaN();
}

float TiledMapSource::readValue(std::int64_t row, std::int64_t col) const {
    try {
        const auto v =
            m_reader->read_map_tile(m_run, m_prompt, m_hook, m_head, row, row + 1, col, col + 1);
        return v.empty() ? std::numeric_limits<float>::quiet_NaN() : v[0];
    } catch (const std::exception&) {
        return std::numeric_limits<float>::quiet_NaN();
    }
}

}  // namespace attnscope::gui
