// attnscope inspect: what a capture file holds — model, runs (complete or not), prompts, and
// every stored array with its shape, dtype and size — without any custom reader.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "cli/common.h"
#include "core/store/reader.h"

namespace attnscope::cli {
namespace {
std::int64_t numel(const std::vector<std::int64_t>& s) {
    std::int64_t n = 1;
    for (auto d : s) n *= d;
    return n;
}
std::string shape_str(const std::vector<std::int64_t>& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}
}  // namespace

int cmd_inspect(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description desc("attnscope inspect options");
    desc.add_options()("help,h", "show this help")
        ("in", po::value<std::string>()->required(), "capture file (.h5)")
        ("run", po::value<std::string>(), "only this run")
        ("arrays", "list every stored array (default: per-run summary only)")
        ("json", "print one JSON object");
    po::positional_options_description pos;
    pos.add("in", 1);
    po::variables_map vm;
    const std::string usage = "attnscope inspect FILE.h5 [--run NAME] [--arrays] [--json]";
    if (!parse(args, desc, vm, usage, out, &pos)) return kExitOk;
    const std::filesystem::path path = vm["in"].as<std::string>();
    store::Reader r(path);
    const auto& fi = r.file_info();
    const auto& mi = r.model();
    const bool arrays = vm.count("arrays") || vm.count("json");

    nlohmann::ordered_json j;
    j["file"] = path.string();
    j["schema_version"] = fi.schema_version;
    j["created_by"] = fi.created_by;
    j["created_utc"] = fi.created_utc;
    j["model"] = {{"arch", mi.arch}, {"n_layers", mi.n_layers}, {"n_heads", mi.n_heads},
                  {"n_kv_heads", mi.n_kv_heads}, {"d_model", mi.d_model}, {"source", mi.source}};
    const auto prompts = r.prompts();
    j["n_prompts"] = prompts.size();
    j["runs"] = nlohmann::ordered_json::array();
    for (const auto& run : r.runs()) {
        if (vm.count("run") && run.info.name != vm["run"].as<std::string>()) continue;
        nlohmann::ordered_json jr;
        jr["name"] = run.info.name;
        jr["complete"] = run.complete;
        jr["n_prompts_done"] = run.n_prompts_done;
        jr["created_utc"] = run.created_utc;
        jr["version"] = run.info.version;
        jr["map_dtype"] = store::to_string(run.info.map_dtype);
        jr["hooks"] = run.info.hooks;
        jr["argv"] = run.info.argv;
        jr["intervention"] = nlohmann::json::parse(run.info.intervention_json, nullptr, false);
        const auto done = r.run_prompts(run.info.name);
        const auto all = r.run_prompts(run.info.name, true);
        std::vector<std::int64_t> interrupted;
        for (auto id : all)
            if (!std::binary_search(done.begin(), done.end(), id)) interrupted.push_back(id);
        jr["prompts"] = done;
        jr["interrupted_prompts"] = interrupted;
        std::int64_t bytes = 0;
        nlohmann::ordered_json ja = nlohmann::ordered_json::array();
        for (auto id : all) {
            for (const auto& hook : r.hooks(run.info.name, id)) {
                const auto info = r.array_info(run.info.name, id, hook);
                const std::int64_t b = numel(info.shape) * (info.dtype == store::DType::kF16 ? 2 : 4);
                bytes += b;
                if (arrays)
                    ja.push_back({{"prompt", id}, {"hook", hook}, {"shape", info.shape},
                                  {"dims", info.dims}, {"dtype", store::to_string(info.dtype)},
                                  {"bytes", b}});
            }
            for (const auto& name : r.metrics(run.info.name, id))
                if (arrays) ja.push_back({{"prompt", id}, {"metric", name}});
        }
        jr["array_bytes"] = bytes;
        if (arrays) jr["arrays"] = ja;
        jr["run_metrics"] = r.run_metrics(run.info.name);
        j["runs"].push_back(jr);
    }
    if (vm.count("json")) {
        out << j.dump(2) << "\n";
        return kExitOk;
    }
    out << path.string() << ": attnscope schema " << fi.schema_version << ", " << fi.created_by
        << ", " << fi.created_utc << "\n";
    out << "model: " << mi.arch << ", " << mi.n_layers << " layers x " << mi.n_heads << " heads ("
        << mi.n_kv_heads << " KV), d_model " << mi.d_model << ", from " << mi.source << "\n";
    out << "prompts: " << prompts.size() << "\n";
    for (const auto& p : prompts)
        out << "  " << p.id << "  " << p.n_tokens << " tokens"
            << (p.n_prompt_tokens != p.n_tokens ? " (" + std::to_string(p.n_prompt_tokens) + " prompt)" : "")
            << "  " << nlohmann::json(p.text.substr(0, 60)).dump() << "\n";
    for (const auto& jr : j["runs"]) {
        out << "run '" << jr["name"].get<std::string>() << "': "
            << (jr["complete"].get<bool>() ? "complete" : "INCOMPLETE (interrupted or still being written)")
            << ", " << jr["prompts"].size() << " prompts done";
        if (!jr["interrupted_prompts"].empty()) out << ", interrupted: " << jr["interrupted_prompts"].dump();
        out << ", " << jr["array_bytes"].get<std::int64_t>() / 1024 << " KiB of arrays (dense), maps "
            << jr["map_dtype"].get<std::string>() << "\n";
        if (arrays)
            for (const auto& a : jr["arrays"]) {
                if (a.contains("hook"))
                    out << "  " << a["prompt"] << "  " << a["hook"].get<std::string>() << "  "
                        << shape_str(a["shape"].get<std::vector<std::int64_t>>()) << " "
                        << a["dtype"].get<std::string>() << "  (" << a["dims"].get<std::string>() << ")\n";
                else
                    out << "  " << a["prompt"] << "  metrics/" << a["metric"].get<std::string>() << "\n";
            }
    }
    return kExitOk;
}

}  // namespace attnscope::cli
