// AVX2 lanes (256-bit). Only included by cpp/src/isa/avx2.cpp, which is
// compiled with the AVX2 and F16C flags and reached only after a CPU check.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

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
    // All bits set in the lanes where the comparison holds (the ScalarLane comments have the rules).
    using mask = __m256;
    static mask less(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
    static reg select(mask m, reg a, reg b) { return _mm256_blendv_ps(b, a, m); }
    static reg clamp(reg a, reg lo, reg hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, a)); }

    // The 16-bit storage formats, bit for bit as storage_formats.hpp defines them.
    using bits = __m256i;
    static __m256i mix32(__m256i x) {
        x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
        x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x21F0AAAD));
        x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
        x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x735A2D97));
        return _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    }
    static bits random_bits(std::uint32_t key_low, std::uint32_t key_high, std::uint32_t first) {
        const __m256i index = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(first)),
                                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        return _mm256_xor_si256(mix32(_mm256_add_epi32(index, _mm256_set1_epi32(static_cast<int>(key_low)))),
                               _mm256_set1_epi32(static_cast<int>(key_high)));
    }
    // Eight 32-bit lanes holding 16-bit values, stored as eight uint16_t.
    static void store_low_halves(std::uint16_t* p, __m256i x) {
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(x, x), 0x08);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
    }
    static reg load_bfloat16(const std::uint16_t* p) {
        const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
    }
    // A NaN keeps its top bits and gets the quiet bit; everything else `rounded`.
    static __m256i bfloat16_or_nan(reg v, __m256i rounded) {
        const __m256i b = _mm256_castps_si256(v);
        const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40));
        return _mm256_blendv_epi8(rounded, quiet, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    }
    static void store_bfloat16(std::uint16_t* p, reg v) {
        const __m256i b = _mm256_castps_si256(v);
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
        const __m256i rounded =
            _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7FFF)), odd), 16);
        store_low_halves(p, bfloat16_or_nan(v, rounded));
    }
    static void store_bfloat16(std::uint16_t* p, reg v, bits random) {
        const __m256i b = _mm256_castps_si256(v);
        const __m256i rounded =
            _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_and_si256(random, _mm256_set1_epi32(0xFFFF))), 16);
        store_low_halves(p, bfloat16_or_nan(v, rounded));
    }
    static reg load_float16(const std::uint16_t* p) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    static void store_float16(std::uint16_t* p, reg v) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    static void store_float16(std::uint16_t* p, reg v, bits random) {
        const __m128i below = _mm256_cvtps_ph(v, _MM_FROUND_TO_ZERO);
        const reg below_value = _mm256_cvtph_ps(below);
        const __m256i below32 = _mm256_cvtepu16_epi32(below);
        const __m256i exponent = _mm256_max_epu32(_mm256_and_si256(_mm256_srli_epi32(below32, 10),
                                                                   _mm256_set1_epi32(0x1F)),
                                                  _mm256_set1_epi32(1));
        const reg inverse_spacing =
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(152), exponent), 23));
        const reg fraction = _mm256_mul_ps(_mm256_sub_ps(abs(v), abs(below_value)), inverse_spacing);
        const reg u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(random, 8)), _mm256_set1_ps(0x1p-24f));
        const __m256i up = _mm256_castps_si256(_mm256_cmp_ps(u, fraction, _CMP_LT_OQ));  // -1 where up
        store_low_halves(p, _mm256_sub_epi32(below32, up));
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
    using mask = __m256d;
    static mask less(reg a, reg b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
    static reg select(mask m, reg a, reg b) { return _mm256_blendv_pd(b, a, m); }
    static reg clamp(reg a, reg lo, reg hi) { return _mm256_min_pd(hi, _mm256_max_pd(lo, a)); }
};

}  // namespace
}  // namespace lrcore::kernels
