// The whole-gradient passes (cpp/src/gradient_checks.cpp) for one chunk of
// one array, built once per instruction set like the update rules: each
// cpp/src/isa/<name>.cpp instantiates a GradientPassTable with the vector
// width it is compiled for, and gradient_checks.cpp picks the table that
// matches the active kernel table.
//
// Bitwise agreement across instruction sets. A vector reduction usually
// keeps one partial sum per lane, so its result depends on the vector width.
// Here every chunk is summed into a fixed set of `accumulators` (32) doubles,
// whatever the width: element i of the chunk always goes to accumulator
// i % 32, each accumulator adds its elements in increasing order starting from
// +0.0, and the 32 are then added in one fixed tree. SSE2 holds them in 16
// registers of 2 lanes, AVX2 in 8 of 4 and AVX-512 in 4 of 8, so all three
// (and the scalar reference below) perform exactly the same additions. Why
// 32: with 16, AVX-512 has only two add chains per 16 floats and the add
// latency, not memory, limits one core (measured ~1.4x the read roof on
// float32); four chains keep up with memory. SSE2 spills a little, but it is
// only the fallback for CPUs without AVX2.
//
// The vector body starts at an aligned address (so no load straddles two
// cache lines); the elements before it are added one by one into their own
// accumulators first, and the vector lanes are mapped back to accumulators by
// the offset afterwards, so alignment changes nothing in the result.
//
// Included only by the per-ISA translation units (and by the tests, for the
// scalar reference), inside an anonymous namespace like the lane headers, so
// each unit gets its own copy compiled with its own flags.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

namespace lrcore::kernels {

template <class T>
struct TypedGradientPasses {
    /// False when some element is NaN or +-Inf (the exponent bits are all ones).
    bool (*all_finite)(const T* x, std::size_t n);
    /// sum of x^2 (in double, the fixed order above).
    double (*sum_squares)(const T* x, std::size_t n);
    /// sum of |x| (in double, the fixed order above).
    double (*sum_abs)(const T* x, std::size_t n);
    /// sum of |x|^p for a finite p > 0 (in double, the fixed order above; |x|^p by power_of_magnitude).
    double (*sum_powers)(const T* x, std::size_t n, double p);
    /// max |x|, 0 for no elements, a quiet NaN when any element is NaN.
    double (*max_abs)(const T* x, std::size_t n);
    /// x <- x * factor.
    void (*scale)(T* x, std::size_t n, T factor);
};

struct GradientPassTable {
    const char* name;
    TypedGradientPasses<float> f32;
    TypedGradientPasses<double> f64;

