// How a kernel reaches its arrays. Every element-wise rule is written once
// against an array policy and instantiated for two:
//
//   NativeArrays<T>  every array holds T (float or double): plain pointers,
//                    loads and stores are the lane's own;
//   StoredArrays     float32 math over arrays stored as a Storage describes
//                    (lrcore/tensors.hpp): 16-bit loads widen, 16-bit stores
//                    round (to nearest even or stochastically), and a
//                    parameter with a master copy is read from and written to
//                    the master, then stored rounded from it.
//
// A kernel takes its arrays with arrays.param / grad / state, then reads and
// writes element i of its chunk with load<V>(array, i) and store<V>(array, i, x).
// The formats are fixed for a whole chunk, so the branches on them in
// StoredArray's load and store always go the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/storage_formats.hpp"
#include "lrcore/tensors.hpp"

namespace lrcore::kernels {
namespace {

/// Where a kernel aligns its vector loop: an array's first element and the size of one.
struct Anchor {
    const void* address;
    std::size_t element_bytes;
};

/// Kernels declare their arrays as A::Param, A::State (written) and A::Input
/// (read only): for NativeArrays restrict-qualified pointers, which let the compiler
/// move the next vector's loads above this one's stores (without that, a load
/// 4 KiB after a store stalls on it: Adam at 2^24 float32 took 1.3x longer).
template <class T>
struct NativeArrays {
    using Param = T* __restrict;
    using State = T* __restrict;
    using Input = const T* __restrict;
    T* param(T* p, std::size_t begin) const { return p + begin; }
    const T* grad(const T* g, std::size_t begin) const { return g + begin; }
    T* state(T* s, std::size_t begin, unsigned /* slot */) const { return s != nullptr ? s + begin : nullptr; }
};

template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
inline Anchor anchor_of(const T* param) {
    return {param, sizeof(T)};
}

template <class V, class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
inline typename V::reg load(const T* p, std::size_t i) {
    return V::load(p + i);
}

template <class V, class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
inline void store(T* p, std::size_t i, typename V::reg v) {
    V::store(p + i, v);
}

inline std::size_t bytes_of(Format format) { return format == Format::float32 ? 4 : 2; }

/// One array of a tensor from its chunk's first element, as the Storage describes it.
struct StoredArray {
    void* __restrict data = nullptr;  // in `format`
    float* __restrict master = nullptr;  // the parameter's float32 master copy, or null
    Format format = Format::float32;
    bool stochastic = false;      // rounding of its 16-bit stores
    std::uint32_t key_low = 0, key_high = 0;  // its random bits' key at this step
    std::uint32_t first = 0;      // the chunk's first element within the tensor (the counter's base)
};

inline Anchor anchor_of(const StoredArray& a) {
    if (a.master != nullptr) return {a.master, sizeof(float)};
    return {a.data, bytes_of(a.format)};
}

template <class V>
inline typename V::reg load(const StoredArray& a, std::size_t i) {
    if (a.master != nullptr) return V::load(a.master + i);
    switch (a.format) {
        case Format::bfloat16: return V::load_bfloat16(static_cast<const std::uint16_t*>(a.data) + i);
        case Format::float16: return V::load_float16(static_cast<const std::uint16_t*>(a.data) + i);
        case Format::float32: break;
    }
    return V::load(static_cast<const float*>(a.data) + i);
}

template <class V>
inline void store(const StoredArray& a, std::size_t i, typename V::reg v) {
    // A master copy takes the float32 result; the parameter gets it rounded to the nearest.
    if (a.master != nullptr) V::store(a.master + i, v);
    switch (a.format) {
        case Format::bfloat16: {
            auto* p = static_cast<std::uint16_t*>(a.data) + i;
            if (a.stochastic) {
                V::store_bfloat16(p, v, V::random_bits(a.key_low, a.key_high, a.first + static_cast<std::uint32_t>(i)));
            } else {
                V::store_bfloat16(p, v);
            }
            return;
        }
        case Format::float16: {
            auto* p = static_cast<std::uint16_t*>(a.data) + i;
            if (a.stochastic) {
                V::store_float16(p, v, V::random_bits(a.key_low, a.key_high, a.first + static_cast<std::uint32_t>(i)));
            } else {
                V::store_float16(p, v);
            }
            return;
        }
        case Format::float32: break;
    }
    V::store(static_cast<float*>(a.data) + i, v);
}

struct StoredArrays {
    using Param = StoredArray;
    using State = StoredArray;
    using Input = StoredArray;
    const Storage& storage;

