// config.json -> ModelConfig. Defaults follow the transformers config classes (GPT2Config,
// LlamaConfig, Qwen2Config, MistralConfig) so that a config.json omitting a field means what it
// means to transformers; sizes that define the weights are required rather than defaulted, since
// a silently invented size would only fail later, far from the cause.
#include "core/format/model_config.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace attnscope::format {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

// "string \"32\"", "number 3.5", "null": what a field actually held, for messages.
std::string describe(const json& v) {
    std::string text = printable(v.dump(-1, ' ', false, json::error_handler_t::replace));
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "boolean " + text;
        case json::value_t::string: return "string " + text;
        case json::value_t::array: return "array " + text;
        case json::value_t::object: return "object " + text;
        default: return "number " + text;
    }
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) {
        if (!out.empty()) out += ", ";
        out += s;
    }
    return out;
}

[[noreturn]] void fail(const std::string& source, const std::string& what) {
    throw ConfigError(source + ": " + what);
}

// Parses JSON, rejecting a key repeated in one object: Python's json (and nlohmann) keep the
// last one silently, which hides which value the author meant.
json parse_json_strict(const std::string& text, const std::string& source) {
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start) {
            open_objects.emplace_back();
        } else if (event == json::parse_event_t::object_end) {
            if (!open_objects.empty()) open_objects.pop_back();
        } else if (event == json::parse_event_t::key && !open_objects.empty() &&
                   parsed.is_string()) {
            const auto& key = parsed.get_ref<const std::string&>();
            if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
        }
        return true;
    };
    json doc;
    try {
        doc = json::parse(text.begin(), text.end(), callback);
    } catch (const json::parse_error& e) {
        fail(source, "not valid JSON (error at byte " + std::to_string(e.byte) + "): " +
                         e.what() + "; fix or re-download the file");
    } catch (const json::exception& e) {
        fail(source, std::string("not valid JSON: ") + e.what());
    }
    if (!duplicate.empty()) {
        fail(source, "field '" + printable(duplicate) +
                         "' appears more than once in one object; keep one");
    }
    if (!doc.is_object()) fail(source, "must be a JSON object, found " + describe(doc));
    return doc;
}

// Typed, validated access to the fields of one JSON object. `prefix` qualifies nested field
// names in messages ("rope_scaling.factor").
class Fields {
public:
    Fields(const json& obj, const std::string& source, std::string prefix = "")
        : obj_(obj), source_(source), prefix_(std::move(prefix)) {}

    const std::string& source() const { return source_; }
    std::string name(const std::string& key) const { return prefix_ + key; }

    /// Present, possibly null.
    bool contains(const std::string& key) const { return obj_.contains(key); }
    /// Present and not null (transformers treats an explicit null as "use the default").
    bool has(const std::string& key) const {
        auto it = obj_.find(key);
        return it != obj_.end() && !it->is_null();
    }
    const json* get(const std::string& key) const {
        auto it = obj_.find(key);
        return it == obj_.end() || it->is_null() ? nullptr : &*it;
    }

    [[noreturn]] void wrong(const std::string& key, const std::string& expected,
                            const json& found) const {
        fail(source_, "field '" + name(key) + "' must be " + expected + ", found " +
                          describe(found));
    }
    [[noreturn]] void missing(const std::string& key, const std::string& expected) const {
        fail(source_, "field '" + name(key) + "' is missing; it must be " + expected);
    }

    int positive_int(const std::string& key) const {
        const json* v = get(key);
        if (!v) {
            auto it = obj_.find(key);
            if (it != obj_.end()) wrong(key, "a positive integer", *it);  // explicit null
            missing(key, "a positive integer");
        }
        return as_int(key, *v, 1, "a positive integer");
    }
    int positive_int_or(const std::string& key, int fallback) const {
        const json* v = get(key);
        return v ? as_int(key, *v, 1, "a positive integer") : fallback;
    }
    std::optional<int> opt_positive_int(const std::string& key) const {
        const json* v = get(key);
        if (!v) return std::nullopt;
        return as_int(key, *v, 1, "a positive integer");
    }
    int non_negative_int_or(const std::string& key, int fallback) const {
        const json* v = get(key);
        return v ? as_int(key, *v, 0, "a non-negative integer") : fallback;
    }

