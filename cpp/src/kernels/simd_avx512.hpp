// AVX-512F lanes (512-bit). Only included by cpp/src/isa/avx512.cpp, which is
// compiled with the AVX-512F flag and reached only after a CPU check.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace lrcore::kernels {
namespace {

template <class T>
struct Avx512Lane;

template <>
struct Avx512Lane<float> {
    using value_type = float;
    using reg = __m512;
    static constexpr std::size_t width = 16;
    static reg load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
    static reg broadcast(float x) { return _mm512_set1_ps(x); }
    static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
    static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
    static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
    static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
    static reg sqrt(reg a) { return _mm512_sqrt_ps(a); }
    // vmaxps returns b when either operand is NaN; take a back where a is
    // NaN, which gives np.maximum's result (the ScalarLane comment has the rule).
    static reg max(reg a, reg b) {
        return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a);
    }
    // Only the sign bit of `sign` is used (callers pass +0 or -0). The float
    // xor/and forms need AVX-512DQ, so this goes through the integer ones (F).
    static reg flip_sign(reg a, reg sign) {
        const __m512i bit = _mm512_and_si512(_mm512_castps_si512(sign), _mm512_set1_epi32(INT32_MIN));
        return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), bit));
    }
    // The sign bit cleared, through the integer and (the float one needs AVX-512DQ).
    static reg abs(reg a) {
        return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MAX)));
    }
    // np.sign (the ScalarLane comment has the rule): +0, then 1, -1 or a itself where
    // a > 0, a < 0 or a is NaN (disjoint masks).
    static reg sign(reg a) {
        const reg zero = _mm512_setzero_ps();
        reg result = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(a, zero, _CMP_GT_OQ), _mm512_set1_ps(1.0f));
        result = _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(a, zero, _CMP_LT_OQ), _mm512_set1_ps(-1.0f));
        return _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a);
    }
};

template <>
struct Avx512Lane<double> {
    using value_type = double;
    using reg = __m512d;
    static constexpr std::size_t width = 8;
    static reg load(const double* p) { return _mm512_loadu_pd(p); }
    static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
    static reg broadcast(double x) { return _mm512_set1_pd(x); }
    static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
    static reg sub(reg a, reg b) { return _mm512_sub_pd(a, b); }
    static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
    static reg div(reg a, reg b) { return _mm512_div_pd(a, b); }
    static reg sqrt(reg a) { return _mm512_sqrt_pd(a); }
    static reg max(reg a, reg b) {
        return _mm512_mask_mov_pd(_mm512_max_pd(a, b), _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q), a);
    }
    static reg flip_sign(reg a, reg sign) {
        const __m512i bit = _mm512_and_si512(_mm512_castpd_si512(sign), _mm512_set1_epi64(INT64_MIN));
        return _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(a), bit));
    }
    static reg abs(reg a) {
        return _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(a), _mm512_set1_epi64(INT64_MAX)));
    }
    static reg sign(reg a) {
        const reg zero = _mm512_setzero_pd();
        reg result = _mm512_mask_mov_pd(zero, _mm512_cmp_pd_mask(a, zero, _CMP_GT_OQ), _mm512_set1_pd(1.0));
        result = _mm512_mask_mov_pd(result, _mm512_cmp_pd_mask(a, zero, _CMP_LT_OQ), _mm512_set1_pd(-1.0));
        return _mm512_mask_mov_pd(result, _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q), a);
    }
};

}  // namespace
}  // namespace lrcore::kernels
