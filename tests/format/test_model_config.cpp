// Tests for core/format/model_config: real-world configs from tests/fixtures/format/ and small
// configs built in the test with one field changed at a time.
#include "tests/catch.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/format/model_config.h"

namespace fs = std::filesystem;
using namespace attnscope;
using namespace attnscope::format;

namespace {

const fs::path kFixtures = fs::path(ATTNSCOPE_SOURCE_DIR) / "tests" / "fixtures" / "format";

using Fields = std::vector<std::pair<std::string, std::string>>;  // key -> raw JSON value

const Fields kGpt2 = {{"model_type", "\"gpt2\""}, {"n_layer", "2"},      {"n_head", "4"},
                      {"n_embd", "64"},           {"vocab_size", "100"}, {"n_positions", "32"}};

const Fields kLlama = {{"model_type", "\"llama\""},
                       {"num_hidden_layers", "2"},
                       {"num_attention_heads", "4"},
                       {"hidden_size", "64"},
                       {"intermediate_size", "128"},
                       {"vocab_size", "100"},
                       {"max_position_embeddings", "256"}};

Fields with_type(const std::string& type) {
    Fields f = kLlama;
    f[0].second = "\"" + type + "\"";
    return f;
}

// `base` with `changes` applied: a key's value replaced (or appended), or removed when the new
// value is empty. Keeps every key unique, since duplicates are themselves an error.
std::string config(Fields base, const Fields& changes = {}) {
    for (const auto& change : changes) {
        // Not a structured binding: C++17 forbids capturing one in a lambda (clang enforces it).
        const std::string& key = change.first;
        const std::string& value = change.second;
        auto it = std::find_if(base.begin(), base.end(),
                               [&](const auto& kv) { return kv.first == key; });
        if (it != base.end()) {
            if (value.empty()) {
                base.erase(it);
            } else {
                it->second = value;
            }
        } else if (!value.empty()) {
            base.emplace_back(key, value);
        }
    }
    std::string out = "{";
    for (const auto& [key, value] : base) {
        if (out.size() > 1) out += ", ";
        out += "\"" + key + "\": " + value;
    }
    return out + "}";
}

ModelConfig parse(const std::string& text) { return parse_model_config(text, "config.json"); }

template <typename Error = ConfigError, typename Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("wrong exception type: " << e.what());
    }
    FAIL("no exception thrown");
    return {};
}

std::string config_error(const std::string& text) {
    CHECK_THROWS_AS(parse(text), ConfigError);
    const std::string msg = error_of([&] { parse(text); });
    CHECK(msg.rfind("config.json: ", 0) == 0);
    return msg;
}

}  // namespace

TEST_CASE("model config: GPT-2 (real config.json)", "[unit]") {
    const ModelConfig c = load_model_config(kFixtures / "gpt2");
    CHECK(c.arch == Arch::kGpt2);
    CHECK(c.model_type == "gpt2");
    CHECK(c.n_layers == 12);
    CHECK(c.n_heads == 12);
    CHECK(c.n_kv_heads == 12);
    CHECK(c.d_model == 768);
    CHECK(c.d_head == 64);
    CHECK(c.d_mlp == 3072);  // n_inner absent -> 4 * n_embd
    CHECK(c.vocab_size == 50257);
    CHECK(c.max_position_embeddings == 1024);
    CHECK(c.norm_eps == 1e-5);
    CHECK(c.activation == Activation::kGeluNew);
    CHECK(c.tie_word_embeddings);  // GPT-2 default
    CHECK(c.attention_bias);
    CHECK(c.o_proj_bias);
    CHECK(c.mlp_bias);
    CHECK(c.scale_attn_weights);
    CHECK_FALSE(c.scale_attn_by_inverse_layer_idx);
    CHECK_FALSE(c.sliding_window);
    CHECK(c.bos_token_ids == std::vector<int>{50256});
    CHECK(c.eos_token_ids == std::vector<int>{50256});
    CHECK_FALSE(c.pad_token_id);
    CHECK(c.torch_dtype.empty());
}