    double positive_number_or(const std::string& key, double fallback) const {
        const json* v = get(key);
        return v ? as_positive_number(key, *v) : fallback;
    }
    double positive_number(const std::string& key) const {
        const json* v = get(key);
        if (!v) missing(key, "a positive number");
        return as_positive_number(key, *v);
    }
    std::optional<double> opt_number(const std::string& key) const {
        const json* v = get(key);
        if (!v) return std::nullopt;
        if (!v->is_number()) wrong(key, "a number", *v);
        return v->get<double>();
    }

    bool boolean_or(const std::string& key, bool fallback) const {
        const json* v = get(key);
        if (!v) return fallback;
        if (!v->is_boolean()) wrong(key, "true or false", *v);
        return v->get<bool>();
    }

    std::optional<std::string> opt_string(const std::string& key) const {
        const json* v = get(key);
        if (!v) return std::nullopt;
        if (!v->is_string()) wrong(key, "a string", *v);
        return v->get<std::string>();
    }

    /// int, list of ints, or null/absent (empty).
    std::vector<int> token_ids(const std::string& key) const {
        std::vector<int> out;
        const json* v = get(key);
        if (!v) return out;
        const char* expected = "a token id (non-negative integer), a list of them, or null";
        if (v->is_array()) {
            for (const json& item : *v) {
                if (!item.is_number_unsigned()) wrong(key, expected, *v);
                out.push_back(as_int(key, item, 0, expected));
            }
        } else if (v->is_number_unsigned()) {
            out.push_back(as_int(key, *v, 0, expected));
        } else {
            wrong(key, expected, *v);
        }
        return out;
    }

    int as_int(const std::string& key, const json& v, long long min,
               const std::string& expected) const {
        // Floats are refused even when integral (32.0): sizes are integers in every real config.
        if (v.is_number_unsigned()) {
            const auto u = v.get<std::uint64_t>();
            if (u > static_cast<std::uint64_t>(INT_MAX)) {
                fail(source_, "field '" + name(key) + "' is " + std::to_string(u) +
                                  ", larger than the supported maximum " +
                                  std::to_string(INT_MAX));
            }
            if (static_cast<long long>(u) < min) wrong(key, expected, v);
            return static_cast<int>(u);
        }
        if (v.is_number_integer()) {
            const auto i = v.get<std::int64_t>();
            if (i < min || i > INT_MAX) wrong(key, expected, v);
            return static_cast<int>(i);
        }
        wrong(key, expected, v);
    }

private:
    double as_positive_number(const std::string& key, const json& v) const {
        if (!v.is_number()) wrong(key, "a positive number", v);
        const double d = v.get<double>();
        if (!(d > 0.0) || !std::isfinite(d)) wrong(key, "a positive number", v);
        return d;
    }

    const json& obj_;
    const std::string& source_;
    std::string prefix_;
};

const std::vector<std::string> kRopeTypes = {"default", "linear", "llama3"};

Activation parse_activation(const Fields& f, const std::string& key, const std::string& dflt) {
    const std::string name = f.opt_string(key).value_or(dflt);
    // gelu_fast is transformers' FastGELUActivation: the same tanh approximation as gelu_new,
    // written with pre-multiplied constants, so it maps to the same function.
    if (name == "gelu_new" || name == "gelu_fast") return Activation::kGeluNew;
    if (name == "gelu") return Activation::kGelu;
    if (name == "gelu_pytorch_tanh") return Activation::kGeluPytorchTanh;
    if (name == "relu") return Activation::kRelu;
    if (name == "silu" || name == "swish") return Activation::kSilu;
    fail(f.source(), "field '" + f.name(key) + "': activation '" + printable(name) +
                         "' is not supported; supported: gelu, gelu_fast, gelu_new, "
                         "gelu_pytorch_tanh, relu, silu, swish");
}

