// AVX-512F lanes (512-bit). Only included by cpp/src/isa/avx512.cpp, which is
// compiled with the AVX-512F flag and reached only after a CPU check.
#pragma once

#include <immintrin.h>

#include <cstddef>

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
    static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
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
    static reg max(reg a, reg b) { return _mm512_max_pd(a, b); }
};

}  // namespace
}  // namespace lrcore::kernels
