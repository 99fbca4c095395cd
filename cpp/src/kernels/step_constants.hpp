// Per-step constants of each update rule.
//
// They are derived from the hyperparameters (and, for AdaGrad and Adam, the
// tensor's step number) in double precision, once per tensor and step, and
// only then rounded to the element type T, the way torch.optim hands Python
// floats to its element-wise kernels. The kernels only read these structs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "lrcore/config.hpp"

namespace lrcore::kernels {

/// torch.lerp(start, end, weight) evaluates start + w * (end - start) when
/// |w| < 0.5 and end - (end - start) * (1 - w) otherwise; both forms are kept
/// as base + coefficient * (end - start) with the base chosen once per step.
template <class T>
struct LerpConstants {
    T coefficient;        // w, or w - 1
    bool base_is_start;   // true when |w| < 0.5

    static LerpConstants from_weight(double weight) {
        const T w = static_cast<T>(weight);
        const bool small = std::abs(weight) < 0.5;
        return {small ? w : static_cast<T>(w - T(1)), small};
    }
};

/// The factor applied to every gradient element before anything else
/// (Config::grad_scale), rounded to T once; `active` is false when the kernel
/// can leave the multiplication out (the factor rounds to exactly 1, and
/// x * 1 == x for every x).
template <class T>
struct GradScale {
    T factor;
    bool active;

    static GradScale from(double grad_scale) {
        const T factor = static_cast<T>(grad_scale);
        return {factor, factor != T(1)};
    }
};

template <class T>
struct SgdConstants {
    GradScale<T> grad_scale;
    T grad_sign;              // -1 when maximizing
    T weight_decay;
    T momentum;
    T one_minus_dampening;
    T neg_lr;
    bool has_weight_decay;
    bool has_momentum;
    bool nesterov;

    static SgdConstants make(const SgdConfig& c) {
        return {GradScale<T>::from(c.grad_scale), static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay), static_cast<T>(c.momentum), static_cast<T>(1.0 - c.dampening),
                static_cast<T>(-c.lr), c.weight_decay != 0.0, c.momentum != 0.0, c.nesterov};
    }
};

template <class T>
struct AdagradConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T weight_decay;
    T eps;
    T neg_clr;                // -lr / (1 + (step - 1) * lr_decay)
    bool has_weight_decay;

    static AdagradConstants make(const AdagradConfig& c, std::int64_t step) {
        const double clr = c.lr / (1.0 + static_cast<double>(step - 1) * c.lr_decay);
        return {GradScale<T>::from(c.grad_scale), static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay), static_cast<T>(c.eps), static_cast<T>(-clr),
                c.weight_decay != 0.0};
    }
};

template <class T>
struct RmspropConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T weight_decay;
    T alpha;
    T one_minus_alpha;
    LerpConstants<T> grad_avg_lerp;   // weight 1 - alpha
    T eps;
    T momentum;
    T neg_lr;
    bool has_weight_decay;
    bool centered;
    bool has_momentum;

    static RmspropConstants make(const RmspropConfig& c) {
        return {GradScale<T>::from(c.grad_scale), static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay), static_cast<T>(c.alpha), static_cast<T>(1.0 - c.alpha),
                LerpConstants<T>::from_weight(1.0 - c.alpha), static_cast<T>(c.eps),
                static_cast<T>(c.momentum), static_cast<T>(-c.lr), c.weight_decay != 0.0,
                c.centered, c.momentum > 0.0};
    }
};

enum class WeightDecayMode { none, l2, decoupled };

