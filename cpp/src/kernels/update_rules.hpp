// The update rules, written once over a lane type L (ScalarLane, Sse2Lane,
// Avx2Lane, Avx512Lane). Each per-ISA translation unit includes this file
// after its lane header and instantiates the kernel table for its lanes.
//
// Every kernel has the same shape: an unrolled vector body (four vectors per
// iteration), a single-vector loop, and a scalar tail that runs the very same
// formula on ScalarLane. Each lane step loads all of its inputs before it
// stores anything: arrays of one size start at the same offset in their pages,
// and a store followed by a load 4 KiB away stalls on a false dependency. Operations are applied one at a time in the order
// torch.optim applies its tensor operations, each rounded to T.
//
// The formulas are stated once, with the public entry points in
// lrcore/optimizers.hpp; the code below is their element-wise form.
//
// NaN and infinities follow numpy and torch: every operation is IEEE, the
// maximizing sign is applied by flipping the sign bit (a negation, which also
// flips a NaN's sign, where multiplying by -1 would not), and V::max
// propagates NaN like np.maximum. There are no other data-dependent
// comparisons or selections; the only branches are on hyperparameters.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/simd_scalar.hpp"
#include "kernels/step_constants.hpp"
#include "lrcore/tensors.hpp"

// The lane step must be inlined into the loops of for_each_lane: past a few
// nested compile-time branches GCC stops inlining it by itself and calls it
// once per vector, which costs about a third of an in-cache step.
#if defined(__GNUC__) || defined(__clang__)
#define LRCORE_ALWAYS_INLINE __attribute__((always_inline))
#else
#define LRCORE_ALWAYS_INLINE
#endif

namespace lrcore::kernels {
namespace {

/// Runs body(lane, i) over [0, count): a scalar prologue up to the first
/// element where `anchor` (the chunk's parameter pointer) is vector-aligned,
/// then four vectors per iteration, then single vectors, then a scalar tail.
/// numpy's large arrays start 16 bytes into a page, so without the prologue
/// every AVX-512 access would straddle two cache lines. Scalar and vector
/// lanes round identically, so where the boundaries fall never changes a result.
template <template <class> class Lane, class T, class Body>
inline void for_each_lane(std::size_t count, const T* anchor, Body&& body) {
    using V = Lane<T>;
    constexpr std::size_t width = V::width;
    constexpr std::size_t vector_bytes = width * sizeof(T);
    std::size_t i = 0;
    const std::size_t offset = reinterpret_cast<std::uintptr_t>(anchor) % vector_bytes;
    if (width > 1 && offset % sizeof(T) == 0 && offset != 0) {
        const std::size_t prologue = std::min(count, (vector_bytes - offset) / sizeof(T));
        for (; i < prologue; ++i) body(ScalarLane<T>{}, i);
    }
    for (; i + 4 * width <= count; i += 4 * width) {
        body(V{}, i);
        body(V{}, i + width);
        body(V{}, i + 2 * width);
        body(V{}, i + 3 * width);
    }
    for (; i + width <= count; i += width) body(V{}, i);
    for (; i < count; ++i) body(ScalarLane<T>{}, i);
}

/// Calls f with std::true_type or std::false_type, turning a loop-invariant
/// runtime flag into a compile-time one.
template <class F>
inline void select(bool flag, F&& f) {
    if (flag) {
        f(std::true_type{});
    } else {
        f(std::false_type{});
    }
}

/// The gradient as every rule starts from it: scaled by grad_scale when that
/// is active (a compile-time branch), then its sign flipped when maximizing.
/// Scaling first is what clip_grad_norm followed by a plain step computes.
template <class V, class Scales>
inline typename V::reg signed_gradient(typename V::reg grad, const GradScale<typename V::value_type>& scale,
                                       typename V::value_type grad_sign, Scales) {
    if constexpr (Scales::value) grad = V::mul(grad, V::broadcast(scale.factor));
    return V::flip_sign(grad, V::broadcast(grad_sign));
}

template <class V>
inline typename V::reg lerp(typename V::reg start, typename V::reg end,
                            const LerpConstants<typename V::value_type>& w) {
    const auto base = w.base_is_start ? start : end;
    return V::add(base, V::mul(V::broadcast(w.coefficient), V::sub(end, start)));
}

// ---------------------------------------------------------------------- SGD --
template <template <class> class Lane, class T>
void sgd_chunk(const SgdConstants<T>& c, const SgdTensor<T>& t, std::size_t begin, std::size_t end) {
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict buffer = t.momentum_buffer ? t.momentum_buffer + begin : nullptr;
    const bool initialize = t.initialize_momentum_buffer;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
    select(c.has_momentum, [&](auto has_momentum) {
    select(c.has_momentum && c.nesterov, [&](auto nesterov) {
    select(c.has_momentum && initialize, [&](auto first_momentum_step) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = V::load(param + i);
            const auto grad_loaded = V::load(grad + i);
            typename V::reg b{};
            if constexpr (has_momentum && !first_momentum_step) b = V::load(buffer + i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            if constexpr (has_momentum) {
                if constexpr (first_momentum_step) {
                    b = g;
                } else {
                    b = V::add(V::mul(b, V::broadcast(c.momentum)), V::mul(V::broadcast(c.one_minus_dampening), g));
                }
                V::store(buffer + i, b);
                if constexpr (nesterov) {
                    g = V::add(g, V::mul(V::broadcast(c.momentum), b));
                } else {
                    g = b;
                }
            }
            V::store(param + i, V::add(p, V::mul(V::broadcast(c.neg_lr), g)));
        });
    }); }); }); }); });
}

