// attnscope info: what a checkpoint folder is, as attnscope understands it.
#include <nlohmann/json.hpp>

#include <ATen/core/Tensor.h>

#include <iostream>
#include <map>

#include "cli/common.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"

namespace attnscope::cli {

int cmd_info(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description desc("attnscope info options");
    desc.add_options()("help,h", "show this help")("json", "print one JSON object");
    add_model_options(desc);
    po::variables_map vm;
    if (!parse(args, desc, vm, "attnscope info [--model DIR] [--json]", out)) return kExitOk;
    const ModelArgs ma = model_args(vm);
    auto m = model::Model::load(ma.dir, {ma.device, ma.dtype});
    const auto& c = m->config();

    nlohmann::ordered_json j;
    j["model_dir"] = ma.dir.string();
    j["arch"] = format::to_string(c.arch);
    j["model_type"] = c.model_type;
    j["n_layers"] = c.n_layers;
    j["n_heads"] = c.n_heads;
    j["n_kv_heads"] = c.n_kv_heads;
    j["d_model"] = c.d_model;
    j["d_head"] = c.d_head;
    j["d_mlp"] = c.d_mlp;
    j["d_vocab"] = c.vocab_size;
    j["context_length"] = c.max_position_embeddings;
    j["n_params"] = m->n_params();
    j["stored_dtype"] = m->stored_dtype();
    j["compute_dtype"] = model::dtype_name(m->dtype());
    j["device"] = m->device().str();
    j["norm"] = c.arch == format::Arch::kGpt2 ? "layernorm" : "rmsnorm";
    j["norm_eps"] = c.norm_eps;
    j["activation"] = format::to_string(c.activation);
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    j["attention_bias"] = c.attention_bias;
    if (c.arch != format::Arch::kGpt2) {
        j["rope"] = {{"theta", c.rope.theta}, {"type", format::to_string(c.rope.type)},
                     {"factor", c.rope.factor}};
    }
    if (c.sliding_window) j["sliding_window"] = *c.sliding_window;
    if (const auto* t = m->tokenizer()) {
        j["tokenizer"] = {{"kind", t->kind()}, {"vocab_size", t->vocab_size()}};
        if (t->bos_id()) j["tokenizer"]["bos"] = t->id_to_token(*t->bos_id());
        if (t->eos_id()) j["tokenizer"]["eos"] = t->id_to_token(*t->eos_id());
    } else {
        j["tokenizer"] = nullptr;
    }
    std::vector<std::string> hooks;
    for (const auto& h : m->hook_points()) hooks.push_back(h.to_string());
    j["hook_points"] = hooks;

    if (vm.count("json")) {
        out << j.dump(2) << "\n";
        return kExitOk;
    }
    for (const auto& [k, v] : j.items()) {
        if (k == "hook_points") continue;
        out << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    }
    // Hook points, one line per site with the layer range, not L x 20 lines.
    out << "hook_points (" << hooks.size() << "):\n";
    std::map<Site, std::vector<int>> seen;
    std::vector<Site> order;
    for (const auto& h : m->hook_points()) {
        if (!seen.count(h.site)) order.push_back(h.site);
        seen[h.site].push_back(h.layer);
    }
    for (Site s : order) {
        if (is_block_site(s))
            out << "  blocks.{0.." << c.n_layers - 1 << "}." << site_suffix(s);
        else
            out << "  " << site_suffix(s);
        out << "  [" << site_dims(s) << "]\n";
    }
    return kExitOk;
}

}  // namespace attnscope::cli
