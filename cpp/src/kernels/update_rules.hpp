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
// propagates NaN like np.maximum. The only other data-dependent comparisons
// and selections are Rprop's (V::less, V::select, V::clamp, exact on every
// lane type); the only branches are on hyperparameters.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/simd_scalar.hpp"
#include "kernels/step_constants.hpp"
#include "kernels/stored_arrays.hpp"
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
/// element where `anchor` (the chunk's parameter) is vector-aligned, then four
/// vectors per iteration, then single vectors, then a scalar tail. numpy's
/// large arrays start 16 bytes into a page, so without the prologue every
/// AVX-512 access would straddle two cache lines. Scalar and vector lanes
/// round identically, so where the boundaries fall never changes a result.
template <template <class> class Lane, class T, class Body>
inline void for_each_lane(std::size_t count, Anchor anchor, Body&& body) {
    using V = Lane<T>;
    constexpr std::size_t width = V::width;
    const std::size_t vector_bytes = width * anchor.element_bytes;
    std::size_t i = 0;
    const std::size_t offset = reinterpret_cast<std::uintptr_t>(anchor.address) % vector_bytes;
    if (width > 1 && offset % anchor.element_bytes == 0 && offset != 0) {
        const std::size_t prologue = std::min(count, (vector_bytes - offset) / anchor.element_bytes);
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
void sgd_chunk(const SgdConstants<T>& c, const SgdTensor<T>& t, const Storage* storage, std::size_t begin, std::size_t end) {
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State buffer = arrays.state(t.momentum_buffer, begin, 1);
    const bool initialize = t.initialize_momentum_buffer;
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
    select(c.has_momentum, [&](auto has_momentum) {
    select(c.has_momentum && c.nesterov, [&](auto nesterov) {
    select(c.has_momentum && initialize, [&](auto first_momentum_step) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            typename V::reg b{};
            if constexpr (has_momentum && !first_momentum_step) b = load<V>(buffer, i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            if constexpr (has_momentum) {
                if constexpr (first_momentum_step) {
                    b = g;
                } else {
                    b = V::add(V::mul(b, V::broadcast(c.momentum)), V::mul(V::broadcast(c.one_minus_dampening), g));
                }
                store<V>(buffer, i, b);
                if constexpr (nesterov) {
                    g = V::add(g, V::mul(V::broadcast(c.momentum), b));
                } else {
                    g = b;
                }
            }
            store<V>(param, i, V::add(p, V::mul(V::broadcast(c.neg_lr), g)));
        });
    }); }); }); }); });
    });
}

// ------------------------------------------------------------------ AdaGrad --
template <template <class> class Lane, class T>
void adagrad_chunk(const AdagradConstants<T>& c, const AdagradTensor<T>& t, const Storage* storage, std::size_t begin,
                   std::size_t end) {
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State sum = arrays.state(t.sum, begin, 1);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            const auto sum_loaded = load<V>(sum, i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto s = V::add(sum_loaded, V::mul(g, g));
            store<V>(sum, i, s);
            const auto std_dev = V::add(V::sqrt(s), V::broadcast(c.eps));
            store<V>(param, i, V::add(p, V::div(V::mul(V::broadcast(c.neg_clr), g), std_dev)));
        });
    }); });
    });
}

// ------------------------------------------------------------------ RMSprop --
template <template <class> class Lane, class T>
void rmsprop_chunk(const RmspropConstants<T>& c, const RmspropTensor<T>& t, const Storage* storage, std::size_t begin,
                   std::size_t end) {
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State square_avg = arrays.state(t.square_avg, begin, 1);
    const typename A::State grad_avg = arrays.state(t.grad_avg, begin, 2);
    const typename A::State buffer = arrays.state(t.momentum_buffer, begin, 3);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
    select(c.centered, [&](auto centered) {
    select(c.has_momentum, [&](auto has_momentum) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            const auto square_avg_loaded = load<V>(square_avg, i);
            typename V::reg a{};
            if constexpr (centered) a = load<V>(grad_avg, i);
            typename V::reg b{};
            if constexpr (has_momentum) b = load<V>(buffer, i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto v = V::add(V::mul(square_avg_loaded, V::broadcast(c.alpha)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_alpha), g), g));
            store<V>(square_avg, i, v);
            typename V::reg root;
            if constexpr (centered) {
                a = lerp<V>(a, g, c.grad_avg_lerp);
                store<V>(grad_avg, i, a);
                root = V::sqrt(V::sub(v, V::mul(a, a)));
            } else {
                root = V::sqrt(v);
            }
            root = V::add(root, V::broadcast(c.eps));
            if constexpr (has_momentum) {
                b = V::add(V::mul(b, V::broadcast(c.momentum)), V::div(g, root));
                store<V>(buffer, i, b);
                store<V>(param, i, V::add(p, V::mul(V::broadcast(c.neg_lr), b)));
            } else {
                store<V>(param, i, V::add(p, V::div(V::mul(V::broadcast(c.neg_lr), g), root)));
            }
        });
    }); }); }); });
    });
}

