// Closed-form learning-rate schedules: value types that map a step count to a value.
//
// A schedule is called with t, the number of optimizer steps already taken
// (0 before the first step), and returns the hyperparameter to use for step
// t + 1. Calls are pure and cheap: same t, same value, no state.
//
// Each type reproduces the value a torch.optim.lr_scheduler counterpart holds
// after t calls of scheduler.step() (listed per type). Torch advances several
// of them recursively (lr_t = lr_{t-1} * ratio); the closed forms here agree
// with those recursions to O(t * machine epsilon), far below 1e-9 relative.
//
// Each type declares its fields once, in a static fields() list (name, member,
// constraint). validate(schedule) checks a schedule against that list and
// throws std::invalid_argument naming the first bad field; make<S>(...) builds
// and validates in one call. Plain aggregate initialization skips the checks
// (and operator() never checks, so it stays a few instructions): build with
// make<S> or call validate() before trusting values from outside. The Python
// bindings (cpp/python/register_schedules.cpp) are generated from the same
// lists, so Python and C++ accept exactly the same schedules.
//
// This is the only place the formulas are written; the Python classes
// evaluate them through lrcore._core.schedules.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace lrcore::schedules {

/// pi to double precision (std::numbers::pi is C++20).
inline constexpr double pi = 3.141592653589793238462643383279502884;

/// Cosine interpolation: `from` at fraction 0, `to` at fraction 1, continuing
/// periodically beyond 1:  to + (from - to) * (1 + cos(pi * fraction)) / 2.
inline double cosine_anneal(double from, double to, double fraction) {
    return to + (from - to) / 2.0 * (std::cos(pi * fraction) + 1.0);
}

/// Linear interpolation: from + (to - from) * fraction.
inline double linear_anneal(double from, double to, double fraction) {
    return (to - from) * fraction + from;
}

/// How OneCycle moves between its phase endpoints.
enum class AnnealStrategy { cosine, linear };

/// How Cyclic scales the amplitude of each cycle.
enum class CyclicMode { triangular, triangular2, exp_range };

/// Names of the enumerators, in enumerator order: what Python passes as strings.
inline constexpr const char* anneal_strategy_names[] = {"cos", "linear"};
inline constexpr const char* cyclic_mode_names[] = {"triangular", "triangular2", "exp_range"};

/// Constraints a field can carry. Each has a check() below that throws
/// std::invalid_argument with a message naming the field.
namespace constraint {
struct NonNegative {};  ///< finite real >= 0
struct Positive {};     ///< finite real > 0
struct Interval {       ///< finite real in [low, high], either end possibly open
    double low;
    double high;
    bool low_open = false;
    bool high_open = false;
};
struct AtLeast {  ///< whole number >= minimum (held as an integer or as a double)
    std::int64_t minimum;
};
struct Flag {};   ///< any bool
struct Choice {   ///< an enumerator; names[i] is the name of enumerator i
    const char* const* names;
    std::size_t count;
};
struct Steps {  ///< step counts >= minimum in non-decreasing order
    std::int64_t minimum;
};
}  // namespace constraint

template <std::size_t N>
constexpr constraint::Choice choice_of(const char* const (&names)[N]) {
    return {names, N};
}

/// A field stored directly in the schedule: schedule.*member.
template <class S, class T, class C>
struct Field {
    const char* name;
    T S::*member;
    C constraint;
    const T& get(const S& schedule) const { return schedule.*member; }
    T& get(S& schedule) const { return schedule.*member; }
};

/// A field stored in a part shared by several schedules: (schedule.*part).*member.
template <class S, class P, class T, class C>
struct PartField {
    const char* name;
    P S::*part;
    T P::*member;
    C constraint;
    const T& get(const S& schedule) const { return (schedule.*part).*member; }
    T& get(S& schedule) const { return (schedule.*part).*member; }
};

/// A check that involves several fields; runs after the fields' own checks.
template <class S>
struct Relation {
    void (*check)(const S&);
};

template <class S, class T, class C>
constexpr Field<S, T, C> field(const char* name, T S::*member, C constraint) {
    return {name, member, constraint};
}

template <class S, class P, class T, class C>
constexpr PartField<S, P, T, C> field(const char* name, P S::*part, T P::*member, C constraint) {
    return {name, part, member, constraint};
}

