// The 16-bit storage formats, element by element: the definition every lane
// type's conversions must reproduce bit for bit (ScalarLane uses these
// directly; the vector lanes' versions are tested against them).
//
// bfloat16 is the top half of a float32; float16 is IEEE binary16 (5
// exponent bits, 10 fraction bits, subnormals kept). Widening is exact.
// Rounding to nearest (ties to even) keeps a NaN a NaN: its sign and top
// fraction bits, with the quiet bit set, as the x86 conversion instructions do.
//
// Stochastic rounding rounds the magnitude up with probability (|x| - |below|)
// / spacing, where `below` is x truncated toward zero and `spacing` the gap to
// the next value of the format; the probability is exact for bfloat16 (16
// random bits against the 16 dropped bits) and within 2**-24 for float16 (24
// random bits against the fraction). A value past the largest finite one may
// round up to infinity, with that same probability.
//
// The random bits come from a counter-based generator: element i of a chunk
// keyed by (key_low, key_high) gets random_bits(key_low, key_high, i), a pure
// function, so any split of the work gives the same bits.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lrcore::kernels {
namespace {

inline std::uint32_t float_bits(float x) {
    std::uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

inline float bits_float(std::uint32_t b) {
    float x;
    std::memcpy(&x, &b, sizeof x);
    return x;
}

inline float bfloat16_to_float(std::uint16_t h) { return bits_float(std::uint32_t{h} << 16); }

inline std::uint16_t float_to_bfloat16(float x) {
    const std::uint32_t b = float_bits(x);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((b >> 16) | 0x0040u);
    return static_cast<std::uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

/// `random`'s low 16 bits decide: adding them to the dropped half carries into
/// the kept half with probability (dropped half) / 2**16.
inline std::uint16_t float_to_bfloat16_stochastic(float x, std::uint32_t random) {
    const std::uint32_t b = float_bits(x);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((b >> 16) | 0x0040u);
    return static_cast<std::uint16_t>((b + (random & 0xFFFFu)) >> 16);
}

inline float float16_to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t{h & 0x8000u} << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1Fu;
    const std::uint32_t fraction = h & 0x3FFu;
    if (exponent == 0x1Fu) return bits_float(sign | 0x7F800000u | (fraction << 13));
    if (exponent != 0) return bits_float(sign | ((exponent + 112u) << 23) | (fraction << 13));
    // Zero or subnormal: fraction * 2**-24, exact in float32.
    const float magnitude = static_cast<float>(fraction) * bits_float(0x33800000u);  // 2**-24
    return bits_float(sign | float_bits(magnitude));
}

/// Round to nearest even, or toward zero (truncation), as vcvtps2ph does.
inline std::uint16_t float_to_float16(float x, bool toward_zero) {
    const std::uint32_t b = float_bits(x);
    const std::uint32_t sign = (b >> 16) & 0x8000u;
    const std::uint32_t a = b & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a == 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7C00u);
    const std::uint32_t biased = a >> 23;
    std::uint32_t significand;  // the value in units of the result's last place, before rounding
    unsigned shift;             // bits dropped
    std::uint32_t base;         // the exponent bits of the result
    if (biased >= 113) {        // a normal float16 (or an overflow)
        if (biased >= 143) {    // >= 2**16
            return static_cast<std::uint16_t>(sign | (toward_zero ? 0x7BFFu : 0x7C00u));
        }
        significand = a & 0x7FFFFFu;
        shift = 13;
        base = (biased - 112u) << 10;
    } else {                    // a float16 subnormal or zero: units of 2**-24
        if (biased < 102) return static_cast<std::uint16_t>(sign);  // < 2**-25: rounds to zero either way
        significand = (a & 0x7FFFFFu) | 0x800000u;
        shift = 126u - biased;  // 14..24
        base = 0;
    }
    std::uint32_t h = base + (significand >> shift);
    if (!toward_zero) {
        const std::uint32_t rest = significand & ((1u << shift) - 1u);
        const std::uint32_t half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1u))) ++h;  // a carry moves into the exponent (up to infinity)
    }
    return static_cast<std::uint16_t>(sign | h);
}

