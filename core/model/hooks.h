// Hook registry: how probes read and replace tensors at named hook points during a forward pass.
// LibTorch has no module forward hooks, so each hook point is an explicit `hooks.run(...)` call in
// the runner; an unobserved point costs one table lookup. Hooks are added through move-only
// HookHandles that remove them on destruction, so no hook outlives the scope that added it and
// there is no global hook state to reset (cf. TransformerLens HookedRootModule.hooks()).
// Not thread-safe: one registry belongs to one model used by one thread at a time.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/hook_name.h"

namespace attnscope::model {

/// Reads a tensor at a hook point. Must not modify it (it may alias the forward's buffers).
using Observer = std::function<void(const HookName&, const at::Tensor&)>;
/// Returns a replacement for the tensor at a hook point: same shape, dtype and device.
using Editor = std::function<at::Tensor(const HookName&, const at::Tensor&)>;
/// Reads consecutive query rows of hook_pattern: `rows` [batch, head, q_chunk, key_pos] are the
/// queries at key slots q_offset .. q_offset + q_chunk - 1. A layer whose pattern has only chunk
/// observers (no plain observer, no editor, nothing at hook_attn_scores) is computed in query
/// chunks, so its full [query_pos, key_pos] map never exists in memory.
using ChunkObserver = std::function<void(const HookName&, const at::Tensor& rows, std::int64_t q_offset)>;

namespace detail {
struct HookState;
}

/// What the forward now running is computing, for hooks that need more than the tensor (e.g.
/// interventions that must know which keys are padding or whether this is a decoding step).
/// Set by the runner at the start of every forward; valid while its hooks run.
struct ForwardContext {
    at::Tensor key_mask;            ///< [batch, key_pos] int64: 1 real token, 0 padding (cache + new)
    std::int64_t past = 0;          ///< positions already in the KV cache (0 = prefill)
    std::int64_t new_positions = 0; ///< positions computed by this forward
    std::int64_t sliding_window = 0; ///< window of windowed layers (0 = none)
    int sliding_window_from_layer = 0;
};

/// Owns one registered hook; removing it when destroyed or on remove(). Move-only. Safe to
/// destroy after the registry is gone.
class HookHandle {
public:
    HookHandle() = default;
    HookHandle(std::weak_ptr<detail::HookState> state, std::uint64_t id);
    HookHandle(HookHandle&& other) noexcept;
    HookHandle& operator=(HookHandle&& other) noexcept;
    HookHandle(const HookHandle&) = delete;
    HookHandle& operator=(const HookHandle&) = delete;
    ~HookHandle() noexcept;

    /// Removes the hook now (idempotent).
    void remove() noexcept;
    bool active() const;

private:
    std::weak_ptr<detail::HookState> state_;
    std::uint64_t id_ = 0;
};

class HookRegistry {
public:
    /// `points`: every hook point the model provides (defines what patterns may match).
    explicit HookRegistry(std::vector<HookName> points, int n_layers);
    ~HookRegistry();
    HookRegistry(const HookRegistry&) = delete;
    HookRegistry& operator=(const HookRegistry&) = delete;

    /// Observes every point matching `pattern` (exact TransformerLens name or '*' glob).
    /// Throws HookError when the pattern matches no point of this model.
    [[nodiscard]] HookHandle add_observer(std::string_view pattern, Observer fn);
    /// Edits every point matching `pattern`. At one point, editors run in registration order,
    /// then observers see the edited tensor. Throws HookError as add_observer.
    [[nodiscard]] HookHandle add_editor(std::string_view pattern, Editor fn);
    [[nodiscard]] HookHandle add_observer(const HookName& name, Observer fn);
    /// Chunked observer of `name`, which must be a blocks.L.attn.hook_pattern point (HookError
    /// otherwise). In layers that must materialise the full pattern anyway (another hook asks
    /// for it) it is called once with all rows.
    [[nodiscard]] HookHandle add_chunk_observer(const HookName& name, ChunkObserver fn);
    [[nodiscard]] HookHandle add_editor(const HookName& name, Editor fn);

    /// True if any hook is registered at (layer, site). layer = -1 for non-block sites.
    bool active(int layer, Site site) const;
    /// True if (layer) needs the materialised attention path (scores or pattern hooked).
    bool attention_observed(int layer) const;
    /// True if the layer's pattern is observed only by chunk observers (see ChunkObserver).
    bool pattern_chunked(int layer) const;
    /// Calls the chunk observers of layer's pattern with `rows` at `q_offset`.
    void run_pattern_chunk(int layer, const at::Tensor& rows, std::int64_t q_offset) const;
    /// Upper bound on elements of one query chunk's [batch, head, q_chunk, key_pos] (default
    /// 2^24: 64 MiB of float32 scores).
    void set_chunk_elements(std::int64_t n);
    std::int64_t chunk_elements() const;
    /// Runs editors then observers at (layer, site); returns the (possibly replaced) tensor.
    /// Throws HookError when an editor returns a tensor of another shape, dtype or device.
    at::Tensor run(int layer, Site site, at::Tensor x) const;

    /// The context of the forward now running (see ForwardContext).
    const ForwardContext& context() const;
    void set_context(ForwardContext ctx);

    const std::vector<HookName>& points() const;
    /// Hook points matching a pattern (for CLI listing and validation).
    std::vector<HookName> match(std::string_view pattern) const;
    /// Number of hooks registered now.
    std::size_t size() const;

private:
    HookHandle add(std::vector<HookName> targets, Observer obs, Editor ed, ChunkObserver chunk = nullptr);
    std::shared_ptr<detail::HookState> state_;
};

}  // namespace attnscope::model
