// Views of one parameter tensor and its optimizer state, as the kernels see
// them: raw pointers to `size` contiguous elements, owned by the caller.
//
// `step` is the 1-based number of the update about to be applied to this
// tensor (the caller increments its counter first, as torch.optim does).
// Optional state pointers may be null when the configuration does not use
// them (e.g. `max_exp_avg_sq` without AMSGrad). A parameter must not overlap
// its own gradient or state.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lrcore {

template <class T>
struct SgdTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* momentum_buffer = nullptr;          // required when momentum != 0
    std::size_t size = 0;
    bool initialize_momentum_buffer = false;  // first momentum step: buffer = gradient
};

template <class T>
struct AdagradTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* sum = nullptr;                      // accumulated squared gradients
    std::size_t size = 0;
    std::int64_t step = 1;
};

template <class T>
struct RmspropTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* square_avg = nullptr;
    T* grad_avg = nullptr;                 // required when centered
    T* momentum_buffer = nullptr;          // required when momentum > 0
    std::size_t size = 0;
};

template <class T>
struct AdamTensor {
    T* param = nullptr;
    const T* grad = nullptr;
    T* exp_avg = nullptr;
    T* exp_avg_sq = nullptr;
    T* max_exp_avg_sq = nullptr;           // required when amsgrad
    std::size_t size = 0;
    std::int64_t step = 1;
};

}  // namespace lrcore