// ------------------------------------------------------------------ AdaGrad --
template <template <class> class Lane, class T>
void adagrad_chunk(const AdagradConstants<T>& c, const AdagradTensor<T>& t, std::size_t begin,
                   std::size_t end) {
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict sum = t.sum + begin;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = V::load(param + i);
            const auto grad_loaded = V::load(grad + i);
            const auto sum_loaded = V::load(sum + i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto s = V::add(sum_loaded, V::mul(g, g));
            V::store(sum + i, s);
            const auto std_dev = V::add(V::sqrt(s), V::broadcast(c.eps));
            V::store(param + i, V::add(p, V::div(V::mul(V::broadcast(c.neg_clr), g), std_dev)));
        });
    }); });
}

// ------------------------------------------------------------------ RMSprop --
template <template <class> class Lane, class T>
void rmsprop_chunk(const RmspropConstants<T>& c, const RmspropTensor<T>& t, std::size_t begin,
                   std::size_t end) {
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict square_avg = t.square_avg + begin;
    T* __restrict grad_avg = t.grad_avg ? t.grad_avg + begin : nullptr;
    T* __restrict buffer = t.momentum_buffer ? t.momentum_buffer + begin : nullptr;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
    select(c.centered, [&](auto centered) {
    select(c.has_momentum, [&](auto has_momentum) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = V::load(param + i);
            const auto grad_loaded = V::load(grad + i);
            const auto square_avg_loaded = V::load(square_avg + i);
            typename V::reg a{};
            if constexpr (centered) a = V::load(grad_avg + i);
            typename V::reg b{};
            if constexpr (has_momentum) b = V::load(buffer + i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto v = V::add(V::mul(square_avg_loaded, V::broadcast(c.alpha)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_alpha), g), g));
            V::store(square_avg + i, v);
            typename V::reg root;
            if constexpr (centered) {
                a = lerp<V>(a, g, c.grad_avg_lerp);
                V::store(grad_avg + i, a);
                root = V::sqrt(V::sub(v, V::mul(a, a)));
            } else {
                root = V::sqrt(v);
            }
            root = V::add(root, V::broadcast(c.eps));
            if constexpr (has_momentum) {
                b = V::add(V::mul(b, V::broadcast(c.momentum)), V::div(g, root));
                V::store(buffer + i, b);
                V::store(param + i, V::add(p, V::mul(V::broadcast(c.neg_lr), b)));
            } else {
                V::store(param + i, V::add(p, V::div(V::mul(V::broadcast(c.neg_lr), g), root)));
            }
        });
    }); }); }); });
}

