// Views of one parameter tensor and its optimizer state, as the kernels see
// them: raw pointers to `size` contiguous elements, owned by the caller.
//
// T is float or double. Arrays need no particular alignment. lrcore keeps no
// pointer after a step call returns: the caller owns every array, keeps the
// state between steps (start it at zero unless noted) and may move or
// reallocate it freely between calls.
//
// `step` is the 1-based number of the update about to be applied to this
// tensor (the caller increments its counter first, as torch.optim does);
// lrcore never changes it. Optional state pointers may be null when the
// configuration does not use them (e.g. `max_exp_avg_sq` without AMSGrad);
// a required one that is null makes the step throw std::invalid_argument.
// A tensor with size 0 is skipped, whatever its pointers.
//
// Aliasing: the arrays of one tensor must not overlap one another, and the
// tensors of one call must not overlap each other (the kernels assume
// restrict-qualified, independent arrays and update chunks in parallel).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lrcore {

/// How a tensor's arrays are stored when they are not all of the rule's
/// element type: the storage side of mixed precision. It goes with a
/// Tensor<float> (the math is float32) whose pointers point to elements of
/// these formats (cast to float*: a bfloat16 or float16 array is passed as
/// reinterpret_cast<float*>(its uint16_t data)). Every load widens exactly to
/// float32; every store to a 16-bit format rounds the float32 result, to the
/// nearest value (ties to even; a NaN stays a NaN, quieted), or stochastically.
enum class Format : std::uint8_t { float32, bfloat16, float16 };

enum class Rounding : std::uint8_t {
    nearest_even,
    // Rounds up in magnitude with probability (distance to the value below) /
    // (spacing there), so a stored value is on average the float32 result;
    // the random bits come from a counter-based generator keyed by (seed,
    // stream, step, array, element), so results do not depend on the thread
    // count or the instruction set, and each seed gives its own sequence.
    // Elements 2**32 apart in one tensor share their random bits.
    stochastic,
};

struct Storage {
    Format param = Format::float32;   // bfloat16 or float16 with a master copy
    Format grad = Format::float32;    // the parameter's format or float32
    Format state = Format::float32;   // every state array of the tensor: float32 or bfloat16
    // With a 16-bit parameter, an optional float32 master copy of it (size
    // elements): the rule then steps the master exactly as the float32 rule
    // would, and writes it, rounded to the nearest, into the parameter.
    float* master = nullptr;
    Rounding rounding = Rounding::nearest_even;  // of 16-bit stores other than the parameter's from its master
    std::uint64_t seed = 0;    // of stochastic rounding
    std::uint64_t stream = 0;  // the tensor's identity, e.g. its position among the optimizer's parameters
    std::uint64_t step = 0;    // the update's number for this tensor (its random bits change every step)
};

/// SGD state: the momentum buffer, used when SgdConfig::momentum != 0.
template <class T>
struct SgdTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* momentum_buffer = nullptr;          // required when momentum != 0
    std::size_t size = 0;
    // Set it on the first step that uses momentum: the buffer is then set to
    // the gradient (after maximize and weight decay), its previous contents
    // ignored, as torch creates it; clear it for every later step.
    bool initialize_momentum_buffer = false;
};

/// AdaGrad state: the running sum of squared gradients. torch's
/// initial_accumulator_value is the value the caller fills `sum` with before
/// the first step (0 by default).
template <class T>
struct AdagradTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* sum = nullptr;                      // accumulated squared gradients
    std::size_t size = 0;
    std::int64_t step = 1;                 // drives lr_decay: lr / (1 + (step - 1) * lr_decay)
};

/// RMSprop state (no step counter: the rule does not depend on it).
template <class T>
struct RmspropTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* square_avg = nullptr;               // running mean of squared gradients
    T* grad_avg = nullptr;                 // running mean of gradients; required when centered
    T* momentum_buffer = nullptr;          // required when momentum > 0
    std::size_t size = 0;
};

/// Adam / AdamW state: the first and second moment estimates.
template <class T>
struct AdamTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* exp_avg = nullptr;                  // first moment (running mean of gradients)
    T* exp_avg_sq = nullptr;               // second moment (running mean of squared gradients)
    T* max_exp_avg_sq = nullptr;           // running maximum of exp_avg_sq; required when amsgrad
    std::size_t size = 0;
    std::int64_t step = 1;                 // drives the bias corrections 1 - beta^step
};

/// Adafactor state. A parameter of 2 or more dimensions is a stack of
/// size / (rows * columns) matrices of `rows` x `columns` (its last two
/// dimensions), row-major; it keeps its second moment factored: `row_var`, the
/// running mean of g*g over each row (size / columns elements, torch's shape
/// with the last dimension 1), and `col_var`, over each column (size / rows
/// elements, torch's shape with the second-to-last dimension 1). A vector (or
/// a scalar) has rows == columns == 0 and keeps `variance` (size elements).
/// The pointers the other kind uses are ignored and may be null.
template <class T>
struct AdafactorTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* row_var = nullptr;                  // required for a matrix
    T* col_var = nullptr;                  // required for a matrix
    T* variance = nullptr;                 // required for a vector
    std::size_t size = 0;
    std::size_t rows = 0;                  // the second-to-last dimension; 0 for a vector
    std::size_t columns = 0;               // the last dimension; 0 for a vector
    std::int64_t step = 1;                 // drives the averaging weight t^beta2_decay and min(lr, 1/sqrt(t))
};