    template <class T>
    const TypedGradientPasses<T>& of() const {
        if constexpr (sizeof(T) == sizeof(float)) {
            return f32;
        } else {
            return f64;
        }
    }
};

// One accessor per instruction set, defined next to the kernel tables in cpp/src/isa/<name>.cpp.
const GradientPassTable& baseline_gradient_passes();
#if defined(LRCORE_HAVE_X86_VARIANTS)
const GradientPassTable& avx2_gradient_passes();
const GradientPassTable& avx512_gradient_passes();
#endif

namespace {
namespace gradient_passes {

constexpr std::size_t accumulators = 32;

/// The fixed tree the accumulators are added in: neighbours pairwise, level by
/// level, ((a0 + a1) + (a2 + a3)) + ...
inline double add_accumulators(const double* a) {
    double level[accumulators];
    for (std::size_t k = 0; k < accumulators; ++k) level[k] = a[k];
    for (std::size_t width = accumulators / 2; width >= 1; width /= 2) {
        for (std::size_t k = 0; k < width; ++k) level[k] = level[2 * k] + level[2 * k + 1];
    }
    return level[0];
}

/// The definition every variant reproduces: element i into accumulator i % 32.
template <class T, class Term>
double reference_sum(const T* x, std::size_t n, Term term) {
    double acc[accumulators] = {};
    for (std::size_t i = 0; i < n; ++i) acc[i % accumulators] += term(static_cast<double>(x[i]));
    return add_accumulators(acc);
}

template <class T>
struct Bits;
template <>
struct Bits<float> {
    using type = std::uint32_t;
    static constexpr type exponent = 0x7f800000u;
    static constexpr type lowest = 0x00800000u;  // the exponent's lowest bit
    static constexpr type sign = 0x80000000u;
};
template <>
struct Bits<double> {
    using type = std::uint64_t;
    static constexpr type exponent = 0x7ff0000000000000ull;
    static constexpr type lowest = 0x0010000000000000ull;
    static constexpr type sign = 0x8000000000000000ull;
};

// Adding the exponent's lowest bit to the masked exponent carries into the
// sign bit exactly when the exponent is all ones (NaN or Inf), so OR-ing
// those sums and testing the sign bit once is an exact, branch-free test
// (integer operations only, unaffected by any floating-point mode).
template <class T>
bool reference_all_finite(const T* x, std::size_t n) {
    using B = Bits<T>;
    typename B::type any = 0;
    for (std::size_t i = 0; i < n; ++i) {
        typename B::type bits;
        std::memcpy(&bits, x + i, sizeof bits);
        any |= (bits & B::exponent) + B::lowest;
    }
    return (any & B::sign) == 0;
}

template <class T>
double reference_max_abs(const T* x, std::size_t n) {
    T result = 0;
    bool nan = false;
    for (std::size_t i = 0; i < n; ++i) {
        const T a = std::fabs(x[i]);
        nan |= a != a;
        result = a > result ? a : result;  // exact, so the order of comparisons does not matter
    }
    return nan ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(result);
}

template <class T>
void reference_scale(T* x, std::size_t n, T factor) {
    for (std::size_t i = 0; i < n; ++i) x[i] = x[i] * factor;
}

inline double square(double v) { return v * v; }
inline double magnitude(double v) { return std::fabs(v); }

// ----------------------------------------------------------- |x|^p, any p --
// |x|^p = 2^(p * log2|x|) with the same IEEE double operations (no fused
// multiply-add, no library call) on one double or on every lane of a vector,
// so each instruction set and the scalar reference get the same bits. About
// 2e-16 relative error on log2 and 2^f; for |p * log2|x|| up to ~1000 the
// product's rounding leaves under 1e-13 relative error on a term.
// `D` is double or a vector of doubles, `I` the matching int64 type.
inline std::int64_t bits_of(double v) {
    std::int64_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
}
inline double double_of(std::int64_t b) {
    double v;
    std::memcpy(&v, &b, sizeof v);
    return v;
}
template <class D, class I>
inline I bits_of(D v) { return (I)v; }
template <class D, class I>
inline D double_of(I b) { return (D)b; }

template <class D, class I>
D power_of_magnitude(D v, double p) {
    constexpr std::int64_t magnitude_mask = 0x7FFFFFFFFFFFFFFFll;
    constexpr double round_magic = 0x1.8p52;  // adding and subtracting it rounds to an integer, ties to even
    D a;
    if constexpr (std::is_same_v<D, double>) {
        a = double_of(bits_of(v) & magnitude_mask);
    } else {
        a = double_of<D, I>(bits_of<D, I>(v) & magnitude_mask);
    }
    // Subnormal inputs (float64 only) are scaled into the normal range first.
    const auto tiny = a < 0x1p-1000;
    D scaled = tiny ? a * 0x1p200 : a;
    D offset = tiny ? D{} - 200.0 : D{} + 0.0;
    I b;
    if constexpr (std::is_same_v<D, double>) {
        b = bits_of(scaled);
    } else {
        b = bits_of<D, I>(scaled);
    }
    // scaled = m * 2^e with m in [sqrt(1/2), sqrt(2)).
    I e = ((b >> 52) & 0x7FF) - 1023;
    const I fraction_bits = (b & 0x000FFFFFFFFFFFFFll) | 0x3FF0000000000000ll;
    D m;
    if constexpr (std::is_same_v<D, double>) {
        m = double_of(fraction_bits);
    } else {
        m = double_of<D, I>(fraction_bits);
    }
    const auto high = m > 0x1.6a09e667f3bcdp0;  // sqrt(2)
    m = high ? m * 0.5 : m;
    e = high ? e + 1 : e;
    // e as a double, exactly: the bits of 2^52 + (e + 1024), minus 2^52 + 1024.
    D exponent;
    if constexpr (std::is_same_v<D, double>) {
        exponent = double_of((e + 1024) | 0x4330000000000000ll) - 0x1p52 - 1024.0;
    } else {
        exponent = double_of<D, I>((e + 1024) | 0x4330000000000000ll) - 0x1p52 - 1024.0;
    }
    exponent = exponent + offset;
    // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716: the odd series to s^23.
    const D s = (m - 1.0) / (m + 1.0);
    const D s2 = s * s;
    D series = D{} + 1.0 / 23.0;
    for (int k = 10; k >= 0; --k) series = series * s2 + 1.0 / (2 * k + 1);
    const D log2_m = (2.0 * s * series) * 1.4426950408889634;  // 1 / ln 2
    D y = p * exponent + p * log2_m;
    y = y > 1100.0 ? D{} + 1100.0 : y;  // beyond the double range either way: keeps the scaling below valid
    y = y < -1200.0 ? D{} - 1200.0 : y;
    const D k = (y + round_magic) - round_magic;
    const D t = (y - k) * 0.6931471805599453;  // (y - k) ln 2, |t| <= 0.3466
    // 2^(y - k) = e^t: Taylor to t^15.
    D power = D{} + 1.0 / 1307674368000.0;
    const double inverse_factorials[15] = {1.0 / 87178291200.0, 1.0 / 6227020800.0, 1.0 / 479001600.0,
                                           1.0 / 39916800.0,   1.0 / 3628800.0,    1.0 / 362880.0,
                                           1.0 / 40320.0,      1.0 / 5040.0,       1.0 / 720.0,
                                           1.0 / 120.0,        1.0 / 24.0,         1.0 / 6.0,
                                           0.5,                1.0,                1.0};
    for (double c : inverse_factorials) power = power * t + c;
    // Times 2^k in two normal factors: 2^k1 with k1 clamped to the normal exponents, then 2^(k - k1).
    I k_int;
    if constexpr (std::is_same_v<D, double>) {
        k_int = bits_of(k + round_magic) - bits_of(round_magic);
    } else {
        k_int = bits_of<D, I>(k + round_magic) - bits_of(round_magic);
    }
    I k1 = k_int > 1023 ? k_int - k_int + 1023 : k_int;
    k1 = k1 < -1022 ? k1 - k1 - 1022 : k1;
    D result;
    if constexpr (std::is_same_v<D, double>) {
        result = power * double_of((k1 + 1023) << 52) * double_of((k_int - k1 + 1023) << 52);
    } else {
        result = power * double_of<D, I>((k1 + 1023) << 52) * double_of<D, I>((k_int - k1 + 1023) << 52);
    }
    // 0^p = 0, inf^p = inf, NaN stays NaN.
    result = a == 0.0 ? D{} + 0.0 : result;
    result = a == __builtin_inf() ? a : result;
    return a != a ? a : result;
}

/// |v|^p for a whole p in [1, 64] by repeated squaring: a few multiplications,
/// bits of p from the highest down (the same order on every lane and in the
/// scalar form), within log2(p) + 1 roundings of the exact power. The norms
/// of whole order (3, 4, ...) are the common ones after 1, 2 and inf.
template <class D>
D whole_power_of_magnitude(D a, unsigned p) {
    D result = a;
    int top = 31 - __builtin_clz(p);
    for (int bit = top - 1; bit >= 0; --bit) {
        result = result * result;
        if ((p >> bit) & 1u) result = result * a;
    }
    return result;
}

/// Whether p takes whole_power_of_magnitude.
inline bool whole_order(double p) { return p >= 1.0 && p <= 64.0 && p == static_cast<double>(static_cast<int>(p)); }

template <class T>
double reference_sum_powers(const T* x, std::size_t n, double p) {
    if (whole_order(p)) {
        const unsigned order = static_cast<unsigned>(p);
        return reference_sum(x, n, [order](double v) { return whole_power_of_magnitude(std::fabs(v), order); });
    }
    return reference_sum(x, n, [p](double v) { return power_of_magnitude<double, std::int64_t>(v, p); });
}

template <class T>
double reference_sum_squares(const T* x, std::size_t n) { return reference_sum(x, n, square); }
template <class T>
double reference_sum_abs(const T* x, std::size_t n) { return reference_sum(x, n, magnitude); }

#if defined(__GNUC__)
#if defined(__AVX__)
#include <immintrin.h>
#endif
// Vector versions in GCC/Clang vector types of `Bytes` bytes: the translation
// unit's flags decide which instructions they become (SSE2, AVX2, AVX-512).
// Loads and stores go through memcpy, so any alignment is valid.
template <std::size_t Bytes>
struct Vectors {
    typedef double D __attribute__((vector_size(Bytes)));
    typedef float HalfF __attribute__((vector_size(Bytes / 2)));  // as many floats as D has doubles
    typedef float F __attribute__((vector_size(Bytes)));
    typedef std::int64_t I64 __attribute__((vector_size(Bytes)));
    typedef std::int32_t I32 __attribute__((vector_size(Bytes)));
    static constexpr std::size_t lanes = Bytes / sizeof(double);
    static constexpr std::size_t registers = accumulators / lanes;
};

/// Elements before the first `Bytes`-aligned one (at most n).
template <class T, std::size_t Bytes>
std::size_t prologue_length(const T* x, std::size_t n) {
    const std::size_t misaligned = (reinterpret_cast<std::uintptr_t>(x) % Bytes) / sizeof(T);
    const std::size_t peel = misaligned == 0 ? 0 : Bytes / sizeof(T) - misaligned;
    return peel < n ? peel : n;
}

/// Loads accumulators' worth of elements (32) of x as `registers` double vectors.
template <std::size_t Bytes, class T>
inline void load_widened(const T* x, typename Vectors<Bytes>::D* out) {
    using V = Vectors<Bytes>;
    for (std::size_t r = 0; r < V::registers; ++r) {
        if constexpr (sizeof(T) == sizeof(float)) {
            // GCC 12 splits a generic 8-float widening into two halves and a
            // lane insert; the conversion instruction itself is one step.
#if defined(__AVX512F__)
            if constexpr (Bytes == 64) {
                out[r] = (typename V::D)_mm512_cvtps_pd(_mm256_loadu_ps(x + r * V::lanes));
                continue;
            }
#endif
#if defined(__AVX__)
            if constexpr (Bytes == 32) {
                out[r] = (typename V::D)_mm256_cvtps_pd(_mm_loadu_ps(x + r * V::lanes));
                continue;
            }
#endif
            typename V::HalfF half;
            std::memcpy(&half, x + r * V::lanes, sizeof half);
            out[r] = __builtin_convertvector(half, typename V::D);
        } else {
            std::memcpy(&out[r], x + r * V::lanes, sizeof out[r]);
        }
    }
}

/// acc + a * b rounded once (a fused multiply-add where the unit has one).
/// Only for products that are exact in double, where it gives the bits of
/// acc + (a * b): the square of a widened float32 (24-bit significands make a
/// 48-bit product, never subnormal nor overflowing) or |x| * 1. It moves the
/// additions onto the multiply units, which one core otherwise leaves idle
/// while the conversions and additions share the same ports.
template <std::size_t Bytes>
inline typename Vectors<Bytes>::D add_exact_product(typename Vectors<Bytes>::D acc, typename Vectors<Bytes>::D a,
                                                    typename Vectors<Bytes>::D b) {
    using D [[maybe_unused]] = typename Vectors<Bytes>::D;
#if defined(__AVX512F__)
    if constexpr (Bytes == 64) return (D)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)acc);
#endif
#if defined(__FMA__)
    if constexpr (Bytes == 32) return (D)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)acc);
