#include "core/base/error.h"

#include <exception>

namespace attnscope {

void rethrow_with_stage(const std::string& stage) {
    try {
        throw;
    } catch (const ConfigError& e) {
        throw ConfigError(stage + ": " + e.what());
    } catch (const WeightsError& e) {
        throw WeightsError(stage + ": " + e.what());
    } catch (const TokenizerError& e) {
        throw TokenizerError(stage + ": " + e.what());
    } catch (const ShapeError& e) {
        throw ShapeError(stage + ": " + e.what());
    } catch (const HookError& e) {
        throw HookError(stage + ": " + e.what());
    } catch (const SchemaError& e) {
        throw SchemaError(stage + ": " + e.what());
    } catch (const IoError& e) {
        throw IoError(stage + ": " + e.what());
    } catch (const Error& e) {
        throw Error(stage + ": " + e.what());
    }
}

}  // namespace attnscope