namespace detail {

/// Shortest decimal that reads back as v, so messages show 0.1, not 0.10000000000000001.
inline std::string number(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char text[40];
    if (v == std::floor(v) && std::fabs(v) < 1e16) {
        std::snprintf(text, sizeof text, "%.1f", v);
        return text;
    }
    for (int digits = 1; digits <= 17; ++digits) {
        std::snprintf(text, sizeof text, "%.*g", digits, v);
        if (std::strtod(text, nullptr) == v) break;
    }
    return text;
}

[[noreturn]] inline void fail(const char* name, const std::string& requirement, const std::string& got) {
    throw std::invalid_argument(std::string(name) + " must be " + requirement + ", got " + got);
}

inline void check_finite(const char* name, double v) {
    if (!std::isfinite(v)) fail(name, "finite", number(v));
}

}  // namespace detail

inline void check(const char* name, double v, constraint::NonNegative) {
    detail::check_finite(name, v);
    if (v < 0.0) detail::fail(name, ">= 0", detail::number(v));
}

inline void check(const char* name, double v, constraint::Positive) {
    detail::check_finite(name, v);
    if (v <= 0.0) detail::fail(name, "> 0", detail::number(v));
}

inline void check(const char* name, double v, constraint::Interval range) {
    detail::check_finite(name, v);
    if (v < range.low || v > range.high || (range.low_open && v == range.low) ||
        (range.high_open && v == range.high)) {
        detail::fail(name,
                     std::string("in ") + (range.low_open ? "(" : "[") + detail::number(range.low) + ", " +
                         detail::number(range.high) + (range.high_open ? ")" : "]"),
                     detail::number(v));
    }
}

inline void check(const char* name, std::int64_t v, constraint::AtLeast bound) {
    if (v < bound.minimum) detail::fail(name, "an integer >= " + std::to_string(bound.minimum), std::to_string(v));
}

inline void check(const char* name, double v, constraint::AtLeast bound) {
    if (!std::isfinite(v) || v != std::floor(v)) detail::fail(name, "a whole number", detail::number(v));
    if (v < static_cast<double>(bound.minimum)) {
        detail::fail(name, "an integer >= " + std::to_string(bound.minimum), detail::number(v));
    }
}

inline void check(const char* /*name*/, bool /*v*/, constraint::Flag) {}

template <class E>
void check(const char* name, E v, constraint::Choice options) {
    const auto index = static_cast<std::size_t>(v);
    if (index >= options.count) {
        std::string names;
        for (std::size_t i = 0; i < options.count; ++i) names += (i ? ", '" : "'") + std::string(options.names[i]) + "'";
        detail::fail(name, "one of " + names, "enumerator " + std::to_string(index));
    }
}

inline void check(const char* name, const std::vector<std::int64_t>& steps, constraint::Steps bound) {
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const std::string element = std::string(name) + "[" + std::to_string(i) + "]";
        check(element.c_str(), steps[i], constraint::AtLeast{bound.minimum});
    }
    if (!std::is_sorted(steps.begin(), steps.end())) {
        std::string listed;
        for (std::size_t i = 0; i < steps.size(); ++i) listed += (i ? ", " : "") + std::to_string(steps[i]);
        detail::fail(name, "in non-decreasing order", "[" + listed + "]");
    }
}

namespace detail {

template <class S, class Entry>
void check_entry(const S& schedule, const Entry& entry) {
    check(entry.name, entry.get(schedule), entry.constraint);
}

template <class S>
void check_entry(const S& schedule, const Relation<S>& relation) {
    relation.check(schedule);
}

template <class S, class = void>
struct has_fields : std::false_type {};
template <class S>
struct has_fields<S, std::void_t<decltype(S::fields())>> : std::true_type {};

}  // namespace detail

/// Checks every field of a schedule, in declaration order; throws
/// std::invalid_argument naming the first one that is out of range.
template <class S, class = std::enable_if_t<detail::has_fields<S>::value>>
void validate(const S& schedule) {
    std::apply([&](const auto&... entry) { (detail::check_entry(schedule, entry), ...); }, S::fields());
}

/// Builds S by aggregate initialization and validates it:
/// make<StepDecay>(0.1, 30, 0.5) throws where StepDecay{0.1, 0, 0.5} would be silently wrong.
template <class S, class... Args>
S make(Args&&... args) {
    S schedule{std::forward<Args>(args)...};
    validate(schedule);
    return schedule;
}

