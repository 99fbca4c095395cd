// The public step functions: check the arguments (from the rule's description
// in rules.hpp), then run the step drivers of step_drivers.hpp.

#include "lrcore/optimizers.hpp"

#include <array>
#include <stdexcept>
#include <tuple>
#include <string>
#include <vector>

#include "chunking.hpp"
#include "dispatch.hpp"
#include "kernels/step_constants.hpp"
#include "lrcore/runtime.hpp"
#include "rules.hpp"
#include "sparse_rows.hpp"
#include "step_drivers.hpp"

namespace lrcore {
namespace {

/// Which kernel and constants each rule uses.
template <class Config>
struct KernelOf;

template <>
struct KernelOf<SgdConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.sgd; }
    template <class T>
    using Constants = kernels::SgdConstants<T>;
};
template <>
struct KernelOf<AdagradConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.adagrad; }
    template <class T>
    using Constants = kernels::AdagradConstants<T>;
};
template <>
struct KernelOf<RmspropConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.rmsprop; }
    template <class T>
    using Constants = kernels::RmspropConstants<T>;
};
template <>
struct KernelOf<AdamConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.adam; }
    template <class T>
    using Constants = kernels::AdamConstants<T>;
};

template <>
struct KernelOf<AdadeltaConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.adadelta; }
    template <class T>
    using Constants = kernels::AdadeltaConstants<T>;
};
template <>
struct KernelOf<RpropConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.rprop; }
    template <class T>
    using Constants = kernels::RpropConstants<T>;
};
template <>
struct KernelOf<AsgdConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.asgd; }
    template <class T>
    using Constants = kernels::AsgdConstants<T>;
};

template <>
struct KernelOf<NadamConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.nadam; }
    template <class T>
    using Constants = kernels::NadamConstants<T>;
};
template <>
struct KernelOf<RadamConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.radam; }
    template <class T>
    using Constants = kernels::RadamConstants<T>;
};
template <>
struct KernelOf<AdamaxConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.adamax; }
    template <class T>
    using Constants = kernels::AdamaxConstants<T>;
};
template <>
struct KernelOf<LionConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.lion; }
    template <class T>
    using Constants = kernels::LionConstants<T>;
};

template <>
struct KernelOf<ScheduleFreeAdamWConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.schedule_free_adamw; }
    template <class T>
    using Constants = kernels::ScheduleFreeAdamWConstants<T>;
};
template <>
struct KernelOf<ScheduleFreeSgdConfig> {
    template <class T>
    static auto of(const kernels::TypedKernels<T>& k) { return k.schedule_free_sgd; }
    template <class T>
    using Constants = kernels::ScheduleFreeSgdConstants<T>;
};

/// Runs kernel(constants[i], tensors[i], storage of i, begin, end) over every
/// element of every tensor (`storages` null: every array holds T).
template <class T, class Tensor, class Constants, class Kernel>
void run_chunks(const Tensor* tensors, const Storage* storages, std::size_t count,
                const std::vector<Constants>& constants, Kernel kernel) {
    detail::for_each_range<T>(
        count, [&](std::size_t i) { return tensors[i].size; },
        [&](std::size_t i, std::size_t begin, std::size_t end) {
            const detail::DenormalGuard guard;  // flush denormals if asked, restore the caller's mode after
            kernel(constants[i], tensors[i], storages != nullptr ? storages + i : nullptr, begin, end);
        });
}

std::string tensor_label(std::size_t index) { return "tensor " + std::to_string(index); }

