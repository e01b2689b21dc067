// Training-free attention interventions: ACT (attention calibration), VAR (attention
// redistribution onto a target token set), SoftPAG (interpolation towards the identity), head
// ablation (zero, mean, uniform) and per-head attention temperature. Each is a parameter set
// plus editors on hook points; several compose in one InterventionSet (editors run in the order
// the methods were given). They act in the prefill and at every KV-cached decoding step.
// Definitions and defaults: ../shared/specs/methods.md §2, §3, §6; user guide:
// docs/interventions.md. The arithmetic lives in attention_edit.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/model/hooks.h"

namespace attnscope::model {
class Model;
}

namespace attnscope::probes {

/// One attention head (query head, after GQA repetition).
struct HeadRef {
    int layer = 0;
    int head = 0;
    friend bool operator==(const HeadRef& a, const HeadRef& b) { return a.layer == b.layer && a.head == b.head; }
    friend bool operator<(const HeadRef& a, const HeadRef& b) {
        return a.layer != b.layer ? a.layer < b.layer : a.head < b.head;
    }
};

/// Parses a head list: comma-separated LAYER.HEAD items where each side is a number, a range
/// a-b or '*' ("2.3,4.*,2-5.0-3"); '+' may stand for ',' (so lists fit inside --method specs).
/// Sorted, without duplicates. Throws ConfigError naming the item and the model's sizes.
std::vector<HeadRef> parse_heads(const std::string& text, int n_layers, int n_heads);
std::string format_heads(const std::vector<HeadRef>& heads);

/// A method name with its parameters, as written on the command line: "act:beta=0.4,tau=0.1".
struct MethodSpec {
    std::string name;
    std::vector<std::pair<std::string, std::string>> params;
};
/// Parses "NAME[:k=v,k=v...]". Throws ConfigError on a malformed spec.
MethodSpec parse_method_spec(const std::string& text);

/// Per-forward inputs shared by the methods of one set.
struct InterventionState {
    /// Master switch: false makes every editor return its input unchanged.
    bool enabled = true;
    /// Guidance: SoftPAG with s > 0 perturbs only while this is true (the "weak" pass).
    bool perturb = false;
    /// Target token span [begin, end) per batch row (VAR's target set on text models). One entry
    /// applies to every row; none = use the method's own `span` parameter.
    std::vector<std::pair<std::int64_t, std::int64_t>> spans;
};

class Intervention {
public:
    virtual ~Intervention() = default;
    virtual std::string name() const = 0;
    /// The parameters actually in force, as a JSON object (recorded with runs and reports).
    virtual std::string params_json() const = 0;
    /// Counters since attach (rows changed, mass moved, ...) as a JSON object.
    virtual std::string stats_json() const { return "{}"; }
    /// Registers the method's hooks on `m`; the handles go to `out`.
    virtual void attach(model::Model& m, std::shared_ptr<InterventionState> state,
                        std::vector<model::HookHandle>& out) = 0;
    /// Methods with data-dependent parameters (VAR's automatic sink dimensions, mean ablation)
    /// compute them here from reference token sequences; called before attach.
    virtual bool needs_calibration() const { return false; }
    virtual void calibrate(model::Model& m, const std::vector<std::vector<std::int32_t>>& seqs) {}
    /// Guidance scale s (SoftPAG only): logits = z + s (z - z_perturbed). 0 = none.
    virtual double guidance() const { return 0; }
};

/// Builds a method: act, var, softpag, ablate, temperature. Parameters and defaults are listed by
/// method_help(). Throws ConfigError for an unknown method or parameter (listing the valid
/// ones) and for values out of range.
std::unique_ptr<Intervention> make_intervention(const MethodSpec& spec, const model::Model& m);
/// One line per method: its parameters and defaults.
std::string method_help();

/// Several methods applied together.
class InterventionSet {
public:
    InterventionSet();
    ~InterventionSet();
    InterventionSet(InterventionSet&&) noexcept;
    InterventionSet& operator=(InterventionSet&&) noexcept;

    /// From the command line: `methods` are specs ("act:beta=0.4"); `params` are "k=v" (allowed
    /// when exactly one method is given) or "method.k=v".
    static InterventionSet from_cli(const std::vector<std::string>& methods,
                                    const std::vector<std::string>& params, const model::Model& m);

    void add(std::unique_ptr<Intervention> method);
    bool empty() const;
    std::size_t size() const;

    bool needs_calibration() const;
    void calibrate(model::Model& m, const std::vector<std::vector<std::int32_t>>& seqs);
    /// Registers every method's hooks on `m` (kept until detach() or destruction).
    void attach(model::Model& m);
    void detach();
    bool attached() const;

    void set_enabled(bool on);
    bool enabled() const;
    void set_perturb(bool on);
    void set_spans(std::vector<std::pair<std::int64_t, std::int64_t>> spans);
    /// Largest guidance scale of the methods (0 = no guidance pass needed).
    double guidance() const;

    /// {"methods": [{"method": "act", "params": {...}}, ...]}; "{}" when empty.
    std::string to_json() const;
    /// {"act": {...counters...}, ...}
    std::string stats_json() const;
    /// Short human form, e.g. "act(beta=0.4, tau=0.1, heads=40)".
    std::string describe() const;

private:
    std::vector<std::unique_ptr<Intervention>> methods_;
    std::shared_ptr<InterventionState> state_;
    std::vector<model::HookHandle> handles_;
};

}  // namespace attnscope::probes