// ------------------------------------------------------------- Adam / AdamW --
template <template <class> class Lane, class T>
void adam_chunk(const AdamConstants<T>& c, const AdamTensor<T>& t, const Storage* storage, std::size_t begin, std::size_t end) {
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State exp_avg = arrays.state(t.exp_avg, begin, 1);
    const typename A::State exp_avg_sq = arrays.state(t.exp_avg_sq, begin, 2);
    const typename A::State max_exp_avg_sq = arrays.state(t.max_exp_avg_sq, begin, 3);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.weight_decay_mode == WeightDecayMode::l2, [&](auto l2) {
    select(c.weight_decay_mode == WeightDecayMode::decoupled, [&](auto decoupled) {
    select(c.amsgrad, [&](auto amsgrad) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            const auto exp_avg_loaded = load<V>(exp_avg, i);
            const auto exp_avg_sq_loaded = load<V>(exp_avg_sq, i);
            typename V::reg v_max{};
            if constexpr (amsgrad) v_max = load<V>(max_exp_avg_sq, i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (decoupled) p = V::mul(p, V::broadcast(c.decay_factor));
            if constexpr (l2) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto m = lerp<V>(exp_avg_loaded, g, c.exp_avg_lerp);
            auto v = V::add(V::mul(exp_avg_sq_loaded, V::broadcast(c.beta2)),
                            V::mul(V::mul(V::broadcast(c.one_minus_beta2), g), g));
            store<V>(exp_avg, i, m);
            store<V>(exp_avg_sq, i, v);
            if constexpr (amsgrad) {
                v = V::max(v_max, v);
                store<V>(max_exp_avg_sq, i, v);
            }
            const auto denom = V::add(V::div(V::sqrt(v), V::broadcast(c.bias_correction2_sqrt)),
                                      V::broadcast(c.eps));
            store<V>(param, i, V::add(p, V::div(V::mul(V::broadcast(c.neg_step_size), m), denom)));
        });
    }); }); }); });
    });
}

// -------------------------------------------------------------------- NAdam --
template <template <class> class Lane, class T>
void nadam_chunk(const NadamConstants<T>& constants, const NadamTensor<T>& t, const Storage* storage, std::size_t begin, std::size_t end) {
    // A local copy of the constants: through the reference the compiler cannot rule out that a
    // store to the T arrays changes a T field of the constants, and reloads every constant for
    // every vector (in-cache Adamax 65536 f32: 10.3 -> 9.2 us).
    const NadamConstants<T> c = constants;
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State exp_avg = arrays.state(t.exp_avg, begin, 1);
    const typename A::State exp_avg_sq = arrays.state(t.exp_avg_sq, begin, 2);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.weight_decay_mode == WeightDecayMode::l2, [&](auto l2) {
    select(c.weight_decay_mode == WeightDecayMode::decoupled, [&](auto decoupled) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            const auto exp_avg_loaded = load<V>(exp_avg, i);
            const auto exp_avg_sq_loaded = load<V>(exp_avg_sq, i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (decoupled) p = V::mul(p, V::broadcast(c.decay_factor));
            if constexpr (l2) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto m = lerp<V>(exp_avg_loaded, g, c.exp_avg_lerp);
            const auto v = V::add(V::mul(exp_avg_sq_loaded, V::broadcast(c.beta2)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_beta2), g), g));
            store<V>(exp_avg, i, m);
            store<V>(exp_avg_sq, i, v);
            const auto denom = V::add(V::sqrt(V::div(v, V::broadcast(c.bias_correction2))), V::broadcast(c.eps));
            p = V::add(p, V::div(V::mul(V::broadcast(c.grad_coefficient), g), denom));
            p = V::add(p, V::div(V::mul(V::broadcast(c.exp_avg_coefficient), m), denom));
            store<V>(param, i, p);
        });
    }); }); });
    });
}