TEST_CASE("model config: GPT-2 options and defaults", "[unit]") {
    ModelConfig c = parse(config(kGpt2));
    CHECK(c.d_mlp == 256);
    CHECK(c.norm_eps == 1e-5);
    CHECK(c.tie_word_embeddings);
    CHECK(c.bos_token_ids.empty());

    c = parse(config(kGpt2, {{"n_inner", "null"}, {"activation_function", "\"relu\""},
                             {"scale_attn_weights", "false"},
                             {"scale_attn_by_inverse_layer_idx", "true"},
                             {"reorder_and_upcast_attn", "true"},
                             {"tie_word_embeddings", "false"},
                             {"layer_norm_epsilon", "1e-6"},
                             {"eos_token_id", "null"}}));
    CHECK(c.d_mlp == 256);
    CHECK(c.activation == Activation::kRelu);
    CHECK_FALSE(c.scale_attn_weights);
    CHECK(c.scale_attn_by_inverse_layer_idx);
    CHECK_FALSE(c.tie_word_embeddings);
    CHECK(c.norm_eps == 1e-6);
    CHECK(c.eos_token_ids.empty());

    CHECK(parse(config(kGpt2, {{"n_inner", "100"}})).d_mlp == 100);
    CHECK(parse(config(kGpt2, {{"activation_function", "\"gelu\""}})).activation ==
          Activation::kGelu);
    CHECK(parse(config(kGpt2, {{"activation_function", "\"gelu_pytorch_tanh\""}})).activation ==
          Activation::kGeluPytorchTanh);
    CHECK(parse(config(kGpt2, {{"activation_function", "\"gelu_fast\""}})).activation ==
          Activation::kGeluNew);

    std::string msg = config_error(config(kGpt2, {{"activation_function", "\"quick_gelu\""}}));
    CHECK_CONTAINS(msg, "activation_function");
    CHECK_CONTAINS(msg, "'quick_gelu' is not supported");
    CHECK_CONTAINS(msg, "gelu_new");

    msg = config_error(config(kGpt2, {{"n_embd", "66"}}));
    CHECK_CONTAINS(msg, "'n_embd' (66) is not divisible by 'n_head' (4)");

    msg = config_error(config(kGpt2, {{"n_layer", ""}}));
    CHECK_CONTAINS(msg, "field 'n_layer' is missing");

    msg = config_error(config(kGpt2, {{"add_cross_attention", "true"}}));
    CHECK_CONTAINS(msg, "add_cross_attention");

    msg = config_error(config(kGpt2, {{"scale_attn_weights", "1"}}));
    CHECK_CONTAINS(msg, "field 'scale_attn_weights' must be true or false, found "
                        "number 1");
}

TEST_CASE("model config: Llama 3.2 (real config.json, 4.x rope)", "[unit]") {
    const ModelConfig c = load_model_config(kFixtures / "llama3_2_1b");
    CHECK(c.arch == Arch::kLlama);
    CHECK(c.n_layers == 16);
    CHECK(c.n_heads == 32);
    CHECK(c.n_kv_heads == 8);
    CHECK(c.d_model == 2048);
    CHECK(c.d_head == 64);
    CHECK(c.d_mlp == 8192);
    CHECK(c.vocab_size == 128256);
    CHECK(c.max_position_embeddings == 131072);
    CHECK(c.norm_eps == 1e-5);
    CHECK(c.activation == Activation::kSilu);
    CHECK(c.tie_word_embeddings);
    CHECK_FALSE(c.attention_bias);
    CHECK_FALSE(c.o_proj_bias);
    CHECK_FALSE(c.mlp_bias);
    CHECK_FALSE(c.sliding_window);
    CHECK(c.rope.theta == 500000.0);
    CHECK(c.rope.type == RopeType::kLlama3);
    CHECK(c.rope.factor == 32.0);
    CHECK(c.rope.low_freq_factor == 1.0);
    CHECK(c.rope.high_freq_factor == 4.0);
    CHECK(c.rope.original_max_position_embeddings == 8192);
    CHECK(c.bos_token_ids == std::vector<int>{128000});
    CHECK(c.eos_token_ids == std::vector<int>{128001, 128008, 128009});
    CHECK(c.torch_dtype == "bfloat16");
}

