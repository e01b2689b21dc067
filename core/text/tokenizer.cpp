// Tokenizer: reads tokenizer.json (+ optional tokenizer_config.json) and runs the `tokenizers`
// encode pipeline — added-token split on raw text, normalizer, added-token split on normalized
// text, pre-tokenizer, BPE model, post-processor — and the decode pipeline (id -> token ->
// decoder chain). Components live in pipeline.cpp and bpe.cpp. Deliberately not here: pair
// inputs, offsets, truncation/padding (ignored if set in the file), training.
#include "core/text/tokenizer.h"

#include "core/base/error.h"
#include "core/base/utf8.h"
#include "core/text/bpe.h"
#include "core/text/pipeline.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace attnscope::text {

using json = nlohmann::json;

namespace {

// Never a real id (ids are validated non-negative): marks where the sequence lands when probing
// what a post-processor adds around it.
constexpr std::int32_t probe_id = std::numeric_limits<std::int32_t>::min();

// Fallback names, in order, when neither tokenizer_config.json nor the template says which
// tokens are BOS / EOS. GPT-2 style vocabularies use <|endoftext|> for both.
const char* const well_known_bos[] = {"<s>", "<|begin_of_text|>", "<|startoftext|>",
                                      "<|endoftext|>"};
const char* const well_known_eos[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"};

// Reads `path`; when it cannot be opened returns nothing and sets `open_error` to why.
std::string read_file(const std::filesystem::path& path, std::optional<std::string>& open_error) {
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        int err = errno;
        std::error_code ec;
        bool present = std::filesystem::exists(path, ec);
        open_error = !present ? std::string("not found")
                              : std::string("cannot open: ") +
                                    (err != 0 ? std::strerror(err) : "unknown error");
        return {};
    }
    open_error.reset();
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) {
        throw IoError(path.string() + ": read failed (" + std::strerror(errno) + ")");
    }
    return ss.str();
}

json parse_json_text(const std::string& text, const std::string& source, bool config) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        // Not only parse_error: a number out of double range ("1e999") is an out_of_range from
        // the parser (found by fuzzing, docs/fuzzing.md F-1).
        std::string msg = source + ": not valid JSON (" + e.what() + ")";
        if (config) throw ConfigError(msg);
        throw TokenizerError(msg + "; expected a Hugging Face tokenizer.json");
    }
}

}  // namespace

struct Tokenizer::Impl {
    std::string source;
    std::unique_ptr<detail::Normalizer> normalizer;
    std::unique_ptr<detail::PreTokenizer> pre_tokenizer;
    std::unique_ptr<detail::BpeModel> model;
    std::unique_ptr<detail::PostProcessor> post_processor;
    std::unique_ptr<detail::Decoder> decoder;
    std::unique_ptr<detail::AddedVocabulary> added;

    // tokenizer_config.json's add_bos_token / add_eos_token replace the post-processor by
    // prefix + sequence + suffix, as transformers' LlamaTokenizerFast.update_post_processor.
    bool special_override = false;
    std::vector<std::int32_t> prefix;
    std::vector<std::int32_t> suffix;

    std::optional<std::int32_t> bos;
    std::optional<std::int32_t> eos;
    std::int32_t vocab_size = 0;
    bool byte_level = false;

    std::optional<std::int32_t> lookup(std::string_view token) const {
        if (const detail::AddedToken* t = added->by_content(token)) return t->id;
        return model->token_to_id(token);
    }

    const std::string* token_of(std::int32_t id) const {
        if (const detail::AddedToken* t = added->by_id(id)) return &t->content;
        return model->id_to_token(id);
    }

    void apply_config(const std::string& config_text, const std::string& config_source);
};