namespace detail {

inline void check_momenta(double base_momentum, double max_momentum) {
    if (base_momentum > max_momentum) {
        throw std::invalid_argument("base_momentum (" + number(base_momentum) + ") must be <= max_momentum (" +
                                    number(max_momentum) + ")");
    }
}

}  // namespace detail

/// A fixed value: lr.
struct Constant {
    double lr;
    double operator()(std::int64_t /*t*/) const { return lr; }
    static constexpr auto fields() { return std::make_tuple(field("lr", &Constant::lr, constraint::NonNegative{})); }
};

/// lr * gamma^(t / decay_steps); with staircase the exponent is floor(t / decay_steps).
/// torch: ExponentialLR when decay_steps == 1.
struct ExponentialDecay {
    double lr;
    double gamma;
    std::int64_t decay_steps = 1;
    bool staircase = false;
    double operator()(std::int64_t t) const {
        const double exponent = staircase ? static_cast<double>(t / decay_steps)
                                          : static_cast<double>(t) / static_cast<double>(decay_steps);
        return lr * std::pow(gamma, exponent);
    }
    static constexpr auto fields() {
        return std::make_tuple(field("lr", &ExponentialDecay::lr, constraint::NonNegative{}),
                               field("gamma", &ExponentialDecay::gamma, constraint::Positive{}),
                               field("decay_steps", &ExponentialDecay::decay_steps, constraint::AtLeast{1}),
                               field("staircase", &ExponentialDecay::staircase, constraint::Flag{}));
    }
};

/// lr * gamma^floor(t / step_size). torch: StepLR.
struct StepDecay {
    double lr;
    std::int64_t step_size;
    double gamma = 0.1;
    double operator()(std::int64_t t) const { return ExponentialDecay{lr, gamma, step_size, true}(t); }
    static constexpr auto fields() {
        return std::make_tuple(field("lr", &StepDecay::lr, constraint::NonNegative{}),
                               field("step_size", &StepDecay::step_size, constraint::AtLeast{1}),
                               field("gamma", &StepDecay::gamma, constraint::Positive{}));
    }
};

/// lr * gamma^n, n = number of milestones <= t (a repeated milestone counts
/// once per repetition). `milestones` must be sorted ascending. torch: MultiStepLR.
struct MultiStepDecay {
    double lr;
    std::vector<std::int64_t> milestones;
    double gamma = 0.1;
    double operator()(std::int64_t t) const {
        const auto passed = std::upper_bound(milestones.begin(), milestones.end(), t) - milestones.begin();
        return lr * std::pow(gamma, static_cast<double>(passed));
    }
    static constexpr auto fields() {
        return std::make_tuple(field("lr", &MultiStepDecay::lr, constraint::NonNegative{}),
                               field("milestones", &MultiStepDecay::milestones, constraint::Steps{0}),
                               field("gamma", &MultiStepDecay::gamma, constraint::Positive{}));
    }
};

/// lr / (1 + decay_rate * p), p = t / decay_steps (floored with staircase).
struct InverseTimeDecay {
    double lr;
    double decay_rate;
    std::int64_t decay_steps = 1;
    bool staircase = false;
    double operator()(std::int64_t t) const {
        const double progress = staircase ? static_cast<double>(t / decay_steps)
                                          : static_cast<double>(t) / static_cast<double>(decay_steps);
        return lr / (1.0 + decay_rate * progress);
    }
    static constexpr auto fields() {
        return std::make_tuple(field("lr", &InverseTimeDecay::lr, constraint::NonNegative{}),
                               field("decay_rate", &InverseTimeDecay::decay_rate, constraint::NonNegative{}),
                               field("decay_steps", &InverseTimeDecay::decay_steps, constraint::AtLeast{1}),
                               field("staircase", &InverseTimeDecay::staircase, constraint::Flag{}));
    }
};

/// (lr - end_lr) * (1 - min(t, total_steps) / total_steps)^power + end_lr:
/// reaches end_lr at total_steps and holds it. torch: PolynomialLR when end_lr == 0.
struct PolynomialDecay {
    double lr;
    std::int64_t total_steps;
    double power = 1.0;
    double end_lr = 0.0;
    double operator()(std::int64_t t) const {
        const double progress =
            static_cast<double>(std::min(t, total_steps)) / static_cast<double>(total_steps);
        return (lr - end_lr) * std::pow(1.0 - progress, power) + end_lr;
    }
    static constexpr auto fields() {
        return std::make_tuple(field("lr", &PolynomialDecay::lr, constraint::NonNegative{}),
                               field("total_steps", &PolynomialDecay::total_steps, constraint::AtLeast{1}),
                               field("power", &PolynomialDecay::power, constraint::NonNegative{}),
                               field("end_lr", &PolynomialDecay::end_lr, constraint::NonNegative{}));
    }
};

