// Lazy, level-of-detail cell source for the head view: an attention map is never read whole.
// The visible part is covered by tiles of 256 x 256 pooled cells at level l (each pooled cell =
// the max of a 2^l x 2^l block), with l chosen so that a pooled cell is about one device pixel;
// tiles are read in the background (QThreadPool, through the thread-safe store::Reader, in
// chunk-aligned row bands), kept in an LRU cache, and drawn as they arrive, with coarser cached
// tiles standing in meanwhile. An 8k x 8k map thus opens at once (nothing is read until painted)
// and a zoomed-in view reads only the chunks it shows. Not a general cache: one head of one map.
#pragma once

#include <QObject>
#include <QThreadPool>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/store/reader.h"
#include "plots/heatmap.h"

namespace attnscope::gui {

class TiledMapSource : public QObject, public plots::CellSource {
    Q_OBJECT
public:
    /// Cells per tile side.
    static constexpr int kTile = 256;

    /// `T` is the map's side (from Reader::array_info). Reads nothing yet.
    TiledMapSource(std::shared_ptr<const store::Reader> reader, std::string run,
                   std::int64_t prompt, std::string hook, std::int64_t head, std::int64_t T,
                   QObject* parent = nullptr);
    ~TiledMapSource() override;

    std::int64_t rows() const override { return m_T; }
    std::int64_t cols() const override { return m_T; }
    bool paintCells(QPainter& painter, const QRectF& target, const plots::CellRange& view,
                    const plots::ColorScale& scale) override;
    /// Exact value from a cached full-resolution tile, else NaN.
    float value(std::int64_t row, std::int64_t col) override;
    /// Exact value read from the file now (one chunk at most). NaN on read failure.
    float readValue(std::int64_t row, std::int64_t col) const;

    /// Level of detail for `cellsPerPixel` (0 = full resolution).
    int levelFor(double cellsPerPixel) const;
    int maxLevel() const { return m_maxLevel; }
    /// Blocks until every requested tile has been read and delivered (tests, screenshots).
    void waitForIdle();

    /// Cells read from the file so far (after pooling input, i.e. real I/O volume in values).
    std::int64_t cellsRead() const { return m_cellsRead.load(); }
    int tilesCached() const;
    /// The error of the last failed tile read, empty when none.
    QString lastError() const;

Q_SIGNALS:
    /// Tiles arrived; repaint.
    void tilesArrived();
    /// A tile could not be read (damaged file, or a file being rewritten).
    void failed(const QString& message);

private:
    struct Tile {
        int level = 0;
        std::int64_t r0 = 0, c0 = 0;  ///< first cell covered
        int h = 0, w = 0;             ///< pooled size
        std::vector<float> values;    ///< [h, w]
        QImage image;                 ///< coloured with `imageScale`
        plots::ColorScale imageScale;
        bool hasImage = false;
        std::uint64_t lastUse = 0;
    };
    using Key = std::uint64_t;
    static Key key(int level, std::int64_t ti, std::int64_t tj);
    void request(int level, std::int64_t ti, std::int64_t tj);
    std::shared_ptr<Tile> cached(int level, std::int64_t ti, std::int64_t tj);
    std::shared_ptr<Tile> load(int level, std::int64_t ti, std::int64_t tj) const;
    void deliver(Key k, std::shared_ptr<Tile> tile, const QString& error);
    void drawTile(QPainter& painter, Tile& tile, const QRectF& target, const plots::CellRange& view,
                  const plots::ColorScale& scale, const QRectF& clip);

    std::shared_ptr<const store::Reader> m_reader;
    std::string m_run, m_hook;
    std::int64_t m_prompt, m_head, m_T;
    int m_maxLevel = 0;
    std::unordered_map<Key, std::shared_ptr<Tile>> m_cache;  // GUI thread only
    std::uint64_t m_clock = 0;
    std::size_t m_maxTiles = 256;  // 256 x 256 KiB = 64 MiB of floats at most
    // Shared with workers: which tiles are wanted (requests for tiles scrolled away are skipped).
    mutable std::mutex m_mutex;
    std::set<Key> m_pending;
    std::set<Key> m_wanted;
    QString m_lastError;
    mutable std::atomic<std::int64_t> m_cellsRead{0};
    QThreadPool m_pool;
};

}  // namespace attnscope::gui