TEST_CASE("model config: 4.x and 5.x rope forms give the same RopeConfig", "[unit]") {
    const ModelConfig v4 = load_model_config(kFixtures / "llama3_2_1b");
    const ModelConfig v5 = load_model_config(kFixtures / "llama3_2_1b_v5");
    CHECK(v5.rope.theta == v4.rope.theta);
    CHECK(v5.rope.type == v4.rope.type);
    CHECK(v5.rope.factor == v4.rope.factor);
    CHECK(v5.rope.low_freq_factor == v4.rope.low_freq_factor);
    CHECK(v5.rope.high_freq_factor == v4.rope.high_freq_factor);
    CHECK(v5.rope.original_max_position_embeddings == v4.rope.original_max_position_embeddings);
    CHECK(v5.torch_dtype == "bfloat16");  // 5.x "dtype"

    // Small configs: linear, default and theta placement.
    const ModelConfig a = parse(
        config(kLlama, {{"rope_theta", "20000"},
                        {"rope_scaling", R"({"type":"linear","factor":2})"}}));
    const ModelConfig b = parse(config(
        kLlama,
        {{"rope_parameters", R"({"rope_type":"linear","factor":2.0,"rope_theta":20000.0})"}}));
    for (const ModelConfig* c : {&a, &b}) {
        CHECK(c->rope.type == RopeType::kLinear);
        CHECK(c->rope.factor == 2.0);
        CHECK(c->rope.theta == 20000.0);
    }
    // 5.x rope_parameters with the theta still at top level, and without a rope_type.
    const ModelConfig d = parse(config(kLlama, {{"rope_theta", "20000"},
                                                {"rope_parameters", R"({"rope_theta":20000})"}}));
    CHECK(d.rope.type == RopeType::kDefault);
    CHECK(d.rope.theta == 20000.0);
    // Nothing given: theta 10000, default rope.
    const ModelConfig e = parse(config(kLlama, {{"rope_scaling", "null"}}));
    CHECK(e.rope.type == RopeType::kDefault);
    CHECK(e.rope.theta == 10000.0);
    CHECK(e.rope.factor == 1.0);
    // Both spellings present and consistent.
    const ModelConfig f = parse(config(
        kLlama, {{"rope_scaling", R"({"rope_type":"linear","factor":2})"},
                 {"rope_parameters", R"({"rope_type":"linear","factor":2,"rope_theta":10000})"}}));
    CHECK(f.rope.type == RopeType::kLinear);
}

