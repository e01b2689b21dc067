#include "core/model/hooks.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/base/error.h"

namespace attnscope::model {
namespace detail {

struct Entry {
    std::uint64_t id;
    Observer observer;  // exactly one of observer / editor / chunk is set
    Editor editor;
    ChunkObserver chunk;
};

// Per point: the entries in registration order. Points are indexed (layer + 1) * kNumSites +
// site, with layer -1 for the global sites, so lookup in the forward is O(1).
struct HookState {
    int n_layers = 0;
    std::vector<HookName> points;
    std::vector<std::vector<Entry>> table;
    std::uint64_t next_id = 1;
    std::size_t count = 0;
    std::int64_t chunk_elements = std::int64_t{1} << 24;
    ForwardContext context;

    std::size_t index(int layer, Site site) const {
        return static_cast<std::size_t>(layer + 1) * kNumSites + static_cast<std::size_t>(site);
    }
    bool valid_layer(int layer) const { return layer >= -1 && layer < n_layers; }

    void remove(std::uint64_t id) {
        for (auto& entries : table) {
            auto it = std::remove_if(entries.begin(), entries.end(),
                                     [id](const Entry& e) { return e.id == id; });
            count -= static_cast<std::size_t>(entries.end() - it);
            entries.erase(it, entries.end());
        }
    }
};

}  // namespace detail

HookHandle::HookHandle(std::weak_ptr<detail::HookState> state, std::uint64_t id)
    : state_(std::move(state)), id_(id) {}

HookHandle::HookHandle(HookHandle&& other) noexcept
    : state_(std::move(other.state_)), id_(other.id_) {
    other.id_ = 0;
}

HookHandle& HookHandle::operator=(HookHandle&& other) noexcept {
    if (this != &other) {
        remove();
        state_ = std::move(other.state_);
        id_ = other.id_;
        other.id_ = 0;
    }
    return *this;
}

HookHandle::~HookHandle() noexcept { remove(); }

void HookHandle::remove() noexcept {
    if (id_ == 0) return;
    if (auto s = state_.lock()) s->remove(id_);
    id_ = 0;
    state_.reset();
}

bool HookHandle::active() const { return id_ != 0 && !state_.expired(); }

HookRegistry::HookRegistry(std::vector<HookName> points, int n_layers)
    : state_(std::make_shared<detail::HookState>()) {
    state_->n_layers = n_layers;
    state_->points = std::move(points);
    state_->table.resize(static_cast<std::size_t>(n_layers + 1) * kNumSites);
}

HookRegistry::~HookRegistry() = default;

std::vector<HookName> HookRegistry::match(std::string_view pattern) const {
    std::vector<HookName> out;
    for (const HookName& h : state_->points)
        if (glob_match(pattern, h.to_string())) out.push_back(h);
    return out;
}

HookHandle HookRegistry::add(std::vector<HookName> targets, Observer obs, Editor ed,
                             ChunkObserver chunk) {
    const std::uint64_t id = state_->next_id++;
    for (const HookName& h : targets) {
        state_->table[state_->index(h.layer, h.site)].push_back({id, obs, ed, chunk});
        ++state_->count;
    }
    return HookHandle(state_, id);
}

namespace {
std::vector<HookName> require_match(const HookRegistry& r, std::string_view pattern) {
    auto targets = r.match(pattern);
    if (targets.empty()) {
        // Distinguish a malformed name from a valid name this model lacks.
        std::string why = HookName::try_parse(pattern) || pattern.find('*') != std::string_view::npos ||
                                  pattern.find('?') != std::string_view::npos
                              ? "this model has no such hook point"
                              : "not a hook name";
        throw HookError("hook pattern '" + std::string(pattern) + "' matches nothing: " + why +
                        " (list them with `attnscope info --model DIR`)");
    }
    return targets;
}
}  // namespace

HookHandle HookRegistry::add_observer(std::string_view pattern, Observer fn) {
    return add(require_match(*this, pattern), std::move(fn), nullptr);
}
HookHandle HookRegistry::add_editor(std::string_view pattern, Editor fn) {
    return add(require_match(*this, pattern), nullptr, std::move(fn));
}
HookHandle HookRegistry::add_observer(const HookName& name, Observer fn) {
    return add_observer(name.to_string(), std::move(fn));
}
HookHandle HookRegistry::add_editor(const HookName& name, Editor fn) {
    return add_editor(name.to_string(), std::move(fn));
}

HookHandle HookRegistry::add_chunk_observer(const HookName& name, ChunkObserver fn) {
    if (name.site != Site::kPattern)
        throw HookError("chunk observers read attention patterns only; " + name.to_string() +
                        " is not a blocks.L.attn.hook_pattern point");
    return add(require_match(*this, name.to_string()), nullptr, nullptr, std::move(fn));
}

bool HookRegistry::pattern_chunked(int layer) const {
    if (!active(layer, Site::kPattern) || active(layer, Site::kAttnScores)) return false;
    for (const auto& e : state_->table[state_->index(layer, Site::kPattern)])
        if (!e.chunk) return false;
    return true;
}

void HookRegistry::run_pattern_chunk(int layer, const at::Tensor& rows, std::int64_t q_offset) const {
    const std::vector<detail::Entry> entries = state_->table[state_->index(layer, Site::kPattern)];
    const HookName name{layer, Site::kPattern};
    for (const auto& e : entries)
        if (e.chunk) e.chunk(name, rows, q_offset);
}

void HookRegistry::set_chunk_elements(std::int64_t n) { state_->chunk_elements = std::max<std::int64_t>(1, n); }
std::int64_t HookRegistry::chunk_elements() const { return state_->chunk_elements; }

bool HookRegistry::active(int layer, Site site) const {
    if (state_->count == 0 || !state_->valid_layer(layer)) return false;
    return !state_->table[state_->index(layer, site)].empty();
}

bool HookRegistry::attention_observed(int layer) const {
    return active(layer, Site::kAttnScores) || active(layer, Site::kPattern);
}

at::Tensor HookRegistry::run(int layer, Site site, at::Tensor x) const {
    if (!active(layer, site)) return x;
    // Copy the list: a callback may add or remove hooks (e.g. a one-shot observer).
    const std::vector<detail::Entry> entries = state_->table[state_->index(layer, site)];
    const HookName name{layer, site};
    for (const auto& e : entries) {
        if (!e.editor) continue;
        at::Tensor y = e.editor(name, x);
        if (!y.defined() || y.sizes() != x.sizes() || y.scalar_type() != x.scalar_type() ||
            y.device() != x.device()) {
            std::ostringstream msg;
            msg << "editor at " << name.to_string() << " returned ";
            if (!y.defined())
                msg << "an undefined tensor";
            else
                msg << "shape " << y.sizes() << " " << y.scalar_type() << " on " << y.device();
            msg << "; expected shape " << x.sizes() << " " << x.scalar_type() << " on "
                << x.device();
            throw HookError(msg.str());
        }
        x = std::move(y);
    }
    for (const auto& e : entries) {
        if (e.observer) e.observer(name, x);
        // Full-path fallback for chunk observers: all rows at once; rows are the last slots.
        if (e.chunk) e.chunk(name, x, x.size(-1) - x.size(-2));
    }
    return x;
}

const ForwardContext& HookRegistry::context() const { return state_->context; }
void HookRegistry::set_context(ForwardContext ctx) { state_->context = std::move(ctx); }

const std::vector<HookName>& HookRegistry::points() const { return state_->points; }
std::size_t HookRegistry::size() const { return state_->count; }

}  // namespace attnscope::model
