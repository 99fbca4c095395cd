#include "roof.hpp"

#include <algorithm>
#include <atomic>
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

#if defined(__GNUC__)
// The one-array loops of roof_read and roof_update, peeled to a vector
// boundary like the stream above. The read loop keeps four independent sums
// so the adds never limit it; the result goes nowhere but must be computed.
#define LRCORE_ROOF_ONE_ARRAY(read_name, update_name, attributes, vector_bytes)                     \
    template <class T>                                                                              \
    attributes T read_name(std::size_t n, const T* x) {                                             \
        using V = typename VectorOf<T, vector_bytes>::type;                                         \
        constexpr std::size_t width = vector_bytes / sizeof(T);                                     \
        const std::size_t misaligned = (reinterpret_cast<std::uintptr_t>(x) / sizeof(T)) % width;   \
        const std::size_t peel = misaligned == 0 ? 0 : std::min(n, width - misaligned);             \
        T s = 0;                                                                                    \
        std::size_t i = 0;                                                                          \
        for (; i < peel; ++i) s += x[i];                                                            \
        V v[4] = {};                                                                                \
        for (; i + 4 * width <= n; i += 4 * width) {                                                \
            for (int k = 0; k < 4; ++k) {                                                           \
                V t;                                                                                \
                __builtin_memcpy(&t, x + i + k * width, sizeof t);                                  \
                v[k] += t;                                                                          \
            }                                                                                       \
        }                                                                                           \
        const V all = (v[0] + v[1]) + (v[2] + v[3]);                                                \
        for (std::size_t k = 0; k < width; ++k) s += all[k];                                        \
        for (; i < n; ++i) s += x[i];                                                               \
        return s;                                                                                   \
    }                                                                                               \
    template <class T>                                                                              \
    attributes void update_name(std::size_t n, T* x, T addend) {                                    \
        using V = typename VectorOf<T, vector_bytes>::type;                                         \
        constexpr std::size_t width = vector_bytes / sizeof(T);                                     \
        const std::size_t misaligned = (reinterpret_cast<std::uintptr_t>(x) / sizeof(T)) % width;   \
        const std::size_t peel = misaligned == 0 ? 0 : std::min(n, width - misaligned);             \
        std::size_t i = 0;                                                                          \
        for (; i < peel; ++i) x[i] += addend;                                                       \
        for (; i + width <= n; i += width) {                                                        \
            V t;                                                                                    \
            __builtin_memcpy(&t, x + i, sizeof t);                                                  \
            t += addend;                                                                            \
            __builtin_memcpy(x + i, &t, sizeof t);                                                  \
        }                                                                                           \
        for (; i < n; ++i) x[i] += addend;                                                          \
    }

LRCORE_ROOF_ONE_ARRAY(read_baseline, update_baseline, , 16)
#if defined(LRCORE_HAVE_X86_VARIANTS)
LRCORE_ROOF_ONE_ARRAY(read_avx2, update_avx2, __attribute__((target("avx2"))), 32)
LRCORE_ROOF_ONE_ARRAY(read_avx512, update_avx512, __attribute__((target("avx512f"))), 64)
#endif
#undef LRCORE_ROOF_ONE_ARRAY
#else
template <class T>
T read_baseline(std::size_t n, const T* x) {
    T s = 0;
    for (std::size_t i = 0; i < n; ++i) s += x[i];
    return s;
}
template <class T>
void update_baseline(std::size_t n, T* x, T addend) {
    for (std::size_t i = 0; i < n; ++i) x[i] += addend;
}
#endif

template <class T>
struct OneArrayLoops {
    T (*read)(std::size_t, const T*);
    void (*update)(std::size_t, T*, T);
};

template <class T>
OneArrayLoops<T> active_one_array_loops() {
#if defined(LRCORE_HAVE_X86_VARIANTS)
    const char* isa = kernels::active_kernels().name;
    if (std::strcmp(isa, "avx512") == 0) return {&read_avx512<T>, &update_avx512<T>};
    if (std::strcmp(isa, "avx2") == 0) return {&read_avx2<T>, &update_avx2<T>};
#endif
    return {&read_baseline<T>, &update_baseline<T>};
}

template <class Pointer>
void check_one_array_inputs(const Pointer* arrays, const std::size_t* sizes, std::size_t count) {
    if (count == 0) return;
    if (arrays == nullptr || sizes == nullptr) throw std::invalid_argument("roof: arrays and sizes must not be null");
    for (std::size_t i = 0; i < count; ++i) {
        if (sizes[i] != 0 && arrays[i] == nullptr) {
            throw std::invalid_argument("roof: array " + std::to_string(i) + " is null but not empty");
        }
    }
}

// Where the read sums go, so the compiler cannot drop the loads.
std::atomic<std::uint64_t> read_sink{0};

template <class T>
void roof_read_impl(const T* const* arrays, const std::size_t* sizes, std::size_t count) {
    check_one_array_inputs(arrays, sizes, count);
    const auto read = active_one_array_loops<T>().read;
    detail::for_each_range<T>(
        count, [&](std::size_t i) { return sizes[i]; },
        [&](std::size_t i, std::size_t begin, std::size_t end) {
            const T s = read(end - begin, arrays[i] + begin);
            std::uint64_t bits = 0;
            std::memcpy(&bits, &s, sizeof s);
            read_sink.fetch_xor(bits, std::memory_order_relaxed);
        });
}

template <class T>
void roof_update_impl(T* const* arrays, const std::size_t* sizes, std::size_t count, double addend) {
    check_one_array_inputs(arrays, sizes, count);
    const auto update = active_one_array_loops<T>().update;
    const T a = static_cast<T>(addend);
    detail::for_each_range<T>(
        count, [&](std::size_t i) { return sizes[i]; },
        [&](std::size_t i, std::size_t begin, std::size_t end) { update(end - begin, arrays[i] + begin, a); });
}

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

void roof_read(const float* const* a, const std::size_t* s, std::size_t n) { roof_read_impl(a, s, n); }
void roof_read(const double* const* a, const std::size_t* s, std::size_t n) { roof_read_impl(a, s, n); }
void roof_update(float* const* a, const std::size_t* s, std::size_t n, double addend) {
    roof_update_impl(a, s, n, addend);
}
void roof_update(double* const* a, const std::size_t* s, std::size_t n, double addend) {
    roof_update_impl(a, s, n, addend);
}

}  // namespace lrcore::bench