    StoredArray make(const void* p, Format format, std::size_t begin, unsigned slot, bool stochastic) const {
        StoredArray a;
        a.format = format;
        if (p != nullptr) a.data = const_cast<char*>(static_cast<const char*>(p)) + begin * bytes_of(format);
        a.first = static_cast<std::uint32_t>(begin);
        a.stochastic = stochastic && format != Format::float32;
        if (a.stochastic) {
            const std::uint64_t key = rounding_key(storage.seed, storage.stream, storage.step, slot);
            a.key_low = static_cast<std::uint32_t>(key);
            a.key_high = static_cast<std::uint32_t>(key >> 32);
        }
        return a;
    }
    StoredArray param(float* p, std::size_t begin) const {
        StoredArray a = make(p, storage.param, begin, 0, storage.master == nullptr &&
                                                             storage.rounding == Rounding::stochastic);
        if (storage.master != nullptr) a.master = storage.master + begin;
        return a;
    }
    StoredArray grad(const float* g, std::size_t begin) const { return make(g, storage.grad, begin, 0, false); }
    /// `slot` (1, 2, ...) tells the kernel's state arrays apart for their random bits.
    StoredArray state(float* s, std::size_t begin, unsigned slot) const {
        return make(s, storage.state, begin, slot, storage.rounding == Rounding::stochastic);
    }
};

// ------------------------------------------------------------ fast layouts --
// The layouts mixed-precision training uses most, with their formats fixed at
// compile time (restrict-qualified pointers, no branches on formats): a 16-bit
// parameter and gradient with float32 state (rounded to nearest, or stepped on
// a float32 master copy), or with bfloat16 state and stochastic rounding. They
// compute exactly what StoredArrays computes for the same Storage; any other
// Storage takes StoredArrays. (With StoredArrays alone, bfloat16 Adam at 2^24
// took 1.4x the float32 step; with these 0.87x.)

/// A 16-bit element whose format the pointer type carries.
template <Format F>
struct Half {
    std::uint16_t bits;
};

template <Format F>
inline Anchor anchor_of(const Half<F>* p) {
    return {p, 2};
}

template <class V, Format F>
inline typename V::reg load(const Half<F>* p, std::size_t i) {
    const auto* h = reinterpret_cast<const std::uint16_t*>(p + i);
    if constexpr (F == Format::bfloat16) {
        return V::load_bfloat16(h);
    } else {
        return V::load_float16(h);
    }
}

template <class V, Format F>
inline void store(Half<F>* p, std::size_t i, typename V::reg v) {
    auto* h = reinterpret_cast<std::uint16_t*>(p + i);
    if constexpr (F == Format::bfloat16) {
        V::store_bfloat16(h, v);
    } else {
        V::store_float16(h, v);
    }
}

/// A 16-bit array whose stores round stochastically.
template <Format F>
struct Stochastic {
    Half<F>* __restrict data;
    std::uint32_t key_low, key_high, first;
};

template <Format F>
inline Anchor anchor_of(const Stochastic<F>& a) {
    return {a.data, 2};
}

template <class V, Format F>
inline typename V::reg load(const Stochastic<F>& a, std::size_t i) {
    return load<V>(static_cast<const Half<F>*>(a.data), i);
}

template <class V, Format F>
inline void store(const Stochastic<F>& a, std::size_t i, typename V::reg v) {
    auto* h = reinterpret_cast<std::uint16_t*>(a.data + i);
    const auto random = V::random_bits(a.key_low, a.key_high, a.first + static_cast<std::uint32_t>(i));
    if constexpr (F == Format::bfloat16) {
        V::store_bfloat16(h, v, random);
    } else {
        V::store_float16(h, v, random);
    }
}

/// A 16-bit parameter with its float32 master copy.
template <Format F>
struct Mastered {
    float* __restrict master;
    Half<F>* __restrict data;
};

template <Format F>
inline Anchor anchor_of(const Mastered<F>& a) {
    return {a.master, sizeof(float)};
}

template <class V, Format F>
inline typename V::reg load(const Mastered<F>& a, std::size_t i) {
    return V::load(a.master + i);
}

template <class V, Format F>
inline void store(const Mastered<F>& a, std::size_t i, typename V::reg v) {
    V::store(a.master + i, v);
    store<V>(static_cast<Half<F>*>(a.data), i, v);
}

enum class ParamMode { nearest, stochastic, master };

template <Format P, Format S, ParamMode M>
struct FastLayout {
    using Param = std::conditional_t<M == ParamMode::nearest, Half<P>* __restrict,
                                     std::conditional_t<M == ParamMode::stochastic, Stochastic<P>, Mastered<P>>>;
    using State = std::conditional_t<S == Format::float32, float* __restrict,
                                     std::conditional_t<M == ParamMode::stochastic, Stochastic<S>, Half<S>* __restrict>>;
    using Input = const Half<P>* __restrict;
    const Storage& storage;

