// libFuzzer target: the HDF5 capture reader on arbitrary and mutated files. The reader opens
// files by path, so each input is written to a scratch file on tmpfs (/dev/shm) and opened with
// store::Reader; every listing and read of the public API is then walked (bounded: at most 8
// prompts, 8 runs, 16 hooks per prompt, arrays of at most 4 Mi elements) so the schema
// validation of each item is exercised. Seeds: samples/store/capture-v1.h5 and small captures
// (fuzz/corpus/store_reader), plus fuzz/dicts/hdf5.dict.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <hdf5.h>

#include "core/base/error.h"
#include "core/store/reader.h"
#include "fuzz/fuzz_util.h"

using namespace attnscope;

namespace {

constexpr std::int64_t kMaxElements = std::int64_t{1} << 22;

// Element count of `shape`, or -1 when it exceeds kMaxElements (the harness then skips the
// read: a huge array declared by a tiny file is legal in HDF5, as chunks may be missing).
std::int64_t bounded_numel(const std::vector<std::int64_t>& shape) {
    std::int64_t n = 1;
    for (const auto d : shape) {
        if (d < 0) __builtin_trap();  // the reader must never report a negative dimension
        if (d == 0) return 0;
        if (n > kMaxElements / d) return -1;
        n *= d;
    }
    return n;
}

template <class F>
void guarded(F&& f) {
    try {
        f();
    } catch (const Error&) {
    }
}

void walk(const store::Reader& r) {
    (void)r.file_info();
    (void)r.model();
    std::vector<std::int64_t> ids;
    guarded([&] {
        const auto prompts = r.prompts();
        for (std::size_t i = 0; i < prompts.size() && i < 8; ++i) ids.push_back(prompts[i].id);
    });
    for (const auto id : ids) {
        guarded([&] { (void)r.tokens(id); });
        guarded([&] { (void)r.token_strings(id); });
    }
    std::vector<std::string> runs;
    guarded([&] {
        for (const auto& run : r.runs()) runs.push_back(run.info.name);
    });
    if (runs.empty()) runs.push_back("main");  // listing failed: try the usual name directly
    for (std::size_t ri = 0; ri < runs.size() && ri < 8; ++ri) {
        const std::string& run = runs[ri];
        guarded([&] { (void)r.run(run); });
        guarded([&] {
            for (const auto& m : r.run_metrics(run)) guarded([&] { (void)r.read_run_metric(run, m); });
        });
        std::vector<std::int64_t> rp;
        guarded([&] { rp = r.run_prompts(run, true); });
        for (std::size_t pi = 0; pi < rp.size() && pi < 8; ++pi) {
            const std::int64_t p = rp[pi];
            guarded([&] {
                for (const auto& m : r.metrics(run, p)) guarded([&] { (void)r.read_metric(run, p, m); });
            });
            std::vector<std::string> hooks;
            guarded([&] { hooks = r.hooks(run, p); });
            for (std::size_t hi = 0; hi < hooks.size() && hi < 16; ++hi) {
                const std::string& hook = hooks[hi];
                guarded([&] {
                    const store::ArrayInfo a = r.array_info(run, p, hook);
                    const std::int64_t n = bounded_numel(a.shape);
                    if (n < 0) return;
                    const auto all = r.read_array(run, p, hook);
                    if (static_cast<std::int64_t>(all.size()) != (a.shape.empty() ? 1 : n))
                        __builtin_trap();
                    if (a.heads.empty() || a.shape.size() != 3) return;
                    const auto head = r.read_map_head(run, p, hook, a.heads.front());
                    if (static_cast<std::int64_t>(head.size()) != a.shape[1] * a.shape[2])
                        __builtin_trap();
                    if (a.shape[1] >= 2)
                        (void)r.read_map_tile(run, p, hook, a.heads.back(), 1, a.shape[1], 0, 1);
                });
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = fuzz::scratch_dir() / "input.h5";
    fuzz::write_file(path, data, size);
    try {
        store::Reader r(path);
        walk(r);
    } catch (const Error&) {
    }
    // Every HDF5 object the reader opened is closed again, on success and on every error path
    // (LeakSanitizer cannot see an unclosed id: HDF5 frees its memory at exit).
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) __builtin_trap();
    return 0;
}
