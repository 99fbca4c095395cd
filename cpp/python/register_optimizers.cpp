// Bindings of the update rules: lrcore._core.{sgd,adagrad,rmsprop,adam}_step.
//
// Each call takes Python lists of arrays (one entry per tensor; a None
// gradient skips that tensor), checks every array it will touch, and only
// then releases the GIL and runs one native step over all tensors, float32
// and float64 batches separately. Per-tensor step counters (an int64 array)
// are incremented for the tensors that were updated, after the step.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>
#include <vector>

#include "array_checks.hpp"
#include "lrcore/config.hpp"
#include "lrcore/optimizers.hpp"
#include "register.hpp"

namespace lrcore::python {
namespace {

using namespace pybind11::literals;

/// The checked tensors of one step call, split by element type.
template <template <class> class Tensor>
struct Batch {
    std::vector<Tensor<float>> float32;
    std::vector<Tensor<double>> float64;
    std::vector<std::size_t> updated;   // indices of the tensors that have a gradient
    std::vector<py::object> alive;      // keeps every array referenced while the GIL is released
    ArrayView current_param;            // the parameter of the tensor being checked
    std::vector<Region> regions;        // every array of the call, for the overlap check across tensors
};

/// The batch of the calling thread, emptied: its vectors keep their capacity
/// from call to call, so a step allocates nothing once warmed up. The guard
/// drops the array references when the call ends (the GIL is held then).
template <template <class> class Tensor>
class ReusableBatch {
public:
    ReusableBatch() : batch_(storage()) {
        batch_.float32.clear();
        batch_.float64.clear();
        batch_.updated.clear();
        batch_.regions.clear();
        batch_.alive.clear();
    }
    ~ReusableBatch() { batch_.alive.clear(); }
    ReusableBatch(const ReusableBatch&) = delete;
    ReusableBatch& operator=(const ReusableBatch&) = delete;
    Batch<Tensor>& operator*() { return batch_; }

private:
    static Batch<Tensor>& storage() {
        thread_local Batch<Tensor> batch;
        return batch;
    }
    Batch<Tensor>& batch_;
};

/// Checks a state array of tensor `index` against its parameter and records
/// it for the overlap check; returns its data pointer.
template <class T, template <class> class Tensor>
T* state_array(Batch<Tensor>& batch, const py::sequence& list, const char* list_name, std::size_t index) {
    py::object object = list[index];
    const ArrayView view = check_like(object, list_name, index, batch.current_param, "params", true);
    batch.regions.push_back(region_of(view, list_name, index, true));
    batch.alive.push_back(std::move(object));
    return static_cast<T*>(view.data);
}

/// Checks params[i] and grads[i] for every tensor with a gradient and lets
/// `fill(tensor, index)` check and attach the rule's state arrays; then checks
/// that no array written overlaps another array of the call, within a tensor
/// or across tensors (tensors run in parallel chunks, so e.g. one tensor's
/// gradient must not be another's parameter). Names for error messages are
/// only built when there is an error.
template <template <class> class Tensor, class Fill>
void gather(Batch<Tensor>& batch, const py::sequence& params, const py::sequence& grads, std::size_t count,
            Fill&& fill) {
    for (std::size_t i = 0; i < count; ++i) {
        py::object grad = grads[i];
        if (grad.is_none()) continue;
        py::object param = params[i];
        const ArrayView param_view = check_parameter(param, "params", i);
        const ArrayView grad_view = check_like(grad, "grads", i, param_view, "params", false);
        batch.current_param = param_view;
        batch.regions.push_back(region_of(param_view, "params", i, true));
        batch.regions.push_back(region_of(grad_view, "grads", i, false));
        batch.alive.push_back(std::move(param));
        batch.alive.push_back(std::move(grad));
        batch.updated.push_back(i);
        auto attach = [&](auto& tensors) {
            using T = std::remove_pointer_t<decltype(tensors.back().param)>;
            auto& tensor = tensors.emplace_back();
            tensor.param = static_cast<T*>(param_view.data);
            tensor.grad = static_cast<const T*>(grad_view.data);
            tensor.size = param_view.size;
            fill(tensor, i);
        };
        if (param_view.type == ElementType::float32) {
            attach(batch.float32);
        } else {
            attach(batch.float64);
        }
    }
    check_no_overlap(batch.regions);
}

/// Runs step(config, tensors, count) on both batches without the GIL.
template <template <class> class Tensor, class Config, class Step>
void run(const Batch<Tensor>& batch, const Config& config, Step step) {
    py::gil_scoped_release release;
    if (!batch.float32.empty()) step(config, batch.float32.data(), batch.float32.size());
    if (!batch.float64.empty()) step(config, batch.float64.data(), batch.float64.size());
}

void advance_steps(std::int64_t* steps, const std::vector<std::size_t>& updated) {
    for (const std::size_t i : updated) ++steps[i];
}

py::sequence params_list(py::handle params) {
    if (!py::isinstance<py::sequence>(params) || py::isinstance<py::array>(params) ||
        py::isinstance<py::str>(params)) {
        throw py::type_error(std::string("params must be a list of arrays, got ") + Py_TYPE(params.ptr())->tp_name);
    }
    return py::reinterpret_borrow<py::sequence>(params);
}

py::sequence optional_list(py::handle object, const char* name, std::size_t count, bool required,
                           const char* requirement) {
    if (!required) return py::list();
    if (object.is_none()) throw py::value_error(std::string(name) + " is required when " + requirement);
    return check_list(object, name, count);
}

// -------------------------------------------------------------------- SGD --
void sgd_binding(py::handle params_object, py::handle grads_object, py::handle buffers_object,
                 py::handle steps_object, double lr,
                 double momentum, double dampening, double weight_decay, bool nesterov, bool maximize) {
    const SgdConfig config{lr, momentum, dampening, weight_decay, nesterov, maximize};
    validate(config);
    const py::sequence params = params_list(params_object);
    const std::size_t count = py::len(params);
    const py::sequence grads = check_list(grads_object, "grads", count);
    const bool has_momentum = momentum != 0.0;
    py::list buffers;
    if (has_momentum) {
        if (!py::isinstance<py::list>(buffers_object)) {
            throw py::type_error("momentum_buffers must be a list (entries None until first used) when momentum != 0");
        }
        buffers = py::reinterpret_borrow<py::list>(buffers_object);
        check_list(buffers, "momentum_buffers", count);
    }
    // SGD's formula has no step number; the counters are kept only when asked for.
    std::int64_t* steps = steps_object.is_none() ? nullptr : check_steps(steps_object, count);
    ReusableBatch<SgdTensor> reusable;
    Batch<SgdTensor>& batch = *reusable;
    struct NewBuffer {
        std::size_t index;     // position in params
        bool float32;
        std::size_t position;  // position in its batch
    };
    std::vector<NewBuffer> new_buffers;
    gather(batch, params, grads, count, [&](auto& tensor, std::size_t i) {
        using T = std::remove_pointer_t<decltype(tensor.param)>;
        if (!has_momentum) return;
        if (py::object(buffers[i]).is_none()) {
            tensor.initialize_momentum_buffer = true;
            constexpr bool is_float32 = std::is_same_v<T, float>;
            const std::size_t position = is_float32 ? batch.float32.size() - 1 : batch.float64.size() - 1;
            new_buffers.push_back({i, is_float32, position});
        } else {
            tensor.momentum_buffer = state_array<T>(batch, buffers, "momentum_buffers", i);
        }
    });
    // Everything is checked: now create the buffers that start this step (the
    // first momentum step writes the gradient into them, as torch.optim does).
    const py::object empty_like =
        new_buffers.empty() ? py::object() : py::module_::import("numpy").attr("empty_like");
    for (const NewBuffer& b : new_buffers) {
        auto buffer = py::reinterpret_steal<py::array>(empty_like(params[b.index]).release());
        if (b.float32) {
            batch.float32[b.position].momentum_buffer = static_cast<float*>(buffer.mutable_data());
        } else {
            batch.float64[b.position].momentum_buffer = static_cast<double*>(buffer.mutable_data());
        }
        buffers[b.index] = buffer;
        batch.alive.push_back(std::move(buffer));
    }
    run(batch, config, [](const auto& c, const auto* t, std::size_t n) { sgd_step(c, t, n); });
    if (steps != nullptr) advance_steps(steps, batch.updated);
}

// ---------------------------------------------------------------- AdaGrad --
void adagrad_binding(py::handle params_object, py::handle grads_object, py::handle sums_object,
                     py::handle steps_object, double lr, double lr_decay, double weight_decay, double eps,
                     bool maximize) {
    const AdagradConfig config{lr, lr_decay, weight_decay, eps, maximize};
    validate(config);
    const py::sequence params = params_list(params_object);
    const std::size_t count = py::len(params);
    const py::sequence grads = check_list(grads_object, "grads", count);
    const py::sequence sums = check_list(sums_object, "state_sums", count);
    std::int64_t* steps = check_steps(steps_object, count);
    ReusableBatch<AdagradTensor> reusable;
    Batch<AdagradTensor>& batch = *reusable;
    gather(batch, params, grads, count, [&](auto& tensor, std::size_t i) {
        using T = std::remove_pointer_t<decltype(tensor.param)>;
        tensor.sum = state_array<T>(batch, sums, "state_sums", i);
        tensor.step = steps[i] + 1;
    });
    run(batch, config, [](const auto& c, const auto* t, std::size_t n) { adagrad_step(c, t, n); });
    advance_steps(steps, batch.updated);
}

// ---------------------------------------------------------------- RMSprop --
void rmsprop_binding(py::handle params_object, py::handle grads_object, py::handle square_avgs_object,
                     py::handle grad_avgs_object, py::handle buffers_object, py::handle steps_object, double lr,
                     double alpha, double eps, double weight_decay, double momentum, bool centered,
                     bool maximize) {
    const RmspropConfig config{lr, alpha, eps, weight_decay, momentum, centered, maximize};
    validate(config);
    const py::sequence params = params_list(params_object);
    const std::size_t count = py::len(params);
    const py::sequence grads = check_list(grads_object, "grads", count);
    const py::sequence square_avgs = check_list(square_avgs_object, "square_avgs", count);
    const py::sequence grad_avgs = optional_list(grad_avgs_object, "grad_avgs", count, centered, "centered=True");
    const py::sequence buffers =
        optional_list(buffers_object, "momentum_buffers", count, momentum > 0.0, "momentum > 0");
    std::int64_t* steps = check_steps(steps_object, count);
    ReusableBatch<RmspropTensor> reusable;
    Batch<RmspropTensor>& batch = *reusable;
    gather(batch, params, grads, count, [&](auto& tensor, std::size_t i) {
        using T = std::remove_pointer_t<decltype(tensor.param)>;
        tensor.square_avg = state_array<T>(batch, square_avgs, "square_avgs", i);
        if (centered) tensor.grad_avg = state_array<T>(batch, grad_avgs, "grad_avgs", i);
        if (momentum > 0.0) tensor.momentum_buffer = state_array<T>(batch, buffers, "momentum_buffers", i);
    });
    run(batch, config, [](const auto& c, const auto* t, std::size_t n) { rmsprop_step(c, t, n); });
    advance_steps(steps, batch.updated);
}

// ------------------------------------------------------------ Adam/AdamW --
void adam_binding(py::handle params_object, py::handle grads_object, py::handle exp_avgs_object,
                  py::handle exp_avg_sqs_object, py::handle max_exp_avg_sqs_object, py::handle steps_object,
                  double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
                  bool maximize, bool decoupled_weight_decay) {
    const AdamConfig config{lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay};
    validate(config);
    const py::sequence params = params_list(params_object);
    const std::size_t count = py::len(params);
    const py::sequence grads = check_list(grads_object, "grads", count);
    const py::sequence exp_avgs = check_list(exp_avgs_object, "exp_avgs", count);
    const py::sequence exp_avg_sqs = check_list(exp_avg_sqs_object, "exp_avg_sqs", count);
    const py::sequence max_exp_avg_sqs =
        optional_list(max_exp_avg_sqs_object, "max_exp_avg_sqs", count, amsgrad, "amsgrad=True");
    std::int64_t* steps = check_steps(steps_object, count);
    ReusableBatch<AdamTensor> reusable;
    Batch<AdamTensor>& batch = *reusable;
    gather(batch, params, grads, count, [&](auto& tensor, std::size_t i) {
        using T = std::remove_pointer_t<decltype(tensor.param)>;
        tensor.exp_avg = state_array<T>(batch, exp_avgs, "exp_avgs", i);
        tensor.exp_avg_sq = state_array<T>(batch, exp_avg_sqs, "exp_avg_sqs", i);
        if (amsgrad) tensor.max_exp_avg_sq = state_array<T>(batch, max_exp_avg_sqs, "max_exp_avg_sqs", i);
        tensor.step = steps[i] + 1;
    });
    run(batch, config, [](const auto& c, const auto* t, std::size_t n) { adam_step(c, t, n); });
    advance_steps(steps, batch.updated);
}

/// The checks a step makes of params and grads, alone: used by optimizers with
/// several parameter groups to check every group before updating the first.
void check_gradients(py::handle params_object, py::handle grads_object, std::size_t first_index) {
    const py::sequence params = params_list(params_object);
    const std::size_t count = py::len(params);
    const py::sequence grads = check_list(grads_object, "grads", count);
    std::vector<Region> regions;
    for (std::size_t i = 0; i < count; ++i) {
        py::object grad = grads[i];
        if (grad.is_none()) continue;
        py::object param = params[i];
        const ArrayView param_view = check_parameter(param, "params", first_index + i);
        const ArrayView grad_view = check_like(grad, "grads", first_index + i, param_view, "params", false);
        check_disjoint(grad_view, argument_name("grads", first_index + i), param_view,
                       argument_name("params", first_index + i));
        regions.push_back(region_of(param_view, "params", first_index + i, true));
        regions.push_back(region_of(grad_view, "grads", first_index + i, false));
    }
    check_no_overlap(regions);
}

}  // namespace

void register_optimizers(py::module_& m) {
    m.def("sgd_step", &sgd_binding, "params"_a, "grads"_a, "momentum_buffers"_a, "steps"_a, "lr"_a, "momentum"_a,
          "dampening"_a, "weight_decay"_a, "nesterov"_a, "maximize"_a,
          "One SGD step over all tensors, in place. momentum_buffers entries that are None are "
          "created on their first momentum step.");
    m.def("adagrad_step", &adagrad_binding, "params"_a, "grads"_a, "state_sums"_a, "steps"_a, "lr"_a,
          "lr_decay"_a, "weight_decay"_a, "eps"_a, "maximize"_a, "One AdaGrad step over all tensors, in place.");
    m.def("rmsprop_step", &rmsprop_binding, "params"_a, "grads"_a, "square_avgs"_a, "grad_avgs"_a,
          "momentum_buffers"_a, "steps"_a, "lr"_a, "alpha"_a, "eps"_a, "weight_decay"_a,
          "momentum"_a, "centered"_a, "maximize"_a, "One RMSprop step over all tensors, in place.");
    m.def("adam_step", &adam_binding, "params"_a, "grads"_a, "exp_avgs"_a, "exp_avg_sqs"_a,
          "max_exp_avg_sqs"_a, "steps"_a, "lr"_a, "beta1"_a, "beta2"_a, "eps"_a,
          "weight_decay"_a, "amsgrad"_a, "maximize"_a, "decoupled_weight_decay"_a,
          "One Adam (or AdamW, with decoupled_weight_decay) step over all tensors, in place.");

    m.def("check_gradients", &check_gradients, "params"_a, "grads"_a, "first_index"_a = 0,
          "Checks that every non-None gradient matches its parameter, without running a step.");

    // Hyperparameter checks alone, for constructors that validate early.
    m.def("validate_sgd", [](double lr, double momentum, double dampening, double weight_decay, bool nesterov) {
        validate(SgdConfig{lr, momentum, dampening, weight_decay, nesterov, false});
    }, "lr"_a, "momentum"_a, "dampening"_a, "weight_decay"_a, "nesterov"_a);
    m.def("validate_adagrad", [](double lr, double lr_decay, double weight_decay, double eps) {
        validate(AdagradConfig{lr, lr_decay, weight_decay, eps, false});
    }, "lr"_a, "lr_decay"_a, "weight_decay"_a, "eps"_a);
    m.def("validate_rmsprop", [](double lr, double alpha, double eps, double weight_decay, double momentum) {
        validate(RmspropConfig{lr, alpha, eps, weight_decay, momentum, false, false});
    }, "lr"_a, "alpha"_a, "eps"_a, "weight_decay"_a, "momentum"_a);
    m.def("validate_adam", [](double lr, double beta1, double beta2, double eps, double weight_decay) {
        validate(AdamConfig{lr, beta1, beta2, eps, weight_decay, false, false, false});
    }, "lr"_a, "beta1"_a, "beta2"_a, "eps"_a, "weight_decay"_a);
}

}  // namespace lrcore::python