template <class T>
struct AdamConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T weight_decay;           // L2 mode: added to the gradient as weight_decay * param
    T decay_factor;           // decoupled mode: param *= 1 - lr * weight_decay
    LerpConstants<T> exp_avg_lerp;    // weight 1 - beta1
    T beta2;
    T one_minus_beta2;
    T bias_correction2_sqrt;  // sqrt(1 - beta2^step)
    T eps;
    T neg_step_size;          // -lr / (1 - beta1^step)
    WeightDecayMode weight_decay_mode;
    bool amsgrad;

    static AdamConstants make(const AdamConfig& c, std::int64_t step) {
        const double t = static_cast<double>(step);
        const double bias_correction1 = 1.0 - std::pow(c.beta1, t);
        const double bias_correction2 = 1.0 - std::pow(c.beta2, t);
        WeightDecayMode mode = WeightDecayMode::none;
        if (c.weight_decay != 0.0) {
            mode = c.decoupled_weight_decay ? WeightDecayMode::decoupled : WeightDecayMode::l2;
        }
        return {GradScale<T>::from(c.grad_scale),
                static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay),
                static_cast<T>(1.0 - c.lr * c.weight_decay),
                LerpConstants<T>::from_weight(1.0 - c.beta1),
                static_cast<T>(c.beta2),
                static_cast<T>(1.0 - c.beta2),
                static_cast<T>(std::sqrt(bias_correction2)),
                static_cast<T>(c.eps),
                static_cast<T>(-(c.lr / bias_correction1)),
                mode,
                c.amsgrad};
    }
};

/// Adafactor's constants for one tensor and its step t. torch computes the
/// first ones as Python floats: the averaging weight t^beta2_decay and the
/// relative step size min(lr, 1/sqrt(t)); the ones that reach the kernels are
/// rounded to T. Those that depend on the tensor's norms (the step size alpha
/// and the clipping divisor) are computed by the driver once the norms are known.
template <class T>
struct AdafactorConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    LerpConstants<T> variance_lerp;   // weight t^beta2_decay (torch's one_minus_beta2_t)
    T eps1;                   // lower bound of the mean of row_var (clamp_(min=eps1))
    T eps1_squared;           // lower bound of the variance estimate, before its inverse root
    T decay_factor;           // param *= 1 - lr * weight_decay
    bool has_weight_decay;
    double relative_step;     // rho = min(lr, 1 / sqrt(t))
    double eps2;
    double d;

    static AdafactorConstants make(const AdafactorConfig& c, std::int64_t step) {
        const double t = static_cast<double>(step);
        // eps1 None: T's machine epsilon (torch.finfo(dtype).eps).
        const double eps1 = std::isnan(c.eps1) ? static_cast<double>(std::numeric_limits<T>::epsilon()) : c.eps1;
        const double inverse_root = 1.0 / std::pow(t, 0.5);
        // Python's min(lr, x): lr unless x < lr.
        const double relative_step = inverse_root < c.lr ? inverse_root : c.lr;
        return {GradScale<T>::from(c.grad_scale),
                static_cast<T>(c.maximize ? -1.0 : 1.0),
                LerpConstants<T>::from_weight(std::pow(t, c.beta2_decay)),
                static_cast<T>(eps1),
                static_cast<T>(eps1 * eps1),
                static_cast<T>(1.0 - c.lr * c.weight_decay),
                c.weight_decay != 0.0,
                relative_step,
                c.eps2,
                c.d};
    }
};

/// NAdam's momentum schedule: mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)).
/// The per-step constants and the mu_product update (rules.hpp) both use it.
inline double nadam_momentum(const NadamConfig& c, std::int64_t step) {
    return c.beta1 * (1.0 - 0.5 * std::pow(0.96, static_cast<double>(step) * c.momentum_decay));
}

template <class T>
struct NadamConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T weight_decay;
    T decay_factor;           // decoupled mode: param *= 1 - lr * weight_decay
    LerpConstants<T> exp_avg_lerp;    // weight 1 - beta1
    T beta2;
    T one_minus_beta2;
    T bias_correction2;       // 1 - beta2^step (the second moment is divided by it before the root)
    T eps;
    T grad_coefficient;       // -lr * (1 - mu_t) / (1 - mu_product_t)
    T exp_avg_coefficient;    // -lr * mu_{t+1} / (1 - mu_product_t * mu_{t+1})
    WeightDecayMode weight_decay_mode;

    /// `mu_product` is the tensor's product before this step (mu_1 ... mu_{t-1}).
    static NadamConstants make(const NadamConfig& c, std::int64_t step, double mu_product) {
        const double mu = nadam_momentum(c, step);
        const double mu_next = nadam_momentum(c, step + 1);
        const double product = mu_product * mu;
        const double product_next = product * mu_next;
        WeightDecayMode mode = WeightDecayMode::none;
        if (c.weight_decay != 0.0) {
            mode = c.decoupled_weight_decay ? WeightDecayMode::decoupled : WeightDecayMode::l2;
        }
        return {GradScale<T>::from(c.grad_scale),
                static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay),
                static_cast<T>(1.0 - c.lr * c.weight_decay),
                LerpConstants<T>::from_weight(1.0 - c.beta1),
                static_cast<T>(c.beta2),
                static_cast<T>(1.0 - c.beta2),
                static_cast<T>(1.0 - std::pow(c.beta2, static_cast<double>(step))),
                static_cast<T>(c.eps),
                static_cast<T>((-c.lr * (1.0 - mu)) / (1.0 - product)),
                static_cast<T>((-c.lr * mu_next) / (1.0 - product_next)),
                mode};
    }
};

