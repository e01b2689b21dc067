#include "gui/main_window.h"

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListView>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPointer>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QToolBar>
#include <QTreeView>
#include <QVBoxLayout>

#include <algorithm>
#include <cstdio>

#include "core/base/error.h"
#include "gui/models/capture_tree_model.h"
#include "gui/models/head_grid_model.h"
#include "gui/models/token_list_model.h"
#include "gui/run_prompt.h"
#include "gui/tile_source.h"
#include "gui/views.h"
#include "plots/capture_data.h"
#include "plots/render.h"

namespace attnscope::gui {

namespace {
constexpr int kThumb = 96;
constexpr int kMaxRecent = 8;
}  // namespace

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent),
      m_doc(new CaptureDocument(this)),
      m_tree(new CaptureTreeModel(this)),
      m_grid(new HeadGridModel(this)),
      m_heads(new HeadChecklistModel(this)) {
    m_pool.setMaxThreadCount(2);
    setWindowTitle(QStringLiteral("attnscope viewer"));
    setAcceptDrops(true);
    buildUi();
    connect(m_doc, &CaptureDocument::failed, this, &MainWindow::reportError);
    connect(m_doc, &CaptureDocument::opened, this, &MainWindow::onOpened);
    connect(m_doc, &CaptureDocument::refreshed, this, &MainWindow::onRefreshed);
    connect(m_doc, &CaptureDocument::metricsOpened, this, [this](const QString& path) {
        updateMetric();
        updateLayers();
        m_status->setText(QStringLiteral("metrics from %1").arg(QFileInfo(path).fileName()));
    });
}

MainWindow::~MainWindow() {
    ++*m_generation;
    m_pool.clear();
    m_pool.waitForDone();
}