/// The checks of the public entry points: the configuration, then every
/// tensor's pointers and step number.
template <class Config, class Tensor>
void check_arguments(const Config& config, const Tensor* tensors, std::size_t count) {
    using Rule = rules::Rule<Config>;
    using T = std::remove_pointer_t<decltype(Tensor::param)>;
    rules::validate_config(config);
    for (std::size_t i = 0; i < count; ++i) {
        const Tensor& t = tensors[i];
        if (t.size == 0) continue;
        if (t.param == nullptr || t.grad == nullptr) {
            throw std::invalid_argument(tensor_label(i) + ": param and grad must not be null");
        }
        if constexpr (rules::HasMatrixShape<Tensor>::value) {
            if ((t.rows == 0) != (t.columns == 0) || (t.columns != 0 && t.size % (t.rows * t.columns) != 0)) {
                throw std::invalid_argument(tensor_label(i) +
                                            ": rows and columns must both be 0 (a vector) or divide size");
            }
        }
        const bool matrix = rules::is_matrix(t);
        for (const auto& state : Rule::states) {
            if (state.needed_by(config) && state.exists_for(matrix) && t.*(state.template field<T>()) == nullptr) {
                throw std::invalid_argument(tensor_label(i) + ": " + state.name +
                                            " must not be null for this configuration");
            }
        }
        for (const auto& scalar : rules::scalars_of<Rule>()) {
            if (t.*(scalar.template field<T>()) == nullptr) {
                throw std::invalid_argument(tensor_label(i) + ": " + scalar.name + " must not be null");
            }
        }
        if constexpr (Rule::has_step) {
            if (t.step < 1) {
                throw std::invalid_argument(tensor_label(i) + ": step must be >= 1, got " + std::to_string(t.step));
            }
        }
    }
}

template <class Config, class T>
void checked_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>* tensors,
                  std::size_t count) {
    check_arguments(config, tensors, count);
    detail::run_step<Config, T>(config, tensors, count);
}

/// The checks of a mixed-precision step's storages (see optimizers.hpp).
template <class Tensor>
void check_storages(const Tensor* tensors, const Storage* storages, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
        if (tensors[i].size == 0) continue;
        const Storage& s = storages[i];
        if (s.param != Format::bfloat16 && s.param != Format::float16) {
            throw std::invalid_argument(tensor_label(i) + ": storage.param must be bfloat16 or float16");
        }
        if (s.grad != s.param && s.grad != Format::float32) {
            throw std::invalid_argument(tensor_label(i) + ": storage.grad must be the parameter's format or float32");
        }
        if (s.state != Format::float32 && s.state != Format::bfloat16) {
            throw std::invalid_argument(tensor_label(i) + ": storage.state must be float32 or bfloat16");
        }
        if (s.master != nullptr && s.rounding == Rounding::stochastic) {
            throw std::invalid_argument(tensor_label(i) + ": a master copy is rounded to the nearest: "
                                        "storage.rounding must be nearest_even with storage.master");
        }
    }
}

template <class Config>
void checked_stored_step(const Config& config, const typename rules::Rule<Config>::template Tensor<float>* tensors,
                         const Storage* storages, std::size_t count) {
    check_arguments(config, tensors, count);
    if (storages != nullptr) check_storages(tensors, storages, count);
    detail::run_step<Config, float>(config, tensors, count, storages);
}

/// The public step of a rule with group state: every check (configuration,
/// tensors, group state, the step's values), then the kernels, then the new state.
template <class Config, class T>
void checked_group_step(const Config& config, ScheduleFreeGroupState& state,
                        const typename rules::Rule<Config>::template Tensor<T>* tensors, std::size_t count) {
    using Rule = rules::Rule<Config>;
    check_arguments(config, tensors, count);
    Rule::check_group_state(state);
    const auto values = Rule::advance(config, state);
    detail::run_group_step<Config, T>(config, values, tensors, count);
    state = values.next;
}

template <class Config>
void checked_stored_group_step(const Config& config, ScheduleFreeGroupState& state,
                               const typename rules::Rule<Config>::template Tensor<float>* tensors,
                               const Storage* storages, std::size_t count) {
    using Rule = rules::Rule<Config>;
    check_arguments(config, tensors, count);
    if (storages != nullptr) check_storages(tensors, storages, count);
    Rule::check_group_state(state);
    const auto values = Rule::advance(config, state);
    detail::run_group_step<Config, float>(config, values, tensors, count, storages);
    state = values.next;
}