#endif
    return acc + a * b;
}

template <class Term, class D, class = void>
struct fuses_accumulation : std::false_type {};
template <class Term, class D>
struct fuses_accumulation<
    Term, D, std::void_t<decltype(std::declval<const Term&>().accumulate(std::declval<D>(), std::declval<D>()))>>
    : std::true_type {};

/// acc + term(v), or term.accumulate(acc, v) for a term that fuses the two.
template <class VectorTerm, class D>
inline D accumulate(const VectorTerm& term, D acc, D v) {
    if constexpr (fuses_accumulation<VectorTerm, D>::value) {
        return term.accumulate(acc, v);
    } else {
        return acc + term(v);
    }
}

/// The fixed-order sum of term(x[i]) (term: double vector -> double vector,
/// the same operation as the scalar term on every lane).
template <std::size_t Bytes, class T, class VectorTerm, class ScalarTerm>
double vector_sum(const T* x, std::size_t n, VectorTerm vector_term, ScalarTerm scalar_term) {
    using V = Vectors<Bytes>;
    double acc[accumulators] = {};
    // Aligned to the widest load used (a vector of T) so it never splits a cache line.
    const std::size_t peel = prologue_length<T, Bytes>(x, n);
    std::size_t i = 0;
    for (; i < peel; ++i) acc[i] += scalar_term(static_cast<double>(x[i]));
    // Lane k of the body is element peel + k (mod 32): start each lane from
    // the accumulator it continues, so the additions stay those of reference_sum.
    typename V::D vacc[V::registers];
    double start[accumulators];
    for (std::size_t k = 0; k < accumulators; ++k) start[k] = acc[(peel + k) % accumulators];
    std::memcpy(vacc, start, sizeof vacc);
    for (; i + accumulators <= n; i += accumulators) {
        typename V::D v[V::registers];
        load_widened<Bytes>(x + i, v);
        for (std::size_t r = 0; r < V::registers; ++r) vacc[r] = accumulate(vector_term, vacc[r], v[r]);
    }
    std::memcpy(start, vacc, sizeof vacc);
    for (std::size_t k = 0; k < accumulators; ++k) acc[(peel + k) % accumulators] = start[k];
    for (; i < n; ++i) acc[i % accumulators] += scalar_term(static_cast<double>(x[i]));
    return add_accumulators(acc);
}