namespace {

std::vector<detail::AddedToken> parse_added_tokens(const json& root, const detail::Context& ctx) {
    std::vector<detail::AddedToken> out;
    auto it = root.find("added_tokens");
    if (it == root.end() || it->is_null()) return out;
    if (!it->is_array()) {
        throw TokenizerError(ctx.source + ": added_tokens: must be an array");
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
        const json& e = (*it)[i];
        std::string where = ctx.source + ": added_tokens[" + std::to_string(i) + "]";
        if (!e.is_object()) throw TokenizerError(where + ": must be an object");
        detail::AddedToken t;
        auto id = e.find("id");
        if (id == e.end() || !id->is_number_integer() || id->get<std::int64_t>() < 0 ||
            id->get<std::int64_t>() > (1 << 24)) {
            throw TokenizerError(where + ".id: missing or not an id in 0..16777216");
        }
        t.id = static_cast<std::int32_t>(id->get<std::int64_t>());
        auto content = e.find("content");
        if (content == e.end() || !content->is_string()) {
            throw TokenizerError(where + ".content: missing or not a string");
        }
        t.content = content->get<std::string>();
        auto flag = [&](const char* key, bool fallback) {
            auto f = e.find(key);
            if (f == e.end() || f->is_null()) return fallback;
            if (!f->is_boolean()) throw TokenizerError(where + "." + key + ": must be a boolean");
            return f->get<bool>();
        };
        t.single_word = flag("single_word", false);
        t.lstrip = flag("lstrip", false);
        t.rstrip = flag("rstrip", false);
        t.normalized = flag("normalized", true);
        t.special = flag("special", false);
        out.push_back(std::move(t));
    }
    return out;
}

// The content of a tokenizer_config.json special-token entry: "<s>" or {"content": "<s>", ...}.
std::optional<std::string> config_token(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object()) {
        auto c = v.find("content");
        if (c != v.end() && c->is_string()) return c->get<std::string>();
    }
    return std::nullopt;
}

}  // namespace

