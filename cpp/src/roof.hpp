// The benchmark's memory roof: a kernel that moves exactly the bytes an
// update rule moves (reads its inputs, reads and writes its state and
// parameter) but does trivial arithmetic, run through the same chunking and
// thread pool as the step drivers. An update rule's time divided by the roof's
// time on the same arrays says how far the rule is from bandwidth-bound.
//
// Not part of the public C++ API: only the benchmark binding uses it.
#pragma once

#include <cstddef>

namespace lrcore::bench {

inline constexpr std::size_t roof_max_inputs = 2;
inline constexpr std::size_t roof_max_updates = 4;

/// One tensor's arrays: `inputs` are only read (a gradient), `updates` are
/// read and written in place (the parameter and the state arrays). All hold
/// `size` elements and must not overlap one another.
template <class T>
struct RoofTensor {
    const T* inputs[roof_max_inputs] = {};
    T* updates[roof_max_updates] = {};
    std::size_t input_count = 0;   // 1..roof_max_inputs
    std::size_t update_count = 0;  // 1..roof_max_updates
    std::size_t size = 0;
};

/// For every tensor and element: s = sum of the inputs; every update u <- u + s.
///
/// Chunks and threads as the update rules do (64 KiB chunks, the shared pool,
/// serial below 2^15 elements per call), vectorized for the instruction set
/// lrcore's kernels use (lrcore::active_isa()). Throws std::invalid_argument
/// on a bad input or update count.
void roof_stream(const RoofTensor<float>* tensors, std::size_t count);
void roof_stream(const RoofTensor<double>* tensors, std::size_t count);

/// The roof of the whole-gradient passes (lrcore/gradients.hpp), chunked and
/// vectorized as roof_stream is. roof_read only reads every element (a sum
/// nobody looks at: 1x the bytes, like all_finite or a norm); roof_update
/// reads and writes every element in place (x <- x + addend, 2x the bytes,
/// like the clip scaling; pass 0 to leave finite values as they are).
void roof_read(const float* const* arrays, const std::size_t* sizes, std::size_t count);
void roof_read(const double* const* arrays, const std::size_t* sizes, std::size_t count);
void roof_update(float* const* arrays, const std::size_t* sizes, std::size_t count, double addend);
void roof_update(double* const* arrays, const std::size_t* sizes, std::size_t count, double addend);

}  // namespace lrcore::bench