template <std::size_t Bytes>
struct VectorSquare {
    typename Vectors<Bytes>::D operator()(typename Vectors<Bytes>::D v) const { return v * v; }
};
/// The square of widened float32 values, added by add_exact_product.
template <std::size_t Bytes>
struct VectorWidenedSquare : VectorSquare<Bytes> {
    typename Vectors<Bytes>::D accumulate(typename Vectors<Bytes>::D acc, typename Vectors<Bytes>::D v) const {
        return add_exact_product<Bytes>(acc, v, v);
    }
};
// |v| by clearing the sign bit, as std::fabs does for every value including NaN.
template <std::size_t Bytes>
struct VectorMagnitude {
    typename Vectors<Bytes>::D operator()(typename Vectors<Bytes>::D v) const {
        using V = Vectors<Bytes>;
        return (typename V::D)((typename V::I64)v & std::numeric_limits<std::int64_t>::max());
    }
};

template <std::size_t Bytes, class T>
double vector_sum_squares(const T* x, std::size_t n) {
    if constexpr (sizeof(T) == sizeof(float)) {
        return vector_sum<Bytes>(x, n, VectorWidenedSquare<Bytes>{}, square);
    } else {
        return vector_sum<Bytes>(x, n, VectorSquare<Bytes>{}, square);
    }
}
template <std::size_t Bytes, class T>
double vector_sum_abs(const T* x, std::size_t n) {
    return vector_sum<Bytes>(x, n, VectorMagnitude<Bytes>{}, magnitude);
}
template <std::size_t Bytes, class T>
double vector_sum_powers(const T* x, std::size_t n, double p) {
    using V = Vectors<Bytes>;
    if (whole_order(p)) {
        const unsigned order = static_cast<unsigned>(p);
        auto sum = [&](auto fixed) {
            const unsigned k = decltype(fixed)::value != 0 ? decltype(fixed)::value : order;
            return vector_sum<Bytes>(
                x, n, [k](typename V::D v) { return whole_power_of_magnitude(VectorMagnitude<Bytes>{}(v), k); },
                [k](double v) { return whole_power_of_magnitude(std::fabs(v), k); });
        };
        // Orders 3 and 4 with the multiplications unrolled at compile time (the same operations).
        if (order == 3) return sum(std::integral_constant<unsigned, 3>{});
        if (order == 4) return sum(std::integral_constant<unsigned, 4>{});
        return sum(std::integral_constant<unsigned, 0>{});
    }
    return vector_sum<Bytes>(
        x, n, [p](typename V::D v) { return power_of_magnitude<typename V::D, typename V::I64>(v, p); },
        [p](double v) { return power_of_magnitude<double, std::int64_t>(v, p); });
}