/// lr * (start_factor + (end_factor - start_factor) * min(t, total_steps) / total_steps):
/// the factor moves linearly from start_factor to end_factor, then holds. torch: LinearLR.
struct Linear {
    double lr;
    double start_factor = 1.0 / 3.0;
    double end_factor = 1.0;
    std::int64_t total_steps = 5;
    double operator()(std::int64_t t) const {
        const double progress =
            static_cast<double>(std::min(t, total_steps)) / static_cast<double>(total_steps);
        return lr * linear_anneal(start_factor, end_factor, progress);
    }
    static constexpr auto fields() {
        // torch's LinearLR refuses a start factor of 0 (it divides by it) and factors above 1.
        return std::make_tuple(field("lr", &Linear::lr, constraint::NonNegative{}),
                               field("start_factor", &Linear::start_factor, constraint::Interval{0.0, 1.0, true}),
                               field("end_factor", &Linear::end_factor, constraint::Interval{0.0, 1.0}),
                               field("total_steps", &Linear::total_steps, constraint::AtLeast{1}));
    }
};

/// eta_min + (lr - eta_min) * (1 + cos(pi * t / t_max)) / 2. Beyond t_max the
/// cosine continues (back up to lr at 2 * t_max), as torch's does. torch: CosineAnnealingLR.
struct CosineAnnealing {
    double lr;
    std::int64_t t_max;
    double eta_min = 0.0;
    double operator()(std::int64_t t) const {
        return cosine_anneal(lr, eta_min, static_cast<double>(t) / static_cast<double>(t_max));
    }
    static constexpr auto fields() {
        return std::make_tuple(field("lr", &CosineAnnealing::lr, constraint::NonNegative{}),
                               field("T_max", &CosineAnnealing::t_max, constraint::AtLeast{1}),
                               field("eta_min", &CosineAnnealing::eta_min, constraint::NonNegative{}));
    }
};

/// Cosine annealing restarted from lr at the end of each period; period i
/// lasts t_0 * t_mult^i steps. Within a period, with t_cur steps into it:
/// eta_min + (lr - eta_min) * (1 + cos(pi * t_cur / t_i)) / 2.
/// torch: CosineAnnealingWarmRestarts.
struct CosineAnnealingWarmRestarts {
    double lr;
    std::int64_t t_0;
    std::int64_t t_mult = 1;
    double eta_min = 0.0;
    double operator()(std::int64_t t) const {
        std::int64_t t_cur = t;
        std::int64_t t_i = t_0;
        if (t_mult == 1) {
            t_cur = t % t_0;
        } else {
            while (t_cur >= t_i) {  // O(log t) periods
                t_cur -= t_i;
                t_i *= t_mult;
            }
        }
        return cosine_anneal(lr, eta_min, static_cast<double>(t_cur) / static_cast<double>(t_i));
    }
    static constexpr auto fields() {
        using S = CosineAnnealingWarmRestarts;
        return std::make_tuple(field("lr", &S::lr, constraint::NonNegative{}),
                               field("T_0", &S::t_0, constraint::AtLeast{1}),
                               field("T_mult", &S::t_mult, constraint::AtLeast{1}),
                               field("eta_min", &S::eta_min, constraint::NonNegative{}));
    }
};

/// The triangular wave of Cyclic, without its endpoints. A cycle lasts
/// step_size_up + step_size_down steps; at t, with
///   cycle = floor(1 + t / (up + down)),  x = 1 + t / (up + down) - cycle,
///   rise  = x / r if x <= r else (x - 1) / (r - 1),   r = up / (up + down),
///   amplitude = 1 (triangular), 1 / 2^(cycle - 1) (triangular2), gamma^t (exp_range),
/// the value is start + (peak - start) * rise * amplitude.
struct CyclicWave {
    double step_size_up = 2000.0;
    double step_size_down = 2000.0;
    CyclicMode mode = CyclicMode::triangular;
    double gamma = 1.0;

