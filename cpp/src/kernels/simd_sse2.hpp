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
    static reg max(reg a, reg b) { return _mm_max_ps(a, b); }
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
    static reg max(reg a, reg b) { return _mm_max_pd(a, b); }
};

}  // namespace
}  // namespace lrcore::kernels