template <class T>
struct RadamConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T weight_decay;
    T decay_factor;           // decoupled mode: param *= 1 - lr * weight_decay
    LerpConstants<T> exp_avg_lerp;    // weight 1 - beta1
    T beta2;
    T one_minus_beta2;
    T bias_correction1;       // 1 - beta1^step
    T lr;
    T bias_correction2_sqrt;  // sqrt(1 - beta2^step)
    T eps;
    T rectification;          // sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
    WeightDecayMode weight_decay_mode;
    bool rectified;           // rho_t > 5: the adaptive, rectified step; else plain momentum

    static RadamConstants make(const RadamConfig& c, std::int64_t step) {
        const double t = static_cast<double>(step);
        const double bias_correction1 = 1.0 - std::pow(c.beta1, t);
        const double beta2_power = std::pow(c.beta2, t);
        const double bias_correction2 = 1.0 - beta2_power;
        const double rho_inf = 2.0 / (1.0 - c.beta2) - 1.0;
        const double rho_t = rho_inf - 2.0 * t * beta2_power / bias_correction2;
        const bool rectified = rho_t > 5.0;
        const double rectification =
            rectified ? std::sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                      : 0.0;
        WeightDecayMode mode = WeightDecayMode::none;
        if (c.weight_decay != 0.0) {
            mode = c.decoupled_weight_decay ? WeightDecayMode::decoupled : WeightDecayMode::l2;
        }
        return {GradScale<T>::from(c.grad_scale),
                static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay),
                static_cast<T>(1.0 - c.lr * c.weight_decay),
                LerpConstants<T>::from_weight(1.0 - c.beta1),
                static_cast<T>(c.beta2),
                static_cast<T>(1.0 - c.beta2),
                static_cast<T>(bias_correction1),
                static_cast<T>(c.lr),
                static_cast<T>(std::sqrt(bias_correction2)),
                static_cast<T>(c.eps),
                static_cast<T>(rectification),
                mode,
                rectified};
    }
};

template <class T>
struct AdamaxConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T weight_decay;
    LerpConstants<T> exp_avg_lerp;    // weight 1 - beta1
    T beta2;
    T eps;
    T neg_clr;                // -lr / (1 - beta1^step)
    bool has_weight_decay;

    static AdamaxConstants make(const AdamaxConfig& c, std::int64_t step) {
        const double bias_correction = 1.0 - std::pow(c.beta1, static_cast<double>(step));
        return {GradScale<T>::from(c.grad_scale),
                static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay),
                LerpConstants<T>::from_weight(1.0 - c.beta1),
                static_cast<T>(c.beta2),
                static_cast<T>(c.eps),
                static_cast<T>(-(c.lr / bias_correction)),
                c.weight_decay != 0.0};
    }
};

template <class T>
struct LionConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T decay_factor;           // param *= 1 - lr * weight_decay
    T beta1;
    T one_minus_beta1;
    T beta2;
    T one_minus_beta2;
    T lr;
    bool has_weight_decay;

    static LionConstants make(const LionConfig& c) {
        return {GradScale<T>::from(c.grad_scale),
                static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(1.0 - c.lr * c.weight_decay),
                static_cast<T>(c.beta1),
                static_cast<T>(1.0 - c.beta1),
                static_cast<T>(c.beta2),
                static_cast<T>(1.0 - c.beta2),
                static_cast<T>(c.lr),
                c.weight_decay != 0.0};
    }
};

