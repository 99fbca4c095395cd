// The row kernels' table: update rules applied to whole rows of a table, for
// row-sparse gradients (and row-wise AdaGrad's dense ones). Built once per
// instruction set like the element-wise table (kernels/row_rules.hpp holds the
// kernels); sparse_rows.cpp picks the table that matches the active kernel table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/step_constants.hpp"
#include "lrcore/tensors.hpp"

namespace lrcore::kernels {

/// A gradient as the row kernels read it: `count` distinct rows of
/// `row_length` elements. Row u is table row rows[u]; its gradient is the sum,
/// in this order, of the value rows positions[starts[u]] .. positions[starts[u + 1] - 1]
/// of `values`. A dense gradient has rows == nullptr: row u is table row u and
/// its gradient is values[u * row_length ...].
template <class T>
struct RowGradient {
    const T* values = nullptr;
    const std::int64_t* rows = nullptr;
    const std::size_t* starts = nullptr;
    const std::size_t* positions = nullptr;
    std::size_t count = 0;
    std::size_t row_length = 0;
};

template <class T>
struct TypedRowKernels {
    void (*sgd)(const SgdConstants<T>&, const SgdTensor<T>&, const RowGradient<T>&, std::size_t, std::size_t);
    void (*adagrad)(const AdagradConstants<T>&, const AdagradTensor<T>&, const RowGradient<T>&, std::size_t,
                    std::size_t);
    void (*sparse_adam)(const SparseAdamConstants<T>&, const SparseAdamTensor<T>&, const RowGradient<T>&,
                        std::size_t, std::size_t);
    void (*rowwise_adagrad)(const RowwiseAdagradConstants<T>&, const RowwiseAdagradTensor<T>&,
                            const RowGradient<T>&, std::size_t, std::size_t);
};

struct RowKernelTable {
    const char* name;
    TypedRowKernels<float> f32;
    TypedRowKernels<double> f64;

    template <class T>
    const TypedRowKernels<T>& of() const {
        if constexpr (sizeof(T) == sizeof(float)) {
            return f32;
        } else {
            return f64;
        }
    }
};

// One accessor per instruction set, defined next to the kernel tables in cpp/src/isa/<name>.cpp.
const RowKernelTable& baseline_row_kernels();
#if defined(LRCORE_HAVE_X86_VARIANTS)
const RowKernelTable& avx2_row_kernels();
const RowKernelTable& avx512_row_kernels();
#endif

}  // namespace lrcore::kernels
