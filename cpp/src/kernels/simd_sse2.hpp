// SSE2 lanes: the x86-64 baseline every 64-bit x86 CPU has.
#pragma once

#include <emmintrin.h>

#include <cstddef>

namespace lrcore::kernels {
namespace {

template <class T>
struct Sse2Lane;

template <>
struct Sse2Lane<float> {
    using value_type = float;
    using reg = __m128;
    static constexpr std::size_t width = 4;
    static reg load(const float* p) { return _mm_loadu_ps(p); }
    static void store(float* p, reg v) { _mm_storeu_ps(p, v); }
    static reg broadcast(float x) { return _mm_set1_ps(x); }
    static reg add(reg a, reg b) { return _mm_add_ps(a, b); }
    static reg sub(reg a, reg b) { return _mm_sub_ps(a, b); }
    static reg mul(reg a, reg b) { return _mm_mul_ps(a, b); }
    static reg div(reg a, reg b) { return _mm_div_ps(a, b); }
    static reg sqrt(reg a) { return _mm_sqrt_ps(a); }
    // maxps returns b when either operand is NaN; put a back where a is NaN,
    // which gives np.maximum's result (the ScalarLane comment has the rule).
    static reg max(reg a, reg b) {
        const reg a_is_nan = _mm_cmpunord_ps(a, a);
        return _mm_or_ps(_mm_and_ps(a_is_nan, a), _mm_andnot_ps(a_is_nan, _mm_max_ps(a, b)));
    }
    // Only the sign bit of `sign` is used (callers pass +0 or -0).
    static reg flip_sign(reg a, reg sign) { return _mm_xor_ps(a, _mm_and_ps(sign, _mm_set1_ps(-0.0f))); }
    static reg abs(reg a) { return _mm_andnot_ps(_mm_set1_ps(-0.0f), a); }
    // np.sign (the ScalarLane comment has the rule): the masks of a > 0, a < 0 and
    // NaN are disjoint, and both zeros match none of them, giving +0.
    static reg sign(reg a) {
        const reg zero = _mm_setzero_ps();
        return _mm_or_ps(_mm_or_ps(_mm_and_ps(_mm_cmpgt_ps(a, zero), _mm_set1_ps(1.0f)),
                                   _mm_and_ps(_mm_cmplt_ps(a, zero), _mm_set1_ps(-1.0f))),
                         _mm_and_ps(_mm_cmpunord_ps(a, a), a));
    }
};

template <>
struct Sse2Lane<double> {
    using value_type = double;
    using reg = __m128d;
    static constexpr std::size_t width = 2;
    static reg load(const double* p) { return _mm_loadu_pd(p); }
    static void store(double* p, reg v) { _mm_storeu_pd(p, v); }
    static reg broadcast(double x) { return _mm_set1_pd(x); }
    static reg add(reg a, reg b) { return _mm_add_pd(a, b); }
    static reg sub(reg a, reg b) { return _mm_sub_pd(a, b); }
    static reg mul(reg a, reg b) { return _mm_mul_pd(a, b); }
    static reg div(reg a, reg b) { return _mm_div_pd(a, b); }
    static reg sqrt(reg a) { return _mm_sqrt_pd(a); }
    static reg max(reg a, reg b) {
        const reg a_is_nan = _mm_cmpunord_pd(a, a);
        return _mm_or_pd(_mm_and_pd(a_is_nan, a), _mm_andnot_pd(a_is_nan, _mm_max_pd(a, b)));
    }
    static reg flip_sign(reg a, reg sign) { return _mm_xor_pd(a, _mm_and_pd(sign, _mm_set1_pd(-0.0))); }
    static reg abs(reg a) { return _mm_andnot_pd(_mm_set1_pd(-0.0), a); }
    static reg sign(reg a) {
        const reg zero = _mm_setzero_pd();
        return _mm_or_pd(_mm_or_pd(_mm_and_pd(_mm_cmpgt_pd(a, zero), _mm_set1_pd(1.0)),
                                   _mm_and_pd(_mm_cmplt_pd(a, zero), _mm_set1_pd(-1.0))),
                         _mm_and_pd(_mm_cmpunord_pd(a, a), a));
    }
};

}  // namespace
}  // namespace lrcore::kernels