/// The gap between a float16 whose exponent bits are `exponent` and the next
/// one up in magnitude, as its reciprocal: 2**(25 - max(exponent, 1)), a power of two.
inline float float16_inverse_spacing(std::uint32_t exponent) {
    const std::uint32_t e = exponent == 0 ? 1u : exponent;
    return bits_float((127u + 25u - e) << 23);
}

/// `random`'s top 24 bits, as u in [0, 1), against the fraction of the way
/// from the truncated value to the next: up when u < fraction.
inline std::uint16_t float_to_float16_stochastic(float x, std::uint32_t random) {
    const std::uint16_t below = float_to_float16(x, true);
    const float below_value = float16_to_float(below);
    const float fraction = (std::fabs(x) - std::fabs(below_value)) *
                           float16_inverse_spacing((below >> 10) & 0x1Fu);
    const float u = static_cast<float>(random >> 8) * bits_float(0x33800000u);  // 2**-24
    return static_cast<std::uint16_t>(u < fraction ? below + 1u : below);
}

/// A 32-bit finalizer with good avalanche (two xor-shift-multiply rounds).
inline std::uint32_t mix32(std::uint32_t x) {
    x ^= x >> 16;
    x *= 0x21F0AAADu;
    x ^= x >> 15;
    x *= 0x735A2D97u;
    x ^= x >> 15;
    return x;
}

/// One finalizer round over the counter offset by the key: rounding needs
/// uniform, independent-looking bits per element, not a cryptographic stream
/// (a second round made all-bfloat16 Adam 1.3x slower in cache).
inline std::uint32_t random_bits(std::uint32_t key_low, std::uint32_t key_high, std::uint32_t index) {
    return mix32(index + key_low) ^ key_high;
}

/// SplitMix64's finalizer: the keys of a tensor's arrays at a step.
inline std::uint64_t mix64(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

/// The key of array `slot` (0 the parameter, then the rule's states) of a
/// tensor, from the seed, the tensor's stream and the step.
inline std::uint64_t rounding_key(std::uint64_t seed, std::uint64_t stream, std::uint64_t step, std::uint64_t slot) {
    std::uint64_t k = mix64(seed + 0x9E3779B97F4A7C15ull);
    k = mix64(k ^ (stream + 0x632BE59BD9B4E019ull));
    k = mix64(k ^ (step + 0x85157AF5ull));
    return mix64(k ^ (slot * 0xD6E8FEB86659FD93ull + 1));
}

/// Whole arrays, element by element (for drivers that work on float32 copies).
inline void widen_array(const void* data, bool bfloat16, std::size_t count, float* out) {
    const auto* h = static_cast<const std::uint16_t*>(data);
    for (std::size_t i = 0; i < count; ++i) out[i] = bfloat16 ? bfloat16_to_float(h[i]) : float16_to_float(h[i]);
}

/// Rounds `count` values into a 16-bit array: to nearest even, or
/// stochastically with the random bits of key (element i: random_bits(key, i)).
inline void round_array(const float* values, std::size_t count, void* data, bool bfloat16, bool stochastic,
                        std::uint64_t key) {
    auto* h = static_cast<std::uint16_t*>(data);
    const auto low = static_cast<std::uint32_t>(key);
    const auto high = static_cast<std::uint32_t>(key >> 32);
    for (std::size_t i = 0; i < count; ++i) {
        const float x = values[i];
        if (stochastic) {
            const std::uint32_t r = random_bits(low, high, static_cast<std::uint32_t>(i));
            h[i] = bfloat16 ? float_to_bfloat16_stochastic(x, r) : float_to_float16_stochastic(x, r);
        } else {
            h[i] = bfloat16 ? float_to_bfloat16(x) : float_to_float16(x, false);
        }
    }
}

}  // namespace
}  // namespace lrcore::kernels
