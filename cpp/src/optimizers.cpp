// Step drivers: check the arguments, derive the per-step constants, cut the
// tensors into chunks and run the active kernel table over them.

#include "lrcore/optimizers.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "kernels/step_constants.hpp"
#include "chunking.hpp"

namespace lrcore {
namespace {

void require(bool ok, const char* name, const char* rule, double value) {
    if (!ok) {
        throw std::invalid_argument(std::string(name) + " must be " + rule + ", got " + std::to_string(value));
    }
}

void require_nonnegative(const char* name, double value) {
    require(std::isfinite(value) && value >= 0.0, name, "a finite number >= 0", value);
}

void require_unit_interval(const char* name, double value) {
    require(value >= 0.0 && value < 1.0, name, "in [0, 1)", value);
}

template <class Tensor>
void check_tensor(const Tensor& t, std::size_t index) {
    if (t.size != 0 && (t.param == nullptr || t.grad == nullptr)) {
        throw std::invalid_argument("tensor " + std::to_string(index) + ": param and grad must not be null");
    }
}

void check_state(const void* pointer, std::size_t size, const char* name, std::size_t index) {
    if (size != 0 && pointer == nullptr) {
        throw std::invalid_argument("tensor " + std::to_string(index) + ": " + name +
                                    " must not be null for this configuration");
    }
}

void check_step(std::int64_t step, std::size_t index) {
    if (step < 1) {
        throw std::invalid_argument("tensor " + std::to_string(index) + ": step must be >= 1, got " +
                                    std::to_string(step));
    }
}

/// Runs kernel(constants[i], tensors[i], begin, end) over every element of every tensor.
template <class T, class Tensor, class Constants, class Kernel>
void run_chunks(const Tensor* tensors, std::size_t count, const std::vector<Constants>& constants,
                Kernel kernel) {
    detail::for_each_range<T>(
        count, [&](std::size_t i) { return tensors[i].size; },
        [&](std::size_t i, std::size_t begin, std::size_t end) {
            const detail::DenormalGuard guard;  // flush denormals if asked, restore the caller's mode after
            kernel(constants[i], tensors[i], begin, end);
        });
}

/// Per-tensor constants from make(step); consecutive tensors usually share a
/// step number, so the last result is reused.
template <class Constants, class Tensor, class Make>
std::vector<Constants>& constants_by_step(const Tensor* tensors, std::size_t count, Make make) {
    thread_local std::vector<Constants> constants;
    constants.clear();
    std::int64_t last_step = -1;
    for (std::size_t i = 0; i < count; ++i) {
        check_step(tensors[i].step, i);
        if (constants.empty() || tensors[i].step != last_step) {
            constants.push_back(make(tensors[i].step));
            last_step = tensors[i].step;
        } else {
            constants.push_back(constants.back());
        }
    }
    return constants;
}

template <class T>
void sgd_impl(const SgdConfig& config, const SgdTensor<T>* tensors, std::size_t count) {
    validate(config);
    for (std::size_t i = 0; i < count; ++i) {
        check_tensor(tensors[i], i);
        if (config.momentum != 0.0) check_state(tensors[i].momentum_buffer, tensors[i].size, "momentum_buffer", i);
    }
    thread_local std::vector<kernels::SgdConstants<T>> constants;
    constants.assign(count, kernels::SgdConstants<T>::make(config));
    run_chunks<T>(tensors, count, constants, kernels::active_kernels().of<T>().sgd);
}

template <class T>
void adagrad_impl(const AdagradConfig& config, const AdagradTensor<T>* tensors, std::size_t count) {
    validate(config);
    for (std::size_t i = 0; i < count; ++i) {
        check_tensor(tensors[i], i);
        check_state(tensors[i].sum, tensors[i].size, "sum", i);
    }
    const auto& constants = constants_by_step<kernels::AdagradConstants<T>>(
        tensors, count, [&](std::int64_t step) { return kernels::AdagradConstants<T>::make(config, step); });
    run_chunks<T>(tensors, count, constants, kernels::active_kernels().of<T>().adagrad);
}

template <class T>
void rmsprop_impl(const RmspropConfig& config, const RmspropTensor<T>* tensors, std::size_t count) {
    validate(config);
    for (std::size_t i = 0; i < count; ++i) {
        check_tensor(tensors[i], i);
        check_state(tensors[i].square_avg, tensors[i].size, "square_avg", i);
        if (config.centered) check_state(tensors[i].grad_avg, tensors[i].size, "grad_avg", i);
        if (config.momentum > 0.0) check_state(tensors[i].momentum_buffer, tensors[i].size, "momentum_buffer", i);
    }
    thread_local std::vector<kernels::RmspropConstants<T>> constants;
    constants.assign(count, kernels::RmspropConstants<T>::make(config));
    run_chunks<T>(tensors, count, constants, kernels::active_kernels().of<T>().rmsprop);
}

template <class T>
void adam_impl(const AdamConfig& config, const AdamTensor<T>* tensors, std::size_t count) {
    validate(config);
    for (std::size_t i = 0; i < count; ++i) {
        check_tensor(tensors[i], i);
        check_state(tensors[i].exp_avg, tensors[i].size, "exp_avg", i);
        check_state(tensors[i].exp_avg_sq, tensors[i].size, "exp_avg_sq", i);
        if (config.amsgrad) check_state(tensors[i].max_exp_avg_sq, tensors[i].size, "max_exp_avg_sq", i);
    }
    const auto& constants = constants_by_step<kernels::AdamConstants<T>>(
        tensors, count, [&](std::int64_t step) { return kernels::AdamConstants<T>::make(config, step); });
    run_chunks<T>(tensors, count, constants, kernels::active_kernels().of<T>().adam);
}

}  // namespace

void validate(const SgdConfig& c) {
    require_nonnegative("lr", c.lr);
    require_nonnegative("momentum", c.momentum);
    require(std::isfinite(c.dampening), "dampening", "finite", c.dampening);
    require_nonnegative("weight_decay", c.weight_decay);
    if (c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0)) {
        throw std::invalid_argument("nesterov requires momentum > 0 and dampening == 0");
    }
}