// ------------------------------------------------------------- Adam / AdamW --
template <template <class> class Lane, class T>
void adam_chunk(const AdamConstants<T>& c, const AdamTensor<T>& t, std::size_t begin, std::size_t end) {
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict exp_avg = t.exp_avg + begin;
    T* __restrict exp_avg_sq = t.exp_avg_sq + begin;
    T* __restrict max_exp_avg_sq = t.max_exp_avg_sq ? t.max_exp_avg_sq + begin : nullptr;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.weight_decay_mode == WeightDecayMode::l2, [&](auto l2) {
    select(c.weight_decay_mode == WeightDecayMode::decoupled, [&](auto decoupled) {
    select(c.amsgrad, [&](auto amsgrad) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = V::load(param + i);
            const auto grad_loaded = V::load(grad + i);
            const auto exp_avg_loaded = V::load(exp_avg + i);
            const auto exp_avg_sq_loaded = V::load(exp_avg_sq + i);
            typename V::reg v_max{};
            if constexpr (amsgrad) v_max = V::load(max_exp_avg_sq + i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (decoupled) p = V::mul(p, V::broadcast(c.decay_factor));
            if constexpr (l2) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto m = lerp<V>(exp_avg_loaded, g, c.exp_avg_lerp);
            auto v = V::add(V::mul(exp_avg_sq_loaded, V::broadcast(c.beta2)),
                            V::mul(V::mul(V::broadcast(c.one_minus_beta2), g), g));
            V::store(exp_avg + i, m);
            V::store(exp_avg_sq + i, v);
            if constexpr (amsgrad) {
                v = V::max(v_max, v);
                V::store(max_exp_avg_sq + i, v);
            }
            const auto denom = V::add(V::div(V::sqrt(v), V::broadcast(c.bias_correction2_sqrt)),
                                      V::broadcast(c.eps));
            V::store(param + i, V::add(p, V::div(V::mul(V::broadcast(c.neg_step_size), m), denom)));
        });
    }); }); }); });
}

// -------------------------------------------------------------------- NAdam --
template <template <class> class Lane, class T>
void nadam_chunk(const NadamConstants<T>& constants, const NadamTensor<T>& t, std::size_t begin, std::size_t end) {
    // A local copy of the constants: through the reference the compiler cannot rule out that a
    // store to the T arrays changes a T field of the constants, and reloads every constant for
    // every vector (in-cache Adamax 65536 f32: 10.3 -> 9.2 us).
    const NadamConstants<T> c = constants;
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict exp_avg = t.exp_avg + begin;
    T* __restrict exp_avg_sq = t.exp_avg_sq + begin;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.weight_decay_mode == WeightDecayMode::l2, [&](auto l2) {
    select(c.weight_decay_mode == WeightDecayMode::decoupled, [&](auto decoupled) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = V::load(param + i);
            const auto grad_loaded = V::load(grad + i);
            const auto exp_avg_loaded = V::load(exp_avg + i);
            const auto exp_avg_sq_loaded = V::load(exp_avg_sq + i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (decoupled) p = V::mul(p, V::broadcast(c.decay_factor));
            if constexpr (l2) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto m = lerp<V>(exp_avg_loaded, g, c.exp_avg_lerp);
            const auto v = V::add(V::mul(exp_avg_sq_loaded, V::broadcast(c.beta2)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_beta2), g), g));
            V::store(exp_avg + i, m);
            V::store(exp_avg_sq + i, v);
            const auto denom = V::add(V::sqrt(V::div(v, V::broadcast(c.bias_correction2))), V::broadcast(c.eps));
            p = V::add(p, V::div(V::mul(V::broadcast(c.grad_coefficient), g), denom));
            p = V::add(p, V::div(V::mul(V::broadcast(c.exp_avg_coefficient), m), denom));
            V::store(param + i, p);
        });
    }); }); });
}

