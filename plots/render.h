// Rendering figures to images and files: a QImage of a given size, or a PNG / SVG file chosen by
// extension (SVG through QSvgGenerator). Used by `attnscope plot`, the viewer's screenshots and
// the tests. Painting itself lives in heatmap.h and figures.h.
#pragma once

#include <QImage>
#include <QPainter>
#include <QRectF>
#include <QSize>

#include <filesystem>
#include <functional>

namespace attnscope::plots {

using PaintFn = std::function<void(QPainter&, const QRectF&)>;

/// Paints onto a white ARGB image of `size`.
QImage renderImage(QSize size, const PaintFn& paint);
/// Writes a .png or .svg (by extension, case-insensitive). Throws ConfigError for another
/// extension, IoError when the file cannot be written.
void saveFigure(const std::filesystem::path& out, QSize size, const PaintFn& paint);
/// Makes sure a QGuiApplication exists (fonts need one), using the offscreen platform when none
/// was chosen. For headless callers (the CLI); the viewer has its own QApplication.
void ensureGuiApplication();
/// Drops Qt's "XDG_RUNTIME_DIR not set" warning (headless containers); other messages pass.
void quietQtWarnings();

}  // namespace attnscope::plots
