// Hyperparameters of each update rule: small value types, one per rule.
//
// Every field has the default torch.optim uses. They are plain doubles: the
// per-step constants derived from them are computed in double precision and
// only then rounded to the element type (see cpp/src/kernels/step_constants.hpp).
#pragma once

namespace lrcore {

/// Stochastic gradient descent, optionally with (Nesterov) momentum.
struct SgdConfig {
    double lr = 1e-3;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
    bool maximize = false;
};

/// AdaGrad: per-element learning rate scaled by the root of the summed squared gradients.
struct AdagradConfig {
    double lr = 1e-2;
    double lr_decay = 0.0;
    double weight_decay = 0.0;
    double eps = 1e-10;
    bool maximize = false;
};

/// RMSprop: learning rate scaled by a running root-mean-square of the gradient.
struct RmspropConfig {
    double lr = 1e-2;
    double alpha = 0.99;
    double eps = 1e-8;
    double weight_decay = 0.0;
    double momentum = 0.0;
    bool centered = false;
    bool maximize = false;
};

/// Adam and AdamW. With decoupled_weight_decay the parameter is shrunk by
/// (1 - lr * weight_decay) before the update (AdamW) instead of adding
/// weight_decay * param to the gradient (Adam's L2 penalty).
struct AdamConfig {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
    bool amsgrad = false;
    bool maximize = false;
    bool decoupled_weight_decay = false;
};

/// Checks a configuration; throws std::invalid_argument naming the first bad
/// field (negative learning rate, betas outside [0, 1), Nesterov without
/// momentum, NaN anywhere, ...).
void validate(const SgdConfig& config);
void validate(const AdagradConfig& config);
void validate(const RmspropConfig& config);
void validate(const AdamConfig& config);

}  // namespace lrcore
