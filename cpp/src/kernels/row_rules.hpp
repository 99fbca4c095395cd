// The row kernels (kernels/row_table.hpp), written once over a lane type like
// the element-wise rules, whose helpers they use: included by each per-ISA
// translation unit after kernels/update_rules.hpp.
//
// Each kernel walks distinct rows [begin, end) of a RowGradient; along a row
// it has the element-wise kernels' shape (for_each_lane). A row's gradient is
// gathered in registers as it is read: the first value row, plus each
// duplicate's in the order given, so coalescing never writes a summed copy.
// The operations and their order follow torch.optim's sparse paths
// (Adagrad's and SGD's sparse branches, SparseAdam); the formulas are stated
// with the public entry points in lrcore/optimizers.hpp.
//
// Row-wise AdaGrad reduces each row to the mean of its squared gradient. For
// the result to be the same on every instruction set, element i of a row
// always goes to accumulator i % A, A = 64 bytes of T (16 floats, 8 doubles)
// whatever the vector width (SSE2 holds them in 4 registers, AVX2 in 2,
// AVX-512 in 1, the scalar lane in A scalars); each accumulator adds its
// elements in order from +0, and the A are then added in index order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/row_table.hpp"

namespace lrcore::kernels {
namespace {

/// Where one distinct row's gradient comes from.
template <class T>
struct RowSource {
    const T* first;                 // the first (or only) value row
    const T* values;
    const std::size_t* positions;   // further value rows: positions[more_begin .. more_end)
    std::size_t more_begin;
    std::size_t more_end;
    std::size_t row_length;
};

/// The row's gradient at element i: its value rows summed in the order given.
template <class V, class T>
inline typename V::reg gather(const RowSource<T>& s, std::size_t i) {
    auto g = V::load(s.first + i);
    for (std::size_t k = s.more_begin; k < s.more_end; ++k) g = V::add(g, V::load(s.values + s.positions[k] * s.row_length + i));
    return g;
}

/// How many distinct rows ahead the row loop prefetches. The rows of a large
/// table are scattered: each is a TLB miss and a few cache misses, and a core
/// working through them one after the other waits for each in turn. Asking
/// for the rows a few places ahead keeps several misses in flight (measured on
/// the embedding workload: 2^20 x 64 float32, 16384 Zipf indices).
constexpr std::size_t prefetch_distance = 8;

/// Asks for the cache lines of `bytes` bytes at `p`, to be read (Write false)
/// or written (Write true) soon.
template <bool Write>
inline void prefetch_lines(const void* p, std::size_t bytes) {
#if defined(__GNUC__) || defined(__clang__)
    const char* c = static_cast<const char*>(p);
    for (std::size_t offset = 0; offset < bytes; offset += 64) {
        __builtin_prefetch(c + offset, Write ? 1 : 0, 3);
        // GCC's -O3 vectoriser turns this loop into vector code and drops the
        // prefetches from it; an (empty) asm statement keeps the loop scalar.
        __asm__ volatile("" : : "r"(c + offset));
    }
    if (bytes != 0) __builtin_prefetch(c + bytes - 1, Write ? 1 : 0, 3);  // the last line, when p is not line-aligned
#else
    (void)p;
    (void)bytes;
#endif
}

/// Runs body(lane, i) over [0, count) with whole vectors from the row's start
/// (unaligned), then a scalar tail. Unlike for_each_lane, no scalar prologue
/// up to an aligned address: a numpy table starts 16 bytes into a page, so
/// every row would spend most of a short row (12 of 64 floats on AVX-512) in
/// it, and scalar division and square roots cost more than the loads that
/// straddle two cache lines. Scalar and vector lanes round alike, so the
/// result is the same either way.
template <template <class> class Lane, class T, class Body>
inline void for_each_lane_of_row(std::size_t count, Body&& body) {
    using V = Lane<T>;
    constexpr std::size_t width = V::width;
    std::size_t i = 0;
    for (; i + 2 * width <= count; i += 2 * width) {
        body(V{}, i);
        body(V{}, i + width);
    }
    for (; i + width <= count; i += width) body(V{}, i);
    for (; i < count; ++i) body(ScalarLane<T>{}, i);
}

/// Calls body(table_row, source) for the distinct rows [begin, end) of g, and
/// prefetch(table_row) for the row prefetch_distance places ahead, whose first
/// value row it prefetches itself (a row-sparse gradient only: a dense one is
/// walked in order, which the hardware prefetches).
template <class T, class Body, class Prefetch>
inline void for_each_row(const RowGradient<T>& g, std::size_t begin, std::size_t end, Prefetch&& prefetch,
                         Body&& body) {
    const std::size_t length = g.row_length;
    auto ahead = [&](std::size_t u) {
        prefetch_lines<false>(g.values + g.positions[g.starts[u]] * length, length * sizeof(T));
        prefetch(static_cast<std::size_t>(g.rows[u]));
    };
    if (g.rows != nullptr) {
        for (std::size_t u = begin; u < std::min(end, begin + prefetch_distance); ++u) ahead(u);
    }
    for (std::size_t u = begin; u < end; ++u) {
        if (g.rows != nullptr && u + prefetch_distance < end) ahead(u + prefetch_distance);
        if (g.rows == nullptr) {
            body(u, RowSource<T>{g.values + u * length, g.values, nullptr, 0, 0, length});
        } else {
            const std::size_t k = g.starts[u];
            body(static_cast<std::size_t>(g.rows[u]),
                 RowSource<T>{g.values + g.positions[k] * length, g.values, g.positions, k + 1, g.starts[u + 1], length});
        }
    }
}

// ---------------------------------------------------------- SGD (sparse) --
template <template <class> class Lane, class T>
void sgd_rows(const SgdConstants<T>& c, const SgdTensor<T>& t, const RowGradient<T>& g, std::size_t begin,
              std::size_t end) {
    const std::size_t row_bytes = g.row_length * sizeof(T);
    auto prefetch = [&](std::size_t row) { prefetch_lines<true>(t.param + row * g.row_length, row_bytes); };
    select(c.grad_scale.active, [&](auto scales) {
        for_each_row(g, begin, end, prefetch, [&](std::size_t row, const RowSource<T>& s) {
            T* __restrict param = t.param + row * g.row_length;
            for_each_lane_of_row<Lane, T>(g.row_length, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
                using V = decltype(lane);
                const auto p = V::load(param + i);
                const auto grad = signed_gradient<V>(gather<V>(s, i), c.grad_scale, c.grad_sign, scales);
                V::store(param + i, V::add(p, V::mul(V::broadcast(c.neg_lr), grad)));
            });
        });
    });
}

// ------------------------------------------------------ AdaGrad (sparse) --
template <template <class> class Lane, class T>
void adagrad_rows(const AdagradConstants<T>& c, const AdagradTensor<T>& t, const RowGradient<T>& g,
                  std::size_t begin, std::size_t end) {
    const std::size_t row_bytes = g.row_length * sizeof(T);
    auto prefetch = [&](std::size_t row) {
        prefetch_lines<true>(t.param + row * g.row_length, row_bytes);
        prefetch_lines<true>(t.sum + row * g.row_length, row_bytes);
    };
    select(c.grad_scale.active, [&](auto scales) {
        for_each_row(g, begin, end, prefetch, [&](std::size_t row, const RowSource<T>& s) {
            T* __restrict param = t.param + row * g.row_length;
            T* __restrict sum = t.sum + row * g.row_length;
            for_each_lane_of_row<Lane, T>(g.row_length, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
                using V = decltype(lane);
                const auto p = V::load(param + i);
                const auto sum_loaded = V::load(sum + i);
                const auto grad = signed_gradient<V>(gather<V>(s, i), c.grad_scale, c.grad_sign, scales);
                const auto new_sum = V::add(sum_loaded, V::mul(grad, grad));
                V::store(sum + i, new_sum);
                const auto std_dev = V::add(V::sqrt(new_sum), V::broadcast(c.eps));
                V::store(param + i, V::add(p, V::mul(V::broadcast(c.neg_clr), V::div(grad, std_dev))));
            });
        });
    });
}