    double interpolate(std::int64_t t, double start, double peak) const {
        const double total_size = step_size_up + step_size_down;
        const double step_ratio = step_size_up / total_size;
        const double position = static_cast<double>(t) / total_size;
        const double cycle = std::floor(1.0 + position);
        const double x = 1.0 + position - cycle;
        const double rise = x <= step_ratio ? x / step_ratio : (x - 1.0) / (step_ratio - 1.0);
        double amplitude = 1.0;
        if (mode == CyclicMode::triangular2) {
            amplitude = 1.0 / std::pow(2.0, cycle - 1.0);
        } else if (mode == CyclicMode::exp_range) {
            amplitude = std::pow(gamma, static_cast<double>(t));
        }
        return start + (peak - start) * rise * amplitude;
    }
};

/// Cyclical learning rate: rises from base_lr towards max_lr and back (see
/// CyclicWave). torch: CyclicLR (modes triangular, triangular2, exp_range).
struct Cyclic {
    double base_lr;
    double max_lr;
    CyclicWave wave{};
    double operator()(std::int64_t t) const { return wave.interpolate(t, base_lr, max_lr); }
    static constexpr auto fields() {
        return std::make_tuple(field("base_lr", &Cyclic::base_lr, constraint::NonNegative{}),
                               field("max_lr", &Cyclic::max_lr, constraint::NonNegative{}),
                               field("step_size_up", &Cyclic::wave, &CyclicWave::step_size_up, constraint::AtLeast{1}),
                               field("step_size_down", &Cyclic::wave, &CyclicWave::step_size_down,
                                     constraint::AtLeast{0}),
                               field("mode", &Cyclic::wave, &CyclicWave::mode, choice_of(cyclic_mode_names)),
                               field("gamma", &Cyclic::wave, &CyclicWave::gamma, constraint::Positive{}));
    }
};

/// The momentum CyclicLR applies with cycle_momentum=True: the same wave,
/// inverted, from max_momentum down towards base_momentum.
struct CyclicMomentum {
    double base_momentum = 0.8;
    double max_momentum = 0.9;
    CyclicWave wave{};
    double operator()(std::int64_t t) const { return wave.interpolate(t, max_momentum, base_momentum); }
    static constexpr auto fields() {
        using S = CyclicMomentum;
        return std::make_tuple(
            field("base_momentum", &S::base_momentum, constraint::Interval{0.0, 1.0}),
            field("max_momentum", &S::max_momentum, constraint::Interval{0.0, 1.0}),
            field("step_size_up", &S::wave, &CyclicWave::step_size_up, constraint::AtLeast{1}),
            field("step_size_down", &S::wave, &CyclicWave::step_size_down, constraint::AtLeast{0}),
            field("mode", &S::wave, &CyclicWave::mode, choice_of(cyclic_mode_names)),
            field("gamma", &S::wave, &CyclicWave::gamma, constraint::Positive{}),
            Relation<S>{[](const S& s) { detail::check_momenta(s.base_momentum, s.max_momentum); }});
    }
};

/// The phase layout of the 1cycle policy. Phase ends (as torch places them):
///   two phases:   e1 = pct_start * total_steps - 1, e2 = total_steps - 1
///                 start -> peak on [0, e1], peak -> end on [e1, e2];
///   three phases: e1 as above, e2 = 2 * pct_start * total_steps - 2, e3 = total_steps - 1
///                 start -> peak, peak -> start, start -> end.
/// Within a phase [a, b], pct = (t - a) / (b - a) feeds cosine_anneal or
/// linear_anneal. From t = total_steps - 1 on the value holds at `end`
/// (torch extrapolates the last phase at t = total_steps and raises beyond).
struct OneCyclePhases {
    std::int64_t total_steps;
    double pct_start = 0.3;
    AnnealStrategy anneal_strategy = AnnealStrategy::cosine;
    bool three_phase = false;

    double interpolate(std::int64_t t, double start, double peak, double end) const {
        const double step = static_cast<double>(std::min(t, total_steps - 1));
        const double last = static_cast<double>(total_steps - 1);
        const double end1 = pct_start * static_cast<double>(total_steps) - 1.0;
        const double end2 = 2.0 * pct_start * static_cast<double>(total_steps) - 2.0;
        double phase_start = 0.0;
        double phase_end = end1;
        double from = start;
        double to = peak;
        if (step > end1) {
            phase_start = end1;
            if (three_phase && step <= end2) {
                phase_end = end2;
                from = peak;
                to = start;
            } else if (three_phase) {
                phase_start = end2;
                phase_end = last;
                from = start;
                to = end;
            } else {
                phase_end = last;
                from = peak;
                to = end;
            }
        }
        const double pct = (step - phase_start) / (phase_end - phase_start);
        return anneal_strategy == AnnealStrategy::cosine ? cosine_anneal(from, to, pct)
                                                         : linear_anneal(from, to, pct);
    }
};

