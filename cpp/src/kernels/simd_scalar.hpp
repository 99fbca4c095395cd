// The one-lane "vector": what every kernel's scalar tail runs, and the whole
// loop on targets without a SIMD variant. Its operations round exactly like
// the vector ones (IEEE add, sub, mul, div, sqrt; no contraction), so a tail
// element gets the same bits as it would in a vector lane.
//
// Everything here has internal linkage: each per-ISA translation unit gets its
// own copy compiled with its own flags, so the linker can never mix them.
#pragma once

#include <cmath>
#include <cstddef>

namespace lrcore::kernels {
namespace {

template <class T>
struct ScalarLane {
    using value_type = T;
    using reg = T;
    static constexpr std::size_t width = 1;

    static reg load(const T* p) { return *p; }
    static void store(T* p, reg v) { *p = v; }
    static reg broadcast(T x) { return x; }
    static reg add(reg a, reg b) { return a + b; }
    static reg sub(reg a, reg b) { return a - b; }
    static reg mul(reg a, reg b) { return a * b; }
    static reg div(reg a, reg b) { return a / b; }
    static reg sqrt(reg a) { return std::sqrt(a); }
    // Same NaN rule as the x86 max instructions: if either is NaN, b is returned.
    static reg max(reg a, reg b) { return a > b ? a : b; }
};

}  // namespace
}  // namespace lrcore::kernels