// -------------------------------------------------------------------- RAdam --
template <template <class> class Lane, class T>
void radam_chunk(const RadamConstants<T>& constants, const RadamTensor<T>& t, const Storage* storage, std::size_t begin, std::size_t end) {
    const RadamConstants<T> c = constants;  // a local copy: see nadam_chunk
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State exp_avg = arrays.state(t.exp_avg, begin, 1);
    const typename A::State exp_avg_sq = arrays.state(t.exp_avg_sq, begin, 2);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.weight_decay_mode == WeightDecayMode::l2, [&](auto l2) {
    select(c.weight_decay_mode == WeightDecayMode::decoupled, [&](auto decoupled) {
    select(c.rectified, [&](auto rectified) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            const auto exp_avg_loaded = load<V>(exp_avg, i);
            const auto exp_avg_sq_loaded = load<V>(exp_avg_sq, i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (decoupled) p = V::mul(p, V::broadcast(c.decay_factor));
            if constexpr (l2) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto m = lerp<V>(exp_avg_loaded, g, c.exp_avg_lerp);
            const auto v = V::add(V::mul(exp_avg_sq_loaded, V::broadcast(c.beta2)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_beta2), g), g));
            store<V>(exp_avg, i, m);
            store<V>(exp_avg_sq, i, v);
            auto update = V::mul(V::div(m, V::broadcast(c.bias_correction1)), V::broadcast(c.lr));
            if constexpr (rectified) {
                // torch: bias_correction2_sqrt / (sqrt(v) + eps) as reciprocal(...) * scalar.
                const auto adaptive = V::mul(V::div(V::broadcast(T(1)), V::add(V::sqrt(v), V::broadcast(c.eps))),
                                             V::broadcast(c.bias_correction2_sqrt));
                update = V::mul(V::mul(update, adaptive), V::broadcast(c.rectification));
            }
            store<V>(param, i, V::sub(p, update));
        });
    }); }); }); });
    });
}

// ------------------------------------------------------------------- Adamax --
template <template <class> class Lane, class T>
void adamax_chunk(const AdamaxConstants<T>& constants, const AdamaxTensor<T>& t, const Storage* storage, std::size_t begin, std::size_t end) {
    const AdamaxConstants<T> c = constants;  // a local copy: see nadam_chunk
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State exp_avg = arrays.state(t.exp_avg, begin, 1);
    const typename A::State exp_inf = arrays.state(t.exp_inf, begin, 2);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            const auto exp_avg_loaded = load<V>(exp_avg, i);
            const auto exp_inf_loaded = load<V>(exp_inf, i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto m = lerp<V>(exp_avg_loaded, g, c.exp_avg_lerp);
            // torch.maximum(exp_inf * beta2, |g| + eps): a NaN in either propagates.
            const auto u = V::max(V::mul(exp_inf_loaded, V::broadcast(c.beta2)),
                                  V::add(V::abs(g), V::broadcast(c.eps)));
            store<V>(exp_avg, i, m);
            store<V>(exp_inf, i, u);
            store<V>(param, i, V::add(p, V::div(V::mul(V::broadcast(c.neg_clr), m), u)));
        });
    }); });
    });
}

// --------------------------------------------------------------------- Lion --
template <template <class> class Lane, class T>
void lion_chunk(const LionConstants<T>& constants, const LionTensor<T>& t, const Storage* storage, std::size_t begin, std::size_t end) {
    const LionConstants<T> c = constants;  // a local copy: see nadam_chunk
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State exp_avg = arrays.state(t.exp_avg, begin, 1);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            const auto m = load<V>(exp_avg, i);
            const auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            const auto direction = V::add(V::mul(V::broadcast(c.beta1), m), V::mul(V::broadcast(c.one_minus_beta1), g));
            if constexpr (has_weight_decay) p = V::mul(p, V::broadcast(c.decay_factor));
            store<V>(exp_avg, i, V::add(V::mul(V::broadcast(c.beta2), m), V::mul(V::broadcast(c.one_minus_beta2), g)));
            store<V>(param, i, V::sub(p, V::mul(V::broadcast(c.lr), V::sign(direction))));
        });
    }); });
    });
}

