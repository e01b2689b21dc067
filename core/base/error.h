// Error tree of attnscope. Every failure a user can cause (bad files, bad options, bad input)
// is one of these exception types, with a message that names what failed, on what, and what to
// do. Libraries throw; only cli/ and gui/ catch and turn errors into exit codes or dialogs.
#pragma once

#include <stdexcept>
#include <string>

namespace attnscope {

/// Base of every error attnscope throws on purpose.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// config.json / tokenizer_config.json / CLI option values: missing, malformed or unsupported.
class ConfigError : public Error {
public:
    using Error::Error;
};

/// Checkpoint weights: safetensors structure, missing/unexpected tensors, dtype or shape.
class WeightsError : public Error {
public:
    using Error::Error;
};

/// tokenizer.json content or text that cannot be tokenized (e.g. invalid UTF-8).
class TokenizerError : public Error {
public:
    using Error::Error;
};

/// A tensor whose shape differs from what a function requires.
class ShapeError : public Error {
public:
    using Error::Error;
};

/// Unknown hook name, bad glob, or a hook callback that returned an unusable tensor.
class HookError : public Error {
public:
    using Error::Error;
};

/// HDF5 store: unsupported schema version, missing group, wrong dataset type.
class SchemaError : public Error {
public:
    using Error::Error;
};

/// Filesystem and OS: cannot open, read, map or write a file.
class IoError : public Error {
public:
    using Error::Error;
};

/// Rethrows `e` as the same error type with `stage + ": "` prefixed to its message, so that a
/// loading failure reads "loading weights: model.safetensors: tensor 'x' ...".
[[noreturn]] void rethrow_with_stage(const std::string& stage);

}  // namespace attnscope
