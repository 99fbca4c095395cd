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
    void (*adadelta)(const AdadeltaConstants<T>&, const AdadeltaTensor<T>&, std::size_t, std::size_t);
    void (*rprop)(const RpropConstants<T>&, const RpropTensor<T>&, std::size_t, std::size_t);
    void (*asgd)(const AsgdConstants<T>&, const AsgdTensor<T>&, std::size_t, std::size_t);
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
             &adam_chunk<Lane, float>, &nadam_chunk<Lane, float>, &radam_chunk<Lane, float>,      \
             &adamax_chunk<Lane, float>, &lion_chunk<Lane, float>,                                \
             &adadelta_chunk<Lane, float>, &rprop_chunk<Lane, float>, &asgd_chunk<Lane, float>},  \
            {&sgd_chunk<Lane, double>, &adagrad_chunk<Lane, double>,                             \
             &rmsprop_chunk<Lane, double>, &adam_chunk<Lane, double>, &nadam_chunk<Lane, double>, \
             &radam_chunk<Lane, double>, &adamax_chunk<Lane, double>, &lion_chunk<Lane, double>,  \
             &adadelta_chunk<Lane, double>, &rprop_chunk<Lane, double>,                           \
             &asgd_chunk<Lane, double>}};                                                         \
        return table;                                                                             \
    }
