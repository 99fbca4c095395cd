// Hyperparameters of each update rule: small value types, one per rule.
//
// Every field has the default torch.optim uses, under the same name (torch's
// `betas` tuple is beta1, beta2 here). They are plain doubles: the per-step
// constants derived from them are computed in double precision and only then
// rounded to the element type. A config is cheap to copy and may change
// between steps (that is how a schedule is applied: set `lr` before each
// call, see schedules.hpp).
//
// The step functions validate the config on every call; validate() runs the
// same checks on its own, e.g. once before a training loop.
//
// Every config also has `grad_scale` (default 1, must be finite): a factor the
// kernel multiplies each gradient element by, rounded once to the element
// type, before anything else it does with the gradient (before the maximize
// sign flip and before weight decay). The gradient arrays are only read. The
// Python optimizers set it to the global-norm clipping coefficient
// (max_grad_norm); a C++ caller may use it for loss scaling, e.g. 1 / scale.
// When it is 1 the multiplication is not compiled into the kernel at all.
#pragma once

#include <limits>

#include <cstdint>

namespace lrcore {

/// Stochastic gradient descent, optionally with (Nesterov) momentum.
struct SgdConfig {
    double lr = 1e-3;            // >= 0
    double momentum = 0.0;       // >= 0; 0 disables the momentum buffer
    double dampening = 0.0;      // the gradient enters the buffer scaled by 1 - dampening
    double weight_decay = 0.0;   // >= 0; L2 penalty added to the gradient
    bool nesterov = false;       // needs momentum > 0 and dampening == 0
    bool maximize = false;       // ascend instead of descend
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// AdaGrad: per-element learning rate scaled by the root of the summed squared gradients.
struct AdagradConfig {
    double lr = 1e-2;            // >= 0
    double lr_decay = 0.0;       // >= 0; step t uses lr / (1 + (t - 1) * lr_decay)
    double weight_decay = 0.0;   // >= 0; L2 penalty added to the gradient
    double eps = 1e-10;          // >= 0; added to the root for stability
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// RMSprop: learning rate scaled by a running root-mean-square of the gradient.
struct RmspropConfig {
    double lr = 1e-2;            // >= 0
    double alpha = 0.99;         // >= 0; smoothing constant of the running averages
    double eps = 1e-8;           // >= 0
    double weight_decay = 0.0;   // >= 0; L2 penalty added to the gradient
    double momentum = 0.0;       // >= 0; > 0 uses RmspropTensor::momentum_buffer
    bool centered = false;       // normalize by the variance estimate; uses RmspropTensor::grad_avg
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// Adam and AdamW. With decoupled_weight_decay the parameter is shrunk by
/// (1 - lr * weight_decay) before the update (AdamW) instead of adding
/// weight_decay * param to the gradient (Adam's L2 penalty). Note that
/// torch.optim.AdamW's default weight_decay is 1e-2; here it is 0 for both.
struct AdamConfig {
    double lr = 1e-3;            // >= 0
    double beta1 = 0.9;          // in [0, 1); first-moment decay
    double beta2 = 0.999;        // in [0, 1); second-moment decay
    double eps = 1e-8;           // >= 0; added to the denominator
    double weight_decay = 0.0;   // >= 0
    bool amsgrad = false;        // uses AdamTensor::max_exp_avg_sq
    bool maximize = false;
    bool decoupled_weight_decay = false;  // AdamW
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// Adafactor (torch.optim.Adafactor): the second moment of a parameter of 2
/// or more dimensions is kept factored, as row and column means of the squared
/// gradient over its last two dimensions; a vector keeps it whole. The step
/// size is relative to the parameter's root mean square, and the update is
/// clipped to root mean square d (see adafactor_step in optimizers.hpp).
struct AdafactorConfig {
    double lr = 1e-2;            // >= 0; caps the relative step size and scales weight decay
    double beta2_decay = -0.8;   // <= 0; step t averages the squared gradient in with weight t^beta2_decay
    // >= 0, or NaN (the default) for the element type's machine epsilon (torch's eps=(None, ...)).
    // Bounds the row means from below and the variance estimate (squared) from below.
    double eps1 = std::numeric_limits<double>::quiet_NaN();
    double eps2 = 1e-3;          // >= 0; smallest parameter root mean square the step size is relative to
    double d = 1.0;              // >= 1; the update's root mean square is clipped to d
    double weight_decay = 0.0;   // >= 0; decoupled: p <- p * (1 - lr * weight_decay)
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// NAdam (Dozat 2016), with torch's momentum schedule mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)).
/// With decoupled_weight_decay the parameter is shrunk by (1 - lr * weight_decay) first
/// (NAdamW) instead of adding weight_decay * param to the gradient.
struct NadamConfig {
    double lr = 2e-3;            // >= 0
    double beta1 = 0.9;          // in [0, 1)
    double beta2 = 0.999;        // in [0, 1)
    double eps = 1e-8;           // >= 0
    double weight_decay = 0.0;   // >= 0
    double momentum_decay = 4e-3;  // >= 0
    bool decoupled_weight_decay = false;
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// RAdam (Liu et al. 2019): Adam with the variance of its adaptive step rectified, and
/// plain bias-corrected momentum while the variance estimate is not yet tractable
/// (rho_t <= 5, a property of the step number and beta2 alone).
struct RadamConfig {
    double lr = 1e-3;            // >= 0
    double beta1 = 0.9;          // in [0, 1)
    double beta2 = 0.999;        // in [0, 1)
    double eps = 1e-8;           // >= 0
    double weight_decay = 0.0;   // >= 0
    bool decoupled_weight_decay = false;
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// Adamax: Adam with the infinity norm (a running, decayed maximum of |g|) in the denominator.
struct AdamaxConfig {
    double lr = 2e-3;            // >= 0
    double beta1 = 0.9;          // in [0, 1)
    double beta2 = 0.999;        // in [0, 1)
    double eps = 1e-8;           // >= 0; added to |g| before the maximum
    double weight_decay = 0.0;   // >= 0; L2 penalty added to the gradient
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// Lion (Chen et al. 2023): the sign of an interpolation of momentum and gradient, with
/// decoupled weight decay. Not in torch.optim.
struct LionConfig {
    double lr = 1e-4;            // >= 0
    double beta1 = 0.9;          // in [0, 1); interpolation weight of the update direction
    double beta2 = 0.99;         // in [0, 1); momentum decay
    double weight_decay = 0.0;   // >= 0; decoupled: param *= 1 - lr * weight_decay
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// Adadelta: per-element steps from running averages of squared gradients and squared updates.
struct AdadeltaConfig {
    double lr = 1.0;             // >= 0; scales the update (the rule itself needs none)
    double rho = 0.9;            // in [0, 1]; decay of both running averages
    double eps = 1e-6;           // >= 0; added inside both roots
    double weight_decay = 0.0;   // >= 0; L2 penalty added to the gradient
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// Rprop: per-element step sizes that grow while the gradient keeps its sign
/// and shrink when it flips; only the gradient's sign moves the parameter.
/// torch's `etas` tuple is etaminus, etaplus here, `step_sizes` is
/// step_size_min, step_size_max.
struct RpropConfig {
    double lr = 1e-2;            // >= 0; the initial step size (RpropTensor::initialize_step_size)
    double etaminus = 0.5;       // in (0, 1); step-size factor where the gradient's sign flips
    double etaplus = 1.2;        // > 1; step-size factor where it keeps its sign
    double step_size_min = 1e-6; // >= 0; step sizes are clamped to [step_size_min, step_size_max]
    double step_size_max = 50.0; // >= step_size_min
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// ASGD (averaged SGD): steps of a decaying size eta with a decay term, and a
/// running average `ax` of the parameter that starts averaging after step t0.
struct AsgdConfig {
    double lr = 1e-2;            // >= 0; eta after step t is lr / (1 + lambd * lr * t)^alpha
    double lambd = 1e-4;         // >= 0; decay term: the parameter is scaled by 1 - lambd * eta
    double alpha = 0.75;         // power in the eta schedule
    double t0 = 1e6;             // the average starts moving after step t0: mu = 1 / max(1, t - t0)
    double weight_decay = 0.0;   // >= 0; L2 penalty added to the gradient
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// Schedule-free AdamW (Defazio et al. 2024, "The Road Less Scheduled"), as the
/// `schedulefree` package's AdamWScheduleFree computes it. The parameter arrays
/// hold y, where gradients are taken, in train mode and the average x in eval
/// mode (see ScheduleFreeGroupState::train_mode and the train/eval functions in
/// optimizers.hpp). The package has no maximize and validates nothing; the
/// ranges below are where its computations are defined (eval divides by beta1).
struct ScheduleFreeAdamWConfig {
    double lr = 0.0025;          // >= 0; scaled by (k + 1) / warmup_steps during the warmup
    double beta1 = 0.9;          // in (0, 1); interpolation between z and x (y = (1 - beta1) z + beta1 x)
    double beta2 = 0.999;        // in [0, 1); second-moment decay
    double eps = 1e-8;           // >= 0; added to the denominator
    double weight_decay = 0.0;   // >= 0; weight_decay * y added to the normalized gradient
    double warmup_steps = 0.0;   // >= 0; linear learning-rate warmup over the first warmup_steps steps
    double r = 0.0;              // finite; the average weights step k by (k + 1)^r
    double weight_lr_power = 2.0;  // finite; ... and by lr_max^weight_lr_power
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// Schedule-free SGD (the `schedulefree` package's SGDScheduleFree).
struct ScheduleFreeSgdConfig {
    double lr = 1.0;             // >= 0; scaled by (k + 1) / warmup_steps during the warmup
    double momentum = 0.9;       // in (0, 1), as the package requires
    double weight_decay = 0.0;   // >= 0; L2 penalty added to the gradient (at y)
    double warmup_steps = 0.0;   // >= 0
    double r = 0.0;              // finite
    double weight_lr_power = 2.0;  // finite
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// What a schedule-free rule keeps per parameter group between steps (the
/// package keeps the same values in each param_group). The caller owns it,
/// starts it as default-constructed, and passes it to every step and mode
/// switch of the group; a step that throws leaves it unchanged.
struct ScheduleFreeGroupState {
    std::int64_t k = 0;          // steps taken by the group
    double lr_max = -1.0;        // the largest warmup-scaled lr so far (-1 before the first step)
    double weight_sum = 0.0;     // the sum of the average's weights so far
    bool train_mode = false;     // the parameters hold y (true) or x (false); a new optimizer starts in eval mode
};

/// Checks a configuration; throws std::invalid_argument naming the first bad
/// field (negative or non-finite value where a number >= 0 is required,
/// betas outside [0, 1), Nesterov without momentum or with dampening, ...).
void validate(const SgdConfig& config);
void validate(const AdagradConfig& config);
void validate(const RmspropConfig& config);
void validate(const AdamConfig& config);
void validate(const AdafactorConfig& config);
void validate(const NadamConfig& config);
void validate(const RadamConfig& config);
void validate(const AdamaxConfig& config);
void validate(const LionConfig& config);
void validate(const AdadeltaConfig& config);
void validate(const RpropConfig& config);
void validate(const AsgdConfig& config);
void validate(const ScheduleFreeAdamWConfig& config);
void validate(const ScheduleFreeSgdConfig& config);

}  // namespace lrcore

namespace lrcore {

/// torch.optim.SparseAdam: Adam whose moments change only on the rows a
/// row-sparse gradient references (lazy Adam); it takes no dense gradient.
struct SparseAdamConfig {
    double lr = 1e-3;            // >= 0
    double beta1 = 0.9;          // in [0, 1)
    double beta2 = 0.999;        // in [0, 1)
    double eps = 1e-8;           // >= 0
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

/// Row-wise AdaGrad (FBGEMM's): one accumulator per row of a table instead of
/// one per element. weight_decay is an L2 term added to the gradient before
/// the accumulator sees it, as in AdaGrad; with a row-sparse gradient only the
/// referenced rows decay.
struct RowwiseAdagradConfig {
    double lr = 1e-2;            // >= 0
    double eps = 1e-10;          // >= 0
    double weight_decay = 0.0;   // >= 0
    bool maximize = false;
    double grad_scale = 1.0;     // each gradient element is multiplied by T(grad_scale) first
};

void validate(const SparseAdamConfig& config);
void validate(const RowwiseAdagradConfig& config);

}  // namespace lrcore
