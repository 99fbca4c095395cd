// The step drivers without argument checks: derive the per-step constants,
// cut the tensors into chunks and run the active kernel table over them.
//
// The public step functions (lrcore/optimizers.hpp) check their arguments and
// call these; the Python binding checks every group of a step once, at its
// boundary, and then calls these directly, so nothing is checked twice.
#pragma once

#include <cstddef>

#include "rules.hpp"

namespace lrcore::detail {

/// Runs one step of Config's rule over `count` checked tensors. Every needed
/// state pointer must be set, and every step number >= 1. With `storages`
/// (float only; one per tensor) the tensors' arrays are stored as those say.
template <class Config, class T>
void run_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>* tensors,
              std::size_t count, const Storage* storages = nullptr);

/// Adafactor is not element-wise: its driver (adafactor_step.cpp) runs its own passes.
template <>
void run_step<AdafactorConfig, float>(const AdafactorConfig& config, const AdafactorTensor<float>* tensors,
                                      std::size_t count, const Storage* storages);
template <>
void run_step<AdafactorConfig, double>(const AdafactorConfig& config, const AdafactorTensor<double>* tensors,
                                       std::size_t count, const Storage* storages);

/// Runs one step of a rule with per-group state (rules::HasGroupState) over
/// `count` checked tensors, with the values rules::Rule<Config>::advance gave
/// for the group. The caller stores the group's next state afterwards.
template <class Config, class T>
void run_group_step(const Config& config, const typename rules::Rule<Config>::StepValues& values,
                    const typename rules::Rule<Config>::template Tensor<T>* tensors, std::size_t count,
                    const Storage* storages = nullptr);

/// The mode switch of a rule with modes over `count` checked tensors:
/// param <- lerp(param, mode state, weight) for every tensor (weight from
/// rules::Rule<Config>::mode_weight).
template <class Config, class T>
void run_mode_switch(double weight, const typename rules::Rule<Config>::template Tensor<T>* tensors,
                     std::size_t count, const Storage* storages = nullptr);

/// Makes the runtime settings (LRCORE_ISA, LRCORE_NUM_THREADS) take effect,
/// throwing now if an environment variable is invalid, so that a step can
/// report it before it writes anything.
void prepare_runtime();

}  // namespace lrcore::detail
