// Adafactor's passes, written once over a lane type L like the element-wise
// rules (included at the end of update_rules.hpp, so every per-ISA
// translation unit builds them with its own flags).
//
// Adafactor is not element-wise: its update needs, per tensor, the squared
// gradient's row and column means (for a matrix), the parameter's norm and the
// norm of the update before it is applied. The driver (cpp/src/adafactor_step.cpp)
// runs three passes over each tensor, each on blocks of rows of its matrices
// (or segments of a vector), and does the O(rows + columns) work in between:
//
//   statistics: per row the sums of g*g and p*p, and g*g added into per-block
//               column sums (a vector: variance <- lerp(variance, g*g, w) and
//               the sum of p*p per segment);
//   update norm: per row (segment) the sum of u*u, u = g / sqrt(max(v, eps1^2))
//               with v = row_var[r] * col_var[c] / mean(row_var) (a vector: v = variance);
//   apply:       p <- p * (1 - lr * weight_decay) + neg_step * u.
//
// Bitwise agreement across instruction sets: every sum along a row (or
// segment) goes into a fixed set of `partials` (16) accumulators of T, whatever
// the vector width: element i of the row into accumulator i % 16, each adding
// its elements in increasing order from +0.0, and the 16 are added in one fixed
// tree, ((a0 + a1) + (a2 + a3)) + ... (the scheme of gradient_passes.hpp, in T).
// AVX-512 holds them in one register of 16 floats or two of 8 doubles, AVX2 in
// two or four, SSE2 in four or eight, the scalar lane in sixteen. Column sums
// need no such care: each column is a lane of its own, added row by row.
// Sums across rows are the driver's, in double, in row order; so no result
// depends on the vector width or on how rows are shared among threads.
// lrcore.reference.adafactor performs the same operations in the same order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd_scalar.hpp"
#include "kernels/step_constants.hpp"