// ------------------------------------------------------------ SparseAdam --
template <template <class> class Lane, class T>
void sparse_adam_rows(const SparseAdamConstants<T>& c, const SparseAdamTensor<T>& t, const RowGradient<T>& g,
                      std::size_t begin, std::size_t end) {
    const std::size_t row_bytes = g.row_length * sizeof(T);
    auto prefetch = [&](std::size_t row) {
        prefetch_lines<true>(t.param + row * g.row_length, row_bytes);
        prefetch_lines<true>(t.exp_avg + row * g.row_length, row_bytes);
        prefetch_lines<true>(t.exp_avg_sq + row * g.row_length, row_bytes);
    };
    select(c.grad_scale.active, [&](auto scales) {
        for_each_row(g, begin, end, prefetch, [&](std::size_t row, const RowSource<T>& s) {
            T* __restrict param = t.param + row * g.row_length;
            T* __restrict exp_avg = t.exp_avg + row * g.row_length;
            T* __restrict exp_avg_sq = t.exp_avg_sq + row * g.row_length;
            for_each_lane_of_row<Lane, T>(g.row_length, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
                using V = decltype(lane);
                const auto p = V::load(param + i);
                const auto m = V::load(exp_avg + i);
                const auto v = V::load(exp_avg_sq + i);
                const auto grad = signed_gradient<V>(gather<V>(s, i), c.grad_scale, c.grad_sign, scales);
                // m + (g - m)(1 - beta1), as torch adds the update to the old moment
                const auto new_m = V::add(m, V::mul(V::sub(grad, m), V::broadcast(c.one_minus_beta1)));
                const auto new_v = V::add(v, V::mul(V::sub(V::mul(grad, grad), v), V::broadcast(c.one_minus_beta2)));
                V::store(exp_avg + i, new_m);
                V::store(exp_avg_sq + i, new_v);
                const auto denom = V::add(V::sqrt(new_v), V::broadcast(c.eps));
                V::store(param + i, V::add(p, V::mul(V::broadcast(c.neg_step_size), V::div(new_m, denom))));
            });
        });
    });
}

