#include "gui/run_prompt.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileInfo>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QStandardPaths>
#include <QVBoxLayout>

#include "core/store/reader.h"

namespace attnscope::gui {

QString findAttnscope() {
    const QString env = qEnvironmentVariable("ATTNSCOPE");
    if (!env.isEmpty() && QFileInfo(env).isExecutable()) return env;
    const QString local =
        QDir(QCoreApplication::applicationDirPath()).filePath(QStringLiteral("attnscope"));
    if (QFileInfo(local).isExecutable()) return local;
    return QStandardPaths::findExecutable(QStringLiteral("attnscope"));
}

CaptureJob::CaptureJob(QObject* parent) : QObject(parent) {
    m_timer.setInterval(300);
    connect(&m_timer, &QTimer::timeout, this, &CaptureJob::poll);
    connect(&m_proc, &QProcess::errorOccurred, this, [this](QProcess::ProcessError err) {
        if (err != QProcess::FailedToStart) return;
        m_timer.stop();
        Q_EMIT failed(
            QStringLiteral("Cannot start %1: %2").arg(m_proc.program(), m_proc.errorString()));
    });
    connect(&m_proc, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
        m_timer.stop();
        if (m_cancelled) {
            Q_EMIT failed(QStringLiteral("Capture cancelled."));
            return;
        }
        if (status == QProcess::NormalExit && code == 0) {
            poll();
            Q_EMIT captured(m_out, m_run);
            return;
        }
        const QString err = QString::fromLocal8Bit(m_proc.readAllStandardError()).trimmed();
        Q_EMIT failed(QStringLiteral("attnscope capture failed (exit code %1):\n%2")
                          .arg(code)
                          .arg(err.right(2000)));
    });
}

CaptureJob::~CaptureJob() {
    if (m_proc.state() != QProcess::NotRunning) {
        m_cancelled = true;
        m_proc.kill();
        m_proc.waitForFinished(3000);
    }
}

void CaptureJob::start(const QString& program, const QStringList& prompts, const QString& out,
                       const QString& run, const QString& modelDir, const QStringList& extraArgs) {
    m_out = out;
    m_run = run.isEmpty() ? QStringLiteral("main") : run;
    m_args = {
        QStringLiteral("capture"), QStringLiteral("--out"), out, QStringLiteral("--run"), m_run,
        QStringLiteral("--quiet")};
    m_total = 0;
    for (const QString& p : prompts) {
        if (p.trimmed().isEmpty()) continue;
        m_args << QStringLiteral("--prompt") << p;
        ++m_total;
    }
    if (!modelDir.isEmpty()) m_args << QStringLiteral("--model") << modelDir;
    m_args << extraArgs;
    if (m_total == 0) {
        Q_EMIT failed(QStringLiteral("Enter at least one prompt."));
        return;
    }
    if (program.isEmpty()) {
        Q_EMIT failed(QStringLiteral(
            "Cannot find the attnscope program: build it, put it on PATH, or set ATTNSCOPE."));
        return;
    }
    m_cancelled = false;
    Q_EMIT progress(0, m_total);
    m_proc.start(program, m_args);
    m_timer.start();
}

void CaptureJob::cancel() {
    if (m_proc.state() == QProcess::NotRunning) return;
    m_cancelled = true;
    m_proc.terminate();
    if (!m_proc.waitForFinished(2000)) m_proc.kill();
}

void CaptureJob::poll() {
    // The run's n_prompts_done is updated and flushed per prompt; the reader opens without file
    // locking, so this works while the capture writes.
    try {
        if (!QFileInfo::exists(m_out)) return;
        const store::Reader r(m_out.toStdString());
        Q_EMIT progress(int(r.run(m_run.toStdString()).n_prompts_done), m_total);
    } catch (const std::exception&) {
        // Not there yet or mid-flush.
    }
}

RunPromptDialog::RunPromptDialog(QWidget* parent)
    : QDialog(parent),
      m_job(new CaptureJob(this)),
      m_prompts(new QPlainTextEdit),
      m_model(new QLineEdit),
      m_out(new QLineEdit),
      m_run(new QLineEdit(QStringLiteral("main"))),
      m_extra(new QLineEdit),
      m_bar(new QProgressBar),
      m_state(new QLabel) {
    setWindowTitle(QStringLiteral("Run prompt"));
    m_prompts->setPlaceholderText(QStringLiteral("One prompt per line"));
    m_model->setPlaceholderText(
        QStringLiteral("model folder (default: attnscope's bundled model)"));
    m_out->setText(QDir(QStandardPaths::writableLocation(QStandardPaths::TempLocation))
                       .filePath(QStringLiteral("attnscope-%1.h5")
                                     .arg(QDateTime::currentDateTime().toString(
                                         QStringLiteral("yyyyMMdd-HHmmss")))));
    m_extra->setPlaceholderText(
        QStringLiteral("extra capture options, e.g. --max-tokens 256 --layers 0-3"));
    auto* form = new QFormLayout;
    form->addRow(QStringLiteral("Prompts"), m_prompts);
    form->addRow(QStringLiteral("Model"), m_model);
    form->addRow(QStringLiteral("Output file"), m_out);
    form->addRow(QStringLiteral("Run name"), m_run);
    form->addRow(QStringLiteral("Options"), m_extra);
    m_buttons = new QDialogButtonBox(QDialogButtonBox::Cancel);
    m_runButton = m_buttons->addButton(QStringLiteral("Run"), QDialogButtonBox::AcceptRole);
    auto* lay = new QVBoxLayout(this);
    lay->addLayout(form);
    lay->addWidget(m_bar);
    lay->addWidget(m_state);
    lay->addWidget(m_buttons);
    m_bar->setRange(0, 1);
    m_bar->setValue(0);
    connect(m_runButton, &QPushButton::clicked, this, &RunPromptDialog::startCapture);
    connect(m_buttons, &QDialogButtonBox::rejected, this, [this] {
        if (m_job->isRunning())
            m_job->cancel();
        else
            reject();
    });
    connect(m_job, &CaptureJob::progress, this, [this](int done, int total) {
        m_bar->setRange(0, total);
        m_bar->setValue(done);
        m_state->setText(QStringLiteral("%1 / %2 prompts").arg(done).arg(total));
    });
    connect(m_job, &CaptureJob::captured, this, [this](const QString& path, const QString& run) {
        Q_EMIT captured(path, run);
        accept();
    });
    connect(m_job, &CaptureJob::failed, this, [this](const QString& msg) {
        m_state->setText(msg.left(300));
        m_runButton->setEnabled(true);
        if (msg != QLatin1String("Capture cancelled.")) Q_EMIT failed(msg);
    });
}

void RunPromptDialog::startCapture() {
    m_runButton->setEnabled(false);
    m_state->setText(QStringLiteral("starting attnscope capture…"));
    m_job->start(findAttnscope(), m_prompts->toPlainText().split(QLatin1Char('\n')), m_out->text(),
                 m_run->text(), m_model->text(), QProcess::splitCommand(m_extra->text()));
}

}  // namespace attnscope::gui