void validate(const AdagradConfig& c) {
    require_nonnegative("lr", c.lr);
    require_nonnegative("lr_decay", c.lr_decay);
    require_nonnegative("weight_decay", c.weight_decay);
    require_nonnegative("eps", c.eps);
}

void validate(const RmspropConfig& c) {
    require_nonnegative("lr", c.lr);
    require_nonnegative("alpha", c.alpha);
    require_nonnegative("eps", c.eps);
    require_nonnegative("weight_decay", c.weight_decay);
    require_nonnegative("momentum", c.momentum);
}

void validate(const AdamConfig& c) {
    require_nonnegative("lr", c.lr);
    require_unit_interval("beta1", c.beta1);
    require_unit_interval("beta2", c.beta2);
    require_nonnegative("eps", c.eps);
    require_nonnegative("weight_decay", c.weight_decay);
}

void sgd_step(const SgdConfig& c, const SgdTensor<float>* t, std::size_t n) { sgd_impl(c, t, n); }
void sgd_step(const SgdConfig& c, const SgdTensor<double>* t, std::size_t n) { sgd_impl(c, t, n); }
void adagrad_step(const AdagradConfig& c, const AdagradTensor<float>* t, std::size_t n) { adagrad_impl(c, t, n); }
void adagrad_step(const AdagradConfig& c, const AdagradTensor<double>* t, std::size_t n) { adagrad_impl(c, t, n); }
void rmsprop_step(const RmspropConfig& c, const RmspropTensor<float>* t, std::size_t n) { rmsprop_impl(c, t, n); }
void rmsprop_step(const RmspropConfig& c, const RmspropTensor<double>* t, std::size_t n) { rmsprop_impl(c, t, n); }
void adam_step(const AdamConfig& c, const AdamTensor<float>* t, std::size_t n) { adam_impl(c, t, n); }
void adam_step(const AdamConfig& c, const AdamTensor<double>* t, std::size_t n) { adam_impl(c, t, n); }

}  // namespace lrcore