/// The exponent test of reference_all_finite on whole vectors; four vectors
/// per step so the OR chains do not limit the loop.
template <std::size_t Bytes, class T>
bool vector_all_finite(const T* x, std::size_t n) {
    using B = Bits<T>;
    using U = typename B::type;
    typedef U I __attribute__((vector_size(Bytes)));
    constexpr std::size_t width = Bytes / sizeof(T);
    constexpr std::size_t unroll = 4;
    const std::size_t peel = prologue_length<T, Bytes>(x, n);
    if (!reference_all_finite(x, peel)) return false;
    I any[unroll] = {};
    std::size_t i = peel;
    for (; i + unroll * width <= n; i += unroll * width) {
        for (std::size_t u = 0; u < unroll; ++u) {
            I bits;
            std::memcpy(&bits, x + i + u * width, sizeof bits);
            any[u] |= (bits & B::exponent) + B::lowest;
        }
    }
    const I all = (any[0] | any[1]) | (any[2] | any[3]);
    U folded = 0;
    for (std::size_t k = 0; k < width; ++k) folded |= all[k];
    if ((folded & B::sign) != 0) return false;
    return reference_all_finite(x + i, n - i);
}

/// max |x| as an integer maximum: with the sign bit cleared, the bits of a
/// float read as a signed integer are ordered as the values are, and every
/// NaN lies above +Inf. So one AND and one integer max per vector give the
/// exact maximum (no rounding, so any comparison order gives the same bits)
/// and a result above Inf's bits means some element was NaN.
template <std::size_t Bytes, class T>
double vector_max_abs(const T* x, std::size_t n) {
    using S = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    typedef S I __attribute__((vector_size(Bytes)));
    constexpr std::size_t width = Bytes / sizeof(T);
    constexpr std::size_t unroll = 4;
    constexpr S magnitude_mask = std::numeric_limits<S>::max();
    constexpr S infinity_bits = static_cast<S>(Bits<T>::exponent);
    const std::size_t peel = prologue_length<T, Bytes>(x, n);
    const double head = reference_max_abs(x, peel);
    if (head != head) return head;
    I best[unroll] = {};
    std::size_t i = peel;
    for (; i + unroll * width <= n; i += unroll * width) {
        for (std::size_t u = 0; u < unroll; ++u) {
            I v;
            std::memcpy(&v, x + i + u * width, sizeof v);
            v &= magnitude_mask;
            best[u] = v > best[u] ? v : best[u];
        }
    }
    const I both = (best[0] > best[1] ? best[0] : best[1]);
    const I other = (best[2] > best[3] ? best[2] : best[3]);
    const I all = both > other ? both : other;
    S top = 0;
    for (std::size_t k = 0; k < width; ++k) top = all[k] > top ? all[k] : top;
    const double tail = reference_max_abs(x + i, n - i);
    if (top > infinity_bits || tail != tail) return std::numeric_limits<double>::quiet_NaN();
    T body;
    std::memcpy(&body, &top, sizeof body);
    const double result = head > static_cast<double>(body) ? head : static_cast<double>(body);
    return tail > result ? tail : result;
}