void MainWindow::buildUi() {
    // Browser dock.
    m_treeView = new QTreeView;
    m_treeView->setModel(m_tree);
    m_treeView->setUniformRowHeights(true);
    m_treeView->header()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
    connect(m_treeView->selectionModel(), &QItemSelectionModel::currentChanged, this,
            [this](const QModelIndex& idx) {
                if (m_updating || !idx.isValid()) return;
                const QString run = idx.data(CaptureTreeModel::RunNameRole).toString();
                if (idx.data(CaptureTreeModel::IsRunRole).toBool())
                    selectPrompt(run, -1);
                else
                    selectPrompt(run, idx.data(CaptureTreeModel::PromptIdRole).toLongLong());
            });
    m_modelLabel = new QLabel;
    m_modelLabel->setWordWrap(true);
    auto* side = new QWidget;
    auto* sideLay = new QVBoxLayout(side);
    sideLay->setContentsMargins(2, 2, 2, 2);
    sideLay->addWidget(m_modelLabel);
    sideLay->addWidget(m_treeView, 1);
    auto* dock = new QDockWidget(QStringLiteral("Capture"), this);
    dock->setObjectName(QStringLiteral("captureDock"));
    dock->setWidget(side);
    dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    addDockWidget(Qt::LeftDockWidgetArea, dock);

    // Views.
    m_tabs = new QTabWidget;
    m_gridView = new GridWidget(m_grid);
    m_headView = new HeatmapWidget;
    m_tokensView = new TokensWidget;
    m_layersView = new CurvesWidget;
    m_diffView = new HeatmapWidget;
    m_headsList = new QListView;
    m_headsList->setModel(m_heads);
    m_headsList->setMaximumWidth(110);
    auto* tokPage = new QWidget;
    auto* tokLay = new QHBoxLayout(tokPage);
    tokLay->setContentsMargins(0, 0, 0, 0);
    tokLay->addWidget(m_tokensView, 1);
    tokLay->addWidget(m_headsList);
    m_tabs->addTab(m_gridView, QStringLiteral("Heads"));
    m_tabs->addTab(m_headView, QStringLiteral("Head"));
    m_tabs->addTab(tokPage, QStringLiteral("Tokens"));
    m_tabs->addTab(m_layersView, QStringLiteral("Layers"));
    m_tabs->addTab(m_diffView, QStringLiteral("Diff"));
    setCentralWidget(m_tabs);
    connect(m_gridView, &GridWidget::headActivated, this, [this](int l, int h) {
        selectHead(l, h);
        setView(View::Head);
    });
    connect(m_headView, &HeatmapWidget::hovered, this,
            [this](const QString& t) { m_status->setText(t); });
    connect(m_diffView, &HeatmapWidget::hovered, this,
            [this](const QString& t) { m_status->setText(t); });
    connect(m_tokensView, &TokensWidget::tokenPicked, this, [this](int t, bool q) {
        m_token = t;
        m_fromQuery = q;
    });
    connect(m_heads, &HeadChecklistModel::checkedChanged, this, [this] {
        if (!m_updating) updateTokens();
    });

    // Toolbar.
    auto* tb = addToolBar(QStringLiteral("View"));
    tb->setObjectName(QStringLiteral("viewToolbar"));
    m_layerSpin = new QSpinBox;
    m_headSpin = new QSpinBox;
    tb->addWidget(new QLabel(QStringLiteral(" layer ")));
    tb->addWidget(m_layerSpin);
    tb->addWidget(new QLabel(QStringLiteral(" head ")));
    tb->addWidget(m_headSpin);
    auto headChanged = [this] {
        if (!m_updating) selectHead(m_layerSpin->value(), m_headSpin->value());
    };
    connect(m_layerSpin, &QSpinBox::valueChanged, this, headChanged);
    connect(m_headSpin, &QSpinBox::valueChanged, this, headChanged);
    tb->addSeparator();
    m_cmapCombo = new QComboBox;
    m_cmapCombo->addItems(plots::colormapNames());
    m_logCheck = new QCheckBox(QStringLiteral("log"));
    tb->addWidget(new QLabel(QStringLiteral(" colours ")));
    tb->addWidget(m_cmapCombo);
    tb->addWidget(m_logCheck);
    auto scaleChanged = [this] {
        if (m_updating) return;
        m_headView->setScale(mapScale());
        loadThumbnails();
    };
    connect(m_cmapCombo, &QComboBox::currentTextChanged, this, scaleChanged);
    connect(m_logCheck, &QCheckBox::toggled, this, scaleChanged);
    tb->addSeparator();
    m_metricCombo = new QComboBox;
    m_metricCombo->setMinimumContentsLength(18);
    m_sortCheck = new QCheckBox(QStringLiteral("sort"));
    tb->addWidget(new QLabel(QStringLiteral(" metric ")));
    tb->addWidget(m_metricCombo);
    tb->addWidget(m_sortCheck);
    connect(m_metricCombo, &QComboBox::currentIndexChanged, this, [this](int) {
        if (m_updating) return;
        m_metric = m_metricCombo->currentData().toString().toStdString();
        m_metricChosen = true;
        updateMetric();
        updateLayers();
    });
    connect(m_sortCheck, &QCheckBox::toggled, m_gridView, &GridWidget::setSortByMetric);
    tb->addSeparator();
    m_diffCombo = new QComboBox;
    m_diffCombo->setMinimumContentsLength(8);
    tb->addWidget(new QLabel(QStringLiteral(" diff with ")));
    tb->addWidget(m_diffCombo);
    connect(m_diffCombo, &QComboBox::currentTextChanged, this, [this](const QString& r) {
        if (m_updating) return;
        m_runB = r.toStdString();
        updateDiff();
    });

    // Menus.
    QMenu* file = menuBar()->addMenu(QStringLiteral("&File"));
    file->addAction(QStringLiteral("&Open capture…"), QKeySequence::Open, this, [this] {
        const QString p = QFileDialog::getOpenFileName(
            this, QStringLiteral("Open capture"), QString(),
            QStringLiteral("HDF5 captures (*.h5 *.hdf5);;All files (*)"));
        if (!p.isEmpty()) openFile(p);
    });
    file->addAction(QStringLiteral("Open &metrics file…"), this, [this] {
        const QString p = QFileDialog::getOpenFileName(
            this, QStringLiteral("Open metrics (attnscope analyze --out)"), QString(),
            QStringLiteral("HDF5 (*.h5 *.hdf5);;All files (*)"));
        if (!p.isEmpty()) openMetricsFile(p);
    });
    m_recentMenu = file->addMenu(QStringLiteral("Open &recent"));
    rebuildRecentMenu();
    file->addAction(QStringLiteral("&Run prompt…"), QKeySequence(Qt::CTRL | Qt::Key_R), this,
                    &MainWindow::runPromptDialog);
    file->addAction(QStringLiteral("&Save figure…"), QKeySequence::Save, this,
                    &MainWindow::saveFigure);
    file->addSeparator();
    file->addAction(QStringLiteral("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    m_status = new QLabel;
    statusBar()->addWidget(m_status, 1);
}

void MainWindow::reportError(const QString& message) {
    Q_EMIT errorReported(message);
    if (m_interactive && isVisible())
        QMessageBox::critical(this, QStringLiteral("attnscope viewer"), message);
    else
        std::fprintf(stderr, "attnscope-viewer: %s\n", message.toLocal8Bit().constData());
}

plots::ColorScale MainWindow::mapScale() const {
    plots::Colormap map = plots::Colormap::kViridis;
    try {
        map = plots::parseColormap(m_cmapCombo->currentText());
    } catch (const Error&) {
    }
    return plots::ColorScale(map, 0.f, 1.f, m_logCheck->isChecked());
}

bool MainWindow::openFile(const QString& path) { return m_doc->open(path); }

bool MainWindow::openMetricsFile(const QString& path) {
    if (!m_doc->isOpen()) {
        reportError(QStringLiteral("Open a capture before its metrics file."));
        return false;
    }
    return m_doc->openMetrics(path);
}

void MainWindow::onOpened(const QString& path) {
    rememberRecent(path);
    setWindowTitle(QStringLiteral("%1 — attnscope viewer").arg(QFileInfo(path).fileName()));
    const auto& m = m_doc->reader()->model();
    m_modelLabel->setText(
        QStringLiteral("<b>%1</b><br>%2 · %3 layers × %4 heads (%5 KV)")
            .arg(QFileInfo(path).fileName().toHtmlEscaped(), QString::fromStdString(m.arch))
            .arg(m.n_layers)
            .arg(m.n_heads)
            .arg(m.n_kv_heads));
    m_updating = true;
    m_layerSpin->setRange(0, int(std::max<std::int64_t>(0, m.n_layers - 1)));
    m_headSpin->setRange(0, int(std::max<std::int64_t>(0, m.n_heads - 1)));
    m_updating = false;
    m_run.clear();
    m_prompt = -1;
    m_updating = true;  // the tree view moves its current index while rows arrive: not a choice
    m_tree->setSnapshot({});
    m_tree->setSnapshot(m_doc->snapshot());
    m_treeView->expandToDepth(0);
    m_updating = false;
    selectPrompt(QString(), -1);
}

void MainWindow::onRefreshed() {
    m_updating = true;
    m_tree->setSnapshot(m_doc->snapshot());
    m_updating = false;
    if (m_prompt < 0) {
        selectPrompt(QString(), -1);  // the first prompt may just have arrived
        return;
    }
    updateMetric();
    updateLayers();
    m_status->setText(QStringLiteral("file changed on disk: re-read"));
}

bool MainWindow::selectPrompt(const QString& runName, std::int64_t prompt) {
    if (!m_doc->isOpen()) return false;
    try {
        const auto reader = m_doc->reader();
        std::string run = runName.toStdString();
        if (run.empty()) {
            auto runs = reader->runs();  // "main" first, then by name
            std::stable_partition(runs.begin(), runs.end(),
                                  [](const store::RunSummary& s) { return s.info.name == "main"; });
            for (const auto& r : runs) {
                for (std::int64_t p : reader->run_prompts(r.info.name))
                    if (!plots::patternLayers(*reader, r.info.name, p).empty()) {
                        run = r.info.name;
                        break;
                    }
                if (!run.empty()) break;
            }
            if (run.empty()) {
                const auto runs = reader->runs();
                if (runs.empty()) return false;  // a capture that has not written a run yet
                run = runs.front().info.name;
            }
        }
        const auto ids = reader->run_prompts(run);
        if (ids.empty()) {
            m_run = run;
            m_prompt = -1;
            return false;
        }
        if (prompt < 0) prompt = ids.front();
        if (std::find(ids.begin(), ids.end(), prompt) == ids.end())
            throw ConfigError("run '" + run + "' has no complete prompt " + std::to_string(prompt));
        m_run = run;
        m_prompt = prompt;
        m_token = -1;
        m_updating = true;
        const QModelIndex idx = m_tree->promptIndex(QString::fromStdString(run), prompt);
        if (idx.isValid()) m_treeView->setCurrentIndex(idx);
        m_updating = false;
        reloadPrompt();
        return true;
    } catch (const std::exception& e) {
        m_updating = false;
        reportError(QStringLiteral("Cannot show this prompt: %1").arg(QString::fromUtf8(e.what())));
        return false;
    }
}

void MainWindow::reloadPrompt() {
    const auto reader = m_doc->reader();
    const int L = int(reader->model().n_layers), H = int(reader->model().n_heads);
    m_grid->reset(L, H);
    m_gridView->setCaption(
        QStringLiteral("attention heads — run '%1'").arg(QString::fromStdString(m_run)),
        plots::promptCaption(*reader, m_prompt));
    // Diff candidates: other runs holding this prompt.
    m_updating = true;
    m_diffCombo->clear();
    for (const auto& r : reader->runs()) {
        if (r.info.name == m_run) continue;
        const auto ids = reader->run_prompts(r.info.name);
        if (std::find(ids.begin(), ids.end(), m_prompt) != ids.end())
            m_diffCombo->addItem(QString::fromStdString(r.info.name));
    }
    if (!m_runB.empty() && m_diffCombo->findText(QString::fromStdString(m_runB)) >= 0)
        m_diffCombo->setCurrentText(QString::fromStdString(m_runB));
    m_runB = m_diffCombo->currentText().toStdString();
    m_heads->setHeads(H, {m_head});
    m_updating = false;
    // Keep the head if the new prompt has it, else the first stored one.
    const auto layers = plots::patternLayers(*reader, m_run, m_prompt);
    if (!layers.empty() && std::find(layers.begin(), layers.end(), m_layer) == layers.end())
        m_layer = layers.front();
    updateMetric();
    loadThumbnails();
    selectHead(m_layer, m_head);
    updateLayers();
    Q_EMIT promptLoaded();
}

void MainWindow::loadThumbnails() {
    if (!m_doc->isOpen() || m_prompt < 0) return;
    const int gen = ++*m_generation;
    auto genPtr = m_generation;
    const auto reader = m_doc->reader();
    const std::string run = m_run;
    const std::int64_t prompt = m_prompt;
    const plots::ColorScale scale = mapScale();
    QPointer<MainWindow> self(this);
    for (int l = 0; l < m_grid->layers(); ++l) {
        m_pool.start([=] {
            if (genPtr->load() != gen) return;
            std::vector<QImage> thumbs;
            QString error;
            try {
                thumbs = plots::layerThumbnails(*reader, run, prompt, l, kThumb, scale);
            } catch (const std::exception& e) {
                error = QString::fromUtf8(e.what());
            }
            QMetaObject::invokeMethod(
                self,
                [=] {
                    if (!self || genPtr->load() != gen) return;
                    if (!error.isEmpty())
                        m_status->setText(QStringLiteral("layer %1: %2").arg(l).arg(error));
                    else
                        m_grid->setLayerThumbnails(l, thumbs);
                },
                Qt::QueuedConnection);
        });
    }
}

void MainWindow::updateMetric() {
    if (!m_doc->isOpen() || m_prompt < 0) return;
    try {
        const auto reader = m_doc->reader();
        const auto companion = m_doc->metricsReader();
        const plots::MetricSources src(*reader, companion.get());
        const auto names = src.headMetricNames(m_run, m_prompt);
        if (!m_metricChosen || std::find(names.begin(), names.end(), m_metric) == names.end())
            m_metric = m_metricChosen && m_metric.empty() ? std::string()
                                                          : plots::defaultHeadMetric(names);
        m_updating = true;
        m_metricCombo->clear();
        m_metricCombo->addItem(QStringLiteral("(none)"), QString());
        for (const auto& n : names)
            m_metricCombo->addItem(plots::metricLabel(n), QString::fromStdString(n));
        m_metricCombo->setCurrentIndex(
            std::max(0, m_metricCombo->findData(QString::fromStdString(m_metric))));
        m_metricCombo->setEnabled(!names.empty());
        m_metricCombo->setToolTip(
            names.empty() ? QStringLiteral("No metrics for this prompt: run `attnscope analyze "
                                           "--in FILE --out M.h5` and use File › Open metrics file")
                          : QString());
        m_updating = false;
        if (const auto m =
                m_metric.empty() ? std::nullopt : src.headMetric(m_run, m_prompt, m_metric)) {
            m_grid->setMetric(plots::metricLabel(m_metric), m->values);
            m_gridView->setMetricScale(
                plots::autoScale(m->values, plots::Colormap::kMagma, false, false));
        } else {
            m_grid->setMetric(QString(), {});
        }
    } catch (const std::exception& e) {
        m_updating = false;
        reportError(QStringLiteral("Cannot read metrics: %1").arg(QString::fromUtf8(e.what())));
    }
}

void MainWindow::selectHead(int layer, int head) {
    m_layer = layer;
    m_head = head;
    m_updating = true;
    m_layerSpin->setValue(layer);
    m_headSpin->setValue(head);
    m_heads->setChecked({head});
    m_updating = false;
    m_gridView->setSelected(layer, head);
    updateHeadView();
    updateTokens();
    updateDiff();
}

void MainWindow::updateHeadView() {
    if (!m_doc->isOpen() || m_prompt < 0) return;
    try {
        const auto reader = m_doc->reader();
        const std::int64_t T = plots::mapSize(*reader, m_run, m_prompt, m_layer);
        if (T == 0 || !plots::headStored(*reader, m_run, m_prompt, m_layer, m_head)) {
            m_headView->showMessage(
                QStringLiteral(
                    "Run '%1' stores no attention map of layer %2, head %3 for this prompt.")
                    .arg(QString::fromStdString(m_run))
                    .arg(m_layer)
                    .arg(m_head));
            return;
        }
        plots::HeatmapSpec spec = plots::headSpec(*reader, m_run, m_prompt, m_layer, m_head);
        spec.scale = mapScale();
        auto src = std::make_shared<TiledMapSource>(reader, m_run, m_prompt,
                                                    plots::patternHook(m_layer), m_head, T);
        connect(src.get(), &TiledMapSource::failed, this, [this](const QString& msg) {
            m_status->setText(QStringLiteral("read error: %1").arg(msg));
        });
        m_headView->setCells(src, spec);
    } catch (const std::exception& e) {
        m_headView->showMessage(QString::fromUtf8(e.what()));
        reportError(QStringLiteral("Cannot show layer %1 head %2: %3")
                        .arg(m_layer)
                        .arg(m_head)
                        .arg(QString::fromUtf8(e.what())));
    }
}

void MainWindow::updateTokens() {
    if (!m_doc->isOpen() || m_prompt < 0) return;
    try {
        const auto reader = m_doc->reader();
        std::vector<int> heads = m_heads->checkedHeads();
        if (plots::mapSize(*reader, m_run, m_prompt, m_layer) == 0) heads.clear();
        const auto stored =
            heads.empty() ? std::vector<std::int64_t>{}
                          : reader->array_info(m_run, m_prompt, plots::patternHook(m_layer)).heads;
        heads.erase(
            std::remove_if(
                heads.begin(), heads.end(),
                [&](int h) { return std::find(stored.begin(), stored.end(), h) == stored.end(); }),
            heads.end());
        plots::TokensSpec spec =
            plots::tokensSpec(*reader, m_run, m_prompt, m_layer, heads, m_token, m_fromQuery);
        const auto companion = m_doc->metricsReader();
        plots::addTokenMetric(spec, plots::MetricSources(*reader, companion.get()), m_run,
                              m_prompt);
        m_tokensView->setSpec(spec);
    } catch (const std::exception& e) {
        reportError(
            QStringLiteral("Cannot show the token view: %1").arg(QString::fromUtf8(e.what())));
    }
}

void MainWindow::updateLayers() {
    if (!m_doc->isOpen() || m_prompt < 0) return;
    try {
        const auto reader = m_doc->reader();
        const auto companion = m_doc->metricsReader();
        const plots::MetricSources src(*reader, companion.get());
        const auto m = m_metric.empty() ? std::nullopt : src.headMetric(m_run, m_prompt, m_metric);
        if (!m) {
            m_layersView->setMessage(
                QStringLiteral(
                    "No per-head metrics for this prompt.\n\nCompute them with\n  attnscope "
                    "analyze --in %1 --out metrics.h5\n"
                    "and open metrics.h5 with File › Open metrics file (or --metrics metrics.h5).")
                    .arg(QFileInfo(m_doc->path()).fileName()));
            return;
        }
        m_layersView->setSpec(plots::layerCurves(*m, plots::promptCaption(*reader, m_prompt)));
    } catch (const std::exception& e) {
        reportError(
            QStringLiteral("Cannot show metric curves: %1").arg(QString::fromUtf8(e.what())));
    }
}

void MainWindow::updateDiff() {
    if (!m_doc->isOpen() || m_prompt < 0) return;
    if (m_runB.empty()) {
        m_diffView->showMessage(
            QStringLiteral("No other run holds this prompt: capture it again with --run NAME "
                           "(e.g. with an intervention) to compare."));
        return;
    }
    try {
        const auto reader = m_doc->reader();
        for (const std::string& r : {m_run, m_runB})
            if (!plots::headStored(*reader, r, m_prompt, m_layer, m_head)) {
                m_diffView->showMessage(
                    QStringLiteral("Run '%1' stores no map of layer %2, head %3 for this prompt.")
                        .arg(QString::fromStdString(r))
                        .arg(m_layer)
                        .arg(m_head));
                return;
            }
        std::int64_t T = 0;
        // Diffs are dense: they are for prompts of ordinary length (two [T, T] float maps).
        std::vector<float> d =
            plots::diffHead(*reader, m_run, m_runB, m_prompt, m_layer, m_head, &T);
        plots::HeatmapSpec spec = plots::headSpec(*reader, m_run, m_prompt, m_layer, m_head);
        spec.title = QStringLiteral("difference '%1' − '%2' — layer %3, head %4")
                         .arg(QString::fromStdString(m_run), QString::fromStdString(m_runB))
                         .arg(m_layer)
                         .arg(m_head);
        spec.colorbarLabel = QStringLiteral("weight difference");
        spec.scale = plots::autoScale(d, plots::Colormap::kRdBu, false, true);
        m_diffView->setCells(std::make_shared<plots::DenseCells>(std::move(d), T, T), spec);
    } catch (const std::exception& e) {
        m_diffView->showMessage(QString::fromUtf8(e.what()));
        reportError(QStringLiteral("Cannot show the diff: %1").arg(QString::fromUtf8(e.what())));
    }
}

void MainWindow::setView(View view) { m_tabs->setCurrentIndex(int(view)); }

void MainWindow::setDiffRun(const QString& run) {
    m_runB = run.toStdString();
    m_updating = true;
    m_diffCombo->setCurrentText(run);
    m_updating = false;
    updateDiff();
}

void MainWindow::setMetric(const QString& name) {
    m_metric = name.toStdString();
    m_metricChosen = true;
    updateMetric();
    updateLayers();
}

void MainWindow::setColormap(plots::Colormap map, bool log) {
    m_updating = true;
    m_cmapCombo->setCurrentText(plots::colormapName(map));
    m_logCheck->setChecked(log);
    m_updating = false;
    m_headView->setScale(mapScale());
    loadThumbnails();
}

void MainWindow::setTokenHeads(const std::vector<int>& heads) {
    m_updating = true;
    m_heads->setChecked(heads);
    m_updating = false;
    updateTokens();
}

void MainWindow::setSortByMetric(bool on) {
    m_sortCheck->setChecked(on);
    m_gridView->setSortByMetric(on);
}

void MainWindow::pickToken(int token, bool fromQuery) {
    m_token = token;
    m_fromQuery = fromQuery;
    m_tokensView->pick(token, fromQuery);
}

void MainWindow::waitForIdle() {
    for (int i = 0; i < 100; ++i) {
        m_pool.waitForDone();
        QCoreApplication::processEvents();
        if (auto* t = dynamic_cast<TiledMapSource*>(m_headView->cells())) t->waitForIdle();
        QCoreApplication::processEvents();
        if (m_pool.activeThreadCount() == 0) break;
    }
}

QWidget* MainWindow::figureWidget() const {
    switch (View(m_tabs->currentIndex())) {
        case View::Grid:
            return m_gridView;
        case View::Head:
            return m_headView;
        case View::Tokens:
            return m_tokensView;
        case View::Layers:
            return m_layersView;
        case View::Diff:
            return m_diffView;
    }
    return m_gridView;
}

QImage MainWindow::renderView(QSize size) {
    // Only the figure, at exactly `size`, with the widget's own painting code.
    const auto paint = [this](QPainter& p, const QRectF& r) {
        switch (View(m_tabs->currentIndex())) {
            case View::Grid:
                m_gridView->paintFigure(p, r);
                break;
            case View::Head:
                m_headView->paintFigure(p, r);
                break;
            case View::Tokens:
                m_tokensView->paintFigure(p, r);
                break;
            case View::Layers:
                m_layersView->paintFigure(p, r);
                break;
            case View::Diff:
                m_diffView->paintFigure(p, r);
                break;
        }
    };
    QImage img;
    for (int pass = 0; pass < 3; ++pass) {  // paint (which requests tiles), wait, paint again
        img = plots::renderImage(size, paint);
        waitForIdle();
    }
    return plots::renderImage(size, paint);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    if (event->mimeData()->hasUrls() && !event->mimeData()->urls().isEmpty() &&
        event->mimeData()->urls().first().isLocalFile())
        event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
    const auto urls = event->mimeData()->urls();
    if (!urls.isEmpty() && urls.first().isLocalFile()) {
        openFile(urls.first().toLocalFile());
        event->acceptProposedAction();
    }
}

QStringList MainWindow::recentFiles() const {
    return QSettings().value(QStringLiteral("recentFiles")).toStringList();
}

void MainWindow::rememberRecent(const QString& path) {
    QStringList l = recentFiles();
    const QString abs = QFileInfo(path).absoluteFilePath();
    l.removeAll(abs);
    l.prepend(abs);
    while (l.size() > kMaxRecent) l.removeLast();
    QSettings().setValue(QStringLiteral("recentFiles"), l);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
    m_recentMenu->clear();
    for (const QString& p : recentFiles())
        m_recentMenu->addAction(p, this, [this, p] { openFile(p); });
    m_recentMenu->setEnabled(!m_recentMenu->isEmpty());
}

void MainWindow::runPromptDialog() {
    auto* dlg = new RunPromptDialog(this);
    dlg->setAttribute(Qt::WA_DeleteOnClose);
    connect(dlg, &RunPromptDialog::captured, this, [this](const QString& path, const QString& run) {
        if (openFile(path)) selectPrompt(run, -1);
    });
    connect(dlg, &RunPromptDialog::failed, this, &MainWindow::reportError);
    dlg->show();
}

void MainWindow::saveFigure() {
    const QString p = QFileDialog::getSaveFileName(this, QStringLiteral("Save figure"),
                                                   QStringLiteral("figure.png"),
                                                   QStringLiteral("PNG (*.png);;SVG (*.svg)"));
    if (p.isEmpty()) return;
    QWidget* w = figureWidget();
    try {
        plots::saveFigure(p.toStdString(), w->size(), [this](QPainter& painter, const QRectF& r) {
            switch (View(m_tabs->currentIndex())) {
                case View::Grid:
                    m_gridView->paintFigure(painter, r);
                    break;
                case View::Head:
                    m_headView->paintFigure(painter, r);
                    break;
                case View::Tokens:
                    m_tokensView->paintFigure(painter, r);
                    break;
                case View::Layers:
                    m_layersView->paintFigure(painter, r);
                    break;
                case View::Diff:
                    m_diffView->paintFigure(painter, r);
                    break;
            }
        });
    } catch (const std::exception& e) {
        reportError(QString::fromUtf8(e.what()));
    }
}

}  // namespace attnscope::gui