/// The public mode switch: nothing when the group is already in that mode;
/// tensors whose mode state does not exist yet (null or about to be
/// initialized) are left alone, as the package skips parameters without z.
template <class Config, class T>
void checked_mode_switch(const Config& config, ScheduleFreeGroupState& state,
                         const typename rules::Rule<Config>::template Tensor<T>* tensors, std::size_t count,
                         bool to_train) {
    using Rule = rules::Rule<Config>;
    using Tensor = typename Rule::template Tensor<T>;
    rules::validate_config(config);
    Rule::check_group_state(state);
    if (state.train_mode == to_train) return;
    const auto& z = Rule::states[Rule::mode_state];
    thread_local std::vector<Tensor> switched;
    switched.clear();
    for (std::size_t i = 0; i < count; ++i) {
        const Tensor& t = tensors[i];
        if (t.size == 0 || t.*(z.template field<T>()) == nullptr || t.*(z.template initialize<T>())) continue;
        if (t.param == nullptr) throw std::invalid_argument(tensor_label(i) + ": param must not be null");
        switched.push_back(t);
    }
    detail::run_mode_switch<Config, T>(Rule::mode_weight(config, to_train), switched.data(), switched.size());
    state.train_mode = to_train;
}

}  // namespace

namespace detail {

template <class Config, class T>
void run_element_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>* tensors,
                      std::size_t count, const Storage* storages);

template <class Config, class T>
void run_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>* tensors,
              std::size_t count, const Storage* storages) {
    if constexpr (rules::Gradients<Config>::row_wise) {
        if (storages != nullptr) throw std::invalid_argument("row-wise rules take float32 or float64 arrays only");
        run_row_wise_step<Config, T>(config, tensors, count);  // whole rows, not element ranges
    } else {
        run_element_step<Config, T>(config, tensors, count, storages);
    }
}

template <class Config, class T>
void run_element_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>* tensors,
                      std::size_t count, const Storage* storages) {
    using Constants = typename KernelOf<Config>::template Constants<T>;
    const auto kernel = KernelOf<Config>::of(kernels::active_kernels().of<T>());
    thread_local std::vector<Constants> constants;
    constants.clear();
    constexpr auto& scalars = rules::scalars_of<rules::Rule<Config>>();
    if constexpr (scalars.size() != 0) {
        // The constants read the scalar states' current values (a null one, allowed
        // for an empty tensor, reads as its initial value); consecutive tensors with
        // the same step number and values reuse the last constants.
        using Values = std::array<double, scalars.size()>;
        Values last_values{};
        std::int64_t last_step = -1;
        for (std::size_t i = 0; i < count; ++i) {
            Values values{};
            for (std::size_t s = 0; s < scalars.size(); ++s) {
                const double* value = tensors[i].*(scalars[s].template field<T>());
                values[s] = value != nullptr ? *value : scalars[s].initial;
            }
            if (constants.empty() || tensors[i].step != last_step || values != last_values) {
                constants.push_back(std::apply(
                    [&](auto... v) { return Constants::make(config, tensors[i].step, v...); }, values));
                last_step = tensors[i].step;
                last_values = values;
            } else {
                constants.push_back(constants.back());
            }
        }
    } else if constexpr (rules::Rule<Config>::has_step) {
        // Consecutive tensors usually share a step number: reuse the last constants.
        std::int64_t last_step = -1;
        for (std::size_t i = 0; i < count; ++i) {
            if (constants.empty() || tensors[i].step != last_step) {
                constants.push_back(Constants::make(config, tensors[i].step));
                last_step = tensors[i].step;
            } else {
                constants.push_back(constants.back());
            }
        }
    } else {
        constants.assign(count, Constants::make(config));
    }
    run_chunks<T>(tensors, storages, count, constants, kernel);
    if constexpr (scalars.size() != 0) {
        // Every kernel has run: now the scalar states move on to their values after this step.
        for (std::size_t i = 0; i < count; ++i) {
            for (const auto& scalar : scalars) {
                if (double* value = tensors[i].*(scalar.template field<T>()); value != nullptr) {
                    *value = scalar.next(config, tensors[i].step, *value);
                }
            }
        }
    }
}