// ------------------------------------------------------ row-wise AdaGrad --
template <template <class> class Lane, class T>
void rowwise_adagrad_rows(const RowwiseAdagradConstants<T>& c, const RowwiseAdagradTensor<T>& t,
                          const RowGradient<T>& g, std::size_t begin, std::size_t end) {
    using V = Lane<T>;
    constexpr std::size_t accumulators = 64 / sizeof(T);
    constexpr std::size_t registers = accumulators / V::width;
    static_assert(accumulators % V::width == 0, "the accumulators must fill whole vectors");
    const std::size_t length = g.row_length;
    const T row_length = static_cast<T>(length);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        // The gradient a kernel uses: scaled, signed, plus the L2 term.
        auto gradient = [&](auto lane, const RowSource<T>& s, const T* param, std::size_t i) LRCORE_ALWAYS_INLINE {
            using L = decltype(lane);
            auto grad = signed_gradient<L>(gather<L>(s, i), c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) grad = L::add(grad, L::mul(L::broadcast(c.weight_decay), L::load(param + i)));
            return grad;
        };
        auto prefetch = [&](std::size_t row) {
            prefetch_lines<true>(t.param + row * length, length * sizeof(T));
            prefetch_lines<true>(t.sum + row, sizeof(T));
        };
        for_each_row(g, begin, end, prefetch, [&](std::size_t row, const RowSource<T>& s) {
            T* __restrict param = t.param + row * length;
            typename V::reg partial[registers];
            for (std::size_t r = 0; r < registers; ++r) partial[r] = V::broadcast(T(0));
            std::size_t i = 0;
            for (; i + accumulators <= length; i += accumulators) {
                for (std::size_t r = 0; r < registers; ++r) {
                    const auto grad = gradient(V{}, s, param, i + r * V::width);
                    partial[r] = V::add(partial[r], V::mul(grad, grad));
                }
            }
            T sums[accumulators];
            for (std::size_t r = 0; r < registers; ++r) V::store(sums + r * V::width, partial[r]);
            for (; i < length; ++i) {
                const T grad = gradient(ScalarLane<T>{}, s, param, i);
                sums[i % accumulators] = sums[i % accumulators] + grad * grad;
            }
            T total = sums[0];
            for (std::size_t a = 1; a < accumulators; ++a) total = total + sums[a];
            const T accumulated = t.sum[row] + total / row_length;
            t.sum[row] = accumulated;
            const T multiplier = c.neg_lr / (ScalarLane<T>::sqrt(accumulated) + c.eps);
            for_each_lane_of_row<Lane, T>(length, [&](auto lane, std::size_t k) LRCORE_ALWAYS_INLINE {
                using L = decltype(lane);
                const auto p = L::load(param + k);
                const auto grad = gradient(lane, s, param, k);
                L::store(param + k, L::add(p, L::mul(L::broadcast(multiplier), grad)));
            });
        });
    }); });
}

}  // namespace
}  // namespace lrcore::kernels

// Included only by the per-ISA translation units, after their lane header.
#define LRCORE_DEFINE_ROW_KERNEL_TABLE(function_name, isa_name, Lane)                                        \
    const ::lrcore::kernels::RowKernelTable& function_name() {                                              \
        static const ::lrcore::kernels::RowKernelTable table{                                               \
            isa_name,                                                                                       \
            {&sgd_rows<Lane, float>, &adagrad_rows<Lane, float>, &sparse_adam_rows<Lane, float>,           \
             &rowwise_adagrad_rows<Lane, float>},                                                           \
            {&sgd_rows<Lane, double>, &adagrad_rows<Lane, double>, &sparse_adam_rows<Lane, double>,        \
             &rowwise_adagrad_rows<Lane, double>}};                                                         \
        return table;                                                                                       \
    }
