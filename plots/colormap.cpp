// Colormap lookup tables and ColorScale.
#include "plots/colormap.h"

#include <algorithm>
#include <cmath>

#include "core/base/error.h"

namespace attnscope::plots {
namespace {

// Polynomial fits of matplotlib's viridis and magma (Matt Zucker, "Perceptually uniform
// colormap polynomials", shadertoy WlfXRN, 2020, CC0); max error about 1/255 per channel.
QRgb poly(const double c[7][3], double t) {
    double rgb[3];
    for (int ch = 0; ch < 3; ++ch) {
        double v = c[6][ch];
        for (int k = 5; k >= 0; --k) v = v * t + c[k][ch];
        rgb[ch] = std::clamp(v, 0.0, 1.0);
    }
    return qRgb(int(std::lround(rgb[0] * 255)), int(std::lround(rgb[1] * 255)),
                int(std::lround(rgb[2] * 255)));
}

const double kViridis[7][3] = {{0.2777273272234177, 0.005407344544966578, 0.3340998053353061},
                               {0.1050930431085774, 1.404613529898575, 1.384590162594685},
                               {-0.3308618287255563, 0.214847559468213, 0.09509516302823659},
                               {-4.634230498983486, -5.799100973351585, -19.33244095627987},
                               {6.228269936347081, 14.17993336680509, 56.69055260068105},
                               {4.776384997670288, -13.74514537774601, -65.35303263337234},
                               {-5.435455855934631, 4.645852612178535, 26.3124352495832}};
const double kMagma[7][3] = {{-0.002136485053939582, -0.000749655052795221, -0.005386127855323933},
                             {0.2516605407371642, 0.6775232436837668, 2.494026599312351},
                             {8.353717279216625, -3.577719514958484, 0.3144679030132573},
                             {-27.66873308576866, 14.26473078096533, -13.64921318813922},
                             {52.17613981234068, -27.94360607168351, 12.94416944238394},
                             {-50.76852536473588, 29.04658282127291, 4.23415299384598},
                             {18.65570506591883, -11.48977351997711, -5.601961508734096}};

// ColorBrewer RdBu (11 classes), reversed so that negative = blue, positive = red.
const QRgb kRdBuStops[] = {qRgb(5, 48, 97),     qRgb(33, 102, 172),  qRgb(67, 147, 195),
                           qRgb(146, 197, 222), qRgb(209, 229, 240), qRgb(247, 247, 247),
                           qRgb(253, 219, 199), qRgb(244, 165, 130), qRgb(214, 96, 77),
                           qRgb(178, 24, 43),   qRgb(103, 0, 31)};

std::array<QRgb, 256> makeLut(Colormap map) {
    std::array<QRgb, 256> lut{};
    for (int i = 0; i < 256; ++i) {
        const double t = i / 255.0;
        switch (map) {
            case Colormap::kViridis:
                lut[i] = poly(kViridis, t);
                break;
            case Colormap::kMagma:
                lut[i] = poly(kMagma, t);
                break;
            case Colormap::kGray:
                lut[i] = qRgb(i, i, i);
                break;
            case Colormap::kRdBu: {
                const double x = t * 10.0;
                const int a = std::min(int(x), 9);
                const double f = x - a;
                const QRgb p = kRdBuStops[a], q = kRdBuStops[a + 1];
                auto mix = [f](int u, int v) { return int(std::lround(u + (v - u) * f)); };
                lut[i] =
                    qRgb(mix(qRed(p), qRed(q)), mix(qGreen(p), qGreen(q)), mix(qBlue(p), qBlue(q)));
                break;
            }
        }
    }
    return lut;
}

const std::array<QRgb, 256>* lutFor(Colormap map) {
    static const std::array<QRgb, 256> viridis = makeLut(Colormap::kViridis);
    static const std::array<QRgb, 256> magma = makeLut(Colormap::kMagma);
    static const std::array<QRgb, 256> gray = makeLut(Colormap::kGray);
    static const std::array<QRgb, 256> rdbu = makeLut(Colormap::kRdBu);
    switch (map) {
        case Colormap::kViridis:
            return &viridis;
        case Colormap::kMagma:
            return &magma;
        case Colormap::kGray:
            return &gray;
        case Colormap::kRdBu:
            return &rdbu;
    }
    return &viridis;
}

}  // namespace

QString colormapName(Colormap map) {
    switch (map) {
        case Colormap::kViridis:
            return QStringLiteral("viridis");
        case Colormap::kMagma:
            return QStringLiteral("magma");
        case Colormap::kGray:
            return QStringLiteral("gray");
        case Colormap::kRdBu:
            return QStringLiteral("rdbu");
    }
    return {};
}

QStringList colormapNames() {
    return {QStringLiteral("viridis"), QStringLiteral("magma"), QStringLiteral("gray"),
            QStringLiteral("rdbu")};
}

Colormap parseColormap(const QString& name) {
    const QString n = name.toLower();
    for (Colormap m : {Colormap::kViridis, Colormap::kMagma, Colormap::kGray, Colormap::kRdBu})
        if (colormapName(m) == n) return m;
    throw ConfigError("unknown colormap '" + name.toStdString() +
                      "'; use one of: " + colormapNames().join(", ").toStdString());
}

ColorScale::ColorScale(Colormap map, float vmin, float vmax, bool log)
    : m_map(map), m_vmin(vmin), m_vmax(vmax), m_log(log), m_lut(lutFor(map)) {}

void ColorScale::setLogFloor(float floor) { m_logFloor = floor > 0 ? floor : 1e-4f; }

float ColorScale::position(float v) const {
    if (std::isnan(v)) return v;
    if (m_log) {
        const float lo = std::max(m_vmin, m_logFloor);
        const float hi = std::max(m_vmax, lo * 10.f);
        if (v <= lo) return 0.f;
        return std::clamp((std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)), 0.f,
                          1.f);
    }
    const float span = m_vmax - m_vmin;
    if (!(span > 0)) return v >= m_vmax ? 1.f : 0.f;
    return std::clamp((v - m_vmin) / span, 0.f, 1.f);
}

QRgb ColorScale::rgbAt(float t) const {
    if (std::isnan(t)) return nanColor();
    return (*m_lut)[std::size_t(std::clamp(int(t * 255.f + 0.5f), 0, 255))];
}

QRgb ColorScale::rgb(float v) const { return rgbAt(position(v)); }

float ColorScale::valueAt(float t) const {
    if (m_log) {
        const float lo = std::max(m_vmin, m_logFloor);
        const float hi = std::max(m_vmax, lo * 10.f);
        return std::pow(10.f, std::log10(lo) + t * (std::log10(hi) - std::log10(lo)));
    }
    return m_vmin + t * (m_vmax - m_vmin);
}

bool ColorScale::operator==(const ColorScale& o) const {
    return m_map == o.m_map && m_vmin == o.m_vmin && m_vmax == o.m_vmax && m_log == o.m_log &&
           m_logFloor == o.m_logFloor;
}

}  // namespace attnscope::plots
