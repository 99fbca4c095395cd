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

}  // namespace lrcore
