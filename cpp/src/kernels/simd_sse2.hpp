// SSE2 lanes: the x86-64 baseline every 64-bit x86 CPU has.
#pragma once

#include <emmintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/storage_formats.hpp"

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
    // All bits set in the lanes where the comparison holds (the ScalarLane comments have the rules).
    using mask = __m128;
    static mask less(reg a, reg b) { return _mm_cmplt_ps(a, b); }
    static reg select(mask m, reg a, reg b) { return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b)); }
    static reg clamp(reg a, reg lo, reg hi) { return _mm_min_ps(hi, _mm_max_ps(lo, a)); }

    // The 16-bit storage formats. SSE2 has no conversion instructions: but for
    // the bfloat16 load (an interleave), element by element, exactly as
    // storage_formats.hpp defines them (the baseline runs these only on CPUs without AVX2).
    using bits = __m128i;
    static bits random_bits(std::uint32_t key_low, std::uint32_t key_high, std::uint32_t first) {
        alignas(16) std::uint32_t r[4];
        for (std::uint32_t k = 0; k < 4; ++k) r[k] = kernels::random_bits(key_low, key_high, first + k);
        return _mm_load_si128(reinterpret_cast<const __m128i*>(r));
    }
    static reg load_bfloat16(const std::uint16_t* p) {
        const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
        return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), h));
    }
    static reg load_float16(const std::uint16_t* p) {
        return _mm_setr_ps(float16_to_float(p[0]), float16_to_float(p[1]), float16_to_float(p[2]),
                           float16_to_float(p[3]));
    }
    template <class Convert>
    static void store_each(std::uint16_t* p, reg v, Convert&& convert) {
        alignas(16) float x[4];
        _mm_store_ps(x, v);
        for (int k = 0; k < 4; ++k) p[k] = convert(x[k], k);
    }
    template <class Convert>
    static void store_each(std::uint16_t* p, reg v, bits random, Convert&& convert) {
        alignas(16) std::uint32_t r[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(r), random);
        store_each(p, v, [&](float x, int k) { return convert(x, r[k]); });
    }
    static void store_bfloat16(std::uint16_t* p, reg v) {
        store_each(p, v, [](float x, int) { return float_to_bfloat16(x); });
    }
    static void store_bfloat16(std::uint16_t* p, reg v, bits random) {
        store_each(p, v, random, [](float x, std::uint32_t r) { return float_to_bfloat16_stochastic(x, r); });
    }
    static void store_float16(std::uint16_t* p, reg v) {
        store_each(p, v, [](float x, int) { return float_to_float16(x, false); });
    }
    static void store_float16(std::uint16_t* p, reg v, bits random) {
        store_each(p, v, random, [](float x, std::uint32_t r) { return float_to_float16_stochastic(x, r); });
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
    using mask = __m128d;
    static mask less(reg a, reg b) { return _mm_cmplt_pd(a, b); }
    static reg select(mask m, reg a, reg b) { return _mm_or_pd(_mm_and_pd(m, a), _mm_andnot_pd(m, b)); }
    static reg clamp(reg a, reg lo, reg hi) { return _mm_min_pd(hi, _mm_max_pd(lo, a)); }
};

}  // namespace
}  // namespace lrcore::kernels