void reject_partial_rotary(const Fields& f) {
    if (auto p = f.opt_number("partial_rotary_factor"); p && *p != 1.0) {
        fail(f.source(), "field '" + f.name("partial_rotary_factor") + "' is " +
                             json(*p).dump() +
                             "; partial rotary embeddings are not supported (only 1.0)");
    }
}

struct ParsedRope {
    RopeConfig rope;                    // theta left at its default here
    std::optional<double> theta;        // rope_theta inside the dict (transformers 5.x)
};

// One rope dict: transformers 4.x `rope_scaling` or 5.x `rope_parameters`. A 4.x rope_scaling
// must name its type (transformers cannot build it otherwise); a 5.x rope_parameters without one
// is the default rope.
ParsedRope parse_rope_dict(const json& obj, const std::string& key, const std::string& source,
                           bool type_required) {
    if (!obj.is_object()) {
        fail(source, "field '" + key + "' must be an object or null, found " + describe(obj));
    }
    const Fields f(obj, source, key + ".");
    std::optional<std::string> type = f.opt_string("rope_type");
    if (!type) type = f.opt_string("type");
    if (!type) {
        const bool nested = !obj.empty() && std::all_of(obj.begin(), obj.end(), [](const json& v) {
            return v.is_object();
        });
        if (nested) {
            fail(source, "field '" + key + "' holds per-layer-type rope parameters (" +
                             json(obj.begin().key()).dump() +
                             ", ...), which are not supported for this model type");
        }
        if (type_required) {
            fail(source, "field '" + key + "' has no 'rope_type' (or 'type'); supported: " +
                             join(kRopeTypes));
        }
        type = "default";
    }
    ParsedRope out;
    out.theta = f.has("rope_theta") ? std::optional<double>(f.positive_number("rope_theta"))
                                    : std::nullopt;
    reject_partial_rotary(f);
    if (*type == "default") {
        out.rope.type = RopeType::kDefault;
    } else if (*type == "linear") {
        out.rope.type = RopeType::kLinear;
        out.rope.factor = f.positive_number("factor");
    } else if (*type == "llama3") {
        out.rope.type = RopeType::kLlama3;
        out.rope.factor = f.positive_number("factor");
        out.rope.low_freq_factor = f.positive_number("low_freq_factor");
        out.rope.high_freq_factor = f.positive_number("high_freq_factor");
        out.rope.original_max_position_embeddings =
            f.positive_int("original_max_position_embeddings");
        // llama3 interpolates between the two frequency cut-offs, dividing by their difference.
        if (!(out.rope.high_freq_factor > out.rope.low_freq_factor)) {
            fail(source, "field '" + key + "': llama3 rope needs high_freq_factor (" +
                             json(out.rope.high_freq_factor).dump() +
                             ") greater than low_freq_factor (" +
                             json(out.rope.low_freq_factor).dump() + ")");
        }
    } else {
        fail(source, "field '" + key + "': rope type '" + printable(*type) +
                         "' is not supported; supported: " + join(kRopeTypes));
    }
    return out;
}

bool same_rope_shape(const RopeConfig& a, const RopeConfig& b) {
    return a.type == b.type && a.factor == b.factor && a.low_freq_factor == b.low_freq_factor &&
           a.high_freq_factor == b.high_freq_factor &&
           a.original_max_position_embeddings == b.original_max_position_embeddings;
}

