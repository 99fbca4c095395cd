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
#include <cstdint>
#include <cstring>
#include <type_traits>

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
    // np.maximum's rule: a NaN in either operand gives NaN, a's if both are
    // NaN (so the payload is the first NaN operand's); otherwise like the x86
    // max instructions, which return b for equal values such as max(+0, -0).
    // The vector lanes implement exactly this, so lanes never disagree.
    static reg max(reg a, reg b) { return a != a ? a : (a > b ? a : b); }
    // a with its sign bit flipped where `sign` has it set: IEEE negation, which
    // (unlike multiplying by -1) also flips the sign of a NaN, as numpy's and
    // torch's unary minus do.
    static reg flip_sign(reg a, reg sign) {
        using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        Bits x;
        Bits m;
        std::memcpy(&x, &a, sizeof(T));
        std::memcpy(&m, &sign, sizeof(T));
        x ^= m & (Bits{1} << (8 * sizeof(T) - 1));
        std::memcpy(&a, &x, sizeof(T));
        return a;
    }
    // |a|: the sign bit cleared (also of a NaN, as np.abs does).
    static reg abs(reg a) { return std::fabs(a); }
    // np.sign: 1 for a > 0, -1 for a < 0, +0 for either zero, and a NaN itself
    // (its payload kept). The vector lanes select exactly these four cases.
    static reg sign(reg a) { return a > T(0) ? T(1) : (a < T(0) ? T(-1) : (a == T(0) ? T(0) : a)); }
};

}  // namespace
}  // namespace lrcore::kernels
