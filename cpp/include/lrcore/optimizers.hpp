// The update rules. Each call applies one optimizer step to a list of
// tensors, in place, splitting the work over the thread pool. Results do not
// depend on the instruction set or the number of threads (bitwise).
//
// Semantics follow torch.optim's single-tensor implementations; the formulas
// are documented next to their kernels in cpp/src/kernels/update_rules.hpp.
#pragma once

#include <cstddef>

#include "lrcore/config.hpp"
#include "lrcore/tensors.hpp"

namespace lrcore {

void sgd_step(const SgdConfig& config, const SgdTensor<float>* tensors, std::size_t count);
void sgd_step(const SgdConfig& config, const SgdTensor<double>* tensors, std::size_t count);

void adagrad_step(const AdagradConfig& config, const AdagradTensor<float>* tensors, std::size_t count);
void adagrad_step(const AdagradConfig& config, const AdagradTensor<double>* tensors, std::size_t count);

void rmsprop_step(const RmspropConfig& config, const RmspropTensor<float>* tensors, std::size_t count);
void rmsprop_step(const RmspropConfig& config, const RmspropTensor<double>* tensors, std::size_t count);

void adam_step(const AdamConfig& config, const AdamTensor<float>* tensors, std::size_t count);
void adam_step(const AdamConfig& config, const AdamTensor<double>* tensors, std::size_t count);

/// Single-tensor conveniences.
inline void sgd_step(const SgdConfig& c, const SgdTensor<float>& t) { sgd_step(c, &t, 1); }
inline void sgd_step(const SgdConfig& c, const SgdTensor<double>& t) { sgd_step(c, &t, 1); }
inline void adagrad_step(const AdagradConfig& c, const AdagradTensor<float>& t) { adagrad_step(c, &t, 1); }
inline void adagrad_step(const AdagradConfig& c, const AdagradTensor<double>& t) { adagrad_step(c, &t, 1); }
inline void rmsprop_step(const RmspropConfig& c, const RmspropTensor<float>& t) { rmsprop_step(c, &t, 1); }
inline void rmsprop_step(const RmspropConfig& c, const RmspropTensor<double>& t) { rmsprop_step(c, &t, 1); }
inline void adam_step(const AdamConfig& c, const AdamTensor<float>& t) { adam_step(c, &t, 1); }
inline void adam_step(const AdamConfig& c, const AdamTensor<double>& t) { adam_step(c, &t, 1); }

}  // namespace lrcore
