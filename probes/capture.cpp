// Capture: model forward -> host copies of the hooked tensors -> per-prompt store records on a
// background writer. Copies to host are batched per hook (one device->host transfer per hook and
// forward); the only per-prompt work on this thread is slicing off padding.
#include "probes/capture.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <sys/statvfs.h>

#include "core/base/error.h"
#include "core/model/model.h"
#include "core/store/async_writer.h"
#include "core/text/tokenizer.h"

namespace attnscope::probes {
namespace {

bool is_map(Site s) { return s == Site::kPattern || s == Site::kAttnScores; }

std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

store::ModelInfo model_info(const model::Model& m) {
    const auto& c = m.config();
    store::ModelInfo info;
    info.arch = format::to_string(c.arch);
    info.n_layers = c.n_layers;
    info.n_heads = c.n_heads;
    info.n_kv_heads = c.n_kv_heads;
    info.d_model = c.d_model;
    info.d_head = c.d_head;
    info.vocab_size = c.vocab_size;
    info.source = std::filesystem::absolute(m.dir()).lexically_normal().string();
    info.config_json = read_text(m.dir() / "config.json");
    return info;
}

namespace {

// Host copy of one captured tensor, without the batch axis sliced yet.
struct Captured {
    HookName name;
    std::vector<at::Tensor> parts;  // one per forward call (prefill, then decode steps)
};

// Store array over a host tensor's memory, no copy: the array keeps the tensor alive until the
// writer thread has written it.
store::FloatArray to_array(const at::Tensor& t0) {
    at::Tensor t = t0.scalar_type() == at::kHalf ? t0.contiguous() : t0.to(at::kFloat).contiguous();
    std::vector<std::int64_t> shape(t.sizes().begin(), t.sizes().end());
    auto owner = std::make_shared<at::Tensor>(t);
    return store::FloatArray::borrow(
        t.scalar_type() == at::kHalf ? store::Element::kF16Bits : store::Element::kF32,
        t.data_ptr(), std::move(shape), std::shared_ptr<const void>(owner, owner.get()));
}

// Bytes one hook point adds for a prompt of n tokens: causal maps allocate the chunks on or
// below the diagonal (schema chunk 256), other hooks n x width float32.
std::int64_t hook_bytes(const HookName& h, const format::ModelConfig& c, std::int64_t n,
                        std::int64_t heads, std::int64_t map_elem) {
    if (is_map(h.site)) {
        const std::int64_t ch = std::min<std::int64_t>(n, 256), nb = (n + ch - 1) / ch;
        return heads * nb * (nb + 1) / 2 * ch * ch * map_elem;
    }
    std::int64_t width = c.d_model;
    switch (h.site) {
        case Site::kQ: case Site::kRotQ: case Site::kZ: width = std::int64_t(c.n_heads) * c.d_head; break;
        case Site::kK: case Site::kV: case Site::kRotK: width = std::int64_t(c.n_kv_heads) * c.d_head; break;
        case Site::kMlpPre: case Site::kMlpPreLinear: case Site::kMlpPost: width = c.d_mlp; break;
        case Site::kUnembedOut: width = c.vocab_size; break;
        default: break;
    }
    return n * width * 4;
}

std::int64_t mem_available_bytes() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::int64_t kb = 0;
    std::string unit;
    while (in >> key >> kb >> unit)
        if (key == "MemAvailable:") return kb * 1024;
    return -1;
}

std::string mib(std::int64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

std::vector<int> parse_index_list(const std::string& text, const std::string& what) {
    std::vector<int> out;
    std::stringstream ss(text);
    std::string item;
    auto bad = [&](const std::string& why) {
        return ConfigError(what + " '" + text + "': " + why + " (expected e.g. 0,2,5-9)");
    };
    auto num = [&](const std::string& s) {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 9)
            throw bad("'" + s + "' is not a non-negative integer");
        return std::stoi(s);
    };
    while (std::getline(ss, item, ',')) {
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        const auto dash = item.find('-');
        if (dash == std::string::npos) {
            out.push_back(num(item));
        } else {
            const int a = num(item.substr(0, dash)), b = num(item.substr(dash + 1));
            if (b < a) throw bad("range " + item + " is reversed");
            for (int i = a; i <= b; ++i) out.push_back(i);
        }
    }
    if (out.empty()) throw bad("empty list");
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

CaptureReport capture(model::Model& m, const std::vector<format::PromptInput>& prompts,
                      const std::filesystem::path& out, const CaptureOptions& o,
                      const CaptureProgress& progress) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto& cfg = m.config();
    const text::Tokenizer& tok = m.require_tokenizer();
    for (int l : o.layers)
        if (l >= cfg.n_layers)
            throw ConfigError("--layers: layer " + std::to_string(l) + " does not exist; the model has " +
                              std::to_string(cfg.n_layers) + " (0-" + std::to_string(cfg.n_layers - 1) + ")");
    for (int h : o.heads)
        if (h >= cfg.n_heads)
            throw ConfigError("--heads: head " + std::to_string(h) + " does not exist; the model has " +
                              std::to_string(cfg.n_heads) + " per layer");
    if (o.batch < 1) throw ConfigError("--batch must be >= 1");
    if (o.generate < 0) throw ConfigError("--generate must be >= 0");
    if (prompts.empty()) throw ConfigError("capture: no prompts");

    // Concrete hook points, in forward order, filtered by --layers.
    std::set<std::string> wanted;
    for (const auto& pattern : o.hooks) {
        auto matched = m.hooks().match(pattern);
        if (matched.empty())
            throw HookError("--hooks '" + pattern + "' matches no hook point of " + m.dir().string() +
                            " (list them with `attnscope info`)");
        for (const auto& h : matched) wanted.insert(h.to_string());
    }
    std::vector<HookName> hooks;
    for (const auto& h : m.hook_points()) {
        if (!wanted.count(h.to_string())) continue;
        if (h.layer >= 0 && !o.layers.empty() &&
            !std::binary_search(o.layers.begin(), o.layers.end(), h.layer))
            continue;
        hooks.push_back(h);
    }
    if (hooks.empty()) throw HookError("--hooks and --layers together select no hook point");

    // Tokenize and check lengths before anything is written.
    struct Item {
        const format::PromptInput* in;
        std::vector<std::int32_t> ids;
    };
    std::vector<Item> items;
    const std::int64_t ctx = m.context_length();
    for (const auto& p : prompts) {
        Item it{&p, {}};
        try {
            it.ids = tok.encode(p.text);
        } catch (const Error& e) {
            throw TokenizerError(p.source + ": " + e.what());
        }
        if (it.ids.empty()) throw ConfigError(p.source + ": the prompt has no tokens");
        if (o.max_tokens > 0 && static_cast<int>(it.ids.size()) > o.max_tokens) it.ids.resize(o.max_tokens);
        if (static_cast<std::int64_t>(it.ids.size()) + o.generate > ctx)
            throw ConfigError(p.source + ": prompt has " + std::to_string(it.ids.size()) + " tokens" +
                              (o.generate ? " + " + std::to_string(o.generate) + " generated" : "") +
                              ", more than the model's context of " + std::to_string(ctx) +
                              " positions; pass --max-tokens to truncate");
        items.push_back(std::move(it));
    }

    // Estimate what will be written and refuse early when it cannot fit.
    const std::int64_t n_heads_sel = o.heads.empty() ? cfg.n_heads : static_cast<std::int64_t>(o.heads.size());
    const std::int64_t map_elem = o.map_f32 ? 4 : 2;
    std::int64_t estimate = 0, largest_prompt = 0;
    for (const auto& it : items) {
        const std::int64_t n = static_cast<std::int64_t>(it.ids.size()) + o.generate;
        std::int64_t per = 0, dense = 0;
        for (const auto& h : hooks) {
            per += hook_bytes(h, cfg, n, n_heads_sel, map_elem);
            dense += is_map(h.site) ? n_heads_sel * n * n * 4 : hook_bytes(h, cfg, n, 0, 0);
        }
        estimate += per;
        largest_prompt = std::max(largest_prompt, dense * std::max(1, o.batch));
    }
    const std::string what_to_do =
        "; capture fewer --layers/--heads/--hooks, fewer or shorter prompts (--max-tokens), or "
        "use `attnscope analyze` for metrics without storing maps";
    if (o.max_bytes > 0 && estimate > o.max_bytes)
        throw ConfigError("capture would write about " + mib(estimate) + ", more than --max-bytes (" +
                          mib(o.max_bytes) + ")" + what_to_do);
    {
        std::filesystem::path dir = std::filesystem::absolute(out).parent_path();
        struct statvfs vfs {};
        if (::statvfs(dir.c_str(), &vfs) == 0) {
            const auto free_b = static_cast<std::int64_t>(vfs.f_bavail) * static_cast<std::int64_t>(vfs.f_frsize);
            if (estimate > free_b)
                throw IoError("capture would write about " + mib(estimate) + " but " + dir.string() +
                              " has " + mib(free_b) + " free" + what_to_do);
        }
        const std::int64_t avail = mem_available_bytes();
        // Host copies of one batch (float32 maps before conversion, the record, the queue).
        if (avail > 0 && 3 * largest_prompt > avail)
            throw ConfigError("one batch needs about " + mib(3 * largest_prompt) +
                              " of memory but " + mib(avail) + " is available" + what_to_do +
                              " (or a smaller --batch)");
    }

    store::RunInfo run;
    run.name = o.run;
    run.intervention_json = o.intervention_json;
    run.hooks = o.hooks;
    run.seed = static_cast<std::int64_t>(o.seed);
    run.argv = o.argv;
    run.version = o.version;
    run.map_dtype = o.map_f32 ? store::DType::kF32 : store::DType::kF16;
    store::WriterOptions wo;
    wo.force = o.force;
    wo.compress = o.compress;
    wo.created_by = "attnscope " + o.version;
    store::AsyncWriter writer(out, model_info(m), run, wo);

    // Observers copy each hooked tensor to the host once per forward.
    std::vector<Captured> cap(hooks.size());
    std::vector<model::HookHandle> handles;
    at::Tensor head_index;
    if (!o.heads.empty())
        head_index = at::tensor(std::vector<std::int64_t>(o.heads.begin(), o.heads.end()), at::kLong).to(m.device());
    for (std::size_t i = 0; i < hooks.size(); ++i) {
        cap[i].name = hooks[i];
        handles.push_back(m.hooks().add_observer(hooks[i], [&, i](const HookName& n, const at::Tensor& t) {
            at::Tensor x = t;
            if (is_map(n.site)) {
                if (head_index.defined()) x = x.index_select(1, head_index);
                x = x.to(o.map_f32 ? at::kFloat : at::kHalf);
            } else {
                x = x.to(at::kFloat);
            }
            cap[i].parts.push_back(x.to(at::kCPU));
        }));
    }
    std::vector<std::int64_t> head_list;
    if (o.heads.empty())
        for (int h = 0; h < cfg.n_heads; ++h) head_list.push_back(h);
    else
        head_list.assign(o.heads.begin(), o.heads.end());

    CaptureReport report;
    report.estimated_bytes = estimate;
    for (const auto& h : hooks) report.hooks.push_back(h.to_string());
    auto make_record = [&](const Item& it, const std::vector<std::int32_t>& tokens, std::int64_t b,
                           std::int64_t n) {
        store::PromptRecord rec;
        rec.prompt.id = it.in->id;
        rec.prompt.text = it.in->text;
        rec.prompt.source = it.in->source;
        rec.prompt.tokens = tokens;
        for (auto id : tokens) rec.prompt.token_str.push_back(tok.token_display(id));
        rec.prompt.n_prompt_tokens = static_cast<std::int64_t>(it.ids.size());
        for (auto& c : cap) {
            at::Tensor x;
            if (is_map(c.name.site)) {
                // Parts are [B, H, q_i, K_i]; decode steps add rows over a growing key range.
                std::vector<at::Tensor> rows;
                for (const auto& part : c.parts) {
                    at::Tensor r = part[b];
                    if (r.size(2) < n) r = at::constant_pad_nd(r, {0, n - r.size(2)}, 0);
                    rows.push_back(r.narrow(2, 0, n));
                }
                x = at::cat(rows, 1).narrow(1, 0, n);  // [H, n, n]
            } else {
                std::vector<at::Tensor> parts;
                for (const auto& part : c.parts) parts.push_back(part[b]);
                x = at::cat(parts, 0).narrow(0, 0, n);  // [n, ...]
            }
            store::HookArray arr;
            arr.hook = c.name.to_string();
            arr.data = to_array(x);
            if (is_map(c.name.site)) {
                arr.options.heads = head_list;
                report.map_bytes += static_cast<std::int64_t>(arr.data.nbytes());
            }
            rec.hooks.push_back(std::move(arr));
        }
        report.tokens += n;
        return rec;
    };

    try {
        c10::InferenceMode guard;
        const std::size_t step = o.generate > 0 ? 1 : static_cast<std::size_t>(o.batch);
        for (std::size_t first = 0; first < items.size(); first += step) {
            const std::size_t last = std::min(items.size(), first + step);
            const std::int64_t B = static_cast<std::int64_t>(last - first);
            std::int64_t T = 0;
            for (std::size_t i = first; i < last; ++i) T = std::max<std::int64_t>(T, items[i].ids.size());
            at::Tensor ids = at::zeros({B, T}, at::kLong), mask = at::zeros({B, T}, at::kLong);
            for (std::size_t i = first; i < last; ++i) {  // right padding: real tokens first
                const auto& v = items[i].ids;
                auto row = ids[i - first];
                for (std::size_t j = 0; j < v.size(); ++j) row[j] = static_cast<std::int64_t>(v[j]);
                mask[i - first].narrow(0, 0, v.size()).fill_(1);
            }
            for (auto& c : cap) c.parts.clear();
            if (o.generate == 0) {
                m.forward(ids, mask);
                for (std::size_t i = first; i < last; ++i) {
                    writer.push(make_record(items[i], items[i].ids, i - first, items[i].ids.size()));
                    ++report.prompts;
                    if (progress) progress(report.prompts, static_cast<std::int64_t>(items.size()), report.tokens);
                }
                continue;
            }
            // Generation (one prompt at a time): greedy, stopping at EOS; each step's rows are
            // appended so the stored map covers prompt + generated tokens.
            model::KVCache cache;
            std::vector<std::int32_t> seq = items[first].ids;
            at::Tensor logits = m.forward(ids, {}, &cache);
            std::vector<std::int64_t> eos(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end());
            if (eos.empty() && tok.eos_id()) eos.push_back(*tok.eos_id());
            for (int s = 0; s < o.generate; ++s) {
                const std::int64_t next = logits[0][-1].argmax().item<std::int64_t>();
                seq.push_back(static_cast<std::int32_t>(next));
                if (std::find(eos.begin(), eos.end(), next) != eos.end() || s + 1 == o.generate) {
                    // The last token's own attention row needs one more forward.
                    logits = m.forward(at::full({1, 1}, next, at::kLong), {}, &cache);
                    break;
                }
                logits = m.forward(at::full({1, 1}, next, at::kLong), {}, &cache);
            }
            writer.push(make_record(items[first], seq, 0, static_cast<std::int64_t>(seq.size())));
            ++report.prompts;
            if (progress) progress(report.prompts, static_cast<std::int64_t>(items.size()), report.tokens);
        }
        handles.clear();
        writer.close();
    } catch (...) {
        handles.clear();
        writer.abandon();
        throw;
    }
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return report;
}

}  // namespace attnscope::probes