    static constexpr bool matches(const Storage& s) {
        const bool stochastic = s.rounding == Rounding::stochastic;
        const ParamMode mode = s.master != nullptr ? ParamMode::master
                               : stochastic        ? ParamMode::stochastic
                                                   : ParamMode::nearest;
        // A master copy rounds to nearest (stochastic rounding and master copies exclude each other).
        return s.param == P && s.grad == P && s.state == S && mode == M && !(stochastic && s.master != nullptr);
    }

    template <Format F>
    Stochastic<F> stochastic(void* p, std::size_t begin, unsigned slot) const {
        const std::uint64_t key = rounding_key(storage.seed, storage.stream, storage.step, slot);
        return {p != nullptr ? static_cast<Half<F>*>(p) + begin : nullptr, static_cast<std::uint32_t>(key),
                static_cast<std::uint32_t>(key >> 32), static_cast<std::uint32_t>(begin)};
    }
    // (auto: a restrict qualifier on a return type is ignored; the kernels' declarations carry it.)
    auto param(float* p, std::size_t begin) const {
        if constexpr (M == ParamMode::nearest) {
            return reinterpret_cast<Half<P>*>(p) + begin;
        } else if constexpr (M == ParamMode::stochastic) {
            return stochastic<P>(p, begin, 0);
        } else {
            return Mastered<P>{storage.master + begin, reinterpret_cast<Half<P>*>(p) + begin};
        }
    }
    auto grad(const float* g, std::size_t begin) const { return reinterpret_cast<const Half<P>*>(g) + begin; }
    auto state(float* s, std::size_t begin, unsigned slot) const {
        if constexpr (S == Format::float32) {
            return s != nullptr ? s + begin : static_cast<float*>(nullptr);
        } else if constexpr (M == ParamMode::stochastic) {
            return stochastic<S>(s, begin, slot);
        } else {
            return s != nullptr ? reinterpret_cast<Half<S>*>(s) + begin : static_cast<Half<S>*>(nullptr);
        }
    }
};

/// Calls f(NativeArrays<T>{}) without a storage; with one (float32 math only:
/// a storage is never given with double), f(FastLayout<...>{*storage}) when a
/// fast layout matches it, else f(StoredArrays{*storage}).
///
/// The sanitized build (LRCORE_SANITIZE) leaves the fast layouts out: with
/// them its per-ISA translation units took over 13 minutes and 7 GB each to
/// compile. It checks StoredArrays instead, which computes the same values
/// over the same element ranges with the same vector widths.
template <class T, class F>
inline void with_arrays(const Storage* storage, F&& f) {
#if defined(LRCORE_SANITIZED_BUILD)
    if constexpr (sizeof(T) == sizeof(float)) {
        if (storage != nullptr) {
            f(StoredArrays{*storage});
            return;
        }
    }
    f(NativeArrays<T>{});
#else
    if constexpr (sizeof(T) == sizeof(float)) {
        if (storage != nullptr) {
            using BfloatNearest = FastLayout<Format::bfloat16, Format::float32, ParamMode::nearest>;
            using BfloatStochastic = FastLayout<Format::bfloat16, Format::bfloat16, ParamMode::stochastic>;
            using BfloatMaster = FastLayout<Format::bfloat16, Format::float32, ParamMode::master>;
            using HalfMaster = FastLayout<Format::float16, Format::float32, ParamMode::master>;
            if (BfloatNearest::matches(*storage)) {
                f(BfloatNearest{*storage});
            } else if (BfloatStochastic::matches(*storage)) {
                f(BfloatStochastic{*storage});
            } else if (BfloatMaster::matches(*storage)) {
                f(BfloatMaster{*storage});
            } else if (HalfMaster::matches(*storage)) {
                f(HalfMaster{*storage});
            } else {
                f(StoredArrays{*storage});
            }
            return;
        }
    }
    f(NativeArrays<T>{});
#endif
}

}  // namespace
}  // namespace lrcore::kernels