// -------------------------------------------------------------------- RAdam --
template <template <class> class Lane, class T>
void radam_chunk(const RadamConstants<T>& constants, const RadamTensor<T>& t, std::size_t begin, std::size_t end) {
    const RadamConstants<T> c = constants;  // a local copy: see nadam_chunk
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict exp_avg = t.exp_avg + begin;
    T* __restrict exp_avg_sq = t.exp_avg_sq + begin;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.weight_decay_mode == WeightDecayMode::l2, [&](auto l2) {
    select(c.weight_decay_mode == WeightDecayMode::decoupled, [&](auto decoupled) {
    select(c.rectified, [&](auto rectified) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = V::load(param + i);
            const auto grad_loaded = V::load(grad + i);
            const auto exp_avg_loaded = V::load(exp_avg + i);
            const auto exp_avg_sq_loaded = V::load(exp_avg_sq + i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (decoupled) p = V::mul(p, V::broadcast(c.decay_factor));
            if constexpr (l2) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto m = lerp<V>(exp_avg_loaded, g, c.exp_avg_lerp);
            const auto v = V::add(V::mul(exp_avg_sq_loaded, V::broadcast(c.beta2)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_beta2), g), g));
            V::store(exp_avg + i, m);
            V::store(exp_avg_sq + i, v);
            auto update = V::mul(V::div(m, V::broadcast(c.bias_correction1)), V::broadcast(c.lr));
            if constexpr (rectified) {
                // torch: bias_correction2_sqrt / (sqrt(v) + eps) as reciprocal(...) * scalar.
                const auto adaptive = V::mul(V::div(V::broadcast(T(1)), V::add(V::sqrt(v), V::broadcast(c.eps))),
                                             V::broadcast(c.bias_correction2_sqrt));
                update = V::mul(V::mul(update, adaptive), V::broadcast(c.rectification));
            }
            V::store(param + i, V::sub(p, update));
        });
    }); }); }); });
}

// ------------------------------------------------------------------- Adamax --
template <template <class> class Lane, class T>
void adamax_chunk(const AdamaxConstants<T>& constants, const AdamaxTensor<T>& t, std::size_t begin, std::size_t end) {
    const AdamaxConstants<T> c = constants;  // a local copy: see nadam_chunk
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict exp_avg = t.exp_avg + begin;
    T* __restrict exp_inf = t.exp_inf + begin;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = V::load(param + i);
            const auto grad_loaded = V::load(grad + i);
            const auto exp_avg_loaded = V::load(exp_avg + i);
            const auto exp_inf_loaded = V::load(exp_inf + i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto m = lerp<V>(exp_avg_loaded, g, c.exp_avg_lerp);
            // torch.maximum(exp_inf * beta2, |g| + eps): a NaN in either propagates.
            const auto u = V::max(V::mul(exp_inf_loaded, V::broadcast(c.beta2)),
                                  V::add(V::abs(g), V::broadcast(c.eps)));
            V::store(exp_avg + i, m);
            V::store(exp_inf + i, u);
            V::store(param + i, V::add(p, V::div(V::mul(V::broadcast(c.neg_clr), m), u)));
        });
    }); });
}

// --------------------------------------------------------------------- Lion --
template <template <class> class Lane, class T>
void lion_chunk(const LionConstants<T>& constants, const LionTensor<T>& t, std::size_t begin, std::size_t end) {
    const LionConstants<T> c = constants;  // a local copy: see nadam_chunk
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict exp_avg = t.exp_avg + begin;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = V::load(param + i);
            const auto grad_loaded = V::load(grad + i);
            const auto m = V::load(exp_avg + i);
            const auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            const auto direction = V::add(V::mul(V::broadcast(c.beta1), m), V::mul(V::broadcast(c.one_minus_beta1), g));
            if constexpr (has_weight_decay) p = V::mul(p, V::broadcast(c.decay_factor));
            V::store(exp_avg + i, V::add(V::mul(V::broadcast(c.beta2), m), V::mul(V::broadcast(c.one_minus_beta2), g)));
            V::store(param + i, V::sub(p, V::mul(V::broadcast(c.lr), V::sign(direction))));
        });
    }); });
}

