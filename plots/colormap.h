// Colormaps and value scales shared by the viewer and `attnscope plot`: a value -> colour
// mapping (linear or logarithmic, sequential or diverging) that every painter in plots/ and gui/
// uses, so a cell has the same colour on screen and in a saved figure. Not a general colour
// library: four maps, 256-entry lookup tables.
#pragma once

#include <QColor>
#include <QString>
#include <QStringList>

#include <array>

namespace attnscope::plots {

/// Named colormaps. Viridis and magma are perceptually uniform (matplotlib's, via the
/// polynomial fits of Zucker 2020); gray is linear; RdBu is a diverging blue-white-red map
/// (ColorBrewer) for signed differences.
enum class Colormap { kViridis, kMagma, kGray, kRdBu };

/// "viridis", "magma", "gray", "rdbu".
QString colormapName(Colormap map);
/// Parses a name as colormapName writes it (case-insensitive). Throws ConfigError naming the
/// value and the accepted names.
Colormap parseColormap(const QString& name);
QStringList colormapNames();

/// Value -> colour. Linear: t = (v - vmin) / (vmax - vmin). Log: t = (log10 v - log10 lo) /
/// (log10 vmax - log10 lo) with lo = max(vmin, logFloor); values <= 0 map to the bottom colour.
/// Values outside the range clamp; NaN maps to `nanColor`.
class ColorScale {
public:
    ColorScale(Colormap map = Colormap::kViridis, float vmin = 0.f, float vmax = 1.f,
               bool log = false);

    Colormap map() const { return m_map; }
    float vmin() const { return m_vmin; }
    float vmax() const { return m_vmax; }
    bool isLog() const { return m_log; }
    /// Smallest value the log scale resolves (default 1e-4: below float16 attention precision).
    float logFloor() const { return m_logFloor; }
    void setLogFloor(float floor);

    /// Position of `v` along the scale in [0, 1] (NaN stays NaN).
    float position(float v) const;
    QRgb rgb(float v) const;
    QColor color(float v) const { return QColor::fromRgb(rgb(v)); }
    /// Colour at position t in [0, 1] along the map.
    QRgb rgbAt(float t) const;
    QRgb nanColor() const { return qRgb(200, 200, 200); }

    /// The value at position t in [0, 1] (inverse of position, for colour-bar ticks).
    float valueAt(float t) const;

    bool operator==(const ColorScale& o) const;
    bool operator!=(const ColorScale& o) const { return !(*this == o); }

private:
    Colormap m_map;
    float m_vmin, m_vmax;
    bool m_log;
    float m_logFloor = 1e-4f;
    const std::array<QRgb, 256>* m_lut;
};

}  // namespace attnscope::plots