// ----------------------------------------------------------------- Adadelta --
template <template <class> class Lane, class T>
void adadelta_chunk(const AdadeltaConstants<T>& constants, const AdadeltaTensor<T>& t, const Storage* storage, std::size_t begin,
                    std::size_t end) {
    const AdadeltaConstants<T> c = constants;  // a local copy: see nadam_chunk
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State square_avg = arrays.state(t.square_avg, begin, 1);
    const typename A::State acc_delta = arrays.state(t.acc_delta, begin, 2);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            const auto square_avg_loaded = load<V>(square_avg, i);
            const auto acc_delta_loaded = load<V>(acc_delta, i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            const auto v = V::add(V::mul(square_avg_loaded, V::broadcast(c.rho)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_rho), g), g));
            const auto eps = V::broadcast(c.eps);
            const auto std_dev = V::sqrt(V::add(v, eps));
            const auto delta = V::mul(V::div(V::sqrt(V::add(acc_delta_loaded, eps)), std_dev), g);
            const auto u = V::add(V::mul(acc_delta_loaded, V::broadcast(c.rho)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_rho), delta), delta));
            store<V>(square_avg, i, v);
            store<V>(acc_delta, i, u);
            store<V>(param, i, V::add(p, V::mul(V::broadcast(c.neg_lr), delta)));
        });
    }); });
    });
}

// -------------------------------------------------------------------- Rprop --
// torch's sign: +1, -1, or +0 for both zeros and for NaN (it compares with 0).
template <class V>
inline typename V::reg torch_sign(typename V::reg x) {
    const auto zero = V::broadcast(0);
    const auto one = V::broadcast(1);
    return V::sub(V::select(V::less(zero, x), one, zero), V::select(V::less(x, zero), one, zero));
}

template <template <class> class Lane, class T>
void rprop_chunk(const RpropConstants<T>& constants, const RpropTensor<T>& t, const Storage* storage, std::size_t begin, std::size_t end) {
    const RpropConstants<T> c = constants;  // a local copy: see nadam_chunk
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State prev = arrays.state(t.prev, begin, 1);
    const typename A::State step_size = arrays.state(t.step_size, begin, 2);
    select(c.grad_scale.active, [&](auto scales) {
    select(t.initialize_step_size, [&](auto first_step) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            const auto prev_loaded = load<V>(prev, i);
            typename V::reg s;
            if constexpr (first_step) {
                s = V::broadcast(c.initial_step_size);
            } else {
                s = load<V>(step_size, i);
            }
            const auto zero = V::broadcast(0);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            // The sign of g * prev as torch computes it, from the rounded product
            // (a NaN product counts as 0: the step size stays and g is kept).
            const auto product = V::mul(g, prev_loaded);
            const auto flipped = V::less(product, zero);
            const auto factor = V::select(V::less(zero, product), V::broadcast(c.etaplus),
                                          V::select(flipped, V::broadcast(c.etaminus), V::broadcast(1)));
            s = V::clamp(V::mul(s, factor), V::broadcast(c.step_size_min), V::broadcast(c.step_size_max));
            g = V::select(flipped, zero, g);
            // torch's addcmul(sign(g), step_size, value=-1): (-1 * sign) * step_size, so a zero
            // sign gives -0 and leaves a -0 parameter -0.
            const auto update = V::mul(V::mul(V::broadcast(-1), torch_sign<V>(g)), s);
            store<V>(step_size, i, s);
            store<V>(prev, i, g);
            store<V>(param, i, V::add(p, update));
        });
    }); });
    });
}

// --------------------------------------------------------------------- ASGD --
template <template <class> class Lane, class T>
void asgd_chunk(const AsgdConstants<T>& constants, const AsgdTensor<T>& t, const Storage* storage, std::size_t begin, std::size_t end) {
    const AsgdConstants<T> c = constants;  // a local copy: see nadam_chunk
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State ax = arrays.state(t.ax, begin, 1);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
    select(c.copies_average, [&](auto copies_average) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            auto p = load<V>(param, i);
            const auto grad_loaded = load<V>(grad, i);
            typename V::reg a{};
            if constexpr (!copies_average) a = load<V>(ax, i);
            auto g = signed_gradient<V>(grad_loaded, c.grad_scale, c.grad_sign, scales);
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), p));
            p = V::mul(p, V::broadcast(c.decay_factor));
            p = V::add(p, V::mul(V::broadcast(c.neg_eta), g));
            if constexpr (copies_average) {
                a = p;
            } else {
                a = V::add(a, V::mul(V::sub(p, a), V::broadcast(c.mu)));
            }
            store<V>(ax, i, a);
            store<V>(param, i, p);
        });
    }); }); });
    });
}

