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
// These types do not validate their fields (the Python layer does; see
// src/lrcore/schedules): a C++ caller must keep lengths and periods positive
// and t non-negative. This is the only place the formulas are written; the
// Python classes evaluate them through lrcore._core.schedules.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
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

/// A fixed value: lr.
struct Constant {
    double lr;
    double operator()(std::int64_t /*t*/) const { return lr; }
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
};

/// lr * gamma^floor(t / step_size). torch: StepLR.
struct StepDecay {
    double lr;
    std::int64_t step_size;
    double gamma = 0.1;
    double operator()(std::int64_t t) const { return ExponentialDecay{lr, gamma, step_size, true}(t); }
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
};

/// The momentum CyclicLR applies with cycle_momentum=True: the same wave,
/// inverted, from max_momentum down towards base_momentum.
struct CyclicMomentum {
    double base_momentum = 0.8;
    double max_momentum = 0.9;
    CyclicWave wave{};
    double operator()(std::int64_t t) const { return wave.interpolate(t, max_momentum, base_momentum); }
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
};

}  // namespace lrcore::schedules
