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

#include "kernels/storage_formats.hpp"

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
    // A comparison's result, for select: one bool here, one per lane in the vector lanes.
    using mask = bool;
    // a < b, false when either is NaN (as every vector lane's ordered compare).
    static mask less(reg a, reg b) { return a < b; }
    // m ? a : b, lane by lane.
    static reg select(mask m, reg a, reg b) { return m ? a : b; }
    // min(max(a, lo), hi) as torch.clamp computes it: a NaN `a` stays NaN (lo
    // and hi are never NaN). The vector lanes use max(lo, a) and min(hi, .),
    // whose x86 forms return their second operand, a, when one is NaN.
    static reg clamp(reg a, reg lo, reg hi) {
        const reg at_least_lo = lo > a ? lo : a;
        return hi < at_least_lo ? hi : at_least_lo;
    }

    // The 16-bit storage formats (float lanes only; storage_formats.hpp defines them).
    using bits = std::uint32_t;
    static bits random_bits(std::uint32_t key_low, std::uint32_t key_high, std::uint32_t first) {
        return kernels::random_bits(key_low, key_high, first);
    }
    static reg load_bfloat16(const std::uint16_t* p) { return bfloat16_to_float(*p); }
    static void store_bfloat16(std::uint16_t* p, reg v) { *p = float_to_bfloat16(v); }
    static void store_bfloat16(std::uint16_t* p, reg v, bits random) { *p = float_to_bfloat16_stochastic(v, random); }
    static reg load_float16(const std::uint16_t* p) { return float16_to_float(*p); }
    static void store_float16(std::uint16_t* p, reg v) { *p = float_to_float16(v, false); }
    static void store_float16(std::uint16_t* p, reg v, bits random) { *p = float_to_float16_stochastic(v, random); }
};

}  // namespace
}  // namespace lrcore::kernels