// Reads both rope spellings. transformers 5.x merges them (rope_scaling wins, top-level
// rope_theta fills a missing rope_parameters.rope_theta); here a disagreement between the two
// is an error instead, because one of them would be silently ignored.
RopeConfig parse_rope(const Fields& f) {
    const std::string& source = f.source();
    std::optional<ParsedRope> legacy;
    std::optional<ParsedRope> modern;
    if (const json* v = f.get("rope_scaling")) {
        legacy = parse_rope_dict(*v, "rope_scaling", source, /*type_required=*/true);
    }
    if (const json* v = f.get("rope_parameters")) {
        modern = parse_rope_dict(*v, "rope_parameters", source, /*type_required=*/false);
    }
    reject_partial_rotary(f);
    if (legacy && modern && !same_rope_shape(legacy->rope, modern->rope)) {
        fail(source, "fields 'rope_scaling' and 'rope_parameters' describe different rope "
                     "scalings; keep one of them");
    }
    RopeConfig rope = legacy ? legacy->rope : modern ? modern->rope : RopeConfig{};

    std::vector<std::pair<std::string, double>> thetas;
    if (f.has("rope_theta")) thetas.emplace_back("rope_theta", f.positive_number("rope_theta"));
    if (legacy && legacy->theta) thetas.emplace_back("rope_scaling.rope_theta", *legacy->theta);
    if (modern && modern->theta) {
        thetas.emplace_back("rope_parameters.rope_theta", *modern->theta);
    }
    for (const auto& [name, value] : thetas) {
        if (value != thetas.front().second) {
            fail(source, "fields '" + thetas.front().first + "' (" +
                             json(thetas.front().second).dump() + ") and '" + name + "' (" +
                             json(value).dump() + ") disagree; keep one of them");
        }
    }
    if (!thetas.empty()) rope.theta = thetas.front().second;
    return rope;
}

void check_heads(const Fields& f, ModelConfig& c, const char* heads_key, const char* kv_key,
                 const char* dmodel_key, bool explicit_head_dim) {
    const std::string& source = f.source();
    if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0) {
        fail(source, "field '" + std::string(kv_key) + "' (" + std::to_string(c.n_kv_heads) +
                         ") must divide '" + heads_key + "' (" + std::to_string(c.n_heads) +
                         ") for grouped-query attention");
    }
    if (!explicit_head_dim && c.d_model % c.n_heads != 0) {
        fail(source, "field '" + std::string(dmodel_key) + "' (" + std::to_string(c.d_model) +
                         ") is not divisible by '" + heads_key + "' (" +
                         std::to_string(c.n_heads) + "); set head_dim or fix the sizes");
    }
    if (static_cast<long long>(c.n_heads) * c.d_head > INT_MAX) {
        fail(source, "fields '" + std::string(heads_key) + "' x head dimension (" +
                         std::to_string(c.n_heads) + " x " + std::to_string(c.d_head) +
                         ") are too large");
    }
}

void parse_gpt2(const Fields& f, ModelConfig& c) {
    c.n_layers = f.positive_int("n_layer");
    c.n_heads = f.positive_int("n_head");
    c.n_kv_heads = c.n_heads;
    c.d_model = f.positive_int("n_embd");
    c.vocab_size = f.positive_int("vocab_size");
    c.max_position_embeddings = f.positive_int("n_positions");
    if (c.d_model > INT_MAX / 4) fail(f.source(), "field 'n_embd' is too large");
    c.d_mlp = f.positive_int_or("n_inner", 4 * c.d_model);
    c.norm_eps = f.positive_number_or("layer_norm_epsilon", 1e-5);
    c.activation = parse_activation(f, "activation_function", "gelu_new");
    c.scale_attn_weights = f.boolean_or("scale_attn_weights", true);
    c.scale_attn_by_inverse_layer_idx = f.boolean_or("scale_attn_by_inverse_layer_idx", false);
    // Only reorders and upcasts the QK^T product for fp16 stability; fp32 math is unchanged.
    (void)f.boolean_or("reorder_and_upcast_attn", false);
    if (f.boolean_or("add_cross_attention", false)) {
        fail(f.source(), "field 'add_cross_attention' is true; GPT-2 with cross-attention "
                         "(encoder-decoder) is not supported");
    }
    c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", true);
    c.d_head = c.d_model / c.n_heads;
    check_heads(f, c, "n_head", "n_head", "n_embd", false);
    // Conv1D layers all carry biases: c_attn (q, k, v), attn c_proj, mlp c_fc / c_proj.
    c.attention_bias = true;
    c.o_proj_bias = true;
    c.mlp_bias = true;
}

