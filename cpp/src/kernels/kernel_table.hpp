// A kernel table: one function per update rule and element type, all built
// for one instruction set. Dispatch picks a table once; the step drivers call
// through it on chunks of tensors.
#pragma once

#include <cstddef>

#include "kernels/step_constants.hpp"
#include "lrcore/tensors.hpp"

namespace lrcore::kernels {

template <class T>
struct TypedKernels {
    void (*sgd)(const SgdConstants<T>&, const SgdTensor<T>&, std::size_t, std::size_t);
    void (*adagrad)(const AdagradConstants<T>&, const AdagradTensor<T>&, std::size_t, std::size_t);
    void (*rmsprop)(const RmspropConstants<T>&, const RmspropTensor<T>&, std::size_t, std::size_t);
    void (*adam)(const AdamConstants<T>&, const AdamTensor<T>&, std::size_t, std::size_t);
    void (*nadam)(const NadamConstants<T>&, const NadamTensor<T>&, std::size_t, std::size_t);
    void (*radam)(const RadamConstants<T>&, const RadamTensor<T>&, std::size_t, std::size_t);
    void (*adamax)(const AdamaxConstants<T>&, const AdamaxTensor<T>&, std::size_t, std::size_t);
    void (*lion)(const LionConstants<T>&, const LionTensor<T>&, std::size_t, std::size_t);
    void (*schedule_free_adamw)(const ScheduleFreeAdamWConstants<T>&, const ScheduleFreeAdamWTensor<T>&, std::size_t,
                                std::size_t);
    void (*schedule_free_sgd)(const ScheduleFreeSgdConstants<T>&, const ScheduleFreeSgdTensor<T>&, std::size_t,
                              std::size_t);
    // param[i] <- lerp(param[i], end[i], weight) for i in [0, count): the schedule-free mode switch.
    void (*interpolate)(const LerpConstants<T>&, T* param, const T* end, std::size_t count);
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
        &nadam_chunk<Lane, T>, &radam_chunk<Lane, T>, &adamax_chunk<Lane, T>,                   \
        &lion_chunk<Lane, T>,                                                                   \
        &schedule_free_adamw_chunk<Lane, T>, &schedule_free_sgd_chunk<Lane, T>,                 \
        &interpolate_chunk<Lane, T>,                                                            \
    }

#define LRCORE_DEFINE_KERNEL_TABLE(function_name, isa_name, Lane)                                  \
    const ::lrcore::kernels::KernelTable& function_name() {                                       \
        static const ::lrcore::kernels::KernelTable table{                                        \
            isa_name, LRCORE_TYPED_KERNELS(Lane, float), LRCORE_TYPED_KERNELS(Lane, double)};      \
        return table;                                                                             \
    }
