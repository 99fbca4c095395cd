// Per-step constants of each update rule.
//
// They are derived from the hyperparameters (and, for AdaGrad and Adam, the
// tensor's step number) in double precision, once per tensor and step, and
// only then rounded to the element type T, the way torch.optim hands Python
// floats to its element-wise kernels. The kernels only read these structs.
#pragma once

#include <cmath>
#include <cstdint>

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