// The window size as transformers resolves it: absent -> 4096 (Qwen2Config and MistralConfig
// default), explicit null -> no window.
std::optional<int> sliding_window_size(const Fields& f) {
    if (!f.contains("sliding_window")) return 4096;
    return f.opt_positive_int("sliding_window");
}

// Qwen2: the window exists only with use_sliding_window, and then only for layers
// >= max_window_layers (or the layers that `layer_types` marks "sliding_attention").
void parse_qwen2_sliding(const Fields& f, ModelConfig& c) {
    const bool enabled = f.boolean_or("use_sliding_window", false);
    // Read even when disabled, so that a wrong type is still reported.
    const std::optional<int> window = sliding_window_size(f);
    const int max_window_layers = f.non_negative_int_or("max_window_layers", 28);

    // transformers >= 4.53 writes `layer_types`; when present it decides which layers slide.
    std::optional<int> first_sliding;
    if (const json* lt = f.get("layer_types")) {
        const std::string expected =
            "a list of " + std::to_string(c.n_layers) +
            " strings, one per layer: \"full_attention\" or \"sliding_attention\"";
        if (!lt->is_array() || lt->size() != static_cast<std::size_t>(c.n_layers)) {
            f.wrong("layer_types", expected, *lt);
        }
        for (std::size_t i = 0; i < lt->size(); ++i) {
            const json& t = (*lt)[i];
            const bool sliding = t == "sliding_attention";
            if (!sliding && t != "full_attention") f.wrong("layer_types", expected, *lt);
            if (sliding && !first_sliding) first_sliding = static_cast<int>(i);
            if (!sliding && first_sliding) {
                fail(f.source(), "field 'layer_types': layer " + std::to_string(i) +
                                     " is full attention after sliding layer " +
                                     std::to_string(*first_sliding) +
                                     "; only sliding layers at the end (Qwen2's "
                                     "max_window_layers pattern) are supported");
            }
        }
    } else if (max_window_layers < c.n_layers) {
        first_sliding = max_window_layers;
    }
    if (!enabled || !window || !first_sliding) return;  // no layer slides
    c.sliding_window = window;
    c.sliding_window_from_layer = *first_sliding;
}

void parse_llama_family(const Fields& f, ModelConfig& c) {
    c.n_layers = f.positive_int("num_hidden_layers");
    c.n_heads = f.positive_int("num_attention_heads");
    c.n_kv_heads = f.positive_int_or("num_key_value_heads", c.n_heads);
    c.d_model = f.positive_int("hidden_size");
    c.d_mlp = f.positive_int("intermediate_size");
    c.vocab_size = f.positive_int("vocab_size");
    c.max_position_embeddings = f.positive_int("max_position_embeddings");
    const std::optional<int> head_dim = f.opt_positive_int("head_dim");
    c.d_head = head_dim ? *head_dim : c.d_model / c.n_heads;
    check_heads(f, c, "num_attention_heads", "num_key_value_heads", "hidden_size",
                head_dim.has_value());
    if (c.d_head % 2 != 0) {
        fail(f.source(), "head dimension " + std::to_string(c.d_head) +
                             (head_dim ? " (field 'head_dim')" : " (hidden_size / heads)") +
                             " is odd; rotary embeddings rotate pairs of dimensions");
    }
    c.norm_eps = f.positive_number_or("rms_norm_eps", 1e-6);
    c.activation = parse_activation(f, "hidden_act", "silu");
    c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", false);
    c.rope = parse_rope(f);

    switch (c.arch) {
        case Arch::kLlama:
            // LlamaAttention uses config.attention_bias for q, k, v and o alike.
            c.attention_bias = f.boolean_or("attention_bias", false);
            c.o_proj_bias = c.attention_bias;
            c.mlp_bias = f.boolean_or("mlp_bias", false);
            break;
        case Arch::kQwen2:
            // Qwen2Attention hard-codes bias=True on q/k/v and bias=False on o_proj; the
            // config's attention_bias (if any) is not consulted by transformers either.
            c.attention_bias = true;
            c.o_proj_bias = false;
            c.mlp_bias = false;
            parse_qwen2_sliding(f, c);
            break;
        case Arch::kMistral: {
            c.attention_bias = false;
            c.o_proj_bias = false;
            c.mlp_bias = false;
            // Mistral v0.1 has a 4096 window (also MistralConfig's default when the key is
            // absent); v0.2+ write null: full attention.
            c.sliding_window = sliding_window_size(f);
            c.sliding_window_from_layer = 0;
            break;
        }
        case Arch::kGpt2: break;
    }
}

}  // namespace

