// Row-sparse gradients and row-wise rules: the row step drivers
// (sparse_rows.hpp) and their public entry points (lrcore/optimizers.hpp).

#include "sparse_rows.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "chunking.hpp"
#include "dispatch.hpp"
#include "kernels/step_constants.hpp"
#include "lrcore/optimizers.hpp"
#include "thread_pool.hpp"

namespace lrcore {
namespace {

/// The row kernel table built for the same instruction set as the active kernel table.
const kernels::RowKernelTable& active_row_kernels() {
    const char* isa = kernels::active_kernels().name;
#if defined(LRCORE_HAVE_X86_VARIANTS)
    if (std::strcmp(isa, "avx512") == 0) return kernels::avx512_row_kernels();
    if (std::strcmp(isa, "avx2") == 0) return kernels::avx2_row_kernels();
#else
    (void)isa;
#endif
    return kernels::baseline_row_kernels();
}

/// Which row kernel and constants each rule uses.
template <class Config>
struct RowKernelOf;

template <>
struct RowKernelOf<SgdConfig> {
    template <class T>
    static auto of(const kernels::TypedRowKernels<T>& k) { return k.sgd; }
    template <class T>
    static kernels::SgdConstants<T> constants(const SgdConfig& c, const SgdTensor<T>&) {
        return kernels::SgdConstants<T>::make(c);
    }
};
template <>
struct RowKernelOf<AdagradConfig> {
    template <class T>
    static auto of(const kernels::TypedRowKernels<T>& k) { return k.adagrad; }
    template <class T>
    static kernels::AdagradConstants<T> constants(const AdagradConfig& c, const AdagradTensor<T>& t) {
        return kernels::AdagradConstants<T>::make(c, t.step);
    }
};
template <>
struct RowKernelOf<SparseAdamConfig> {
    template <class T>
    static auto of(const kernels::TypedRowKernels<T>& k) { return k.sparse_adam; }
    template <class T>
    static kernels::SparseAdamConstants<T> constants(const SparseAdamConfig& c, const SparseAdamTensor<T>& t) {
        return kernels::SparseAdamConstants<T>::make(c, t.step);
    }
};
template <>
struct RowKernelOf<RowwiseAdagradConfig> {
    template <class T>
    static auto of(const kernels::TypedRowKernels<T>& k) { return k.rowwise_adagrad; }
    template <class T>
    static kernels::RowwiseAdagradConstants<T> constants(const RowwiseAdagradConfig& c,
                                                          const RowwiseAdagradTensor<T>&) {
        return kernels::RowwiseAdagradConstants<T>::make(c);
    }
};

std::string tensor_label(std::size_t index) { return "tensor " + std::to_string(index); }

/// The checks every row entry point makes of a table: the configuration, the
/// pointers, the step number.
template <class Config, class Tensor>
void check_table(const Config& config, const Tensor& t, std::size_t index) {
    using Rule = rules::Rule<Config>;
    using T = std::remove_pointer_t<decltype(Tensor::param)>;
    if (t.size == 0) return;
    if (t.param == nullptr) throw std::invalid_argument(tensor_label(index) + ": param must not be null");
    for (const auto& state : Rule::states) {
        if (state.needed_by(config) && t.*(state.template field<T>()) == nullptr) {
            throw std::invalid_argument(tensor_label(index) + ": " + state.name +
                                        " must not be null for this configuration");
        }
    }
    if constexpr (Rule::has_step) {
        if (t.step < 1) {
            throw std::invalid_argument(tensor_label(index) + ": step must be >= 1, got " + std::to_string(t.step));
        }
    }
}

/// The checks and the coalescing of a public sparse entry point, then the step.
template <class Config, class T>
void checked_sparse_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>& table,
                         const SparseRows<T>& grad) {
    rules::validate_config(config);
    rules::Gradients<Config>::check_sparse(config);
    check_table(config, table, 0);
    if (grad.row_length == 0 || table.size % grad.row_length != 0) {
        throw std::invalid_argument("grad.row_length must be >= 1 and divide the table's size");
    }
    if constexpr (rules::Gradients<Config>::row_wise) {
        if (table.row_length != grad.row_length) {
            throw std::invalid_argument("grad.row_length must equal the table's row_length");
        }
    }
    if (grad.count == 0) return;
    if (grad.indices == nullptr || grad.values == nullptr) {
        throw std::invalid_argument("grad.indices and grad.values must not be null");
    }
    const std::size_t rows = table.size / grad.row_length;
    const std::size_t bad = detail::first_out_of_range(grad.indices, grad.count, rows);
    if (bad != grad.count) {
        throw std::out_of_range("grad.indices[" + std::to_string(bad) + "] = " + std::to_string(grad.indices[bad]) +
                                " is out of range for a table of " + std::to_string(rows) + " rows");
    }
    thread_local detail::CoalescedIndex index;
    detail::radix_coalesce(grad.indices, grad.count, rows, index);
    const kernels::RowGradient<T> rows_gradient = detail::row_gradient(grad.values, grad.row_length, index);
    detail::run_row_step<Config, T>(config, &table, &rows_gradient, 1);
}

template <class T>
void checked_rowwise_step(const RowwiseAdagradConfig& config, const RowwiseAdagradTensor<T>* tensors,
                          std::size_t count) {
    rules::validate_config(config);
    for (std::size_t i = 0; i < count; ++i) {
        const RowwiseAdagradTensor<T>& t = tensors[i];
        check_table(config, t, i);
        if (t.size == 0) continue;
        if (t.grad == nullptr) throw std::invalid_argument(tensor_label(i) + ": grad must not be null");
        if (t.row_length == 0 || t.size % t.row_length != 0) {
            throw std::invalid_argument(tensor_label(i) + ": row_length must be >= 1 and divide size");
        }
    }
    detail::run_row_wise_step<RowwiseAdagradConfig, T>(config, tensors, count);
}

}  // namespace

