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

}  // namespace lrcore