// ---------------------------------------------------------- schedule-free --
// The `schedulefree` package's operation order (AdamWScheduleFree,
// SGDScheduleFree, single-tensor path). The parameter holds y; z is the base
// sequence; the average x is never stored in train mode: y moves toward z by
// the new iterate's weight ckp1, then along the (normalized) gradient.
template <template <class> class Lane, class T>
void schedule_free_adamw_chunk(const ScheduleFreeAdamWConstants<T>& c, const ScheduleFreeAdamWTensor<T>& t,
                               std::size_t begin, std::size_t end) {
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict z = t.z + begin;
    T* __restrict exp_avg_sq = t.exp_avg_sq + begin;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
    select(t.initialize_z, [&](auto first_step) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto y = V::load(param + i);
            auto g = V::load(grad + i);
            const auto exp_avg_sq_loaded = V::load(exp_avg_sq + i);
            // z starts as a copy of the parameter.
            typename V::reg z_old = y;
            if constexpr (!first_step) z_old = V::load(z + i);
            if constexpr (scales) g = V::mul(g, V::broadcast(c.grad_scale.factor));
            const auto v = V::add(V::mul(exp_avg_sq_loaded, V::broadcast(c.beta2)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_beta2), g), g));
            V::store(exp_avg_sq + i, v);
            const auto denom = V::add(V::sqrt(V::div(v, V::broadcast(c.bias_correction2))), V::broadcast(c.eps));
            auto u = V::div(g, denom);
            if constexpr (has_weight_decay) u = V::add(u, V::mul(V::broadcast(c.weight_decay), y));
            V::store(param + i, V::add(lerp<V>(y, z_old, c.average_lerp), V::mul(V::broadcast(c.y_step), u)));
            V::store(z + i, V::add(z_old, V::mul(V::broadcast(c.neg_lr), u)));
        });
    }); }); });
}

template <template <class> class Lane, class T>
void schedule_free_sgd_chunk(const ScheduleFreeSgdConstants<T>& c, const ScheduleFreeSgdTensor<T>& t,
                             std::size_t begin, std::size_t end) {
    T* __restrict param = t.param + begin;
    const T* __restrict grad = t.grad + begin;
    T* __restrict z = t.z + begin;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
    select(t.initialize_z, [&](auto first_step) {
        for_each_lane<Lane, T>(end - begin, param, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto y = V::load(param + i);
            auto g = V::load(grad + i);
            typename V::reg z_old = y;
            if constexpr (!first_step) z_old = V::load(z + i);
            if constexpr (scales) g = V::mul(g, V::broadcast(c.grad_scale.factor));
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), y));
            V::store(param + i, V::add(lerp<V>(y, z_old, c.average_lerp), V::mul(V::broadcast(c.y_step), g)));
            V::store(z + i, V::add(z_old, V::mul(V::broadcast(c.neg_lr), g)));
        });
    }); }); });
}

/// param <- lerp(param, end, w), as torch's lerp_ with a scalar weight: the
/// schedule-free switch between y and x.
template <template <class> class Lane, class T>
void interpolate_chunk(const LerpConstants<T>& w, T* param, const T* end, std::size_t count) {
    T* __restrict p = param;
    const T* __restrict e = end;
    for_each_lane<Lane, T>(count, p, [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
        using V = decltype(lane);
        V::store(p + i, lerp<V>(V::load(p + i), V::load(e + i), w));
    });
}

}  // namespace
}  // namespace lrcore::kernels
