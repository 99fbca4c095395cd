// Whole-gradient operations that run before a step: a non-finite check and
// global-norm clipping (torch.nn.utils.clip_grad_norm_ semantics).
//
// Every function takes `count` arrays as parallel lists of pointers and
// element counts (T = float or double); an array with size 0 is skipped and
// may be null. Arrays need no particular alignment. The work is cut into
// fixed chunks (64 KiB of one array) shared by the thread pool, so results
// never depend on the thread count: norms are sums of per-chunk partial sums,
// each accumulated in double, added in chunk order.
//
// Errors (a null pointer with a non-zero size, an unsupported norm_type) throw
// std::invalid_argument before anything is read or written.
#pragma once

#include <cstddef>
#include <vector>

namespace lrcore {

/// True when no element of any array is NaN or +-Inf. Tests the exponent bits
/// as integers, so it is exact whatever the floating-point mode, and stops
/// early (at chunk granularity) once a non-finite element is found.
bool all_finite(const float* const* arrays, const std::size_t* sizes, std::size_t count);
bool all_finite(const double* const* arrays, const std::size_t* sizes, std::size_t count);

/// sum over all elements x of all arrays of |x|^norm_type, in double.
/// norm_type must be finite and > 0 (2 and 1 have fast paths). NaN or Inf
/// elements make the result NaN or Inf.
double sum_of_powers(const float* const* arrays, const std::size_t* sizes, std::size_t count, double norm_type);
double sum_of_powers(const double* const* arrays, const std::size_t* sizes, std::size_t count, double norm_type);

/// max over all elements of |x| (0 when there are none); NaN if any element is NaN.
double max_abs(const float* const* arrays, const std::size_t* sizes, std::size_t count);
double max_abs(const double* const* arrays, const std::size_t* sizes, std::size_t count);

/// The norm of all elements taken as one vector:
///     ||g||_p = (sum |x|^p)^(1/p)     (0 < p < inf)
///     ||g||_inf = max |x|             (norm_type = +infinity)
/// norm_type must be > 0 (finite) or +infinity.
double global_norm(const float* const* arrays, const std::size_t* sizes, std::size_t count, double norm_type);
double global_norm(const double* const* arrays, const std::size_t* sizes, std::size_t count, double norm_type);

/// The norm of float32 and float64 arrays taken together as one vector: the
/// float32 and float64 sums of |x|^p added, then the root; for norm_type =
/// +infinity the larger of the two maxima (NaN if either is NaN). This is what
/// lrcore.global_norm, clip_grad_norm and the fused clipping of a step compute.
double global_norm(const float* const* float32_arrays, const std::size_t* float32_sizes, std::size_t float32_count,
                   const double* const* float64_arrays, const std::size_t* float64_sizes, std::size_t float64_count,
                   double norm_type);

/// The norm from sum_of_powers' result: sum^(1/norm_type) (0 < norm_type < inf).
/// Lets a caller add the sums of float and double arrays before taking the root.
double norm_from_sum_of_powers(double sum, double norm_type);

/// x <- x * T(factor) for every element, in place. The arrays must not overlap.
void scale(float* const* arrays, const std::size_t* sizes, std::size_t count, double factor);
void scale(double* const* arrays, const std::size_t* sizes, std::size_t count, double factor);

/// x <- min(max(x, -limit), limit) for every element, in place (torch's
/// clip_grad_value_): limit is rounded to T once; NaN stays NaN. limit must be
/// >= 0 (infinity leaves every finite value as it is). The arrays must not overlap.
void clamp(float* const* arrays, const std::size_t* sizes, std::size_t count, double limit);
void clamp(double* const* arrays, const std::size_t* sizes, std::size_t count, double limit);

/// The pieces global_norm is made of, for a caller that holds the arrays in
/// parts (one process of several): out[c] is chunk c's contribution, in chunk
/// order (each array cut from its start into 64 KiB chunks, arrays in order):
/// its sum of |x|^norm_type, or its max |x| for norm_type = +infinity. An
/// array of at most one chunk's elements gives exactly one partial, so a
/// caller can compute any chunk from a copy of its elements.
void norm_partials(const float* const* arrays, const std::size_t* sizes, std::size_t count, double norm_type,
                   std::vector<double>& out);
void norm_partials(const double* const* arrays, const std::size_t* sizes, std::size_t count, double norm_type,
                   std::vector<double>& out);

/// The norm from every chunk's partial of the float32 and of the float64
/// arrays (norm_partials), combined exactly as global_norm combines them, so
/// the result is bitwise global_norm's when the partials are all of them, in order.
double norm_from_partials(const double* float32_partials, std::size_t float32_count, const double* float64_partials,
                          std::size_t float64_count, double norm_type);

/// The factor clip_grad_norm_ scales by: max_norm / (total_norm + 1e-6) when
/// that is < 1, else 1 (also 1 when total_norm is not finite: clipping leaves
/// non-finite gradients for a non-finite check to reject).
double clip_coefficient(double total_norm, double max_norm);

}  // namespace lrcore