/// NAdam state: the moment estimates and the running product of the momentum
/// schedule, mu_product = mu_1 * ... * mu_t (torch keeps it per tensor).
/// `mu_product` points to the caller's double, 1 before the first step: the step
/// reads it and, after every kernel of the call has run, replaces it with
/// mu_product * mu_t.
template <class T>
struct NadamTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* exp_avg = nullptr;                  // first moment
    T* exp_avg_sq = nullptr;               // second moment
    double* mu_product = nullptr;          // product of the momentum schedule so far (starts at 1)
    std::size_t size = 0;
    std::int64_t step = 1;                 // drives the momentum schedule and the bias correction
};

/// RAdam state: the first and second moment estimates.
template <class T>
struct RadamTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* exp_avg = nullptr;
    T* exp_avg_sq = nullptr;
    std::size_t size = 0;
    std::int64_t step = 1;                 // drives the bias corrections and the rectification
};

/// Adamax state: the first moment and the exponentially weighted infinity norm.
template <class T>
struct AdamaxTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* exp_avg = nullptr;
    T* exp_inf = nullptr;                  // max(beta2 * exp_inf, |g| + eps)
    std::size_t size = 0;
    std::int64_t step = 1;                 // drives the bias correction 1 - beta1^step
};

/// Lion state: the momentum (no step counter: the rule does not depend on it).
template <class T>
struct LionTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* exp_avg = nullptr;
    std::size_t size = 0;
};

/// Adadelta state (no step counter: the rule does not depend on it).
template <class T>
struct AdadeltaTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* square_avg = nullptr;               // running mean of squared gradients
    T* acc_delta = nullptr;                // running mean of squared updates
    std::size_t size = 0;
};

/// Rprop state (no step counter: the rule does not depend on it).
template <class T>
struct RpropTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* prev = nullptr;                     // the gradient of the previous step (0 where its sign flipped)
    T* step_size = nullptr;                // per-element step sizes
    std::size_t size = 0;
    // Set it on the tensor's first step: step_size is then set to lr before
    // the step, its previous contents ignored, as torch creates it (prev starts
    // at zero); clear it for every later step.
    bool initialize_step_size = false;
};

/// ASGD state: the averaged parameter and two numbers per tensor, eta (the
/// step size) and mu (the averaging weight), which torch keeps as 0-d tensors
/// of its default dtype; here doubles. `eta` and `mu` point to the caller's
/// doubles: start them at lr and 1 (as torch creates them), or at NaN, which
/// reads as "not set yet" (lr and 1 on the first step; on a later one their
/// values after the previous step at this step's lr). After every kernel of the
/// call has run, the step replaces them with their values for the next step:
/// eta = lr / (1 + lambd * lr * step)^alpha, mu = 1 / max(1, step - t0).
template <class T>
struct AsgdTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* ax = nullptr;                       // running average of the parameter
    double* eta = nullptr;                 // the step size of the next step
    double* mu = nullptr;                  // the averaging weight of the next step
    std::size_t size = 0;
    std::int64_t step = 1;                 // drives the eta and mu updates
};

/// Schedule-free AdamW state. `param` holds y in train mode (where the
/// gradient was taken), x in eval mode.
template <class T>
struct ScheduleFreeAdamWTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* z = nullptr;                        // the base (SGD-like) sequence
    T* exp_avg_sq = nullptr;               // second moment (running mean of squared gradients)
    std::size_t size = 0;
    // Set it on the tensor's first step: z then starts as a copy of the
    // parameter (its previous contents ignored), as the package creates it;
    // clear it for every later step and for the mode switches.
    bool initialize_z = false;
};

/// Schedule-free SGD state.
template <class T>
struct ScheduleFreeSgdTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* z = nullptr;
    std::size_t size = 0;
    bool initialize_z = false;             // as ScheduleFreeAdamWTensor::initialize_z
};

}  // namespace lrcore

namespace lrcore {

/// SparseAdam state (row-sparse gradients only: `grad` is unused, see SparseRows).
template <class T>
struct SparseAdamTensor {
    T* param = nullptr;
    const T* grad = nullptr;               // unused: SparseAdam takes SparseRows gradients
    T* exp_avg = nullptr;                  // first moment, changed only on referenced rows
    T* exp_avg_sq = nullptr;               // second moment, changed only on referenced rows
    std::size_t size = 0;
    std::int64_t step = 1;                 // drives the bias corrections 1 - beta^step
};

/// Row-wise AdaGrad state: a table of size / row_length rows, one accumulator per row.
template <class T>
struct RowwiseAdagradTensor {
    T* param = nullptr;
    const T* grad = nullptr;               // a dense gradient (every row); null with SparseRows
    T* sum = nullptr;                      // size / row_length accumulators, one per row
    std::size_t size = 0;
    std::size_t row_length = 1;            // elements per row (>= 1; size must be a multiple)
};

/// A row-sparse gradient of a table of `rows` rows of `row_length` elements
/// (a parameter of shape (rows, ...), row_length the product of the other
/// dimensions): `count` row numbers in `indices` (each in [0, rows), any
/// order, duplicates allowed) and, for each, `row_length` gradient values in
/// `values` (count * row_length elements, row after row). The values of
/// duplicate rows are summed, in the order given, before the update; rows
/// not referenced are not read or written, in the table or its state.
template <class T>
struct SparseRows {
    const std::int64_t* indices = nullptr;
    const T* values = nullptr;
    std::size_t count = 0;
    std::size_t row_length = 0;
};

}  // namespace lrcore
