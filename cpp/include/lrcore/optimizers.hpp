// The update rules. Each call applies one optimizer step to a list of
// tensors, in place, splitting the work over the thread pool. Results do not
// depend on the instruction set or the number of threads (bitwise).
//
// Semantics follow torch.optim's single-tensor implementations (same
// operation order, each operation rounded to T); hyperparameters and the
// per-step constants derived from them are computed in double, then rounded
// to T once. In the formulas below g is the gradient, p the parameter, t the
// tensor's `step`, s = -1 with `maximize` (else 1), and every operation is
// element-wise.
//
// Every call first validates the configuration (see validate() in
// config.hpp) and every tensor (null pointers, step < 1), throwing
// std::invalid_argument before any array is written; only then does it
// update anything. The first call of the process may also throw if the
// environment variables LRCORE_ISA or LRCORE_NUM_THREADS are invalid (see
// runtime.hpp).
//
// Thread safety: calls from several threads at once are safe as long as they
// touch different arrays. The pool serves one call at a time; a call that
// finds it busy runs on its own thread instead of waiting.
//
// Batching: passing all tensors of a model in one call (`tensors`, `count`)
// lets small tensors share the pool and costs one dispatch per step; the
// result is the same as one call per tensor. The single-tensor overloads at
// the end are shorthands for count == 1.
#pragma once

#include <cstddef>

#include "lrcore/config.hpp"
#include "lrcore/tensors.hpp"