namespace detail {

template <class Config, class T>
void run_row_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>* tensors,
                  const kernels::RowGradient<T>* grads, std::size_t count) {
    using Of = RowKernelOf<Config>;
    using Constants = decltype(Of::template constants<T>(config, tensors[0]));
    const auto kernel = Of::of(active_row_kernels().of<T>());
    thread_local std::vector<Constants> constants;
    constants.clear();
    std::size_t elements = 0;
    for (std::size_t i = 0; i < count; ++i) {
        constants.push_back(Of::template constants<T>(config, tensors[i]));
        elements += grads[i].count * grads[i].row_length;
    }
    if (elements == 0) return;
    if (!worth_parallel<T>(elements)) {
        const DenormalGuard guard;
        for (std::size_t i = 0; i < count; ++i) {
            if (grads[i].count != 0 && grads[i].row_length != 0) kernel(constants[i], tensors[i], grads[i], 0, grads[i].count);
        }
        return;
    }
    // Chunks of whole rows, about chunk_bytes of each gradient.
    thread_local std::vector<Chunk> chunks;
    chunks.clear();
    for (std::size_t i = 0; i < count; ++i) {
        if (grads[i].row_length == 0) continue;
        const std::size_t rows_per_chunk = std::max<std::size_t>(1, chunk_bytes / (grads[i].row_length * sizeof(T)));
        for (std::size_t begin = 0; begin < grads[i].count; begin += rows_per_chunk) {
            chunks.push_back({i, begin, std::min(grads[i].count, begin + rows_per_chunk)});
        }
    }
    // The pool's threads must reach the calling thread's vectors through pointers:
    // named inside the task, a thread_local would be the worker's own.
    const Chunk* data = chunks.data();
    const Constants* constants_of = constants.data();
    auto task = [&](std::size_t c) {
        const DenormalGuard guard;
        const Chunk& chunk = data[c];
        kernel(constants_of[chunk.tensor], tensors[chunk.tensor], grads[chunk.tensor], chunk.begin, chunk.end);
    };
    parallel_for(chunks.size(), TaskRef(task));
}

template <class Config, class T>
void run_row_wise_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>* tensors,
                       std::size_t count) {
    thread_local std::vector<kernels::RowGradient<T>> grads;
    grads.clear();
    for (std::size_t i = 0; i < count; ++i) {
        kernels::RowGradient<T> g;
        g.values = tensors[i].grad;
        g.row_length = tensors[i].row_length;
        g.count = tensors[i].size == 0 ? 0 : tensors[i].size / tensors[i].row_length;
        grads.push_back(g);
    }
    run_row_step<Config, T>(config, tensors, grads.data(), count);
}

