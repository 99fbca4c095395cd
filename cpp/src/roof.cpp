#include "roof.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "chunking.hpp"

namespace lrcore::bench {
namespace {


template <class T>
using StreamFunction = void (*)(std::size_t, const T*, const T*, T*, T*, T*, T*);

#if defined(__GNUC__)
template <class T, std::size_t Bytes>
struct VectorOf {
    typedef T type __attribute__((vector_size(Bytes)));
};

// One loop in GCC/Clang vector types, compiled once per instruction set
// through function target attributes. Each vector step loads everything
// before it stores anything, as the update rules do: a store followed by a
// load 4 KiB apart (arrays allocated page-aligned) would stall on a false
// dependency the update rules never pay. A scalar prologue first brings the
// parameter (updates[0]) to a vector boundary: numpy's large arrays start 16
// bytes into a page, and when all arrays share that offset, peeling aligns
// them all and no access straddles two cache lines (worth ~20% at 2^24 f32
// Adam). The roof must not be slowed by what a kernel can avoid. Loads and
// stores are memcpy (any
// alignment) written out here: a helper returning a vector type would be a
// baseline function with a wide-vector ABI. Unused pointers are null.
#define LRCORE_ROOF_STREAM(name, attributes, vector_bytes)                                          \
    template <class T, int Inputs, int Updates>                                                     \
    attributes void name(std::size_t n, const T* in0, const T* in1, T* up0, T* up1, T* up2, T* up3) { \
        using V = typename VectorOf<T, vector_bytes>::type;                                         \
        constexpr std::size_t width = vector_bytes / sizeof(T);                                     \
        T* const up[roof_max_updates] = {up0, up1, up2, up3};                                       \
        const std::size_t misaligned = (reinterpret_cast<std::uintptr_t>(up0) / sizeof(T)) % width;  \
        const std::size_t peel = misaligned == 0 ? 0 : std::min(n, width - misaligned);             \
        std::size_t i = 0;                                                                          \
        for (; i < peel; ++i) {                                                                     \
            T s = in0[i];                                                                           \
            if constexpr (Inputs > 1) s += in1[i];                                                  \
            for (int k = 0; k < Updates; ++k) up[k][i] += s;                                        \
        }                                                                                           \
        for (; i + width <= n; i += width) {                                                        \
            V s, t, u[Updates];                                                                     \
            __builtin_memcpy(&s, in0 + i, sizeof s);                                                \
            if constexpr (Inputs > 1) {                                                             \
                __builtin_memcpy(&t, in1 + i, sizeof t);                                            \
                s += t;                                                                             \
            }                                                                                       \
            for (int k = 0; k < Updates; ++k) __builtin_memcpy(&u[k], up[k] + i, sizeof s);         \
            for (int k = 0; k < Updates; ++k) {                                                     \
                u[k] += s;                                                                          \
                __builtin_memcpy(up[k] + i, &u[k], sizeof s);                                       \
            }                                                                                       \
        }                                                                                           \
        for (; i < n; ++i) {                                                                        \
            T s = in0[i];                                                                           \
            if constexpr (Inputs > 1) s += in1[i];                                                  \
            for (int k = 0; k < Updates; ++k) up[k][i] += s;                                        \
        }                                                                                           \
    }

LRCORE_ROOF_STREAM(stream_baseline, , 16)
#if defined(LRCORE_HAVE_X86_VARIANTS)
LRCORE_ROOF_STREAM(stream_avx2, __attribute__((target("avx2"))), 32)
LRCORE_ROOF_STREAM(stream_avx512, __attribute__((target("avx512f"))), 64)
#endif
#else  // other compilers: a plain loop, vectorized as the compiler sees fit
template <class T, int Inputs, int Updates>
void stream_baseline(std::size_t n, const T* in0, const T* in1, T* up0, T* up1, T* up2, T* up3) {
    T* const up[roof_max_updates] = {up0, up1, up2, up3};
    for (std::size_t i = 0; i < n; ++i) {
        T s = in0[i];
        if constexpr (Inputs > 1) s += in1[i];
        for (int k = 0; k < Updates; ++k) up[k][i] += s;
    }
}
#endif
#undef LRCORE_ROOF_STREAM

/// The stream loops of one instruction set, indexed [inputs - 1][updates - 1].
template <class T>
struct StreamTable {
    StreamFunction<T> by_arity[roof_max_inputs][roof_max_updates];
};

#define LRCORE_ROOF_TABLE(name)                                                                  \
    StreamTable<T> {                                                                             \
        {{&name<T, 1, 1>, &name<T, 1, 2>, &name<T, 1, 3>, &name<T, 1, 4>},                       \
         {&name<T, 2, 1>, &name<T, 2, 2>, &name<T, 2, 3>, &name<T, 2, 4>}}                       \
    }

/// The loops for the instruction set lrcore's kernels run with right now.
template <class T>
const StreamTable<T>& active_table() {
    static const StreamTable<T> baseline = LRCORE_ROOF_TABLE(stream_baseline);
#if defined(LRCORE_HAVE_X86_VARIANTS)
    static const StreamTable<T> avx2 = LRCORE_ROOF_TABLE(stream_avx2);
    static const StreamTable<T> avx512 = LRCORE_ROOF_TABLE(stream_avx512);
    const char* isa = kernels::active_kernels().name;
    if (std::strcmp(isa, "avx512") == 0) return avx512;
    if (std::strcmp(isa, "avx2") == 0) return avx2;
#endif
    return baseline;
}
#undef LRCORE_ROOF_TABLE

template <class T>
void stream_chunk(const StreamTable<T>& table, const RoofTensor<T>& t, std::size_t begin, std::size_t end) {
    auto in = [&](std::size_t k) { return k < t.input_count ? t.inputs[k] + begin : nullptr; };
    auto up = [&](std::size_t k) { return k < t.update_count ? t.updates[k] + begin : nullptr; };
    table.by_arity[t.input_count - 1][t.update_count - 1](end - begin, in(0), in(1), up(0), up(1), up(2), up(3));
}

template <class T>
bool valid(const RoofTensor<T>& t) {
    if (t.input_count < 1 || t.input_count > roof_max_inputs) return false;
    if (t.update_count < 1 || t.update_count > roof_max_updates) return false;
    if (t.size == 0) return true;
    for (std::size_t k = 0; k < t.input_count; ++k) {
        if (t.inputs[k] == nullptr) return false;
    }
    for (std::size_t k = 0; k < t.update_count; ++k) {
        if (t.updates[k] == nullptr) return false;
    }
    return true;
}

template <class T>
void roof_impl(const RoofTensor<T>* tensors, std::size_t count) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (!valid(tensors[i])) {
            throw std::invalid_argument("roof tensor " + std::to_string(i) + ": needs 1 to " +
                                        std::to_string(roof_max_inputs) + " non-null inputs and 1 to " +
                                        std::to_string(roof_max_updates) + " non-null updates");
        }
        total += tensors[i].size;
    }
    if (total == 0) return;
    const StreamTable<T>& table = active_table<T>();
    // The same split as the update rules (chunking.hpp).
    detail::for_each_range<T>(
        count, [&](std::size_t i) { return tensors[i].size; },
        [&](std::size_t i, std::size_t begin, std::size_t end) {
            const detail::DenormalGuard guard;  // as the update rules do
            stream_chunk(table, tensors[i], begin, end);
        });
}

}  // namespace

void roof_stream(const RoofTensor<float>* tensors, std::size_t count) { roof_impl(tensors, count); }
void roof_stream(const RoofTensor<double>* tensors, std::size_t count) { roof_impl(tensors, count); }

}  // namespace lrcore::bench