namespace lrcore {

/// SGD, with optional momentum, dampening, Nesterov and weight decay:
///   g <- s*g + weight_decay*p
///   with momentum mu:  b <- g on the first step (initialize_momentum_buffer),
///                      b <- mu*b + (1 - dampening)*g afterwards;
///                      g <- g + mu*b (nesterov)  or  g <- b
///   p <- p - lr*g
void sgd_step(const SgdConfig& config, const SgdTensor<float>* tensors, std::size_t count);
void sgd_step(const SgdConfig& config, const SgdTensor<double>* tensors, std::size_t count);

/// AdaGrad:
///   g <- s*g + weight_decay*p
///   sum <- sum + g*g
///   p <- p - clr * g / (sqrt(sum) + eps),   clr = lr / (1 + (t - 1)*lr_decay)
void adagrad_step(const AdagradConfig& config, const AdagradTensor<float>* tensors, std::size_t count);
void adagrad_step(const AdagradConfig& config, const AdagradTensor<double>* tensors, std::size_t count);

/// RMSprop, optionally centered and with momentum:
///   g <- s*g + weight_decay*p
///   v <- alpha*v + (1 - alpha)*g*g                       (v = square_avg)
///   centered: a <- alpha*a + (1 - alpha)*g (as torch.lerp),  r <- sqrt(v - a*a) + eps   (a = grad_avg)
///   else:     r <- sqrt(v) + eps
///   with momentum mu: b <- mu*b + g/r,  p <- p - lr*b
///   else:             p <- p - lr*g/r
void rmsprop_step(const RmspropConfig& config, const RmspropTensor<float>* tensors, std::size_t count);
void rmsprop_step(const RmspropConfig& config, const RmspropTensor<double>* tensors, std::size_t count);

/// Adam (L2 weight decay) and AdamW (decoupled_weight_decay):
///   g <- s*g;  Adam: g <- g + weight_decay*p;  AdamW: p <- p*(1 - lr*weight_decay)
///   m <- beta1*m + (1 - beta1)*g                         (m = exp_avg; evaluated as torch.lerp)
///   v <- beta2*v + (1 - beta2)*g*g                       (v = exp_avg_sq)
///   AMSGrad: v_max <- max(v_max, v), used for v below    (v_max = max_exp_avg_sq)
///   p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
void adam_step(const AdamConfig& config, const AdamTensor<float>* tensors, std::size_t count);
void adam_step(const AdamConfig& config, const AdamTensor<double>* tensors, std::size_t count);

/// Adafactor (torch.optim.Adafactor, foreach=False), per tensor with n elements,
/// eps1 = T's machine epsilon when config.eps1 is NaN, w = t^beta2_decay:
///   alpha = max(eps2, ||p|| / sqrt(n)) * min(lr, 1/sqrt(t))       (||p|| before weight decay)
///   p <- p * (1 - lr*weight_decay)
///   matrix (rows, columns != 0; each matrix of the stack on its own):
///     row_var <- lerp(row_var, mean of g*g along each row, w)
///     col_var <- lerp(col_var, mean of g*g along each column, w)
///     v = row_var[r] * col_var[c] / max(mean(row_var), eps1)
///   vector: variance <- lerp(variance, g*g, w);  v = variance
///   u = (1 / sqrt(max(v, eps1^2))) * s*g
///   p <- p + (-alpha / max(1, ||u|| / (sqrt(n) * d))) * u
/// Norms and means are reductions in a fixed order (see cpp/src/adafactor_step.cpp),
/// so the result is the same on every ISA and thread count. Scratch is
/// O(rows + columns) per matrix, kept by the calling thread between calls.
void adafactor_step(const AdafactorConfig& config, const AdafactorTensor<float>* tensors, std::size_t count);
void adafactor_step(const AdafactorConfig& config, const AdafactorTensor<double>* tensors, std::size_t count);

/// NAdam, with torch's momentum schedule mu_t = beta1*(1 - 0.5*0.96^(t*momentum_decay)):
///   g <- s*g;  g <- g + weight_decay*p,  or with decoupled_weight_decay p <- p*(1 - lr*weight_decay)
///   P <- mu_product*mu_t                                 (mu_product, a double per tensor, starts at 1)
///   m <- beta1*m + (1 - beta1)*g                         (m = exp_avg; evaluated as torch.lerp)
///   v <- beta2*v + (1 - beta2)*g*g                       (v = exp_avg_sq)
///   d <- sqrt(v / (1 - beta2^t)) + eps
///   p <- p - lr*(1 - mu_t)/(1 - P) * g/d;  p <- p - lr*mu_{t+1}/(1 - P*mu_{t+1}) * m/d
///   after every kernel of the call: mu_product <- P
void nadam_step(const NadamConfig& config, const NadamTensor<float>* tensors, std::size_t count);
void nadam_step(const NadamConfig& config, const NadamTensor<double>* tensors, std::size_t count);

/// RAdam:
///   g <- s*g;  g <- g + weight_decay*p,  or with decoupled_weight_decay p <- p*(1 - lr*weight_decay)
///   m <- beta1*m + (1 - beta1)*g  (as torch.lerp);   v <- beta2*v + (1 - beta2)*g*g
///   rho_inf = 2/(1 - beta2) - 1,  rho_t = rho_inf - 2*t*beta2^t/(1 - beta2^t)
///   rho_t > 5: p <- p - (m/(1 - beta1^t))*lr * (sqrt(1 - beta2^t) / (sqrt(v) + eps)) * r_t,
///              r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
///   otherwise: p <- p - (m/(1 - beta1^t))*lr
void radam_step(const RadamConfig& config, const RadamTensor<float>* tensors, std::size_t count);
void radam_step(const RadamConfig& config, const RadamTensor<double>* tensors, std::size_t count);

/// Adamax:
///   g <- s*g + weight_decay*p
///   m <- beta1*m + (1 - beta1)*g  (as torch.lerp)
///   u <- max(beta2*u, |g| + eps)                         (u = exp_inf; a NaN in either operand propagates)
///   p <- p - (lr/(1 - beta1^t)) * m/u
void adamax_step(const AdamaxConfig& config, const AdamaxTensor<float>* tensors, std::size_t count);
void adamax_step(const AdamaxConfig& config, const AdamaxTensor<double>* tensors, std::size_t count);

/// Lion (Chen et al. 2023):
///   g <- s*g
///   c <- beta1*m + (1 - beta1)*g
///   p <- p*(1 - lr*weight_decay) - lr*sign(c)            (sign(+-0) = 0; a NaN stays NaN)
///   m <- beta2*m + (1 - beta2)*g                         (m = exp_avg)
void lion_step(const LionConfig& config, const LionTensor<float>* tensors, std::size_t count);
void lion_step(const LionConfig& config, const LionTensor<double>* tensors, std::size_t count);

/// Adadelta (torch's operation order):
///   g <- s*g + weight_decay*p
///   v <- rho*v + (1 - rho)*g*g                           (v = square_avg)
///   d <- sqrt(u + eps) / sqrt(v + eps) * g               (u = acc_delta, before its update)
///   u <- rho*u + (1 - rho)*d*d
///   p <- p - lr*d
void adadelta_step(const AdadeltaConfig& config, const AdadeltaTensor<float>* tensors, std::size_t count);
void adadelta_step(const AdadeltaConfig& config, const AdadeltaTensor<double>* tensors, std::size_t count);

/// Rprop (torch's semantics):
///   first step (initialize_step_size): z <- lr;  prev starts at 0   (z = step_size)
///   g <- s*g;  q <- sign(g*prev)                         (sign: +1, -1, or 0 for zeros and NaN)
///   z <- clamp(z * (etaplus if q > 0, etaminus if q < 0, else 1), step_size_min, step_size_max)
///   g <- 0 where q < 0
///   p <- p - sign(g)*z;  prev <- g
void rprop_step(const RpropConfig& config, const RpropTensor<float>* tensors, std::size_t count);
void rprop_step(const RpropConfig& config, const RpropTensor<double>* tensors, std::size_t count);

/// ASGD (torch's single-tensor order), with eta and mu the tensor's two numbers
/// (AsgdTensor: NaN ones are not set yet, and read as lr and 1 on a first step):
///   g <- s*g + weight_decay*p
///   p <- p*(1 - lambd*eta);  p <- p - eta*g
///   ax <- p if mu == 1, else ax + (p - ax)*mu
///   after every kernel of the call: eta <- lr / (1 + lambd*lr*t)^alpha,  mu <- 1 / max(1, t - t0)
void asgd_step(const AsgdConfig& config, const AsgdTensor<float>* tensors, std::size_t count);
void asgd_step(const AsgdConfig& config, const AsgdTensor<double>* tensors, std::size_t count);

/// Schedule-free AdamW and SGD (Defazio et al. 2024), as the `schedulefree`
/// package 1.4 computes them. `state` is the parameter group's (see
/// ScheduleFreeGroupState); a step needs it in train mode (else it throws
/// std::logic_error) and advances it, with in double (k = state.k):
///   lr <- lr * (k + 1) / warmup_steps while k < warmup_steps
///   lr_max <- max(lr, lr_max);  w = (k + 1)^r * lr_max^weight_lr_power
///   weight_sum <- weight_sum + w;  c = w / weight_sum (0 when weight_sum is 0)
/// and per element, with y = param (z starts as a copy of y: initialize_z):
///   AdamW: v <- beta2*v + (1 - beta2)*g*g                (v = exp_avg_sq)
///          u <- g / (sqrt(v / (1 - beta2^(k + 1))) + eps)
///   SGD:   u <- g
///   u <- u + weight_decay*y
///   y <- lerp(y, z, c) + lr*(beta*(1 - c) - 1)*u          (beta = beta1 or momentum)
///   z <- z - lr*u
/// train()/eval() move every tensor between y and the average x in place:
///   eval:  p <- lerp(p, z, 1 - 1/beta)    train: p <- lerp(p, z, 1 - beta)
/// skipping tensors whose z is null or still to be initialized; nothing
/// happens when the group is already in that mode.
void schedule_free_adamw_step(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                              const ScheduleFreeAdamWTensor<float>* tensors, std::size_t count);
void schedule_free_adamw_step(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                              const ScheduleFreeAdamWTensor<double>* tensors, std::size_t count);
void schedule_free_adamw_train(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                               const ScheduleFreeAdamWTensor<float>* tensors, std::size_t count);
void schedule_free_adamw_train(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                               const ScheduleFreeAdamWTensor<double>* tensors, std::size_t count);
void schedule_free_adamw_eval(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                              const ScheduleFreeAdamWTensor<float>* tensors, std::size_t count);
void schedule_free_adamw_eval(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                              const ScheduleFreeAdamWTensor<double>* tensors, std::size_t count);
void schedule_free_sgd_step(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                            const ScheduleFreeSgdTensor<float>* tensors, std::size_t count);
void schedule_free_sgd_step(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                            const ScheduleFreeSgdTensor<double>* tensors, std::size_t count);
void schedule_free_sgd_train(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                             const ScheduleFreeSgdTensor<float>* tensors, std::size_t count);
void schedule_free_sgd_train(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                             const ScheduleFreeSgdTensor<double>* tensors, std::size_t count);
void schedule_free_sgd_eval(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                            const ScheduleFreeSgdTensor<float>* tensors, std::size_t count);
void schedule_free_sgd_eval(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                            const ScheduleFreeSgdTensor<double>* tensors, std::size_t count);

/// Mixed precision: the same steps over float32-math tensors whose arrays are
/// stored as storages[i] says (16-bit parameters and gradients, bfloat16
/// state, a float32 master copy, stochastic rounding; see Storage in
/// tensors.hpp). Besides the checks above, every storage is checked: the
/// parameter bfloat16 or float16, the gradient the parameter's format or
/// float32, the state float32 or bfloat16, and not both a master copy and
/// stochastic rounding; a bad one throws std::invalid_argument before any
/// array is written. A null `storages` is the float32 step.
void sgd_step(const SgdConfig& config, const SgdTensor<float>* tensors, const Storage* storages, std::size_t count);
void adagrad_step(const AdagradConfig& config, const AdagradTensor<float>* tensors, const Storage* storages,
                  std::size_t count);
void rmsprop_step(const RmspropConfig& config, const RmspropTensor<float>* tensors, const Storage* storages,
                  std::size_t count);
void adam_step(const AdamConfig& config, const AdamTensor<float>* tensors, const Storage* storages,
               std::size_t count);
void adafactor_step(const AdafactorConfig& config, const AdafactorTensor<float>* tensors, const Storage* storages,
                    std::size_t count);
void nadam_step(const NadamConfig& config, const NadamTensor<float>* tensors, const Storage* storages,
                std::size_t count);
void radam_step(const RadamConfig& config, const RadamTensor<float>* tensors, const Storage* storages,
                std::size_t count);
void adamax_step(const AdamaxConfig& config, const AdamaxTensor<float>* tensors, const Storage* storages,
                 std::size_t count);
void lion_step(const LionConfig& config, const LionTensor<float>* tensors, const Storage* storages,
               std::size_t count);
void adadelta_step(const AdadeltaConfig& config, const AdadeltaTensor<float>* tensors, const Storage* storages,
                   std::size_t count);
void rprop_step(const RpropConfig& config, const RpropTensor<float>* tensors, const Storage* storages,
                std::size_t count);
void asgd_step(const AsgdConfig& config, const AsgdTensor<float>* tensors, const Storage* storages,
               std::size_t count);
void schedule_free_adamw_step(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                              const ScheduleFreeAdamWTensor<float>* tensors, const Storage* storages,
                              std::size_t count);
void schedule_free_sgd_step(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                            const ScheduleFreeSgdTensor<float>* tensors, const Storage* storages, std::size_t count);

/// Single-tensor conveniences.
inline void sgd_step(const SgdConfig& c, const SgdTensor<float>& t) { sgd_step(c, &t, 1); }
inline void sgd_step(const SgdConfig& c, const SgdTensor<double>& t) { sgd_step(c, &t, 1); }
inline void adagrad_step(const AdagradConfig& c, const AdagradTensor<float>& t) { adagrad_step(c, &t, 1); }
inline void adagrad_step(const AdagradConfig& c, const AdagradTensor<double>& t) { adagrad_step(c, &t, 1); }
inline void rmsprop_step(const RmspropConfig& c, const RmspropTensor<float>& t) { rmsprop_step(c, &t, 1); }
inline void rmsprop_step(const RmspropConfig& c, const RmspropTensor<double>& t) { rmsprop_step(c, &t, 1); }
inline void adam_step(const AdamConfig& c, const AdamTensor<float>& t) { adam_step(c, &t, 1); }
inline void adam_step(const AdamConfig& c, const AdamTensor<double>& t) { adam_step(c, &t, 1); }
inline void adafactor_step(const AdafactorConfig& c, const AdafactorTensor<float>& t) { adafactor_step(c, &t, 1); }
inline void adafactor_step(const AdafactorConfig& c, const AdafactorTensor<double>& t) { adafactor_step(c, &t, 1); }
inline void nadam_step(const NadamConfig& c, const NadamTensor<float>& t) { nadam_step(c, &t, 1); }
inline void nadam_step(const NadamConfig& c, const NadamTensor<double>& t) { nadam_step(c, &t, 1); }
inline void radam_step(const RadamConfig& c, const RadamTensor<float>& t) { radam_step(c, &t, 1); }
inline void radam_step(const RadamConfig& c, const RadamTensor<double>& t) { radam_step(c, &t, 1); }
inline void adamax_step(const AdamaxConfig& c, const AdamaxTensor<float>& t) { adamax_step(c, &t, 1); }
inline void adamax_step(const AdamaxConfig& c, const AdamaxTensor<double>& t) { adamax_step(c, &t, 1); }
inline void lion_step(const LionConfig& c, const LionTensor<float>& t) { lion_step(c, &t, 1); }
inline void lion_step(const LionConfig& c, const LionTensor<double>& t) { lion_step(c, &t, 1); }
inline void adadelta_step(const AdadeltaConfig& c, const AdadeltaTensor<float>& t) { adadelta_step(c, &t, 1); }
inline void adadelta_step(const AdadeltaConfig& c, const AdadeltaTensor<double>& t) { adadelta_step(c, &t, 1); }
inline void rprop_step(const RpropConfig& c, const RpropTensor<float>& t) { rprop_step(c, &t, 1); }
inline void rprop_step(const RpropConfig& c, const RpropTensor<double>& t) { rprop_step(c, &t, 1); }
inline void asgd_step(const AsgdConfig& c, const AsgdTensor<float>& t) { asgd_step(c, &t, 1); }
inline void asgd_step(const AsgdConfig& c, const AsgdTensor<double>& t) { asgd_step(c, &t, 1); }

}  // namespace lrcore