namespace lrcore::kernels {
namespace {
namespace factored {

constexpr std::size_t partials = 16;

/// The fixed tree the partial sums are added in.
template <class T>
inline T add_partials(const T* a) {
    T level[partials];
    for (std::size_t k = 0; k < partials; ++k) level[k] = a[k];
    for (std::size_t width = partials / 2; width >= 1; width /= 2) {
        for (std::size_t k = 0; k < width; ++k) level[k] = level[2 * k] + level[2 * k + 1];
    }
    return level[0];
}

/// Sums, into `out[s]`, the terms t[s] that term(lane, i, t) writes, over i in
/// [0, count), in the fixed order above. term may also store (the column sums,
/// the variance). (The terms are written to a plain array, not returned in a
/// std::array: a vector register type as a template argument loses its alignment.) A scalar
/// prologue runs up to the first element where `anchor` is vector-aligned; the
/// vector lanes are mapped back to the accumulators they continue, so where
/// the prologue ends never changes a result.
template <template <class> class Lane, class T, std::size_t Sums, class Term>
inline void fixed_order_sums(std::size_t count, const T* anchor, T* out, Term&& term) {
    using V = Lane<T>;
    constexpr std::size_t width = V::width;
    static_assert(partials % width == 0, "the vector width must divide the number of partial sums");
    constexpr std::size_t registers = partials / width;
    constexpr std::size_t vector_bytes = width * sizeof(T);
    T acc[Sums][partials] = {};
    std::size_t i = 0;
    const std::size_t offset = reinterpret_cast<std::uintptr_t>(anchor) % vector_bytes;
    if (width > 1 && offset % sizeof(T) == 0 && offset != 0) {
        const std::size_t prologue = std::min(count, (vector_bytes - offset) / sizeof(T));
        for (; i < prologue; ++i) {
            T t[Sums];
            term(ScalarLane<T>{}, i, t);
            for (std::size_t s = 0; s < Sums; ++s) acc[s][i % partials] += t[s];
        }
    }
    if (i + partials <= count) {
        // Lane k of the body's registers is element i + k: it continues accumulator (i + k) % 16.
        const std::size_t start = i;
        typename V::reg vacc[Sums][registers];
        T rotated[partials];
        for (std::size_t s = 0; s < Sums; ++s) {
            for (std::size_t k = 0; k < partials; ++k) rotated[k] = acc[s][(start + k) % partials];
            for (std::size_t r = 0; r < registers; ++r) vacc[s][r] = V::load(rotated + r * width);
        }
        for (; i + partials <= count; i += partials) {
            for (std::size_t r = 0; r < registers; ++r) {
                typename V::reg t[Sums];
                term(V{}, i + r * width, t);
                for (std::size_t s = 0; s < Sums; ++s) vacc[s][r] = V::add(vacc[s][r], t[s]);
            }
        }
        for (std::size_t s = 0; s < Sums; ++s) {
            for (std::size_t r = 0; r < registers; ++r) V::store(rotated + r * width, vacc[s][r]);
            for (std::size_t k = 0; k < partials; ++k) acc[s][(start + k) % partials] = rotated[k];
        }
    }
    for (; i < count; ++i) {
        T t[Sums];
        term(ScalarLane<T>{}, i, t);
        for (std::size_t s = 0; s < Sums; ++s) acc[s][i % partials] += t[s];
    }
    for (std::size_t s = 0; s < Sums; ++s) out[s] = add_partials(acc[s]);
}

/// The update u = (1 / sqrt(max(v, eps1^2))) * g, as torch's
/// var_estimate.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad).
template <class V>
inline typename V::reg scaled_update(typename V::reg estimate, typename V::reg g,
                                     typename V::value_type eps1_squared) {
    using T = typename V::value_type;
    const auto bounded = V::max(estimate, V::broadcast(eps1_squared));
    return V::mul(V::div(V::broadcast(T(1)), V::sqrt(bounded)), g);
}

/// The factored estimate of one element: row_var[r] * col_var[c] / mean(row_var),
/// as torch's (row_var @ col_var).div_(row_mean).
template <class V>
inline typename V::reg factored_estimate(typename V::value_type row_value, typename V::reg column_values,
                                         typename V::value_type row_var_mean) {
    return V::div(V::mul(V::broadcast(row_value), column_values), V::broadcast(row_var_mean));
}

template <template <class> class Lane, class T>
void matrix_statistics(const AdafactorConstants<T>& constants, const T* param, const T* grad, std::size_t rows,
                       std::size_t columns, T* column_sums, T* row_grad_sums, T* row_param_sums) {
    // A local copy: the kernel's stores cannot alias it, so its fields stay in registers.
    const AdafactorConstants<T> c = constants;
    T* __restrict column = column_sums;
    select(c.grad_scale.active, [&](auto scales) {
        for (std::size_t r = 0; r < rows; ++r) {
            const T* __restrict p_row = param + r * columns;
            const T* __restrict g_row = grad + r * columns;
            T sums[2];
            fixed_order_sums<Lane, T, 2>(columns, g_row, sums, [&](auto lane, std::size_t i, auto* terms) LRCORE_ALWAYS_INLINE {
                using V = decltype(lane);
                const auto g = signed_gradient<V>(V::load(g_row + i), c.grad_scale, c.grad_sign, scales);
                const auto p = V::load(p_row + i);
                const auto column_loaded = V::load(column + i);
                const auto square = V::mul(g, g);
                V::store(column + i, V::add(column_loaded, square));
                terms[0] = square;
                terms[1] = V::mul(p, p);
            });
            row_grad_sums[r] = sums[0];
            row_param_sums[r] = sums[1];
        }
    });
}

template <template <class> class Lane, class T>
void matrix_update_norm(const AdafactorConstants<T>& constants, const T* grad, const T* row_var, const T* col_var,
                        T row_var_mean, std::size_t rows, std::size_t columns, T* row_update_sums) {
    const AdafactorConstants<T> c = constants;
    const T* __restrict column = col_var;
    select(c.grad_scale.active, [&](auto scales) {
        for (std::size_t r = 0; r < rows; ++r) {
            const T* __restrict g_row = grad + r * columns;
            const T row_value = row_var[r];
            T sum[1];
            fixed_order_sums<Lane, T, 1>(columns, g_row, sum, [&](auto lane, std::size_t i, auto* terms) LRCORE_ALWAYS_INLINE {
                using V = decltype(lane);
                const auto g = signed_gradient<V>(V::load(g_row + i), c.grad_scale, c.grad_sign, scales);
                const auto estimate = factored_estimate<V>(row_value, V::load(column + i), row_var_mean);
                const auto u = scaled_update<V>(estimate, g, c.eps1_squared);
                terms[0] = V::mul(u, u);
            });
            row_update_sums[r] = sum[0];
        }
    });
}

template <template <class> class Lane, class T>
void matrix_apply(const AdafactorConstants<T>& constants, T* param, const T* grad, const T* row_var, const T* col_var,
                  T row_var_mean, T neg_step, std::size_t rows, std::size_t columns) {
    const AdafactorConstants<T> c = constants;
    const T* __restrict column = col_var;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        for (std::size_t r = 0; r < rows; ++r) {
            T* __restrict p_row = param + r * columns;
            const T* __restrict g_row = grad + r * columns;
            const T row_value = row_var[r];
            for_each_lane<Lane, T>(columns, anchor_of(p_row), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
                using V = decltype(lane);
                auto p = V::load(p_row + i);
                const auto g = signed_gradient<V>(V::load(g_row + i), c.grad_scale, c.grad_sign, scales);
                const auto estimate = factored_estimate<V>(row_value, V::load(column + i), row_var_mean);
                const auto u = scaled_update<V>(estimate, g, c.eps1_squared);
                if constexpr (has_weight_decay) p = V::mul(p, V::broadcast(c.decay_factor));
                V::store(p_row + i, V::add(p, V::mul(V::broadcast(neg_step), u)));
            });
        }
    }); });
}

