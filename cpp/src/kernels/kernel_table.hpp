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
#define LRCORE_DEFINE_KERNEL_TABLE(function_name, isa_name, Lane)                                  \
    const ::lrcore::kernels::KernelTable& function_name() {                                       \
        static const ::lrcore::kernels::KernelTable table{                                        \
            isa_name,                                                                             \
            {&sgd_chunk<Lane, float>, &adagrad_chunk<Lane, float>, &rmsprop_chunk<Lane, float>,  \
             &adam_chunk<Lane, float>, &schedule_free_adamw_chunk<Lane, float>,                  \
             &schedule_free_sgd_chunk<Lane, float>, &interpolate_chunk<Lane, float>},            \
            {&sgd_chunk<Lane, double>, &adagrad_chunk<Lane, double>,                             \
             &rmsprop_chunk<Lane, double>, &adam_chunk<Lane, double>,                            \
             &schedule_free_adamw_chunk<Lane, double>, &schedule_free_sgd_chunk<Lane, double>,   \
             &interpolate_chunk<Lane, double>}};                                                  \
        return table;                                                                             \
    }
