// Shared by the plots and gui tests: one QApplication on the offscreen platform, and small
// synthetic captures written with the store's own Writer whose maps have known values.
#pragma once

#include <QApplication>
#include <QImage>
#include <QStandardPaths>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/store/half.h"
#include "core/store/writer.h"

namespace attnscope::test {

/// The process's QApplication (created on first use, offscreen unless QT_QPA_PLATFORM is set).
inline QApplication& qtApp() {
    static int argc = 1;
    static char name[] = "attnscope_tests_gui";
    static char* argv[] = {name, nullptr};
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    // Recent files and other QSettings go to a test location, never the user's.
    QStandardPaths::setTestModeEnabled(true);
    // Deliberately never destroyed (see plots/render.cpp): tests end with the process.
    static QApplication* app = new QApplication(argc, argv);
    return *app;
}

/// Known maps, [T, T] row = query. (layer, head):
/// (0,0) everything on key 0 (a sink); (0,1) the diagonal; (1,0) uniform over 0..q;
/// (1,1) the previous token. `variant` 1 swaps (0,0) to the diagonal (for diffs).
inline std::vector<float> knownMap(int layer, int head, std::int64_t T, int variant = 0) {
    std::vector<float> m(std::size_t(T * T), 0.f);
    for (std::int64_t q = 0; q < T; ++q) {
        int kind = layer * 2 + head;
        if (variant == 1 && kind == 0) kind = 1;
        switch (kind) {
            case 0:
                m[std::size_t(q * T)] = 1.f;
                break;
            case 1:
                m[std::size_t(q * T + q)] = 1.f;
                break;
            case 2:
                for (std::int64_t k = 0; k <= q; ++k)
                    m[std::size_t(q * T + k)] = 1.f / float(q + 1);
                break;
            default:
                m[std::size_t(q * T + std::max<std::int64_t>(q - 1, 0))] = 1.f;
                break;
        }
    }
    return m;
}

inline store::ModelInfo tinyModel() {
    store::ModelInfo m;
    m.arch = "llama";
    m.n_layers = 2;
    m.n_heads = 2;
    m.n_kv_heads = 1;
    m.d_model = 8;
    m.d_head = 4;
    m.vocab_size = 100;
    m.source = "synthetic";
    m.config_json = "{}";
    return m;
}

inline store::Prompt tinyPrompt(std::int64_t id, std::int64_t T) {
    store::Prompt p;
    p.id = id;
    p.text = "prompt " + std::to_string(id);
    p.source = "test";
    for (std::int64_t i = 0; i < T; ++i) {
        p.tokens.push_back(std::int32_t(i + 1));
        p.token_str.push_back(i == 0 ? "<s>" : " tok" + std::to_string(i));
    }
    return p;
}

/// Writes run `run` with `nPrompts` prompts of T tokens, both layers' maps, and (with
/// `metrics`) entropy_norm_mean = [[0.1, 0.2], [0.3, 0.4]] and a per-token fai.
inline void writeRun(const std::filesystem::path& file, const std::string& run, int nPrompts,
                     std::int64_t T, int variant, bool metrics) {
    store::RunInfo ri;
    ri.name = run;
    ri.hooks = {"blocks.*.attn.hook_pattern"};
    store::Writer w(file, tinyModel(), ri);
    for (int p = 0; p < nPrompts; ++p) {
        w.begin_prompt(tinyPrompt(p, T));
        for (int l = 0; l < 2; ++l) {
            std::vector<float> a;
            for (int h = 0; h < 2; ++h) {
                const auto m = knownMap(l, h, T, variant);
                a.insert(a.end(), m.begin(), m.end());
            }
            w.write_hook("blocks." + std::to_string(l) + ".attn.hook_pattern",
                         store::FloatRef::f32(a.data(), {2, T, T}));
        }
        if (metrics) {
            const float ent[4] = {0.1f, 0.2f, 0.3f, 0.4f};
            store::MetricInfo mi;
            mi.dims = "layer,head";
            mi.units = "normalized";
            w.write_metric("entropy_norm_mean", store::FloatRef::f32(ent, {2, 2}), mi);
            std::vector<float> fai(std::size_t(T), 0.5f);
            store::MetricInfo fi;
            fi.dims = "pos";
            fi.units = "fraction";
            w.write_metric("fai", store::FloatRef::f32(fai.data(), {T}), fi);
        }
        w.end_prompt();
    }
    w.close();
}

/// A capture with runs "main" (metrics) and "alt" (variant 1), 2 prompts of T tokens.
inline void makeCapture(const std::filesystem::path& file, std::int64_t T = 6) {
    writeRun(file, "main", 2, T, 0, true);
    writeRun(file, "alt", 2, T, 1, false);
}

/// Pixel distance between two colours (max over channels).
inline int colorDistance(QRgb a, QRgb b) {
    return std::max({std::abs(qRed(a) - qRed(b)), std::abs(qGreen(a) - qGreen(b)),
                     std::abs(qBlue(a) - qBlue(b))});
}

}  // namespace attnscope::test