namespace detail {

inline void check_phases(const OneCyclePhases& phases) {
    // torch divides by pct_start * total_steps - 1: the warm-up phase would span no step.
    if (phases.pct_start * static_cast<double>(phases.total_steps) - 1.0 == 0.0) {
        throw std::invalid_argument(
            "pct_start * total_steps must not be 1 (the warm-up phase would be empty), got pct_start=" +
            number(phases.pct_start) + ", total_steps=" + std::to_string(phases.total_steps));
    }
}

}  // namespace detail

/// The 1cycle policy: from initial_lr = max_lr / div_factor up to max_lr, then
/// down to min_lr = initial_lr / final_div_factor (see OneCyclePhases).
/// torch: OneCycleLR.
struct OneCycle {
    double max_lr;
    OneCyclePhases phases;
    double div_factor = 25.0;
    double final_div_factor = 1e4;
    double initial_lr() const { return max_lr / div_factor; }
    double min_lr() const { return initial_lr() / final_div_factor; }
    double operator()(std::int64_t t) const { return phases.interpolate(t, initial_lr(), max_lr, min_lr()); }
    static constexpr auto fields() {
        using S = OneCycle;
        using P = OneCyclePhases;
        return std::make_tuple(field("max_lr", &S::max_lr, constraint::NonNegative{}),
                               field("total_steps", &S::phases, &P::total_steps, constraint::AtLeast{1}),
                               field("pct_start", &S::phases, &P::pct_start, constraint::Interval{0.0, 1.0}),
                               field("anneal_strategy", &S::phases, &P::anneal_strategy,
                                     choice_of(anneal_strategy_names)),
                               field("div_factor", &S::div_factor, constraint::Positive{}),
                               field("final_div_factor", &S::final_div_factor, constraint::Positive{}),
                               field("three_phase", &S::phases, &P::three_phase, constraint::Flag{}),
                               Relation<S>{[](const S& s) { detail::check_phases(s.phases); }});
    }
};

/// The momentum OneCycleLR applies with cycle_momentum=True: max_momentum ->
/// base_momentum -> max_momentum over the same phases (three phases: the last one holds max_momentum).
struct OneCycleMomentum {
    OneCyclePhases phases;
    double base_momentum = 0.85;
    double max_momentum = 0.95;
    double operator()(std::int64_t t) const {
        return phases.interpolate(t, max_momentum, base_momentum, max_momentum);
    }
    static constexpr auto fields() {
        using S = OneCycleMomentum;
        using P = OneCyclePhases;
        return std::make_tuple(field("total_steps", &S::phases, &P::total_steps, constraint::AtLeast{1}),
                               field("pct_start", &S::phases, &P::pct_start, constraint::Interval{0.0, 1.0}),
                               field("anneal_strategy", &S::phases, &P::anneal_strategy,
                                     choice_of(anneal_strategy_names)),
                               field("three_phase", &S::phases, &P::three_phase, constraint::Flag{}),
                               field("base_momentum", &S::base_momentum, constraint::Interval{0.0, 1.0}),
                               field("max_momentum", &S::max_momentum, constraint::Interval{0.0, 1.0}),
                               Relation<S>{[](const S& s) {
                                   detail::check_phases(s.phases);
                                   detail::check_momenta(s.base_momentum, s.max_momentum);
                               }});
    }
};

/// Linear warmup, then inverse square-root decay:
/// lr * t / warmup_steps for t < warmup_steps, lr * sqrt(warmup_steps / t) afterwards.
struct InverseSqrt {
    double lr;
    std::int64_t warmup_steps;
    double operator()(std::int64_t t) const {
        const double warmup = static_cast<double>(warmup_steps);
        const double step = static_cast<double>(t);
        return t < warmup_steps ? lr * (step / warmup) : lr * std::sqrt(warmup / step);
    }
    static constexpr auto fields() {
        return std::make_tuple(field("lr", &InverseSqrt::lr, constraint::NonNegative{}),
                               field("warmup_steps", &InverseSqrt::warmup_steps, constraint::AtLeast{1}));
    }
};

}  // namespace lrcore::schedules