void Tokenizer::Impl::apply_config(const std::string& config_text,
                                   const std::string& config_source) {
    // What the post-processor puts around a sequence, learned by running it on a probe.
    std::vector<std::int32_t> probe{probe_id};
    if (post_processor) probe = post_processor->process(probe, true);
    std::vector<std::int32_t> template_prefix;
    std::vector<std::int32_t> template_suffix;
    std::size_t probes = 0;
    for (std::int32_t id : probe) {
        if (id == probe_id) ++probes;
        else (probes == 0 ? template_prefix : template_suffix).push_back(id);
    }
    if (probes != 1) {
        template_prefix.clear();
        template_suffix.clear();
    }

    json config;
    if (!config_text.empty()) {
        config = parse_json_text(config_text, config_source, true);
        if (!config.is_object()) {
            throw ConfigError(config_source + ": expected a JSON object");
        }
    }

    auto resolve = [&](const char* key, const std::vector<std::int32_t>& from_template,
                       const char* const* names, std::size_t count) -> std::optional<std::int32_t> {
        if (config.is_object() && config.contains(key)) {
            // An explicit null means "this model has none"; an unknown name likewise.
            auto content = config_token(config[key]);
            if (!content) return std::nullopt;
            return lookup(*content);
        }
        if (!from_template.empty()) return key[0] == 'b' ? from_template.front()
                                                          : from_template.back();
        for (std::size_t i = 0; i < count; ++i) {
            if (auto id = lookup(names[i])) return id;
        }
        return std::nullopt;
    };
    bos = resolve("bos_token", template_prefix, well_known_bos, std::size(well_known_bos));
    eos = resolve("eos_token", template_suffix, well_known_eos, std::size(well_known_eos));

    auto flag = [&](const char* key) -> std::optional<bool> {
        if (!config.is_object()) return std::nullopt;
        auto it = config.find(key);
        if (it == config.end() || it->is_null()) return std::nullopt;
        if (!it->is_boolean()) {
            throw ConfigError(config_source + ": " + key + " must be true or false, got " +
                              it->dump());
        }
        return it->get<bool>();
    };
    std::optional<bool> add_bos = flag("add_bos_token");
    std::optional<bool> add_eos = flag("add_eos_token");
    if (!add_bos && !add_eos) return;

    special_override = true;
    prefix = template_prefix;
    suffix = template_suffix;
    if (add_bos) {
        prefix.clear();
        if (*add_bos) {
            if (!bos) {
                throw ConfigError(config_source + ": add_bos_token is true but no BOS token is "
                                  "known (bos_token missing, null or not in the vocabulary)");
            }
            prefix.push_back(*bos);
        }
    }
    if (add_eos) {
        suffix.clear();
        if (*add_eos) {
            if (!eos) {
                throw ConfigError(config_source + ": add_eos_token is true but no EOS token is "
                                  "known (eos_token missing, null or not in the vocabulary)");
            }
            suffix.push_back(*eos);
        }
    }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(const std::string& tokenizer_json,
                               const std::string& tokenizer_config_json,
                               const std::string& source) {
    return from_json_sources(tokenizer_json, source, tokenizer_config_json,
                             source + " (tokenizer_config.json)");
}

Tokenizer Tokenizer::load(const std::filesystem::path& dir) {
    const std::filesystem::path tok_path = dir / "tokenizer.json";
    std::optional<std::string> open_error;
    std::string text = read_file(tok_path, open_error);
    if (open_error) {
        throw IoError(tok_path.string() + ": " + *open_error +
                      "; the model directory needs the Hugging Face tokenizer.json "
                      "(transformers' save_pretrained writes it for fast tokenizers)");
    }
    // Optional: absent means "no overrides".
    const std::filesystem::path cfg_path = dir / "tokenizer_config.json";
    std::string cfg = read_file(cfg_path, open_error);
    return from_json_sources(text, tok_path.string(), cfg, cfg_path.string());
}

Tokenizer Tokenizer::from_json_sources(const std::string& tokenizer_json,
                                       const std::string& source,
                                       const std::string& config_json,
                                       const std::string& config_source) {
    auto impl = std::make_unique<Impl>();
    impl->source = source;
    detail::Context ctx{source};

    json root = parse_json_text(tokenizer_json, source, false);
    if (!root.is_object()) {
        throw TokenizerError(source + ": expected a JSON object (a Hugging Face tokenizer.json)");
    }
    auto section = [&](const char* key) -> const json& {
        static const json null_json;
        auto it = root.find(key);
        return it == root.end() ? null_json : *it;
    };

    impl->normalizer = detail::parse_normalizer(section("normalizer"), ctx, "normalizer");
    impl->pre_tokenizer =
        detail::parse_pre_tokenizer(section("pre_tokenizer"), ctx, "pre_tokenizer");
    impl->post_processor =
        detail::parse_post_processor(section("post_processor"), ctx, "post_processor");
    impl->decoder = detail::parse_decoder(section("decoder"), ctx, "decoder");

    const json& model = section("model");
    if (!model.is_object()) {
        throw TokenizerError(source + ": model: missing or not an object");
    }
    if (auto t = model.find("type"); t != model.end()) {
        if (!t->is_string() || t->get<std::string>() != "BPE") {
            std::string type = t->is_string() ? t->get<std::string>() : t->dump();
            throw TokenizerError(source + ": model type '" + type +
                                 "' is not supported; supported: BPE (byte-level as in GPT-2, "
                                 "Llama-3, Qwen2, or sentencepiece-style as in Llama-2, "
                                 "Mistral)");
        }
    } else if (!model.contains("merges")) {
        throw TokenizerError(source + ": model: no \"type\" and no merges; only BPE models are "
                             "supported");
    }
    impl->model = std::make_unique<detail::BpeModel>(model, source);
    impl->added = std::make_unique<detail::AddedVocabulary>(parse_added_tokens(root, ctx),
                                                            impl->normalizer.get());

    std::int32_t max_id = impl->model->max_id();
    for (const detail::AddedToken& t : impl->added->tokens()) max_id = std::max(max_id, t.id);
    impl->vocab_size = max_id + 1;
    impl->byte_level = (impl->pre_tokenizer && impl->pre_tokenizer->uses_byte_level()) ||
                       (impl->decoder && impl->decoder->uses_byte_level());

    impl->apply_config(config_json, config_source);
    return Tokenizer(std::move(impl));
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
    const Impl& m = *impl_;
    if (std::size_t bad = utf8::find_invalid(text); bad != utf8::npos) {
        throw TokenizerError("cannot tokenize: the text is not valid UTF-8 at byte offset " +
                             std::to_string(bad) + " (of " + std::to_string(text.size()) +
                             "); pass UTF-8 text");
    }

    std::vector<detail::Piece> pieces;
    if (!text.empty()) pieces.push_back(detail::Piece{std::string(text), -1, true});

    m.added->split_raw(pieces);
    if (m.normalizer) {
        std::vector<detail::Piece> kept;
        kept.reserve(pieces.size());
        for (detail::Piece& p : pieces) {
            if (p.token_id < 0) {
                m.normalizer->normalize(p.text);
                if (p.text.empty()) continue;  // tokenizers drops empty splits
            }
            kept.push_back(std::move(p));
        }
        pieces.swap(kept);
    }
    m.added->split_normalized(pieces);
    if (m.pre_tokenizer) m.pre_tokenizer->pre_tokenize(pieces);

    std::vector<std::int32_t> ids;
    ids.reserve(text.size() / 3 + 8);
    for (const detail::Piece& p : pieces) {
        if (p.token_id >= 0) ids.push_back(p.token_id);
        else m.model->tokenize(p.text, ids);
    }

    if (m.special_override) {
        if (!add_special_tokens) return ids;
        std::vector<std::int32_t> out;
        out.reserve(m.prefix.size() + ids.size() + m.suffix.size());
        out.insert(out.end(), m.prefix.begin(), m.prefix.end());
        out.insert(out.end(), ids.begin(), ids.end());
        out.insert(out.end(), m.suffix.begin(), m.suffix.end());
        return out;
    }
    if (m.post_processor) return m.post_processor->process(std::move(ids), add_special_tokens);
    return ids;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids,
                              bool skip_special_tokens) const {
    const Impl& m = *impl_;
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (std::int32_t id : ids) {
        const std::string* token = m.token_of(id);
        if (token == nullptr) {
            throw TokenizerError("cannot decode: id " + std::to_string(id) +
                                 " is not in the vocabulary of " + m.source + " (vocab size " +
                                 std::to_string(m.vocab_size) + ")");
        }
        if (skip_special_tokens) {
            // By content, as tokenizers' is_special_token: a model token spelled like a
            // special added token is skipped too.
            const detail::AddedToken* added = m.added->by_content(*token);
            if (added != nullptr && added->special) continue;
        }
        tokens.push_back(*token);
    }
    std::string out;
    if (m.decoder) {
        m.decoder->decode_chain(tokens);
        for (const std::string& t : tokens) out += t;
    } else {
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            if (i > 0) out += ' ';
            out += tokens[i];
        }
    }
    return out;
}

