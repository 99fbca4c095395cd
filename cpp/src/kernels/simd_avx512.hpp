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
    // One bit per lane, set where the comparison holds (the ScalarLane comments have the rules).
    using mask = __mmask16;
    static mask less(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
    static reg select(mask m, reg a, reg b) { return _mm512_mask_blend_ps(m, b, a); }
    static reg clamp(reg a, reg lo, reg hi) { return _mm512_min_ps(hi, _mm512_max_ps(lo, a)); }

    // The 16-bit storage formats, bit for bit as storage_formats.hpp defines them.
    using bits = __m512i;
    static __m512i mix32(__m512i x) {
        x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
        x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x21F0AAAD));
        x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
        x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x735A2D97));
        return _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
    }
    static bits random_bits(std::uint32_t key_low, std::uint32_t key_high, std::uint32_t first) {
        const __m512i index = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(first)),
                                               _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        return _mm512_xor_si512(mix32(_mm512_add_epi32(index, _mm512_set1_epi32(static_cast<int>(key_low)))),
                               _mm512_set1_epi32(static_cast<int>(key_high)));
    }
    static reg load_bfloat16(const std::uint16_t* p) {
        const __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
    }
    // A NaN keeps its top bits and gets the quiet bit; everything else `rounded`; stored as 16 uint16_t.
    static void store_bfloat16_bits(std::uint16_t* p, reg v, __m512i rounded) {
        const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(_mm512_castps_si512(v), 16), _mm512_set1_epi32(0x40));
        const __m512i result = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), quiet);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(result));
    }
    static void store_bfloat16(std::uint16_t* p, reg v) {
        const __m512i b = _mm512_castps_si512(v);
        const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
        store_bfloat16_bits(p, v, _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7FFF)),
                                                                     odd), 16));
    }
    static void store_bfloat16(std::uint16_t* p, reg v, bits random) {
        const __m512i b = _mm512_castps_si512(v);
        store_bfloat16_bits(p, v, _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_and_si512(random,
                                                                                         _mm512_set1_epi32(0xFFFF))),
                                                    16));
    }
    static reg load_float16(const std::uint16_t* p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static void store_float16(std::uint16_t* p, reg v) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                            _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    static void store_float16(std::uint16_t* p, reg v, bits random) {
        const __m256i below = _mm512_cvtps_ph(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const reg below_value = _mm512_cvtph_ps(below);
        const __m512i below32 = _mm512_cvtepu16_epi32(below);
        const __m512i exponent = _mm512_max_epu32(_mm512_and_si512(_mm512_srli_epi32(below32, 10),
                                                                   _mm512_set1_epi32(0x1F)),
                                                  _mm512_set1_epi32(1));
        const reg inverse_spacing =
            _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(152), exponent), 23));
        const reg fraction = _mm512_mul_ps(_mm512_sub_ps(abs(v), abs(below_value)), inverse_spacing);
        const reg u = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(random, 8)), _mm512_set1_ps(0x1p-24f));
        const __m512i result = _mm512_mask_add_epi32(below32, _mm512_cmp_ps_mask(u, fraction, _CMP_LT_OQ), below32,
                                                     _mm512_set1_epi32(1));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(result));
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
    using mask = __mmask8;
    static mask less(reg a, reg b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
    static reg select(mask m, reg a, reg b) { return _mm512_mask_blend_pd(m, b, a); }
    static reg clamp(reg a, reg lo, reg hi) { return _mm512_min_pd(hi, _mm512_max_pd(lo, a)); }
};

}  // namespace
}  // namespace lrcore::kernels