template <class T>
struct AdadeltaConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T weight_decay;
    T rho;
    T one_minus_rho;
    T eps;
    T neg_lr;
    bool has_weight_decay;

    static AdadeltaConstants make(const AdadeltaConfig& c) {
        return {GradScale<T>::from(c.grad_scale), static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay), static_cast<T>(c.rho), static_cast<T>(1.0 - c.rho),
                static_cast<T>(c.eps), static_cast<T>(-c.lr), c.weight_decay != 0.0};
    }
};

template <class T>
struct RpropConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T etaminus;
    T etaplus;
    T step_size_min;
    T step_size_max;
    T initial_step_size;      // lr, what a new step_size array starts at

    static RpropConstants make(const RpropConfig& c) {
        return {GradScale<T>::from(c.grad_scale), static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.etaminus), static_cast<T>(c.etaplus), static_cast<T>(c.step_size_min),
                static_cast<T>(c.step_size_max), static_cast<T>(c.lr)};
    }
};

/// ASGD's two per-tensor numbers after a tensor's step `step`, as torch computes
/// them (in double; torch then stores them in its default dtype).
inline double asgd_next_eta(const AsgdConfig& c, std::int64_t step) {
    return c.lr / std::pow(1.0 + c.lambd * c.lr * static_cast<double>(step), c.alpha);
}
inline double asgd_next_mu(const AsgdConfig& c, std::int64_t step) {
    return 1.0 / std::max(1.0, static_cast<double>(step) - c.t0);
}

template <class T>
struct AsgdConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T weight_decay;
    T decay_factor;           // 1 - lambd * eta
    T neg_eta;                // -eta
    T mu;
    bool has_weight_decay;
    bool copies_average;      // mu == 1: ax = p (torch copies instead of averaging)

    /// `eta` and `mu` are the tensor's stored numbers. A NaN one is not set yet
    /// (torch creates them at a tensor's first step: eta = lr, mu = 1); later it
    /// is taken as the value after the previous step at this step's lr.
    static AsgdConstants make(const AsgdConfig& c, std::int64_t step, double eta, double mu) {
        if (std::isnan(eta)) eta = step == 1 ? c.lr : asgd_next_eta(c, step - 1);
        if (std::isnan(mu)) mu = step == 1 ? 1.0 : asgd_next_mu(c, step - 1);
        return {GradScale<T>::from(c.grad_scale), static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay), static_cast<T>(1.0 - c.lambd * eta), static_cast<T>(-eta),
                static_cast<T>(mu), c.weight_decay != 0.0, mu == 1.0};
    }
};

/// One step of a schedule-free parameter group, as the `schedulefree` package
/// computes it at the start of each group's step, in double:
///   warmup = (k + 1) / warmup_steps while k < warmup_steps, else 1
///   lr     = lr * warmup;  lr_max = max(lr, lr_max)
///   weight = (k + 1)^r * lr_max^weight_lr_power;  weight_sum += weight
///   ckp1   = weight / weight_sum  (0 when weight_sum is 0)
///   bias_correction2 = 1 - beta2^(k + 1)
/// and the group's state after the step (k + 1, lr_max, weight_sum).
struct ScheduleFreeSchedule {
    double lr = 0.0;                 // the warmup-scaled learning rate
    double ckp1 = 0.0;               // the weight of the new iterate in the average x
    double bias_correction2 = 1.0;   // AdamW only
    ScheduleFreeGroupState next{};
    bool finite = true;              // false when lr * warmup or a weight overflowed (the package raises or diverges)

