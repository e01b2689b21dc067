// attnscope generate: continue a prompt, streaming the text as it is produced.
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#include <chrono>
#include <optional>
#include <iostream>

#include "cli/common.h"
#include "core/model/generate.h"
#include "core/model/model.h"
#include "probes/intervention.h"
#include "core/text/tokenizer.h"

namespace attnscope::cli {

int cmd_generate(const std::vector<std::string>& args, std::ostream& out) {
    po::options_description desc("attnscope generate options");
    desc.add_options()("help,h", "show this help")
        ("prompt,p", po::value<std::string>()->required(), "prompt text")
        ("max-new-tokens,n", po::value<int>()->default_value(32), "tokens to generate")
        ("sample", "sample instead of greedy decoding")
        ("temperature", po::value<double>()->default_value(1.0), "sampling temperature")
        ("top-k", po::value<int>()->default_value(0), "sample from the k most likely (0 = all)")
        ("top-p", po::value<double>()->default_value(1.0), "nucleus sampling mass")
        ("seed", po::value<std::uint64_t>()->default_value(0), "sampling seed")
        ("no-eos-stop", "keep going after an end-of-sequence token")
        ("no-special", "do not add BOS to the prompt")
        ("json", "print one JSON object instead of streaming text")
        ("compare", "with --method: also generate without the interventions and print both");
    add_method_options(desc);
    add_model_options(desc);
    po::variables_map vm;
    const std::string usage = "attnscope generate [--model DIR] --prompt TEXT [--max-new-tokens N]";
    if (!parse(args, desc, vm, usage, out)) return kExitOk;
    const ModelArgs ma = model_args(vm);
    auto m = model::Model::load(ma.dir, {ma.device, ma.dtype});
    const text::Tokenizer& tok = m->require_tokenizer();
    const bool json = vm.count("json") > 0;

    model::GenerateOptions o;
    o.max_new_tokens = vm["max-new-tokens"].as<int>();
    o.sample = vm.count("sample") > 0;
    o.temperature = vm["temperature"].as<double>();
    o.top_k = vm["top-k"].as<int>();
    o.top_p = vm["top-p"].as<double>();
    o.seed = vm["seed"].as<std::uint64_t>();
    o.stop_at_eos = !vm.count("no-eos-stop");
    const std::string prompt = vm["prompt"].as<std::string>();
    const auto prompt_ids = tok.encode(prompt, !vm.count("no-special"));
    auto set = method_set(vm, *m, [&] { return std::vector<std::vector<std::int32_t>>{prompt_ids}; });
    if (vm.count("compare") && set.empty()) throw UsageError("--compare needs --method (or --act-heads)");
    std::optional<model::GenerateResult> plain;
    if (vm.count("compare")) {
        model::GenerateOptions po = o;
        po.on_token = nullptr;
        plain = model::generate(*m, prompt_ids, po);
    }
    set.attach(*m);
    // SoftPAG guidance (s > 0): every step also runs the perturbed model on its own KV cache and
    // the logits become z + s (z - z_perturbed).
    model::KVCache weak_cache;
    if (set.guidance() > 0) {
        const double s = set.guidance();
        o.logits_processor = [&, s](const at::Tensor& step_input, at::Tensor& logits) {
            set.set_perturb(true);
            at::Tensor zw = m->forward(step_input, at::Tensor(), &weak_cache);
            set.set_perturb(false);
            at::Tensor w = zw[0][zw.size(1) - 1];
            logits = logits + s * (logits - w);
        };
    }

    // Stream: print the decoded continuation whenever it extends what was printed and does not
    // end inside a multi-byte character (byte-level tokens can split one).
    std::vector<std::int32_t> so_far;
    std::string printed;
    if (!json) {
        out << prompt << std::flush;
        o.on_token = [&](int, std::int32_t id) {
            so_far.push_back(id);
            const std::string text = tok.decode(so_far, /*skip_special_tokens=*/true);
            const bool partial = text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0;
            if (!partial && text.compare(0, printed.size(), printed) == 0) {
                out << text.substr(printed.size()) << std::flush;
                printed = text;
            }
        };
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = model::generate(*m, prompt_ids, o);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string completion = tok.decode(r.new_ids, /*skip_special_tokens=*/true);
    if (json) {
        nlohmann::ordered_json j;
        j["prompt"] = prompt;
        j["prompt_ids"] = r.prompt_ids;
        j["new_ids"] = r.new_ids;
        j["completion"] = completion;
        j["stop_reason"] = r.stop_reason;
        j["seconds"] = secs;
        if (!set.empty()) {
            j["interventions"] = nlohmann::ordered_json::parse(set.to_json());
            j["stats"] = nlohmann::ordered_json::parse(set.stats_json());
        }
        if (plain) {
            j["completion_without"] = tok.decode(plain->new_ids, true);
            j["new_ids_without"] = plain->new_ids;
        }
        out << j.dump(2) << "\n";
    } else {
        if (completion.size() > printed.size() && completion.compare(0, printed.size(), printed) == 0)
            out << completion.substr(printed.size());
        out << std::endl;
        std::cerr << "[" << r.new_ids.size() << " tokens in " << secs << " s, stop: "
                  << r.stop_reason << (set.empty() ? "" : ", with " + set.describe()) << "]\n";
        if (plain) out << "--- without interventions:\n" << prompt << tok.decode(plain->new_ids, true) << std::endl;
    }
    return kExitOk;
}

}  // namespace attnscope::cli