std::string to_string(Arch arch) {
    switch (arch) {
        case Arch::kGpt2: return "gpt2";
        case Arch::kLlama: return "llama";
        case Arch::kQwen2: return "qwen2";
        case Arch::kMistral: return "mistral";
    }
    return "?";
}

std::string to_string(RopeType type) {
    switch (type) {
        case RopeType::kDefault: return "default";
        case RopeType::kLinear: return "linear";
        case RopeType::kLlama3: return "llama3";
    }
    return "?";
}

std::string to_string(Activation act) {
    switch (act) {
        case Activation::kGeluNew: return "gelu_new";
        case Activation::kGelu: return "gelu";
        case Activation::kGeluPytorchTanh: return "gelu_pytorch_tanh";
        case Activation::kRelu: return "relu";
        case Activation::kSilu: return "silu";
    }
    return "?";
}

const std::vector<std::string>& supported_model_types() {
    static const std::vector<std::string> types = {"gpt2", "llama", "mistral", "qwen2"};
    return types;
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
    const json doc = parse_json_strict(json_text, source);
    const Fields f(doc, source);

    ModelConfig c;
    const std::string supported = join(supported_model_types());
    const json* type = f.get("model_type");
    if (!type) {
        fail(source, "field 'model_type' is missing; supported: " + supported);
    }
    if (!type->is_string()) f.wrong("model_type", "a string (one of " + supported + ")", *type);
    c.model_type = type->get<std::string>();
    if (c.model_type == "gpt2") {
        c.arch = Arch::kGpt2;
    } else if (c.model_type == "llama") {
        c.arch = Arch::kLlama;
    } else if (c.model_type == "qwen2") {
        c.arch = Arch::kQwen2;
    } else if (c.model_type == "mistral") {
        c.arch = Arch::kMistral;
    } else {
        fail(source, "model_type '" + printable(c.model_type) +
                         "' is not supported; supported: " + supported);
    }

    if (c.arch == Arch::kGpt2) {
        parse_gpt2(f, c);
    } else {
        parse_llama_family(f, c);
    }

    c.bos_token_ids = f.token_ids("bos_token_id");
    c.eos_token_ids = f.token_ids("eos_token_id");
    if (const json* pad = f.get("pad_token_id")) {
        // Some converted Llama configs store -1 for "no pad token".
        const bool negative = pad->is_number_integer() && !pad->is_number_unsigned() &&
                              pad->get<std::int64_t>() < 0;
        if (!negative) c.pad_token_id = f.as_int("pad_token_id", *pad, 0, "an integer or null");
    }
    // transformers 5.x writes `dtype`, 4.x `torch_dtype`.
    const auto dtype = f.opt_string("dtype");
    const auto torch_dtype = f.opt_string("torch_dtype");
    c.torch_dtype = dtype ? *dtype : torch_dtype.value_or("");
    return c;
}

ModelConfig load_model_config(const fs::path& dir) {
    const fs::path path = dir / "config.json";
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        throw IoError(dir.string() + " is not a Hugging Face model folder: config.json missing");
    }
    if (!fs::is_regular_file(path, ec)) throw IoError(path.string() + ": not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw IoError(path.string() + ": cannot open: " + std::strerror(errno));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw IoError(path.string() + ": read error");
    return parse_model_config(ss.str(), path.string());
}

}  // namespace attnscope::format