namespace lrcore {

// Row-sparse gradients (SparseRows, lrcore/tensors.hpp) of a table: only the
// referenced rows of the table and of its state are read and written.
// Duplicate rows are summed first, in the order given (so the result does not
// depend on the thread count or instruction set); g below is a row's summed
// gradient, after grad_scale and the maximize sign. The table's `grad` is
// unused. Each call checks everything before writing anything: the config,
// the pointers, row_length >= 1 dividing the table's size, and every index in
// [0, rows) (std::out_of_range otherwise).

/// SGD on the referenced rows (momentum and weight_decay must be 0, as
/// torch's sparse path has neither; std::invalid_argument otherwise):
///   p[r] <- p[r] - lr*g
void sgd_step(const SgdConfig& config, const SgdTensor<float>& table, const SparseRows<float>& grad);
void sgd_step(const SgdConfig& config, const SgdTensor<double>& table, const SparseRows<double>& grad);

/// AdaGrad on the referenced rows, as torch's sparse path (weight_decay must be 0):
///   sum[r] <- sum[r] + g*g
///   p[r] <- p[r] - clr * (g / (sqrt(sum[r]) + eps)),   clr = lr / (1 + (t - 1)*lr_decay)
void adagrad_step(const AdagradConfig& config, const AdagradTensor<float>& table, const SparseRows<float>& grad);
void adagrad_step(const AdagradConfig& config, const AdagradTensor<double>& table, const SparseRows<double>& grad);

/// SparseAdam (torch.optim.SparseAdam): Adam whose moments change only on referenced rows:
///   m[r] <- m[r] + (g - m[r])*(1 - beta1)
///   v[r] <- v[r] + (g*g - v[r])*(1 - beta2)
///   p[r] <- p[r] - step_size * (m[r] / (sqrt(v[r]) + eps)),
///   step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
void sparse_adam_step(const SparseAdamConfig& config, const SparseAdamTensor<float>& table,
                      const SparseRows<float>& grad);
void sparse_adam_step(const SparseAdamConfig& config, const SparseAdamTensor<double>& table,
                      const SparseRows<double>& grad);

/// Row-wise AdaGrad (FBGEMM's): one accumulator per row. With the dense
/// overloads every row is updated (grad holds the whole table's gradient).
///   g <- s*g + weight_decay*p[r]                       (the L2 term, as AdaGrad's)
///   sum[r] <- sum[r] + mean_j(g_j*g_j)                 (the mean in a fixed order, see kernels/row_rules.hpp)
///   p[r] <- p[r] + (-lr / (sqrt(sum[r]) + eps)) * g
void rowwise_adagrad_step(const RowwiseAdagradConfig& config, const RowwiseAdagradTensor<float>* tensors,
                          std::size_t count);
void rowwise_adagrad_step(const RowwiseAdagradConfig& config, const RowwiseAdagradTensor<double>* tensors,
                          std::size_t count);
inline void rowwise_adagrad_step(const RowwiseAdagradConfig& c, const RowwiseAdagradTensor<float>& t) {
    rowwise_adagrad_step(c, &t, 1);
}
inline void rowwise_adagrad_step(const RowwiseAdagradConfig& c, const RowwiseAdagradTensor<double>& t) {
    rowwise_adagrad_step(c, &t, 1);
}
void rowwise_adagrad_step(const RowwiseAdagradConfig& config, const RowwiseAdagradTensor<float>& table,
                          const SparseRows<float>& grad);
void rowwise_adagrad_step(const RowwiseAdagradConfig& config, const RowwiseAdagradTensor<double>& table,
                          const SparseRows<double>& grad);

}  // namespace lrcore