template <class Config, class T>
void run_group_step(const Config& config, const typename rules::Rule<Config>::StepValues& values,
                    const typename rules::Rule<Config>::template Tensor<T>* tensors, std::size_t count,
                    const Storage* storages) {
    using Constants = typename KernelOf<Config>::template Constants<T>;
    const auto kernel = KernelOf<Config>::of(kernels::active_kernels().of<T>());
    thread_local std::vector<Constants> constants;
    constants.assign(count, Constants::make(config, values));
    run_chunks<T>(tensors, storages, count, constants, kernel);
}

template <class Config, class T>
void run_mode_switch(double weight, const typename rules::Rule<Config>::template Tensor<T>* tensors,
                     std::size_t count, const Storage* storages) {
    using Rule = rules::Rule<Config>;
    const auto kernel = kernels::active_kernels().of<T>().interpolate;
    const auto w = kernels::LerpConstants<T>::from_weight(weight);
    const auto z = Rule::states[Rule::mode_state].template field<T>();
    // The calling thread's copy of the storages; the pool's tasks reach it through `switched`
    // (a thread_local named inside a task would be the worker's own, empty one).
    thread_local std::vector<Storage> switches;
    const Storage* switched = nullptr;
    if (storages != nullptr) {
        // A switch rounds with random bits of its own, not those of the step with the same number.
        switches.assign(storages, storages + count);
        for (Storage& s : switches) s.stream = ~s.stream;
        switched = switches.data();
    }
    detail::for_each_range<T>(
        count, [&](std::size_t i) { return tensors[i].size; },
        [&](std::size_t i, std::size_t begin, std::size_t end) {
            const detail::DenormalGuard guard;
            kernel(w, tensors[i].param, tensors[i].*z, switched != nullptr ? switched + i : nullptr, begin, end);
        });
}

void prepare_runtime() {
    kernels::active_kernels();
    get_num_threads();
}