// ---------------------------------------------------------- schedule-free --
// The `schedulefree` package's operation order (AdamWScheduleFree,
// SGDScheduleFree, single-tensor path). The parameter holds y; z is the base
// sequence; the average x is never stored in train mode: y moves toward z by
// the new iterate's weight ckp1, then along the (normalized) gradient.
template <template <class> class Lane, class T>
void schedule_free_adamw_chunk(const ScheduleFreeAdamWConstants<T>& c, const ScheduleFreeAdamWTensor<T>& t, const Storage* storage,
                               std::size_t begin, std::size_t end) {
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State z = arrays.state(t.z, begin, 1);
    const typename A::State exp_avg_sq = arrays.state(t.exp_avg_sq, begin, 2);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
    select(t.initialize_z, [&](auto first_step) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto y = load<V>(param, i);
            auto g = load<V>(grad, i);
            const auto exp_avg_sq_loaded = load<V>(exp_avg_sq, i);
            // z starts as a copy of the parameter.
            typename V::reg z_old = y;
            if constexpr (!first_step) z_old = load<V>(z, i);
            if constexpr (scales) g = V::mul(g, V::broadcast(c.grad_scale.factor));
            const auto v = V::add(V::mul(exp_avg_sq_loaded, V::broadcast(c.beta2)),
                                  V::mul(V::mul(V::broadcast(c.one_minus_beta2), g), g));
            store<V>(exp_avg_sq, i, v);
            const auto denom = V::add(V::sqrt(V::div(v, V::broadcast(c.bias_correction2))), V::broadcast(c.eps));
            auto u = V::div(g, denom);
            if constexpr (has_weight_decay) u = V::add(u, V::mul(V::broadcast(c.weight_decay), y));
            store<V>(param, i, V::add(lerp<V>(y, z_old, c.average_lerp), V::mul(V::broadcast(c.y_step), u)));
            store<V>(z, i, V::add(z_old, V::mul(V::broadcast(c.neg_lr), u)));
        });
    }); }); });
    });
}

template <template <class> class Lane, class T>
void schedule_free_sgd_chunk(const ScheduleFreeSgdConstants<T>& c, const ScheduleFreeSgdTensor<T>& t, const Storage* storage,
                             std::size_t begin, std::size_t end) {
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
    const typename A::Param param = arrays.param(t.param, begin);
    const typename A::Input grad = arrays.grad(t.grad, begin);
    const typename A::State z = arrays.state(t.z, begin, 1);
    select(c.grad_scale.active, [&](auto scales) {
    select(c.has_weight_decay, [&](auto has_weight_decay) {
    select(t.initialize_z, [&](auto first_step) {
        for_each_lane<Lane, T>(end - begin, anchor_of(param), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            const auto y = load<V>(param, i);
            auto g = load<V>(grad, i);
            typename V::reg z_old = y;
            if constexpr (!first_step) z_old = load<V>(z, i);
            if constexpr (scales) g = V::mul(g, V::broadcast(c.grad_scale.factor));
            if constexpr (has_weight_decay) g = V::add(g, V::mul(V::broadcast(c.weight_decay), y));
            store<V>(param, i, V::add(lerp<V>(y, z_old, c.average_lerp), V::mul(V::broadcast(c.y_step), g)));
            store<V>(z, i, V::add(z_old, V::mul(V::broadcast(c.neg_lr), g)));
        });
    }); }); });
    });
}

/// param <- lerp(param, toward, w) over [begin, end), as torch's lerp_ with a
/// scalar weight: the schedule-free switch between y and x (toward: z).
template <template <class> class Lane, class T>
void interpolate_chunk(const LerpConstants<T>& w, T* param, T* toward, const Storage* storage, std::size_t begin,
                       std::size_t end) {
    with_arrays<T>(storage, [&](auto arrays) {
    using A = decltype(arrays);
        const typename A::Param p = arrays.param(param, begin);
        const typename A::State z = arrays.state(toward, begin, 1);
        for_each_lane<Lane, T>(end - begin, anchor_of(p), [&](auto lane, std::size_t i) LRCORE_ALWAYS_INLINE {
            using V = decltype(lane);
            store<V>(p, i, lerp<V>(load<V>(p, i), load<V>(z, i), w));
        });
    });
}

}  // namespace
}  // namespace lrcore::kernels

// Adafactor: passes with row and column reductions, on the same lanes.
#include "kernels/factored_rules.hpp"