template void run_row_step<SgdConfig, float>(const SgdConfig&, const SgdTensor<float>*,
                                             const kernels::RowGradient<float>*, std::size_t);
template void run_row_step<SgdConfig, double>(const SgdConfig&, const SgdTensor<double>*,
                                              const kernels::RowGradient<double>*, std::size_t);
template void run_row_step<AdagradConfig, float>(const AdagradConfig&, const AdagradTensor<float>*,
                                                 const kernels::RowGradient<float>*, std::size_t);
template void run_row_step<AdagradConfig, double>(const AdagradConfig&, const AdagradTensor<double>*,
                                                  const kernels::RowGradient<double>*, std::size_t);
template void run_row_step<SparseAdamConfig, float>(const SparseAdamConfig&, const SparseAdamTensor<float>*,
                                                    const kernels::RowGradient<float>*, std::size_t);
template void run_row_step<SparseAdamConfig, double>(const SparseAdamConfig&, const SparseAdamTensor<double>*,
                                                     const kernels::RowGradient<double>*, std::size_t);
template void run_row_step<RowwiseAdagradConfig, float>(const RowwiseAdagradConfig&,
                                                        const RowwiseAdagradTensor<float>*,
                                                        const kernels::RowGradient<float>*, std::size_t);
template void run_row_step<RowwiseAdagradConfig, double>(const RowwiseAdagradConfig&,
                                                         const RowwiseAdagradTensor<double>*,
                                                         const kernels::RowGradient<double>*, std::size_t);
template void run_row_wise_step<RowwiseAdagradConfig, float>(const RowwiseAdagradConfig&,
                                                             const RowwiseAdagradTensor<float>*, std::size_t);
template void run_row_wise_step<RowwiseAdagradConfig, double>(const RowwiseAdagradConfig&,
                                                              const RowwiseAdagradTensor<double>*, std::size_t);

}  // namespace detail

void validate(const SparseAdamConfig& c) { rules::validate_config(c); }
void validate(const RowwiseAdagradConfig& c) { rules::validate_config(c); }

void sgd_step(const SgdConfig& c, const SgdTensor<float>& t, const SparseRows<float>& g) {
    checked_sparse_step<SgdConfig, float>(c, t, g);
}
void sgd_step(const SgdConfig& c, const SgdTensor<double>& t, const SparseRows<double>& g) {
    checked_sparse_step<SgdConfig, double>(c, t, g);
}
void adagrad_step(const AdagradConfig& c, const AdagradTensor<float>& t, const SparseRows<float>& g) {
    checked_sparse_step<AdagradConfig, float>(c, t, g);
}
void adagrad_step(const AdagradConfig& c, const AdagradTensor<double>& t, const SparseRows<double>& g) {
    checked_sparse_step<AdagradConfig, double>(c, t, g);
}
void sparse_adam_step(const SparseAdamConfig& c, const SparseAdamTensor<float>& t, const SparseRows<float>& g) {
    checked_sparse_step<SparseAdamConfig, float>(c, t, g);
}
void sparse_adam_step(const SparseAdamConfig& c, const SparseAdamTensor<double>& t, const SparseRows<double>& g) {
    checked_sparse_step<SparseAdamConfig, double>(c, t, g);
}
void rowwise_adagrad_step(const RowwiseAdagradConfig& c, const RowwiseAdagradTensor<float>* t, std::size_t n) {
    checked_rowwise_step<float>(c, t, n);
}
void rowwise_adagrad_step(const RowwiseAdagradConfig& c, const RowwiseAdagradTensor<double>* t, std::size_t n) {
    checked_rowwise_step<double>(c, t, n);
}
void rowwise_adagrad_step(const RowwiseAdagradConfig& c, const RowwiseAdagradTensor<float>& t,
                          const SparseRows<float>& g) {
    checked_sparse_step<RowwiseAdagradConfig, float>(c, t, g);
}
void rowwise_adagrad_step(const RowwiseAdagradConfig& c, const RowwiseAdagradTensor<double>& t,
                          const SparseRows<double>& g) {
    checked_sparse_step<RowwiseAdagradConfig, double>(c, t, g);
}

}  // namespace lrcore