template <std::size_t Bytes, class T>
void vector_scale(T* x, std::size_t n, T factor) {
    using VT = std::conditional_t<sizeof(T) == 4, typename Vectors<Bytes>::F, typename Vectors<Bytes>::D>;
    constexpr std::size_t width = Bytes / sizeof(T);
    const std::size_t peel = prologue_length<T, Bytes>(x, n);
    reference_scale(x, peel, factor);
    std::size_t i = peel;
    for (; i + width <= n; i += width) {
        VT v;
        std::memcpy(&v, x + i, sizeof v);
        v *= factor;
        std::memcpy(x + i, &v, sizeof v);
    }
    reference_scale(x + i, n - i, factor);
}

#define LRCORE_GRADIENT_PASSES_OF(T, Bytes)                                                            \
    {&::lrcore::kernels::gradient_passes::vector_all_finite<Bytes, T>,                                 \
     &::lrcore::kernels::gradient_passes::vector_sum_squares<Bytes, T>,                                \
     &::lrcore::kernels::gradient_passes::vector_sum_abs<Bytes, T>,                                    \
     &::lrcore::kernels::gradient_passes::vector_sum_powers<Bytes, T>,                                 \
     &::lrcore::kernels::gradient_passes::vector_max_abs<Bytes, T>,                                    \
     &::lrcore::kernels::gradient_passes::vector_scale<Bytes, T>}