template <template <class> class Lane, class T>
void vector_statistics(const AdafactorConstants<T>& constants, const T* param, const T* grad, T* variance,
                       std::size_t count, T* param_sum) {
    const AdafactorConstants<T> c = constants;
    const T* __restrict p_in = param;
    const T* __restrict g_in = grad;
    T* __restrict v_out = variance;
    select(c.grad_scale.active, [&](auto scales) {
        T sum[1];
        fixed_order_sums<Lane, T, 1>(count, g_in, sum, [&](auto lane, std::size_t i, auto* terms) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto g = signed_gradient<V>(V::load(g_in + i), c.grad_scale, c.grad_sign, scales);
            const auto p = V::load(p_in + i);
            const auto v = V::load(v_out + i);
            V::store(v_out + i, lerp<V>(v, V::mul(g, g), c.variance_lerp));
            terms[0] = V::mul(p, p);
        });
        *param_sum = sum[0];
    });
}

template <template <class> class Lane, class T>
void vector_update_norm(const AdafactorConstants<T>& constants, const T* grad, const T* variance, std::size_t count,
                        T* update_sum) {
    const AdafactorConstants<T> c = constants;
    const T* __restrict g_in = grad;
    const T* __restrict v_in = variance;
    select(c.grad_scale.active, [&](auto scales) {
        T sum[1];
        fixed_order_sums<Lane, T, 1>(count, g_in, sum, [&](auto lane, std::size_t i, auto* terms) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto g = signed_gradient<V>(V::load(g_in + i), c.grad_scale, c.grad_sign, scales);
            const auto u = scaled_update<V>(V::load(v_in + i), g, c.eps1_squared);
            terms[0] = V::mul(u, u);
        });
        *update_sum = sum[0];
    });
}

template <template <class> class Lane, class T>
void vector_apply(const AdafactorConstants<T>& constants, T* param, const T* grad, const T* variance, T neg_step,
                  std::size_t count) {
    const AdafactorConstants<T> c = constants;
    T* __restrict p_io = param;
    const T* __restrict g_in = grad;
    const T* __restrict v_in = variance;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        for_each_lane<Lane, T>(count, anchor_of(p_io), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = V::load(p_io + i);
            const auto g = signed_gradient<V>(V::load(g_in + i), c.grad_scale, c.grad_sign, scales);
            const auto u = scaled_update<V>(V::load(v_in + i), g, c.eps1_squared);
            if constexpr (has_weight_decay) p = V::mul(p, V::broadcast(c.decay_factor));
            V::store(p_io + i, V::add(p, V::mul(V::broadcast(neg_step), u)));
        });
    }); });
}

}  // namespace factored

template <template <class> class Lane, class T>
AdafactorKernels<T> adafactor_kernels() {
    return {&factored::matrix_statistics<Lane, T>, &factored::matrix_update_norm<Lane, T>,
            &factored::matrix_apply<Lane, T>,      &factored::vector_statistics<Lane, T>,
            &factored::vector_update_norm<Lane, T>, &factored::vector_apply<Lane, T>};
}

}  // namespace
}  // namespace lrcore::kernels