std::string Tokenizer::id_to_token(std::int32_t id) const {
    const std::string* token = impl_->token_of(id);
    if (token == nullptr) {
        throw TokenizerError("id " + std::to_string(id) + " is not in the vocabulary of " +
                             impl_->source + " (vocab size " +
                             std::to_string(impl_->vocab_size) + ")");
    }
    return *token;
}

std::string Tokenizer::token_display(std::int32_t id) const {
    const Impl& m = *impl_;
    if (const detail::AddedToken* t = m.added->by_id(id)) return t->content;
    std::string token = id_to_token(id);
    std::string bytes;
    if (m.byte_level) {
        std::size_t pos = 0;
        bool all = true;
        while (pos < token.size()) {
            auto b = detail::byte_level_byte(utf8::decode(token, pos));
            if (!b) {
                all = false;
                break;
            }
            bytes.push_back(static_cast<char>(*b));
        }
        if (!all) bytes = token;
    } else {
        static const std::string meta = "\xE2\x96\x81";  // U+2581, sentencepiece's space
        unsigned hi = 0, lo = 0;
        if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' &&
            std::sscanf(token.c_str() + 3, "%1x%1x", &hi, &lo) == 2) {
            bytes.push_back(static_cast<char>(hi * 16 + lo));
        } else {
            std::size_t pos = 0;
            while (pos < token.size()) {
                if (token.compare(pos, meta.size(), meta) == 0) {
                    bytes.push_back(' ');
                    pos += meta.size();
                } else {
                    bytes.push_back(token[pos++]);
                }
            }
        }
    }
    return utf8::escape_invalid(bytes);
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
    return impl_->lookup(token);
}

std::int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
std::optional<std::int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<std::int32_t> Tokenizer::eos_id() const { return impl_->eos; }

bool Tokenizer::is_special(std::int32_t id) const {
    const detail::AddedToken* t = impl_->added->by_id(id);
    return t != nullptr && t->special;
}

std::string Tokenizer::kind() const {
    return impl_->byte_level ? "byte_level_bpe" : "sentencepiece_bpe";
}

}  // namespace attnscope::text