#else
// Other compilers: the scalar reference (same results, whatever they vectorize).
#define LRCORE_GRADIENT_PASSES_OF(T, Bytes) LRCORE_GRADIENT_PASSES_REFERENCE_OF(T)
#endif

#define LRCORE_GRADIENT_PASSES_REFERENCE_OF(T)                                                          \
    {&::lrcore::kernels::gradient_passes::reference_all_finite<T>,                                     \
     &::lrcore::kernels::gradient_passes::reference_sum_squares<T>,                                    \
     &::lrcore::kernels::gradient_passes::reference_sum_abs<T>,                                        \
     &::lrcore::kernels::gradient_passes::reference_sum_powers<T>,                                     \
     &::lrcore::kernels::gradient_passes::reference_max_abs<T>,                                        \
     &::lrcore::kernels::gradient_passes::reference_scale<T>}

}  // namespace gradient_passes
}  // namespace
}  // namespace lrcore::kernels

/// Defines function_name() returning the table of vector_bytes-wide passes.
/// Used once in each cpp/src/isa/<name>.cpp.
#define LRCORE_DEFINE_GRADIENT_PASS_TABLE(function_name, isa_name, vector_bytes)                   \
    const ::lrcore::kernels::GradientPassTable& function_name() {                                  \
        static const ::lrcore::kernels::GradientPassTable table{                                   \
            isa_name, LRCORE_GRADIENT_PASSES_OF(float, vector_bytes),                               \
            LRCORE_GRADIENT_PASSES_OF(double, vector_bytes)};                                       \
        return table;                                                                               \
    }

/// The same with the scalar reference (the portable scalar build).
#define LRCORE_DEFINE_REFERENCE_GRADIENT_PASS_TABLE(function_name, isa_name)                       \
    const ::lrcore::kernels::GradientPassTable& function_name() {                                  \
        static const ::lrcore::kernels::GradientPassTable table{                                   \
            isa_name, LRCORE_GRADIENT_PASSES_REFERENCE_OF(float),                                   \
            LRCORE_GRADIENT_PASSES_REFERENCE_OF(double)};                                           \
        return table;                                                                               \
    }