template void run_step<SgdConfig, float>(const SgdConfig&, const SgdTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<SgdConfig, double>(const SgdConfig&, const SgdTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<AdagradConfig, float>(const AdagradConfig&, const AdagradTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<AdagradConfig, double>(const AdagradConfig&, const AdagradTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<RmspropConfig, float>(const RmspropConfig&, const RmspropTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<RmspropConfig, double>(const RmspropConfig&, const RmspropTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<AdamConfig, float>(const AdamConfig&, const AdamTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<AdamConfig, double>(const AdamConfig&, const AdamTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<NadamConfig, float>(const NadamConfig&, const NadamTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<NadamConfig, double>(const NadamConfig&, const NadamTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<RadamConfig, float>(const RadamConfig&, const RadamTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<RadamConfig, double>(const RadamConfig&, const RadamTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<AdamaxConfig, float>(const AdamaxConfig&, const AdamaxTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<AdamaxConfig, double>(const AdamaxConfig&, const AdamaxTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<LionConfig, float>(const LionConfig&, const LionTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<LionConfig, double>(const LionConfig&, const LionTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<AdadeltaConfig, float>(const AdadeltaConfig&, const AdadeltaTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<AdadeltaConfig, double>(const AdadeltaConfig&, const AdadeltaTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<RpropConfig, float>(const RpropConfig&, const RpropTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<RpropConfig, double>(const RpropConfig&, const RpropTensor<double>*, std::size_t,
                                     const Storage*);
template void run_step<AsgdConfig, float>(const AsgdConfig&, const AsgdTensor<float>*, std::size_t,
                                     const Storage*);
template void run_step<AsgdConfig, double>(const AsgdConfig&, const AsgdTensor<double>*, std::size_t,
                                     const Storage*);
template void run_group_step<ScheduleFreeAdamWConfig, float>(const ScheduleFreeAdamWConfig&,
                                                             const kernels::ScheduleFreeSchedule&,
                                                             const ScheduleFreeAdamWTensor<float>*, std::size_t,
                                     const Storage*);
template void run_group_step<ScheduleFreeAdamWConfig, double>(const ScheduleFreeAdamWConfig&,
                                                              const kernels::ScheduleFreeSchedule&,
                                                              const ScheduleFreeAdamWTensor<double>*, std::size_t,
                                     const Storage*);
template void run_group_step<ScheduleFreeSgdConfig, float>(const ScheduleFreeSgdConfig&,
                                                           const kernels::ScheduleFreeSchedule&,
                                                           const ScheduleFreeSgdTensor<float>*, std::size_t,
                                     const Storage*);
template void run_group_step<ScheduleFreeSgdConfig, double>(const ScheduleFreeSgdConfig&,
                                                            const kernels::ScheduleFreeSchedule&,
                                                            const ScheduleFreeSgdTensor<double>*, std::size_t,
                                     const Storage*);
template void run_mode_switch<ScheduleFreeAdamWConfig, float>(double, const ScheduleFreeAdamWTensor<float>*,
                                                              std::size_t,
                                     const Storage*);
template void run_mode_switch<ScheduleFreeAdamWConfig, double>(double, const ScheduleFreeAdamWTensor<double>*,
                                                               std::size_t,
                                     const Storage*);
template void run_mode_switch<ScheduleFreeSgdConfig, float>(double, const ScheduleFreeSgdTensor<float>*,
                                                            std::size_t,
                                     const Storage*);
template void run_mode_switch<ScheduleFreeSgdConfig, double>(double, const ScheduleFreeSgdTensor<double>*,
                                                             std::size_t,
                                     const Storage*);
template void run_step<RowwiseAdagradConfig, float>(const RowwiseAdagradConfig&, const RowwiseAdagradTensor<float>*,
                                                    std::size_t,
                                     const Storage*);
template void run_step<RowwiseAdagradConfig, double>(const RowwiseAdagradConfig&,
                                                     const RowwiseAdagradTensor<double>*, std::size_t,
                                     const Storage*);

}  // namespace detail

void validate(const SgdConfig& c) { rules::validate_config(c); }
void validate(const AdagradConfig& c) { rules::validate_config(c); }
void validate(const RmspropConfig& c) { rules::validate_config(c); }
void validate(const AdamConfig& c) { rules::validate_config(c); }
void validate(const AdafactorConfig& c) { rules::validate_config(c); }
void validate(const NadamConfig& c) { rules::validate_config(c); }
void validate(const RadamConfig& c) { rules::validate_config(c); }
void validate(const AdamaxConfig& c) { rules::validate_config(c); }
void validate(const LionConfig& c) { rules::validate_config(c); }
void validate(const AdadeltaConfig& c) { rules::validate_config(c); }
void validate(const RpropConfig& c) { rules::validate_config(c); }
void validate(const AsgdConfig& c) { rules::validate_config(c); }
void validate(const ScheduleFreeAdamWConfig& c) { rules::validate_config(c); }
void validate(const ScheduleFreeSgdConfig& c) { rules::validate_config(c); }

void sgd_step(const SgdConfig& c, const SgdTensor<float>* t, std::size_t n) { checked_step<SgdConfig, float>(c, t, n); }
void sgd_step(const SgdConfig& c, const SgdTensor<double>* t, std::size_t n) { checked_step<SgdConfig, double>(c, t, n); }
void adagrad_step(const AdagradConfig& c, const AdagradTensor<float>* t, std::size_t n) {
    checked_step<AdagradConfig, float>(c, t, n);
}
void adagrad_step(const AdagradConfig& c, const AdagradTensor<double>* t, std::size_t n) {
    checked_step<AdagradConfig, double>(c, t, n);
}
void rmsprop_step(const RmspropConfig& c, const RmspropTensor<float>* t, std::size_t n) {
    checked_step<RmspropConfig, float>(c, t, n);
}
void rmsprop_step(const RmspropConfig& c, const RmspropTensor<double>* t, std::size_t n) {
    checked_step<RmspropConfig, double>(c, t, n);
}
void adam_step(const AdamConfig& c, const AdamTensor<float>* t, std::size_t n) { checked_step<AdamConfig, float>(c, t, n); }
void adam_step(const AdamConfig& c, const AdamTensor<double>* t, std::size_t n) {
    checked_step<AdamConfig, double>(c, t, n);
}
void nadam_step(const NadamConfig& c, const NadamTensor<float>* t, std::size_t n) {
    checked_step<NadamConfig, float>(c, t, n);
}
void nadam_step(const NadamConfig& c, const NadamTensor<double>* t, std::size_t n) {
    checked_step<NadamConfig, double>(c, t, n);
}
void radam_step(const RadamConfig& c, const RadamTensor<float>* t, std::size_t n) {
    checked_step<RadamConfig, float>(c, t, n);
}
void radam_step(const RadamConfig& c, const RadamTensor<double>* t, std::size_t n) {
    checked_step<RadamConfig, double>(c, t, n);
}
void adamax_step(const AdamaxConfig& c, const AdamaxTensor<float>* t, std::size_t n) {
    checked_step<AdamaxConfig, float>(c, t, n);
}
void adamax_step(const AdamaxConfig& c, const AdamaxTensor<double>* t, std::size_t n) {
    checked_step<AdamaxConfig, double>(c, t, n);
}
void lion_step(const LionConfig& c, const LionTensor<float>* t, std::size_t n) { checked_step<LionConfig, float>(c, t, n); }
void lion_step(const LionConfig& c, const LionTensor<double>* t, std::size_t n) {
    checked_step<LionConfig, double>(c, t, n);
}
void adadelta_step(const AdadeltaConfig& c, const AdadeltaTensor<float>* t, std::size_t n) {
    checked_step<AdadeltaConfig, float>(c, t, n);
}
void adadelta_step(const AdadeltaConfig& c, const AdadeltaTensor<double>* t, std::size_t n) {
    checked_step<AdadeltaConfig, double>(c, t, n);
}
void rprop_step(const RpropConfig& c, const RpropTensor<float>* t, std::size_t n) {
    checked_step<RpropConfig, float>(c, t, n);
}
void rprop_step(const RpropConfig& c, const RpropTensor<double>* t, std::size_t n) {
    checked_step<RpropConfig, double>(c, t, n);
}
void asgd_step(const AsgdConfig& c, const AsgdTensor<float>* t, std::size_t n) {
    checked_step<AsgdConfig, float>(c, t, n);
}
void asgd_step(const AsgdConfig& c, const AsgdTensor<double>* t, std::size_t n) {
    checked_step<AsgdConfig, double>(c, t, n);
}

void schedule_free_adamw_step(const ScheduleFreeAdamWConfig& c, ScheduleFreeGroupState& s,
                              const ScheduleFreeAdamWTensor<float>* t, std::size_t n) {
    checked_group_step<ScheduleFreeAdamWConfig, float>(c, s, t, n);
}
void schedule_free_adamw_step(const ScheduleFreeAdamWConfig& c, ScheduleFreeGroupState& s,
                              const ScheduleFreeAdamWTensor<double>* t, std::size_t n) {
    checked_group_step<ScheduleFreeAdamWConfig, double>(c, s, t, n);
}
void schedule_free_adamw_train(const ScheduleFreeAdamWConfig& c, ScheduleFreeGroupState& s,
                               const ScheduleFreeAdamWTensor<float>* t, std::size_t n) {
    checked_mode_switch<ScheduleFreeAdamWConfig, float>(c, s, t, n, true);
}
void schedule_free_adamw_train(const ScheduleFreeAdamWConfig& c, ScheduleFreeGroupState& s,
                               const ScheduleFreeAdamWTensor<double>* t, std::size_t n) {
    checked_mode_switch<ScheduleFreeAdamWConfig, double>(c, s, t, n, true);
}
void schedule_free_adamw_eval(const ScheduleFreeAdamWConfig& c, ScheduleFreeGroupState& s,
                              const ScheduleFreeAdamWTensor<float>* t, std::size_t n) {
    checked_mode_switch<ScheduleFreeAdamWConfig, float>(c, s, t, n, false);
}
void schedule_free_adamw_eval(const ScheduleFreeAdamWConfig& c, ScheduleFreeGroupState& s,
                              const ScheduleFreeAdamWTensor<double>* t, std::size_t n) {
    checked_mode_switch<ScheduleFreeAdamWConfig, double>(c, s, t, n, false);
}
void schedule_free_sgd_step(const ScheduleFreeSgdConfig& c, ScheduleFreeGroupState& s,
                            const ScheduleFreeSgdTensor<float>* t, std::size_t n) {
    checked_group_step<ScheduleFreeSgdConfig, float>(c, s, t, n);
}
void schedule_free_sgd_step(const ScheduleFreeSgdConfig& c, ScheduleFreeGroupState& s,
                            const ScheduleFreeSgdTensor<double>* t, std::size_t n) {
    checked_group_step<ScheduleFreeSgdConfig, double>(c, s, t, n);
}
void schedule_free_sgd_train(const ScheduleFreeSgdConfig& c, ScheduleFreeGroupState& s,
                             const ScheduleFreeSgdTensor<float>* t, std::size_t n) {
    checked_mode_switch<ScheduleFreeSgdConfig, float>(c, s, t, n, true);
}
void schedule_free_sgd_train(const ScheduleFreeSgdConfig& c, ScheduleFreeGroupState& s,
                             const ScheduleFreeSgdTensor<double>* t, std::size_t n) {
    checked_mode_switch<ScheduleFreeSgdConfig, double>(c, s, t, n, true);
}
void schedule_free_sgd_eval(const ScheduleFreeSgdConfig& c, ScheduleFreeGroupState& s,
                            const ScheduleFreeSgdTensor<float>* t, std::size_t n) {
    checked_mode_switch<ScheduleFreeSgdConfig, float>(c, s, t, n, false);
}
void schedule_free_sgd_eval(const ScheduleFreeSgdConfig& c, ScheduleFreeGroupState& s,
                            const ScheduleFreeSgdTensor<double>* t, std::size_t n) {
    checked_mode_switch<ScheduleFreeSgdConfig, double>(c, s, t, n, false);
}

void adafactor_step(const AdafactorConfig& c, const AdafactorTensor<float>* t, std::size_t n) {
    checked_step<AdafactorConfig, float>(c, t, n);
}
void adafactor_step(const AdafactorConfig& c, const AdafactorTensor<double>* t, std::size_t n) {
    checked_step<AdafactorConfig, double>(c, t, n);
}

// Mixed precision.
void sgd_step(const SgdConfig& c, const SgdTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void adagrad_step(const AdagradConfig& c, const AdagradTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void rmsprop_step(const RmspropConfig& c, const RmspropTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void adam_step(const AdamConfig& c, const AdamTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void adafactor_step(const AdafactorConfig& c, const AdafactorTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void nadam_step(const NadamConfig& c, const NadamTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void radam_step(const RadamConfig& c, const RadamTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void adamax_step(const AdamaxConfig& c, const AdamaxTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void lion_step(const LionConfig& c, const LionTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void adadelta_step(const AdadeltaConfig& c, const AdadeltaTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void rprop_step(const RpropConfig& c, const RpropTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void asgd_step(const AsgdConfig& c, const AsgdTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_step(c, t, s, n);
}
void schedule_free_adamw_step(const ScheduleFreeAdamWConfig& c, ScheduleFreeGroupState& g,
                              const ScheduleFreeAdamWTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_group_step(c, g, t, s, n);
}
void schedule_free_sgd_step(const ScheduleFreeSgdConfig& c, ScheduleFreeGroupState& g,
                            const ScheduleFreeSgdTensor<float>* t, const Storage* s, std::size_t n) {
    checked_stored_group_step(c, g, t, s, n);
}

}  // namespace lrcore
