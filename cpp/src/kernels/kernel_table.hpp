// A kernel table: one function per update rule and element type, all built
// for one instruction set. Dispatch picks a table once; the step drivers call
// through it on chunks of tensors.
#pragma once

#include <cstddef>

#include "kernels/step_constants.hpp"
#include "lrcore/tensors.hpp"

namespace lrcore::kernels {

/// Adafactor's passes (kernels/factored_rules.hpp): not one element-wise
/// kernel but three passes over a tensor (statistics, the update's norm, the
/// update), each for a block of rows of a matrix or a segment of a vector.
template <class T>
struct AdafactorKernels {
    void (*matrix_statistics)(const AdafactorConstants<T>&, const T* param, const T* grad, std::size_t rows,
                              std::size_t columns, T* column_sums, T* row_grad_sums, T* row_param_sums);
    void (*matrix_update_norm)(const AdafactorConstants<T>&, const T* grad, const T* row_var, const T* col_var,
                               T row_var_mean, std::size_t rows, std::size_t columns, T* row_update_sums);
    void (*matrix_apply)(const AdafactorConstants<T>&, T* param, const T* grad, const T* row_var, const T* col_var,
                         T row_var_mean, T neg_step, std::size_t rows, std::size_t columns);
    void (*vector_statistics)(const AdafactorConstants<T>&, const T* param, const T* grad, T* variance,
                              std::size_t count, T* param_sum);
    void (*vector_update_norm)(const AdafactorConstants<T>&, const T* grad, const T* variance, std::size_t count,
                               T* update_sum);
    void (*vector_apply)(const AdafactorConstants<T>&, T* param, const T* grad, const T* variance, T neg_step,
                         std::size_t count);
};

template <class T>
struct TypedKernels {
    void (*sgd)(const SgdConstants<T>&, const SgdTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*adagrad)(const AdagradConstants<T>&, const AdagradTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*rmsprop)(const RmspropConstants<T>&, const RmspropTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*adam)(const AdamConstants<T>&, const AdamTensor<T>&, const Storage*, std::size_t, std::size_t);
    AdafactorKernels<T> adafactor;
    void (*nadam)(const NadamConstants<T>&, const NadamTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*radam)(const RadamConstants<T>&, const RadamTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*adamax)(const AdamaxConstants<T>&, const AdamaxTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*lion)(const LionConstants<T>&, const LionTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*adadelta)(const AdadeltaConstants<T>&, const AdadeltaTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*rprop)(const RpropConstants<T>&, const RpropTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*asgd)(const AsgdConstants<T>&, const AsgdTensor<T>&, const Storage*, std::size_t, std::size_t);
    void (*schedule_free_adamw)(const ScheduleFreeAdamWConstants<T>&, const ScheduleFreeAdamWTensor<T>&, const Storage*, std::size_t,
                                std::size_t);
    void (*schedule_free_sgd)(const ScheduleFreeSgdConstants<T>&, const ScheduleFreeSgdTensor<T>&, const Storage*, std::size_t,
                              std::size_t);
    // param[i] <- lerp(param[i], toward[i], weight) for i in [begin, end): the schedule-free mode switch.
    void (*interpolate)(const LerpConstants<T>&, T* param, T* toward, const Storage*, std::size_t begin,
                        std::size_t end);
};

struct KernelTable {
    const char* name;
    TypedKernels<float> f32;
    TypedKernels<double> f64;

    template <class T>
    const TypedKernels<T>& of() const {
        if constexpr (sizeof(T) == sizeof(float)) {
            return f32;
        } else {
            return f64;
        }
    }
};

// One accessor per instruction set, each defined in cpp/src/isa/<name>.cpp.
const KernelTable& baseline_kernels();
#if defined(LRCORE_HAVE_X86_VARIANTS)
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();
#endif

}  // namespace lrcore::kernels

// Included only by the per-ISA translation units, after their lane header.
// The entries of TypedKernels<T>, in its member order: one line per rule.
#define LRCORE_TYPED_KERNELS(Lane, T)                                                           \
    {                                                                                           \
        &sgd_chunk<Lane, T>, &adagrad_chunk<Lane, T>, &rmsprop_chunk<Lane, T>,                  \
        &adam_chunk<Lane, T>,                                                                   \
        adafactor_kernels<Lane, T>(),                                                           \
        &nadam_chunk<Lane, T>, &radam_chunk<Lane, T>, &adamax_chunk<Lane, T>,                   \
        &lion_chunk<Lane, T>,                                                                   \
        &adadelta_chunk<Lane, T>, &rprop_chunk<Lane, T>, &asgd_chunk<Lane, T>,                  \
        &schedule_free_adamw_chunk<Lane, T>, &schedule_free_sgd_chunk<Lane, T>,                 \
        &interpolate_chunk<Lane, T>,                                                            \
    }

#define LRCORE_DEFINE_KERNEL_TABLE(function_name, isa_name, Lane)                                  \
    const ::lrcore::kernels::KernelTable& function_name() {                                       \
        static const ::lrcore::kernels::KernelTable table{                                        \
            isa_name, LRCORE_TYPED_KERNELS(Lane, float), LRCORE_TYPED_KERNELS(Lane, double)};      \
        return table;                                                                             \
    }
