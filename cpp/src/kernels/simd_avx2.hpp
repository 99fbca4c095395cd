// AVX2 lanes (256-bit). Only included by cpp/src/isa/avx2.cpp, which is
// compiled with the AVX2 flag and reached only after a CPU check.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace lrcore::kernels {
namespace {

template <class T>
struct Avx2Lane;

template <>
struct Avx2Lane<float> {
    using value_type = float;
    using reg = __m256;
    static constexpr std::size_t width = 8;
    static reg load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
    static reg broadcast(float x) { return _mm256_set1_ps(x); }
    static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
    static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
    static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
    static reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
    static reg sqrt(reg a) { return _mm256_sqrt_ps(a); }
    // vmaxps returns b when either operand is NaN; blend a back where a is
    // NaN, which gives np.maximum's result (the ScalarLane comment has the rule).
    static reg max(reg a, reg b) {
        return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    }
    // Only the sign bit of `sign` is used (callers pass +0 or -0).
    static reg flip_sign(reg a, reg sign) { return _mm256_xor_ps(a, _mm256_and_ps(sign, _mm256_set1_ps(-0.0f))); }
    static reg abs(reg a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
    // np.sign (the ScalarLane comment has the rule): the masks of a > 0, a < 0 and
    // NaN are disjoint, and both zeros match none of them, giving +0.
    static reg sign(reg a) {
        const reg zero = _mm256_setzero_ps();
        return _mm256_or_ps(_mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_GT_OQ), _mm256_set1_ps(1.0f)),
                                         _mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_LT_OQ), _mm256_set1_ps(-1.0f))),
                            _mm256_and_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q), a));
    }
};

template <>
struct Avx2Lane<double> {
    using value_type = double;
    using reg = __m256d;
    static constexpr std::size_t width = 4;
    static reg load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
    static reg broadcast(double x) { return _mm256_set1_pd(x); }
    static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
    static reg sub(reg a, reg b) { return _mm256_sub_pd(a, b); }
    static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
    static reg div(reg a, reg b) { return _mm256_div_pd(a, b); }
    static reg sqrt(reg a) { return _mm256_sqrt_pd(a); }
    static reg max(reg a, reg b) {
        return _mm256_blendv_pd(_mm256_max_pd(a, b), a, _mm256_cmp_pd(a, a, _CMP_UNORD_Q));
    }
    static reg flip_sign(reg a, reg sign) { return _mm256_xor_pd(a, _mm256_and_pd(sign, _mm256_set1_pd(-0.0))); }
    static reg abs(reg a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
    static reg sign(reg a) {
        const reg zero = _mm256_setzero_pd();
        return _mm256_or_pd(_mm256_or_pd(_mm256_and_pd(_mm256_cmp_pd(a, zero, _CMP_GT_OQ), _mm256_set1_pd(1.0)),
                                         _mm256_and_pd(_mm256_cmp_pd(a, zero, _CMP_LT_OQ), _mm256_set1_pd(-1.0))),
                            _mm256_and_pd(_mm256_cmp_pd(a, a, _CMP_UNORD_Q), a));
    }
};

}  // namespace
}  // namespace lrcore::kernels
