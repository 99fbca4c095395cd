// Whole-gradient passes run before a step: the non-finite check, norms and
// scaling for global-norm clipping (see lrcore/gradients.hpp).
//
// The arrays are cut into the same fixed 64 KiB chunks as the update rules
// (cpp/src/optimizers.cpp) and the chunks shared by the thread pool. Norms are
// reduced in a fixed order: each chunk accumulates its own partial sum in
// double into 16 accumulators in a fixed lane assignment (see
// kernels/gradient_passes.hpp), and the partials are added in chunk order
// afterwards, so a result depends on neither the thread count, nor which
// thread ran which chunk, nor the instruction set. The per-chunk loops are
// built once per instruction set (cpp/src/isa/*.cpp): compiled for the
// baseline alone, they could not keep up with memory on one core.

#include "lrcore/gradients.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "chunking.hpp"
#include "dispatch.hpp"
#include "kernels/gradient_passes.hpp"

namespace lrcore {
namespace {

using detail::Chunk;

template <class Pointer>
void check_arrays(const Pointer* arrays, const std::size_t* sizes, std::size_t count) {
    if (count == 0) return;
    if (arrays == nullptr || sizes == nullptr) throw std::invalid_argument("arrays and sizes must not be null");
    for (std::size_t i = 0; i < count; ++i) {
        if (sizes[i] != 0 && arrays[i] == nullptr) {
            throw std::invalid_argument("array " + std::to_string(i) + " is null but has " +
                                        std::to_string(sizes[i]) + " elements");
        }
    }
}

void check_norm_type(double norm_type) {
    if (!(norm_type > 0.0)) {  // also rejects NaN
        throw std::invalid_argument("norm_type must be > 0 or infinity, got " + std::to_string(norm_type));
    }
}

/// The fixed chunks of the calling thread's current call (chunking.hpp), and the element count.
template <class T>
const std::vector<Chunk>& chunks_of(const std::size_t* sizes, std::size_t count, std::size_t& total) {
    total = 0;
    for (std::size_t i = 0; i < count; ++i) total += sizes[i];
    return detail::chunks_of<T>(count, [&](std::size_t i) { return sizes[i]; });
}

/// Runs task(c) for every chunk index, on the pool when the pass is large
/// enough. Always per chunk, so per-chunk partial results never depend on it.
/// No denormal flushing here: a norm must count tiny values as they are.
template <class T, class Task>
void for_each_chunk(std::size_t chunk_count, std::size_t total, Task& task) {
    if (!detail::worth_parallel<T>(total)) {
        for (std::size_t c = 0; c < chunk_count; ++c) task(c);
    } else {
        detail::parallel_for(chunk_count, detail::TaskRef(task));
    }
}

/// The passes built for the instruction set the update rules use right now
/// (lrcore::set_isa), so a forced ISA covers the gradient passes too.
const kernels::GradientPassTable& active_passes() {
    const char* isa = kernels::active_kernels().name;
#if defined(LRCORE_HAVE_X86_VARIANTS)
    if (std::strcmp(isa, "avx512") == 0) return kernels::avx512_gradient_passes();
    if (std::strcmp(isa, "avx2") == 0) return kernels::avx2_gradient_passes();
#endif
    (void)isa;
    return kernels::baseline_gradient_passes();
}

// ------------------------------------------------------------ all_finite --
template <class T>
bool all_finite_impl(const T* const* arrays, const std::size_t* sizes, std::size_t count) {
    check_arrays(arrays, sizes, count);
    std::size_t total = 0;
    const std::vector<Chunk>& chunks = chunks_of<T>(sizes, count, total);
    if (total == 0) return true;
    std::atomic<bool> found{false};
    const Chunk* chunk_data = chunks.data();
    const auto chunk_all_finite = active_passes().of<T>().all_finite;
    auto task = [&](std::size_t c) {
        if (found.load(std::memory_order_relaxed)) return;
        const Chunk& chunk = chunk_data[c];
        if (!chunk_all_finite(arrays[chunk.tensor] + chunk.begin, chunk.end - chunk.begin)) {
            found.store(true, std::memory_order_relaxed);
        }
    };
    for_each_chunk<T>(chunks.size(), total, task);
    return !found.load();
}

// ------------------------------------------------------------------ norms --
// Chunk sums come from the per-ISA passes (kernels/gradient_passes.hpp),
// which all add in the same fixed order; the general power is the scalar
// reference with std::pow, one libm function for every ISA, compiled here once.
/// Per-chunk results of chunk_result(pointer, n), in chunk order, into `partials`.
template <class T, class ChunkResult>
void chunk_results(const T* const* arrays, const std::size_t* sizes, std::size_t count, ChunkResult chunk_result,
                   std::vector<double>& partials) {
    check_arrays(arrays, sizes, count);
    std::size_t total = 0;
    const std::vector<Chunk>& chunks = chunks_of<T>(sizes, count, total);
    partials.assign(chunks.size(), 0.0);
    const Chunk* chunk_data = chunks.data();
    double* partial_data = partials.data();
    auto task = [&](std::size_t c) {
        const Chunk& chunk = chunk_data[c];
        partial_data[c] = chunk_result(arrays[chunk.tensor] + chunk.begin, chunk.end - chunk.begin);
    };
    for_each_chunk<T>(chunks.size(), total, task);
}

/// combine(acc, partial) over the partials in order, from 0: the one place chunk results are combined.
template <class Combine>
double fold(const double* partials, std::size_t count, Combine combine) {
    double result = 0.0;
    for (std::size_t c = 0; c < count; ++c) result = combine(result, partials[c]);
    return result;
}

/// Per-chunk results of chunk_result(pointer, n), then combine(acc, partial) in chunk order.
template <class T, class ChunkResult, class Combine>
double reduce(const T* const* arrays, const std::size_t* sizes, std::size_t count, ChunkResult chunk_result,
              Combine combine) {
    thread_local std::vector<double> partials;
    chunk_results(arrays, sizes, count, chunk_result, partials);
    return fold(partials.data(), partials.size(), combine);
}

double add(double a, double b) { return a + b; }
double max_nan(double a, double b) {
    if (a != a) return a;
    if (b != b) return b;
    return b > a ? b : a;
}

/// The norm of float32 and float64 elements together from their two reductions (sums of
/// powers, or maxima for infinity): the float32 sum plus the float64 sum, then the root.
double combine_norms(double float32_result, double float64_result, double norm_type) {
    if (std::isinf(norm_type)) {
        const double a = float32_result;
        const double b = float64_result;
        return (a != a || b != b) ? std::numeric_limits<double>::quiet_NaN() : std::max(a, b);
    }
    return norm_from_sum_of_powers(float32_result + float64_result, norm_type);
}

/// Each chunk's contribution to the norm: its sum of |x|^p, or its max |x| for infinity.
template <class T>
void norm_partials_impl(const T* const* arrays, const std::size_t* sizes, std::size_t count, double p,
                        std::vector<double>& partials) {
    check_norm_type(p);
    if (std::isinf(p)) return chunk_results(arrays, sizes, count, active_passes().of<T>().max_abs, partials);
    if (p == 2.0) return chunk_results(arrays, sizes, count, active_passes().of<T>().sum_squares, partials);
    if (p == 1.0) return chunk_results(arrays, sizes, count, active_passes().of<T>().sum_abs, partials);
    const auto sum_powers = active_passes().of<T>().sum_powers;
    chunk_results(arrays, sizes, count, [p, sum_powers](const T* x, std::size_t n) { return sum_powers(x, n, p); },
                  partials);
}

template <class T>
double sum_of_powers_impl(const T* const* arrays, const std::size_t* sizes, std::size_t count, double p) {
    check_norm_type(p);
    if (!std::isfinite(p)) throw std::invalid_argument("sum_of_powers: norm_type must be finite");
    thread_local std::vector<double> partials;
    norm_partials_impl(arrays, sizes, count, p, partials);
    return fold(partials.data(), partials.size(), add);
}

template <class T>
double max_abs_impl(const T* const* arrays, const std::size_t* sizes, std::size_t count) {
    return reduce(arrays, sizes, count, active_passes().of<T>().max_abs, max_nan);
}

template <class T>
double global_norm_impl(const T* const* arrays, const std::size_t* sizes, std::size_t count, double p) {
    check_norm_type(p);
    if (std::isinf(p)) return max_abs_impl(arrays, sizes, count);
    return norm_from_sum_of_powers(sum_of_powers_impl(arrays, sizes, count, p), p);
}

template <class T>
void scale_impl(T* const* arrays, const std::size_t* sizes, std::size_t count, double factor) {
    check_arrays(arrays, sizes, count);
    std::size_t total = 0;
    const std::vector<Chunk>& chunks = chunks_of<T>(sizes, count, total);
    const T f = static_cast<T>(factor);
    const Chunk* chunk_data = chunks.data();
    const auto chunk_scale = active_passes().of<T>().scale;
    auto task = [&](std::size_t c) {
        const Chunk& chunk = chunk_data[c];
        chunk_scale(arrays[chunk.tensor] + chunk.begin, chunk.end - chunk.begin, f);
    };
    for_each_chunk<T>(chunks.size(), total, task);
}

template <class T>
void clamp_impl(T* const* arrays, const std::size_t* sizes, std::size_t count, double limit) {
    check_arrays(arrays, sizes, count);
    if (!(limit >= 0.0)) throw std::invalid_argument("clamp: limit must be >= 0, got " + std::to_string(limit));
    std::size_t total = 0;
    const std::vector<Chunk>& chunks = chunks_of<T>(sizes, count, total);
    const T high = static_cast<T>(limit);
    const T low = -high;
    const Chunk* chunk_data = chunks.data();
    auto task = [&](std::size_t c) {
        const Chunk& chunk = chunk_data[c];
        T* x = arrays[chunk.tensor];
        // Written so that a NaN fails both comparisons and stays NaN, as torch.clamp keeps it.
        for (std::size_t i = chunk.begin; i < chunk.end; ++i) {
            const T v = x[i];
            x[i] = v < low ? low : (v > high ? high : v);
        }
    };
    for_each_chunk<T>(chunks.size(), total, task);
}

}  // namespace

void clamp(float* const* a, const std::size_t* s, std::size_t n, double limit) { clamp_impl(a, s, n, limit); }
void clamp(double* const* a, const std::size_t* s, std::size_t n, double limit) { clamp_impl(a, s, n, limit); }

bool all_finite(const float* const* a, const std::size_t* s, std::size_t n) { return all_finite_impl(a, s, n); }
bool all_finite(const double* const* a, const std::size_t* s, std::size_t n) { return all_finite_impl(a, s, n); }

double sum_of_powers(const float* const* a, const std::size_t* s, std::size_t n, double p) {
    return sum_of_powers_impl(a, s, n, p);
}
double sum_of_powers(const double* const* a, const std::size_t* s, std::size_t n, double p) {
    return sum_of_powers_impl(a, s, n, p);
}

double max_abs(const float* const* a, const std::size_t* s, std::size_t n) { return max_abs_impl(a, s, n); }
double max_abs(const double* const* a, const std::size_t* s, std::size_t n) { return max_abs_impl(a, s, n); }

double global_norm(const float* const* a, const std::size_t* s, std::size_t n, double p) {
    return global_norm_impl(a, s, n, p);
}
double global_norm(const double* const* a, const std::size_t* s, std::size_t n, double p) {
    return global_norm_impl(a, s, n, p);
}

void scale(float* const* a, const std::size_t* s, std::size_t n, double f) { scale_impl(a, s, n, f); }
void scale(double* const* a, const std::size_t* s, std::size_t n, double f) { scale_impl(a, s, n, f); }

double global_norm(const float* const* f32, const std::size_t* f32_sizes, std::size_t f32_count,
                   const double* const* f64, const std::size_t* f64_sizes, std::size_t f64_count,
                   double norm_type) {
    check_norm_type(norm_type);
    if (std::isinf(norm_type)) {
        return combine_norms(max_abs(f32, f32_sizes, f32_count), max_abs(f64, f64_sizes, f64_count), norm_type);
    }
    return combine_norms(sum_of_powers(f32, f32_sizes, f32_count, norm_type),
                         sum_of_powers(f64, f64_sizes, f64_count, norm_type), norm_type);
}

void norm_partials(const float* const* a, const std::size_t* s, std::size_t n, double p, std::vector<double>& out) {
    norm_partials_impl(a, s, n, p, out);
}
void norm_partials(const double* const* a, const std::size_t* s, std::size_t n, double p, std::vector<double>& out) {
    norm_partials_impl(a, s, n, p, out);
}

double norm_from_partials(const double* float32_partials, std::size_t float32_count, const double* float64_partials,
                          std::size_t float64_count, double norm_type) {
    check_norm_type(norm_type);
    if (float32_count != 0 && float32_partials == nullptr) throw std::invalid_argument("float32_partials is null");
    if (float64_count != 0 && float64_partials == nullptr) throw std::invalid_argument("float64_partials is null");
    if (std::isinf(norm_type)) {
        return combine_norms(fold(float32_partials, float32_count, max_nan),
                             fold(float64_partials, float64_count, max_nan), norm_type);
    }
    return combine_norms(fold(float32_partials, float32_count, add), fold(float64_partials, float64_count, add),
                         norm_type);
}

double norm_from_sum_of_powers(double sum, double norm_type) {
    check_norm_type(norm_type);
    if (norm_type == 2.0) return std::sqrt(sum);
    if (norm_type == 1.0) return sum;
    return std::pow(sum, 1.0 / norm_type);
}

double clip_coefficient(double total_norm, double max_norm) {
    if (!std::isfinite(total_norm)) return 1.0;
    const double coefficient = max_norm / (total_norm + 1e-6);
    return coefficient < 1.0 ? coefficient : 1.0;
}

}  // namespace lrcore
