// "Run prompt…": runs `attnscope capture` as a child process (the viewer links no model
// runtime), shows progress by watching the output file's run grow (prompts done / prompts
// given), can cancel, and reports the file to open. The capture binary is $ATTNSCOPE, else
// `attnscope` next to the viewer, else on PATH.
#pragma once

#include <QDialog>
#include <QProcess>
#include <QTimer>

class QDialogButtonBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace attnscope::gui {

/// Where `attnscope` is, or empty when not found.
QString findAttnscope();

/// Starts `attnscope capture` and watches it. Usable without the dialog (tests): start(),
/// then wait for captured() / failed().
class CaptureJob : public QObject {
    Q_OBJECT
public:
    explicit CaptureJob(QObject* parent = nullptr);
    ~CaptureJob() override;
    /// One prompt per non-empty line of `prompts`. `extraArgs` are appended (e.g. --max-tokens 64).
    void start(const QString& program, const QStringList& prompts, const QString& out,
               const QString& run, const QString& modelDir, const QStringList& extraArgs);
    void cancel();
    bool isRunning() const { return m_proc.state() != QProcess::NotRunning; }
    QStringList arguments() const { return m_args; }

Q_SIGNALS:
    void progress(int done, int total);
    void captured(const QString& path, const QString& run);
    void failed(const QString& message);

private:
    void poll();
    QProcess m_proc;
    QTimer m_timer;
    QString m_out, m_run;
    QStringList m_args;
    int m_total = 0;
    bool m_cancelled = false;
};

class RunPromptDialog : public QDialog {
    Q_OBJECT
public:
    explicit RunPromptDialog(QWidget* parent = nullptr);

Q_SIGNALS:
    void captured(const QString& path, const QString& run);
    void failed(const QString& message);

private:
    void startCapture();
    CaptureJob* m_job;
    QPlainTextEdit* m_prompts;
    QLineEdit* m_model;
    QLineEdit* m_out;
    QLineEdit* m_run;
    QLineEdit* m_extra;
    QProgressBar* m_bar;
    QLabel* m_state;
    QDialogButtonBox* m_buttons;
    QPushButton* m_runButton = nullptr;
};

}  // namespace attnscope::gui
