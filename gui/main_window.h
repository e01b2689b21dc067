// The viewer's main window: a browser of runs and prompts, and five views of the chosen prompt
// (head overview grid, head heatmap, token view, metric curves per layer, diff of two runs). Owns
// the open CaptureDocument, loads thumbnails in the background, follows files that are still
// being written, starts captures as child processes, and renders any view offscreen for
// --screenshot. Every error ends in reportError(): a dialog when interactive, otherwise only the
// errorReported signal (tests, screenshots), so a bad file never crashes or blocks the viewer.
#pragma once

#include <QMainWindow>
#include <QThreadPool>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "gui/document.h"
#include "plots/colormap.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QListView;
class QMenu;
class QSpinBox;
class QTabWidget;
class QTreeView;

namespace attnscope::gui {

class CaptureTreeModel;
class CurvesWidget;
class GridWidget;
class HeadChecklistModel;
class HeadGridModel;
class HeatmapWidget;
class TokensWidget;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    enum class View { Grid = 0, Head = 1, Tokens = 2, Layers = 3, Diff = 4 };

    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    /// false: errors are only signalled and printed to stderr, never shown as modal dialogs.
    void setInteractive(bool on) { m_interactive = on; }
    bool openFile(const QString& path);
    bool openMetricsFile(const QString& path);
    /// Selects a run's prompt (empty run: the first run with maps; prompt < 0: its first).
    bool selectPrompt(const QString& run, std::int64_t prompt);
    void selectHead(int layer, int head);
    void setView(View view);
    void setDiffRun(const QString& run);
    void setMetric(const QString& name);
    void setColormap(plots::Colormap map, bool log);
    void setTokenHeads(const std::vector<int>& heads);
    void setSortByMetric(bool on);
    void pickToken(int token, bool fromQuery);

    /// Waits for background loads (thumbnails, tiles) and renders the current view at `size`.
    QImage renderView(QSize size);
    /// Blocks until thumbnails and visible tiles are loaded.
    void waitForIdle();

    CaptureDocument* document() const { return m_doc; }
    CaptureTreeModel* treeModel() const { return m_tree; }
    HeadGridModel* gridModel() const { return m_grid; }
    HeadChecklistModel* headsModel() const { return m_heads; }
    HeatmapWidget* headView() const { return m_headView; }
    HeatmapWidget* diffView() const { return m_diffView; }
    TokensWidget* tokensView() const { return m_tokensView; }
    GridWidget* gridView() const { return m_gridView; }
    QString currentRun() const { return QString::fromStdString(m_run); }
    std::int64_t currentPrompt() const { return m_prompt; }
    QStringList recentFiles() const;

Q_SIGNALS:
    void errorReported(const QString& message);
    void promptLoaded();

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void buildUi();
    void reportError(const QString& message);
    void onOpened(const QString& path);
    void onRefreshed();
    void reloadPrompt();
    void loadThumbnails();
    void updateHeadView();
    void updateTokens();
    void updateLayers();
    void updateDiff();
    void updateMetric();
    void rememberRecent(const QString& path);
    void rebuildRecentMenu();
    void runPromptDialog();
    void saveFigure();
    plots::ColorScale mapScale() const;
    QWidget* figureWidget() const;

    CaptureDocument* m_doc;
    CaptureTreeModel* m_tree;
    HeadGridModel* m_grid;
    HeadChecklistModel* m_heads;
    QTreeView* m_treeView = nullptr;
    QTabWidget* m_tabs = nullptr;
    GridWidget* m_gridView = nullptr;
    HeatmapWidget* m_headView = nullptr;
    TokensWidget* m_tokensView = nullptr;
    CurvesWidget* m_layersView = nullptr;
    HeatmapWidget* m_diffView = nullptr;
    QSpinBox* m_layerSpin = nullptr;
    QSpinBox* m_headSpin = nullptr;
    QComboBox* m_cmapCombo = nullptr;
    QCheckBox* m_logCheck = nullptr;
    QComboBox* m_metricCombo = nullptr;
    QCheckBox* m_sortCheck = nullptr;
    QComboBox* m_diffCombo = nullptr;
    QListView* m_headsList = nullptr;
    QLabel* m_status = nullptr;
    QLabel* m_modelLabel = nullptr;
    QMenu* m_recentMenu = nullptr;

    bool m_interactive = true;
    bool m_updating = false;
    std::string m_run;
    std::int64_t m_prompt = -1;
    int m_layer = 0, m_head = 0;
    std::string m_runB;
    std::string m_metric;
    bool m_metricChosen = false;
    int m_token = -1;
    bool m_fromQuery = true;
    QThreadPool m_pool;
    std::shared_ptr<std::atomic<int>> m_generation = std::make_shared<std::atomic<int>>(0);
};

}  // namespace attnscope::gui