TEST_CASE("model config: rope errors", "[unit]") {
    for (const char* type : {"dynamic", "yarn", "longrope", "ntk"}) {
        const std::string msg = config_error(config(
            kLlama, {{"rope_scaling", std::string(R"({"rope_type":")") + type +
                                          R"(","factor":4})"}}));
        CHECK_CONTAINS(msg, "rope_scaling");
        CHECK_CONTAINS(msg, std::string("rope type '") + type + "' is not supported");
        CHECK_CONTAINS(msg, "supported: default, linear, llama3");
    }
    std::string msg =
        config_error(config(kLlama, {{"rope_parameters", R"({"rope_type":"yarn","factor":4})"}}));
    CHECK_CONTAINS(msg, "rope_parameters");
    CHECK_CONTAINS(msg, "supported: default, linear, llama3");

    msg = config_error(config(kLlama, {{"partial_rotary_factor", "0.5"}}));
    CHECK_CONTAINS(msg, "partial_rotary_factor");
    msg = config_error(config(
        kLlama,
        {{"rope_parameters", R"({"rope_type":"default","partial_rotary_factor":0.25})"}}));
    CHECK_CONTAINS(msg, "rope_parameters.partial_rotary_factor");
    CHECK(parse(config(kLlama, {{"partial_rotary_factor", "1.0"}})).rope.type ==
          RopeType::kDefault);

    // llama3 needs all four of its fields.
    msg = config_error(config(
        kLlama, {{"rope_scaling", R"({"rope_type":"llama3","factor":8,"low_freq_factor":1,)"
                                  R"("high_freq_factor":4})"}}));
    CHECK_CONTAINS(msg, "'rope_scaling.original_max_position_embeddings' is missing");
    msg = config_error(config(
        kLlama, {{"rope_scaling", R"({"rope_type":"llama3","factor":8,"low_freq_factor":4,)"
                                  R"("high_freq_factor":4,)"
                                  R"("original_max_position_embeddings":8192})"}}));
    CHECK_CONTAINS(msg, "greater than low_freq_factor");
    msg = config_error(config(kLlama, {{"rope_scaling", R"({"rope_type":"linear"})"}}));
    CHECK_CONTAINS(msg, "'rope_scaling.factor' is missing");
    msg = config_error(config(kLlama, {{"rope_scaling", R"({"factor":2})"}}));
    CHECK_CONTAINS(msg, "no 'rope_type'");
    msg = config_error(config(kLlama, {{"rope_scaling", "\"linear\""}}));
    CHECK_CONTAINS(msg, "field 'rope_scaling' must be an object or null, found string");
    msg = config_error(config(kLlama, {{"rope_theta", "-1"}}));
    CHECK_CONTAINS(msg, "field 'rope_theta' must be a positive number, found number -1");

    // Disagreeing spellings.
    msg = config_error(config(kLlama, {{"rope_scaling", R"({"rope_type":"linear","factor":2})"},
                                       {"rope_parameters", R"({"rope_type":"default"})"}}));
    CHECK_CONTAINS(msg, "'rope_scaling' and 'rope_parameters'");
    msg = config_error(config(
        kLlama, {{"rope_theta", "10000"}, {"rope_parameters", R"({"rope_theta":500000})"}}));
    CHECK_CONTAINS(msg, "disagree");

    // Per-layer-type rope parameters (Gemma-style) are not supported here.
    msg = config_error(config(
        kLlama, {{"rope_parameters", R"({"full_attention":{"rope_type":"default"},)"
                                     R"("sliding_attention":{"rope_type":"default"}})"}}));
    CHECK_CONTAINS(msg, "per-layer-type");
}

TEST_CASE("model config: Llama biases, head_dim and GQA", "[unit]") {
    ModelConfig c = parse(config(kLlama));
    CHECK(c.n_kv_heads == 4);  // default: no GQA
    CHECK(c.d_head == 16);
    CHECK(c.norm_eps == 1e-6);
    CHECK_FALSE(c.tie_word_embeddings);
    CHECK_FALSE(c.attention_bias);

    c = parse(config(kLlama, {{"attention_bias", "true"}, {"mlp_bias", "true"}}));
    CHECK(c.attention_bias);
    CHECK(c.o_proj_bias);
    CHECK(c.mlp_bias);

    c = parse(config(kLlama, {{"num_key_value_heads", "2"}, {"head_dim", "32"}}));
    CHECK(c.n_kv_heads == 2);
    CHECK(c.d_head == 32);
    // head_dim set, hidden_size not divisible by heads: fine (Mistral-Nemo style).
    c = parse(config(kLlama, {{"hidden_size", "66"}, {"head_dim", "16"}}));
    CHECK(c.d_head == 16);
    CHECK(parse(config(kLlama, {{"head_dim", "null"}, {"num_key_value_heads", "null"}})).d_head ==
          16);

    std::string msg = config_error(config(kLlama, {{"num_key_value_heads", "3"}}));
    CHECK_CONTAINS(msg, "'num_key_value_heads' (3) must divide "
                        "'num_attention_heads' (4)");
    msg = config_error(config(kLlama, {{"num_key_value_heads", "8"}}));
    CHECK_CONTAINS(msg, "num_key_value_heads");
    msg = config_error(config(kLlama, {{"hidden_size", "66"}}));
    CHECK_CONTAINS(msg, "'hidden_size' (66) is not divisible");
    msg = config_error(config(kLlama, {{"head_dim", "15"}}));
    CHECK_CONTAINS(msg, "head_dim");
    CHECK_CONTAINS(msg, "odd");

    CHECK(parse(config(kLlama, {{"hidden_act", "\"gelu_pytorch_tanh\""}})).activation ==
          Activation::kGeluPytorchTanh);
    msg = config_error(config(kLlama, {{"hidden_act", "\"xielu\""}}));
    CHECK_CONTAINS(msg, "field 'hidden_act'");
    CHECK_CONTAINS(msg, "silu");
}

TEST_CASE("model config: Qwen2 (real config.json) and sliding window", "[unit]") {
    ModelConfig c = load_model_config(kFixtures / "qwen2_5_0_5b");
    CHECK(c.arch == Arch::kQwen2);
    CHECK(c.n_layers == 24);
    CHECK(c.n_heads == 14);
    CHECK(c.n_kv_heads == 2);
    CHECK(c.d_head == 64);
    CHECK(c.tie_word_embeddings);
    CHECK(c.attention_bias);  // q/k/v always biased
    CHECK_FALSE(c.o_proj_bias);
    CHECK_FALSE(c.mlp_bias);
    CHECK(c.rope.theta == 1000000.0);
    CHECK(c.rope.type == RopeType::kDefault);
    CHECK_FALSE(c.sliding_window);  // use_sliding_window false
    CHECK(c.sliding_window_from_layer == 0);

    const Fields qwen = with_type("qwen2");
    c = parse(config(qwen, {{"use_sliding_window", "true"}, {"sliding_window", "16"},
                            {"max_window_layers", "1"}}));
    REQUIRE(c.sliding_window);
    CHECK(*c.sliding_window == 16);
    CHECK(c.sliding_window_from_layer == 1);
    // Window size defaults to 4096, max_window_layers to 28 (past the 2 layers: nothing slides).
    c = parse(config(qwen, {{"use_sliding_window", "true"}, {"max_window_layers", "0"}}));
    CHECK(c.sliding_window == 4096);
    CHECK(c.sliding_window_from_layer == 0);
    c = parse(config(qwen, {{"use_sliding_window", "true"}}));
    CHECK_FALSE(c.sliding_window);
    c = parse(config(qwen, {{"use_sliding_window", "true"}, {"sliding_window", "null"},
                            {"max_window_layers", "0"}}));
    CHECK_FALSE(c.sliding_window);
    // attention_bias in a Qwen2 config does not change Qwen2's fixed biases.
    c = parse(config(qwen, {{"attention_bias", "false"}}));
    CHECK(c.attention_bias);

    // transformers >= 4.53 layer_types.
    c = parse(config(qwen, {{"use_sliding_window", "true"}, {"sliding_window", "8"},
                            {"layer_types", R"(["full_attention","sliding_attention"])"}}));
    CHECK(c.sliding_window == 8);
    CHECK(c.sliding_window_from_layer == 1);
    c = parse(config(qwen, {{"layer_types", R"(["full_attention","sliding_attention"])"}}));
    CHECK_FALSE(c.sliding_window);  // not enabled
    std::string msg = config_error(config(
        qwen, {{"use_sliding_window", "true"},
               {"layer_types", R"(["sliding_attention","full_attention"])"}}));
    CHECK_CONTAINS(msg, "layer_types");
    msg = config_error(config(qwen, {{"layer_types", R"(["full_attention"])"}}));
    CHECK_CONTAINS(msg, "field 'layer_types' must be a list of 2 strings");
    msg = config_error(config(qwen, {{"use_sliding_window", "\"yes\""}}));
    CHECK_CONTAINS(msg, "field 'use_sliding_window' must be true or false, found "
                        "string \"yes\"");
    msg = config_error(config(qwen, {{"sliding_window", "0"}}));
    CHECK_CONTAINS(msg, "field 'sliding_window' must be a positive integer");
}

TEST_CASE("model config: Mistral (real config.json) and sliding window", "[unit]") {
    ModelConfig c = load_model_config(kFixtures / "mistral_7b_v0_1");
    CHECK(c.arch == Arch::kMistral);
    CHECK(c.n_kv_heads == 8);
    CHECK(c.d_head == 128);
    CHECK(c.d_mlp == 14336);
    CHECK_FALSE(c.attention_bias);
    CHECK_FALSE(c.o_proj_bias);
    CHECK_FALSE(c.mlp_bias);
    REQUIRE(c.sliding_window);
    CHECK(*c.sliding_window == 4096);
    CHECK(c.sliding_window_from_layer == 0);
    CHECK(c.bos_token_ids == std::vector<int>{1});

    const Fields mistral = with_type("mistral");
    CHECK_FALSE(parse(config(mistral, {{"sliding_window", "null"}})).sliding_window);
    CHECK(parse(config(mistral, {{"sliding_window", "128"}})).sliding_window == 128);
    CHECK(parse(config(mistral)).sliding_window == 4096);  // MistralConfig default
    CHECK_FALSE(parse(config(kLlama, {{"sliding_window", "128"}})).sliding_window);
}

TEST_CASE("model config: model_type", "[unit]") {
    std::string msg = config_error(config(kLlama, {{"model_type", "\"gemma\""}}));
    CHECK_CONTAINS(msg, "model_type 'gemma' is not supported; supported: gpt2, "
                        "llama, mistral, qwen2");
    msg = config_error(config(kLlama, {{"model_type", ""}}));
    CHECK_CONTAINS(msg, "'model_type' is missing");
    CHECK_CONTAINS(msg, "gpt2, llama, mistral, qwen2");
    msg = config_error(config(kLlama, {{"model_type", "3"}}));
    CHECK_CONTAINS(msg, "field 'model_type' must be a string");

    CHECK(supported_model_types() == std::vector<std::string>{"gpt2", "llama", "mistral", "qwen2"});
    CHECK(to_string(Arch::kQwen2) == "qwen2");
    CHECK(to_string(Arch::kGpt2) == "gpt2");
    CHECK(to_string(RopeType::kLlama3) == "llama3");
    CHECK(to_string(Activation::kGeluPytorchTanh) == "gelu_pytorch_tanh");
    CHECK(to_string(Activation::kSilu) == "silu");
}

TEST_CASE("model config: wrong field types name the field and what was found", "[unit]") {
    std::string msg = config_error(config(kLlama, {{"num_attention_heads", "\"32\""}}));
    CHECK_CONTAINS(msg, "config.json: field 'num_attention_heads' must be a positive "
                        "integer, found string \"32\"");
    msg = config_error(config(kLlama, {{"num_hidden_layers", "0"}}));
    CHECK_CONTAINS(msg, "'num_hidden_layers' must be a positive integer, found "
                        "number 0");
    msg = config_error(config(kLlama, {{"hidden_size", "-64"}}));
    CHECK_CONTAINS(msg, "found number -64");
    msg = config_error(config(kLlama, {{"vocab_size", "100.0"}}));
    CHECK_CONTAINS(msg, "'vocab_size' must be a positive integer, found number 100.0");
    msg = config_error(config(kLlama, {{"vocab_size", "null"}}));
    CHECK_CONTAINS(msg, "'vocab_size' must be a positive integer, found null");
    msg = config_error(config(kLlama, {{"vocab_size", ""}}));
    CHECK_CONTAINS(msg, "'vocab_size' is missing");
    msg = config_error(config(kLlama, {{"intermediate_size", "4294967296"}}));
    CHECK_CONTAINS(msg, "'intermediate_size' is 4294967296, larger than");
    msg = config_error(config(kLlama, {{"rms_norm_eps", "\"1e-6\""}}));
    CHECK_CONTAINS(msg, "'rms_norm_eps' must be a positive number");
    msg = config_error(config(kLlama, {{"tie_word_embeddings", "\"true\""}}));
    CHECK_CONTAINS(msg, "'tie_word_embeddings' must be true or false");
    msg = config_error(config(kLlama, {{"num_key_value_heads", "[2]"}}));
    CHECK_CONTAINS(msg, "'num_key_value_heads' must be a positive integer, found "
                        "array [2]");
    msg = config_error(config(kLlama, {{"torch_dtype", "32"}}));
    CHECK_CONTAINS(msg, "'torch_dtype' must be a string");
}

TEST_CASE("model config: token ids", "[unit]") {
    ModelConfig c = parse(config(kLlama, {{"bos_token_id", "1"}, {"eos_token_id", "[2, 3]"},
                                          {"pad_token_id", "0"}}));
    CHECK(c.bos_token_ids == std::vector<int>{1});
    CHECK(c.eos_token_ids == std::vector<int>{2, 3});
    CHECK(c.pad_token_id == 0);
    c = parse(config(kLlama, {{"bos_token_id", "null"}, {"eos_token_id", "[]"},
                              {"pad_token_id", "-1"}}));
    CHECK(c.bos_token_ids.empty());
    CHECK(c.eos_token_ids.empty());
    CHECK_FALSE(c.pad_token_id);  // -1 is "no pad token" in converted Llama configs

    std::string msg = config_error(config(kLlama, {{"eos_token_id", "\"</s>\""}}));
    CHECK_CONTAINS(msg, "field 'eos_token_id'");
    CHECK_CONTAINS(msg, "found string \"</s>\"");
    msg = config_error(config(kLlama, {{"eos_token_id", "[1, \"x\"]"}}));
    CHECK_CONTAINS(msg, "field 'eos_token_id'");
    msg = config_error(config(kLlama, {{"bos_token_id", "-5"}}));
    CHECK_CONTAINS(msg, "field 'bos_token_id'");
    msg = config_error(config(kLlama, {{"pad_token_id", "[0]"}}));
    CHECK_CONTAINS(msg, "field 'pad_token_id'");
}

TEST_CASE("model config: malformed JSON and duplicates", "[unit]") {
    std::string msg = config_error("{\"model_type\": \"llama\",, }");
    CHECK_CONTAINS(msg, "not valid JSON");
    CHECK_CONTAINS(msg, "at byte 24");
    msg = config_error("");
    CHECK_CONTAINS(msg, "not valid JSON");
    msg = config_error("[1, 2]");
    CHECK_CONTAINS(msg, "must be a JSON object, found array");
    msg = config_error(R"({"model_type": "llama", "model_type": "gpt2"})");
    CHECK_CONTAINS(msg, "field 'model_type' appears more than once");
}

TEST_CASE("model config: load_model_config file errors", "[unit]") {
    const fs::path dir = kFixtures / "does-not-exist";
    CHECK_THROWS_AS(load_model_config(dir), IoError);
    const std::string msg = error_of<IoError>([&] { load_model_config(dir); });
    CHECK_CONTAINS(msg, dir.string());
    CHECK_CONTAINS(msg, "is not a Hugging Face model folder: config.json missing");

    // Errors from a loaded file name its path.
    const std::string msg2 = error_of([&] {
        ModelConfig c = parse_model_config("{}", (kFixtures / "gpt2" / "config.json").string());
        (void)c;
    });
    CHECK_CONTAINS(msg2, "gpt2/config.json: field 'model_type' is missing");
}