    static ScheduleFreeSchedule make(double base_lr, double warmup_steps, double r, double weight_lr_power,
                                     double beta2, const ScheduleFreeGroupState& state) {
        ScheduleFreeSchedule s;
        const double k1 = static_cast<double>(state.k + 1);
        const double warmup = static_cast<double>(state.k) < warmup_steps ? k1 / warmup_steps : 1.0;
        s.lr = base_lr * warmup;
        s.bias_correction2 = 1.0 - std::pow(beta2, k1);
        // Python's max(lr, lr_max) keeps lr unless lr_max is larger.
        const double lr_max = state.lr_max > s.lr ? state.lr_max : s.lr;
        const double weight = std::pow(k1, r) * std::pow(lr_max, weight_lr_power);
        const double weight_sum = state.weight_sum + weight;
        s.finite = std::isfinite(s.lr) && std::isfinite(weight) && std::isfinite(weight_sum);
        s.ckp1 = weight_sum == 0.0 ? 0.0 : weight / weight_sum;
        s.next = state;
        s.next.k = state.k + 1;
        s.next.lr_max = lr_max;
        s.next.weight_sum = weight_sum;
        return s;
    }
};

template <class T>
struct ScheduleFreeAdamWConstants {
    GradScale<T> grad_scale;
    T beta2;
    T one_minus_beta2;
    T bias_correction2;       // 1 - beta2^(k + 1); the second moment is divided by it
    T eps;
    T weight_decay;           // weight_decay * y added to the normalized gradient
    LerpConstants<T> average_lerp;   // y <- lerp(y, z, ckp1)
    T y_step;                 // lr * (beta1 * (1 - ckp1) - 1)
    T neg_lr;                 // z <- z - lr * normalized gradient
    bool has_weight_decay;

    static ScheduleFreeAdamWConstants make(const ScheduleFreeAdamWConfig& c, const ScheduleFreeSchedule& s) {
        return {GradScale<T>::from(c.grad_scale),
                static_cast<T>(c.beta2),
                static_cast<T>(1.0 - c.beta2),
                static_cast<T>(s.bias_correction2),
                static_cast<T>(c.eps),
                static_cast<T>(c.weight_decay),
                LerpConstants<T>::from_weight(s.ckp1),
                static_cast<T>(s.lr * (c.beta1 * (1.0 - s.ckp1) - 1.0)),
                static_cast<T>(-s.lr),
                c.weight_decay != 0.0};
    }
};

template <class T>
struct ScheduleFreeSgdConstants {
    GradScale<T> grad_scale;
    T weight_decay;
    LerpConstants<T> average_lerp;   // y <- lerp(y, z, ckp1)
    T y_step;                 // lr * (momentum * (1 - ckp1) - 1)
    T neg_lr;
    bool has_weight_decay;

    static ScheduleFreeSgdConstants make(const ScheduleFreeSgdConfig& c, const ScheduleFreeSchedule& s) {
        return {GradScale<T>::from(c.grad_scale),
                static_cast<T>(c.weight_decay),
                LerpConstants<T>::from_weight(s.ckp1),
                static_cast<T>(s.lr * (c.momentum * (1.0 - s.ckp1) - 1.0)),
                static_cast<T>(-s.lr),
                c.weight_decay != 0.0};
    }
};

template <class T>
struct SparseAdamConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T one_minus_beta1;
    T one_minus_beta2;
    T eps;
    T neg_step_size;          // -(lr * sqrt(1 - beta2^step) / (1 - beta1^step)), as torch's sparse_adam

    static SparseAdamConstants make(const SparseAdamConfig& c, std::int64_t step) {
        const double t = static_cast<double>(step);
        const double bias_correction1 = 1.0 - std::pow(c.beta1, t);
        const double bias_correction2 = 1.0 - std::pow(c.beta2, t);
        return {GradScale<T>::from(c.grad_scale), static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(1.0 - c.beta1), static_cast<T>(1.0 - c.beta2), static_cast<T>(c.eps),
                static_cast<T>(-(c.lr * std::sqrt(bias_correction2) / bias_correction1))};
    }
};

template <class T>
struct RowwiseAdagradConstants {
    GradScale<T> grad_scale;
    T grad_sign;
    T weight_decay;
    T eps;
    T neg_lr;
    bool has_weight_decay;

    static RowwiseAdagradConstants make(const RowwiseAdagradConfig& c) {
        return {GradScale<T>::from(c.grad_scale), static_cast<T>(c.maximize ? -1.0 : 1.0),
                static_cast<T>(c.weight_decay), static_cast<T>(c.eps), static_cast<T>(-c.lr),
                c.weight_decay != 0.0};
    }
};

}  // namespace lrcore::kernels
