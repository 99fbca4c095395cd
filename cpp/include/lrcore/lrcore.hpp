// lrcore: SIMD optimizer kernels. Include this header to get the whole C++ API.
//
// What is here:
//   config.hpp      SgdConfig, AdagradConfig, RmspropConfig, AdamConfig: the
//                   hyperparameters of each rule (torch.optim's names and defaults)
//   tensors.hpp     SgdTensor<T>, ..., AdamTensor<T>: a parameter, its gradient
//                   and its optimizer state, as raw pointers you own (T = float or double)
//   optimizers.hpp  sgd_step, adagrad_step, rmsprop_step, adam_step: one update, in place
//   schedules.hpp   lrcore::schedules: closed-form learning-rate schedules, lr = schedule(t)
//   gradients.hpp   whole-gradient passes: all_finite, global_norm (fixed-order,
//                   thread-count independent), scale, for clipping and NaN guards
//   runtime.hpp     instruction-set choice, thread count, denormal flushing
//   version.hpp     LRCORE_VERSION_MAJOR / _MINOR / _PATCH
//
// Linking: the CMake package defines lrcore::lrcore (a static library plus
// the thread library):
//   find_package(lrcore CONFIG REQUIRED)
//   target_link_libraries(app PRIVATE lrcore::lrcore)
// A pip-installed lrcore carries the same package: pass
// -Dlrcore_DIR=$(python -c "import lrcore; print(lrcore.get_cmake_dir())").
//
// A training loop (Adam on one float tensor of n elements):
//   std::vector<float> w(n), g(n), m(n), v(n);         // state starts at zero
//   lrcore::AdamConfig config;                         // lr 1e-3, betas (0.9, 0.999), ...
//   lrcore::AdamTensor<float> t;
//   t.param = w.data(); t.grad = g.data(); t.exp_avg = m.data(); t.exp_avg_sq = v.data();
//   t.size = n;
//   for (std::int64_t step = 1; step <= steps; ++step) {
//       compute_gradient(w, g);                       // your code
//       t.step = step;                                // 1-based
//       lrcore::adam_step(config, t);                 // w, m, v updated in place
//   }
//
// Errors are reported with exceptions (std::invalid_argument for bad
// arguments, std::runtime_error for an unsupported instruction set), always
// before any array is written. Once warmed up (the first calls size some
// per-thread scratch), a step call does not allocate.
#pragma once

#include "lrcore/config.hpp"
#include "lrcore/gradients.hpp"
#include "lrcore/optimizers.hpp"
#include "lrcore/runtime.hpp"
#include "lrcore/schedules.hpp"
#include "lrcore/tensors.hpp"
#include "lrcore/version.hpp"
