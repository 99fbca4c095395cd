// Bindings of the update rules: lrcore._core.rules.<name>, one object per
// rule of cpp/src/rules.hpp, made by one template from the rule's description.
//
// rule.step(groups, counters, skip_nonfinite, create, group_labels) is the
// single boundary of every step, from an optimizer class or the functional
// layer. A group is a tuple (hyperparameters, params, grads, state, steps):
// a dict of the rule's hyperparameters by name, parallel lists of parameters
// and gradients (a None gradient skips that tensor), a dict of the rule's
// state lists by state name, and the int64 per-tensor step counters (None
// for a rule without step numbers, when nobody keeps them).
//
// A step is a transaction. First everything is checked, for every group:
// the runtime settings, each hyperparameter, each array (dtype, shape,
// contiguity, writeability), that no array written overlaps any other array
// of the call in any group, and with skip_nonfinite that every gradient is
// finite. With max_grad_norm (global-norm clipping) one read pass computes the
// norm of all gradients instead; it doubles as the non-finite check, and its
// clipping coefficient becomes each group's config.grad_scale, which the
// kernels apply to the gradient as they read it. Then missing state arrays are created (with `create`, the state
// allocator; they enter the state lists only after every one exists). Then
// the kernels run without the GIL, and finally the per-tensor counters and
// `counters` (the optimizer's [step_count, skipped_steps]) are incremented.
// From the first list assignment to the last counter no Python code runs, so
// no exception or KeyboardInterrupt can leave a step half done.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "array_checks.hpp"
#include "lrcore/gradients.hpp"
#include "register.hpp"
#include "kernels/storage_formats.hpp"
#include "rules.hpp"
#include "sparse_rows.hpp"
#include "step_drivers.hpp"

namespace lrcore::python {
namespace {

using namespace pybind11::literals;

template <class Config>
using RuleOf = rules::Rule<Config>;
template <class Config>
constexpr bool has_group_state = rules::HasGroupState<RuleOf<Config>>::value;

/// What a group of a rule with per-group state adds to its plan: where its
/// state lives (a float64 array, one element per group scalar) and the step's
/// values computed from it at the boundary.
template <class Config, bool = has_group_state<Config>>
struct GroupStatePlan {};
template <class Config>
struct GroupStatePlan<Config, true> {
    double* scalars = nullptr;
    typename RuleOf<Config>::StepValues values{};
};

/// One group of the call, after its checks.
template <class Config>
struct GroupPlan : GroupStatePlan<Config> {
    Config config{};
    std::size_t float32_begin = 0, float32_end = 0;
    std::size_t float64_begin = 0, float64_end = 0;
    std::size_t stored_begin = 0, stored_end = 0;    // 16-bit parameters (Batch::stored)
    std::size_t updated_begin = 0, updated_end = 0;  // range of Batch::updated
    std::size_t sparse_float32_begin = 0, sparse_float32_end = 0;  // tables with row-sparse gradients
    std::size_t sparse_float64_begin = 0, sparse_float64_end = 0;
    std::int64_t* steps = nullptr;                   // null when the caller keeps none
};

/// A state array to create once every check has passed.
struct PendingState {
    py::object param;       // the parameter it is shaped from
    py::list list;          // the state list that receives it
    std::size_t index;      // its position there (the tensor's position in its group)
    std::size_t state;      // which state of the rule
    bool float32;
    std::size_t tensor;     // position in the float32 or float64 tensors
    bool sparse = false;    // ... of the tables with row-sparse gradients
    bool stored = false;    // ... of the 16-bit parameters (float32 math)
};

/// A per-tensor scalar state to create (at its initial value) once every check has passed.
struct PendingScalar {
    py::list list;          // the scalar list that receives it
    std::size_t index;      // its position there
    std::size_t scalar;     // which scalar state of the rule
    bool float32;           // the tensor's element type
    std::size_t tensor;     // position in the float32 or float64 tensors
    bool stored = false;    // ... of the 16-bit parameters
};

/// Everything one step call gathers before it writes anything.
template <class Config>
struct Batch {
    template <class T>
    using Tensor = typename rules::Rule<Config>::template Tensor<T>;
    std::vector<Tensor<float>> float32;
    std::vector<Tensor<double>> float64;
    // Tensors of 16-bit parameters: float32 math over arrays stored as their storage says.
    std::vector<Tensor<float>> stored;
    std::vector<Storage> storages;
    std::vector<char> state_format_known;  // per stored tensor: whether a state array fixed Storage::state
    std::vector<GroupPlan<Config>> groups;
    std::vector<std::size_t> updated;     // per group, the positions of the tensors that have a gradient
    std::vector<Region> regions;          // every array of the call, for the overlap check
    std::vector<PendingState> pending;
    std::vector<PendingScalar> pending_scalars;
    std::vector<py::object> alive;        // keeps every array referenced while the GIL is released
    // Tables with row-sparse gradients, their coalesced gradients, and the
    // coalescing results these point into (kept, with their capacity, across steps).
    std::vector<Tensor<float>> sparse_float32;
    std::vector<Tensor<double>> sparse_float64;
    std::vector<kernels::RowGradient<float>> rows_float32;
    std::vector<kernels::RowGradient<double>> rows_float64;
    std::vector<std::unique_ptr<detail::CoalescedIndex>> indexes;
    std::size_t indexes_used = 0;
    bool in_use = false;

    detail::CoalescedIndex& next_index() {
        if (indexes_used == indexes.size()) indexes.push_back(std::make_unique<detail::CoalescedIndex>());
        return *indexes[indexes_used++];
    }

    void clear() {
        float32.clear();
        float64.clear();
        stored.clear();
        storages.clear();
        state_format_known.clear();
        groups.clear();
        updated.clear();
        regions.clear();
        pending.clear();
        pending_scalars.clear();
        alive.clear();
        sparse_float32.clear();
        sparse_float64.clear();
        rows_float32.clear();
        rows_float64.clear();
        indexes_used = 0;
    }
};

/// The calling thread's batch, emptied; its vectors keep their capacity, so a
/// warmed-up step allocates nothing. A step that starts while the thread's
/// batch is in use (a gradient list whose item access runs another step)
/// gets a batch of its own instead.
template <class Config>
class BatchLease {
public:
    BatchLease() {
        thread_local Batch<Config> shared;
        if (shared.in_use) {
            owned_ = std::make_unique<Batch<Config>>();
            batch_ = owned_.get();
        } else {
            batch_ = &shared;
            batch_->clear();
        }
        batch_->in_use = true;
    }
    ~BatchLease() {
        batch_->pending.clear();
        batch_->pending_scalars.clear();
        batch_->alive.clear();
        batch_->in_use = false;
    }
    BatchLease(const BatchLease&) = delete;
    BatchLease& operator=(const BatchLease&) = delete;
    Batch<Config>& operator*() { return *batch_; }

private:
    std::unique_ptr<Batch<Config>> owned_;
    Batch<Config>* batch_ = nullptr;
};

/// The rule's hyperparameter names as Python strings, made once.
template <class Config>
struct Keys {
    std::vector<py::str> numbers;
    std::vector<py::str> flags;
    std::vector<py::str> states;
    std::vector<py::str> scalars;
    static const Keys& get() {
        static const Keys* keys = [] {
            auto* k = new Keys;  // never destroyed: Python strings must not outlive the interpreter's teardown
            using Rule = rules::Rule<Config>;
            for (const auto& n : Rule::numbers) k->numbers.emplace_back(n.name);
            for (const auto& f : Rule::flags) k->flags.emplace_back(f.name);
            for (const auto& s : Rule::states) k->states.emplace_back(s.name);
            for (const auto& s : rules::scalars_of<Rule>()) k->scalars.emplace_back(s.name);
            return k;
        }();
        return *keys;
    }
};

std::string group_prefix(bool labels, std::size_t group) {
    return labels ? "param_groups[" + std::to_string(group) + "]: " : std::string();
}

const char* type_name(py::handle object) { return Py_TYPE(object.ptr())->tp_name; }

bool is_numpy_bool(py::handle object) {
    static PyTypeObject* numpy_bool = [] {
        py::object type = py::module_::import("numpy").attr("bool_");
        return reinterpret_cast<PyTypeObject*>(type.release().ptr());
    }();
    return Py_TYPE(object.ptr()) == numpy_bool;
}

double number_value(py::handle value, const std::string& prefix, const char* name) {
    PyObject* object = value.ptr();
    if (PyFloat_CheckExact(object)) return PyFloat_AS_DOUBLE(object);
    const PyNumberMethods* methods = Py_TYPE(object)->tp_as_number;
    const bool numeric = methods != nullptr && (methods->nb_float != nullptr || methods->nb_index != nullptr);
    if (PyBool_Check(object) || is_numpy_bool(value) || !numeric) {
        throw py::type_error(prefix + name + " must be a number, got " + type_name(value));
    }
    const double result = PyFloat_AsDouble(object);
    if (result == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        throw py::value_error(prefix + name + " must be a finite number, got an " + type_name(value) +
                              " too large for a double");
    }
    return result;
}

bool flag_value(py::handle value, const std::string& prefix, const char* name) {
    if (value.ptr() == Py_True) return true;
    if (value.ptr() == Py_False) return false;
    if (is_numpy_bool(value)) return PyObject_IsTrue(value.ptr()) == 1;
    throw py::type_error(prefix + name + " must be a bool, got " + type_name(value));
}

py::handle dict_item(py::handle dict, const py::str& key, const std::string& prefix, const char* what) {
    PyObject* item = PyDict_GetItemWithError(dict.ptr(), key.ptr());
    if (item == nullptr) {
        if (PyErr_Occurred()) throw py::error_already_set();
        throw py::type_error(prefix + "missing " + what + " '" + key.cast<std::string>() + "'");
    }
    return item;
}

/// Reads and validates a configuration from its dict of hyperparameters.
template <class Config>
Config parse_config(py::handle hyperparameters, const std::string& prefix) {
    using Rule = rules::Rule<Config>;
    if (!PyDict_Check(hyperparameters.ptr())) {
        throw py::type_error(prefix + "hyperparameters must be a dict, got " + type_name(hyperparameters));
    }
    const Keys<Config>& keys = Keys<Config>::get();
    Config config{};
    for (std::size_t k = 0; k < Rule::numbers.size(); ++k) {
        const auto& number = Rule::numbers[k];
        const py::handle item = dict_item(hyperparameters, keys.numbers[k], prefix, "hyperparameter");
        if (number.range == rules::Range::non_negative_or_none) {
            // None is NaN natively; a NaN given as a number is refused, not taken for None.
            if (item.is_none()) {
                config.*number.field = std::numeric_limits<double>::quiet_NaN();
                continue;
            }
            const double value = number_value(item, prefix, number.name);
            if (std::isnan(value)) {
                throw py::value_error(prefix + number.name + " must be " + rules::describe(number.range) + ", got nan");
            }
            config.*number.field = value;
            continue;
        }
        config.*number.field = number_value(item, prefix, number.name);
    }
    for (std::size_t k = 0; k < Rule::flags.size(); ++k) {
        const auto& flag = Rule::flags[k];
        config.*flag.field = flag_value(dict_item(hyperparameters, keys.flags[k], prefix, "hyperparameter"),
                                        prefix, flag.name);
    }
    try {
        rules::validate_config(config);
    } catch (const std::invalid_argument& error) {
        throw py::value_error(prefix + error.what());
    }
    return config;
}

py::sequence sequence_argument(py::handle object, const char* name) {
    if (!py::isinstance<py::sequence>(object) || py::isinstance<py::array>(object) ||
        py::isinstance<py::str>(object) || py::isinstance<py::bytes>(object)) {
        throw py::type_error(std::string(name) + " must be a list of arrays, got " + type_name(object));
    }
    return py::reinterpret_borrow<py::sequence>(object);
}

/// The shape of state `description` for a parameter (torch's layouts: like
/// it, or with its last or second-to-last dimension 1).
template <class Description>
std::vector<Py_ssize_t> state_shape(const Description& description, py::handle param) {
    const auto* array = py::detail::array_proxy(param.ptr());
    std::vector<Py_ssize_t> shape(array->dimensions, array->dimensions + array->nd);
    if (description.shape == rules::StateShape::rows && array->nd >= 2) shape[array->nd - 1] = 1;
    if (description.shape == rules::StateShape::columns && array->nd >= 2) shape[array->nd - 2] = 1;
    return shape;
}

/// Whether a parameter has the matrix shape of its rule's tensors (2 or more dimensions).
template <class Rule>
bool matrix_parameter(py::handle param) {
    if constexpr (rules::HasMatrixShape<typename Rule::template Tensor<float>>::value) {
        return py::detail::array_proxy(param.ptr())->nd >= 2;
    } else {
        (void)param;
        return false;
    }
}

/// A group's state array: a writeable, C-contiguous float64 array of shape
/// (number of group scalars,).
double* check_group_state_array(py::handle object, std::size_t length, const std::string& prefix) {
    const auto fail = [&] {
        return py::type_error(prefix + "group_state must be a writeable, contiguous float64 array of shape (" +
                              std::to_string(length) + ",), got " + type_name(object));
    };
    if (!py::isinstance<py::array>(object)) throw fail();
    auto array = py::reinterpret_borrow<py::array>(object);
    const py::dtype dtype = array.dtype();
    const bool float64 = dtype.kind() == 'f' && dtype.itemsize() == 8 && dtype.byteorder() != '>';
    if (!float64 || array.ndim() != 1 || static_cast<std::size_t>(array.shape(0)) != length ||
        (array.flags() & py::array::c_style) == 0 || !array.writeable()) {
        throw fail();
    }
    return static_cast<double*>(array.mutable_data());
}

/// Reads and checks a group's state from its array (a count must be a whole
/// number, a flag 0 or 1, then the rule's own ranges).
template <class Rule>
typename Rule::GroupState read_group_state(const double* scalars, const std::string& prefix) {
    typename Rule::GroupState state{};
    for (std::size_t k = 0; k < Rule::group_scalars.size(); ++k) {
        const auto& scalar = Rule::group_scalars[k];
        const double value = scalars[k];
        switch (scalar.kind) {
            case rules::ScalarKind::count:
                if (!(value >= 0.0 && value < 9007199254740992.0 && value == std::floor(value))) {
                    throw py::value_error(prefix + "group_state " + scalar.name +
                                          " must be an integer in [0, 2**53), got " + rules::format_value(value));
                }
                state.*scalar.count = static_cast<std::int64_t>(value);
                break;
            case rules::ScalarKind::flag:
                if (value != 0.0 && value != 1.0) {
                    throw py::value_error(prefix + "group_state " + scalar.name + " must be 0 or 1, got " +
                                          rules::format_value(value));
                }
                state.*scalar.flag = value == 1.0;
                break;
            case rules::ScalarKind::number:
                state.*scalar.number = value;
                break;
        }
    }
    try {
        Rule::check_group_state(state);
    } catch (const std::invalid_argument& error) {
        throw py::value_error(prefix + "group_state " + error.what());
    }
    return state;
}

template <class Rule>
void write_group_state(double* scalars, const typename Rule::GroupState& state) {
    for (std::size_t k = 0; k < Rule::group_scalars.size(); ++k) {
        const auto& scalar = Rule::group_scalars[k];
        switch (scalar.kind) {
            case rules::ScalarKind::count: scalars[k] = static_cast<double>(state.*scalar.count); break;
            case rules::ScalarKind::flag: scalars[k] = state.*scalar.flag ? 1.0 : 0.0; break;
            case rules::ScalarKind::number: scalars[k] = state.*scalar.number; break;
        }
    }
}

Region group_state_region(const double* scalars, std::size_t length, std::size_t group) {
    const auto begin = reinterpret_cast<std::uintptr_t>(scalars);
    return Region{begin, begin + length * sizeof(double), "group_state", group, true};
}

/// The rounding of a call's 16-bit stores: to nearest even, or stochastic with a seed.
struct RoundingOption {
    bool stochastic = false;
    std::uint64_t seed = 0;
};

RoundingOption parse_rounding(py::handle seed) {
    RoundingOption option;
    if (seed.is_none()) return option;
    if (!PyLong_Check(seed.ptr()) || PyBool_Check(seed.ptr())) {
        throw py::type_error(std::string("seed must be an int, got ") + type_name(seed));
    }
    // Any int: its value modulo 2**64 keys the random bits (negative seeds included).
    option.seed = static_cast<std::uint64_t>(PyLong_AsUnsignedLongLongMask(seed.ptr()));
    if (PyErr_Occurred()) throw py::error_already_set();
    option.stochastic = true;
    return option;
}

/// The state entry of the float32 master copies of 16-bit parameters.
const py::str& master_key() {
    static const py::str* key = new py::str("master_weight");  // never destroyed, as Keys
    return *key;
}

/// Checks master_weights[index]: a writeable float32 array shaped like its 16-bit parameter.
ArrayView check_master(py::handle master, std::size_t index, const ArrayView& param_view) {
    if (!is_16_bit(param_view.type)) {
        throw py::type_error(argument_name("master_weights", index) + " is given but " +
                             argument_name("params", index) + " has dtype " +
                             (param_view.type == ElementType::float64 ? "float64" : "float32") +
                             ": only 16-bit parameters have a float32 master copy");
    }
    if (py::isinstance<py::array>(master)) {
        const py::dtype dtype = py::reinterpret_borrow<py::array>(master).dtype();
        if (!dtype.is(py::dtype::of<float>()) && dtype.num() != py::dtype::of<float>().num()) {
            throw py::type_error(argument_name("master_weights", index) + " must have dtype float32, got " +
                                 std::string(py::str(dtype)));
        }
    }
    return check_like(master, "master_weights", index, param_view, "params", true, Match::state);
}

Format format_of(ElementType type) {
    switch (type) {
        case ElementType::bfloat16: return Format::bfloat16;
        case ElementType::float16: return Format::float16;
        default: break;
    }
    return Format::float32;
}

const char* format_name(Format format) {
    switch (format) {
        case Format::bfloat16: return "bfloat16";
        case Format::float16: return "float16";
        case Format::float32: break;
    }
    return "float32";
}

/// Checks one group and appends its tensors to the batch. `first` is the
/// index of the group's first tensor among all tensors of the call, which
/// error messages use (params[first + i]).
template <class Config>
void gather_group(Batch<Config>& batch, py::handle group_object, std::size_t group, std::size_t& first,
                  bool labels, bool can_create, const RoundingOption& rounding) {
    using Rule = rules::Rule<Config>;
    const std::string prefix = group_prefix(labels, group);
    if constexpr (has_group_state<Config>) {
        if (!PyTuple_Check(group_object.ptr()) || PyTuple_GET_SIZE(group_object.ptr()) != 6) {
            throw py::type_error(prefix +
                                 "a group must be a tuple (hyperparameters, params, grads, state, steps, group_state)");
        }
    } else if (!PyTuple_Check(group_object.ptr()) || PyTuple_GET_SIZE(group_object.ptr()) != 5) {
        throw py::type_error(prefix + "a group must be a tuple (hyperparameters, params, grads, state, steps)");
    }
    const auto items = py::reinterpret_borrow<py::tuple>(group_object);
    GroupPlan<Config> plan;
    plan.config = parse_config<Config>(items[0], prefix);
    const py::sequence params = sequence_argument(items[1], "params");
    const std::size_t count = py::len(params);
    const py::sequence grads = check_list(items[2], "grads", count);
    const py::handle state = items[3];
    if (!PyDict_Check(state.ptr())) throw py::type_error(prefix + "state must be a dict of state lists");

    // The state lists this configuration needs.
    const Keys<Config>& keys = Keys<Config>::get();
    std::array<py::sequence, Rule::states.size()> lists;
    std::array<bool, Rule::states.size()> needed{};
    std::array<bool, Rule::states.size()> absent{};  // a state only some parameters have may be None if none has it
    for (std::size_t s = 0; s < Rule::states.size(); ++s) {
        const auto& description = Rule::states[s];
        needed[s] = description.needed_by(plan.config);
        if (!needed[s]) continue;
        PyObject* list = PyDict_GetItemWithError(state.ptr(), keys.states[s].ptr());
        if (list == nullptr && PyErr_Occurred()) throw py::error_already_set();
        if ((list == nullptr || list == Py_None) && description.needed != nullptr) {
            throw py::value_error(std::string(description.list_name) + " is required when " + description.needed_when);
        }
        if ((list == nullptr || list == Py_None) && description.dims != rules::StateDims::any) {
            absent[s] = true;
            continue;
        }
        lists[s] = check_list(list == nullptr ? Py_None : list, description.list_name, count);
    }

    // The per-tensor scalar lists (every configuration needs them).
    constexpr auto& scalars = rules::scalars_of<Rule>();
    std::array<py::sequence, scalars.size()> scalar_lists;
    for (std::size_t s = 0; s < scalars.size(); ++s) {
        PyObject* list = PyDict_GetItemWithError(state.ptr(), keys.scalars[s].ptr());
        if (list == nullptr && PyErr_Occurred()) throw py::error_already_set();
        if (list == nullptr || list == Py_None) {
            throw py::type_error(prefix + scalars[s].list_name + " must be a list of 0-d float64 arrays, got None");
        }
        scalar_lists[s] = check_list(list, scalars[s].list_name, count);
    }

    // The float32 master copies of 16-bit parameters, when the caller keeps them.
    py::sequence masters;
    bool has_masters = false;
    if (PyObject* list = PyDict_GetItemWithError(state.ptr(), master_key().ptr()); list != nullptr && list != Py_None) {
        masters = check_list(list, "master_weights", count);
        has_masters = true;
    } else if (PyErr_Occurred()) {
        throw py::error_already_set();
    }

    py::handle steps_object = items[4];
    if (steps_object.is_none()) {
        if (Rule::has_step) throw py::type_error("steps must be a numpy array of int64 step counters, got None");
    } else {
        plan.steps = check_steps(steps_object, count);
    }
    if constexpr (has_group_state<Config>) {
        // The group's state and the step's values from it, checked before any tensor.
        constexpr std::size_t length = Rule::group_scalars.size();
        plan.scalars = check_group_state_array(items[5], length, prefix);
        const auto state = read_group_state<Rule>(plan.scalars, prefix);
        try {
            plan.values = Rule::advance(plan.config, state);
        } catch (const rules::WrongMode& error) {
            PyErr_SetString(PyExc_RuntimeError, (prefix + error.what()).c_str());
            throw py::error_already_set();
        } catch (const std::invalid_argument& error) {
            throw py::value_error(prefix + error.what());
        }
        batch.regions.push_back(group_state_region(plan.scalars, length, group));
        batch.alive.push_back(py::reinterpret_borrow<py::object>(items[5]));
    }

    plan.float32_begin = batch.float32.size();
    plan.float64_begin = batch.float64.size();
    plan.stored_begin = batch.stored.size();
    plan.updated_begin = batch.updated.size();
    plan.sparse_float32_begin = batch.sparse_float32.size();
    plan.sparse_float64_begin = batch.sparse_float64.size();
    bool sparse_checked = false;
    for (std::size_t i = 0; i < count; ++i) {
        py::object grad = grads[i];
        if (grad.is_none()) continue;
        const std::size_t index = first + i;
        // A counter at its maximum cannot take another step (and must not be incremented).
        if (plan.steps != nullptr && plan.steps[i] == std::numeric_limits<std::int64_t>::max()) {
            throw py::value_error("steps[" + std::to_string(i) + "] is at its maximum (2**63 - 1)");
        }
        py::object param = params[i];
        const ArrayView param_view = check_parameter(param, "params", index);
        // A row-sparse gradient (SparseRows), for the rules that take one; else a dense array.
        const bool sparse = is_sparse_rows(grad);
        const bool stored = is_16_bit(param_view.type);
        if (stored && (sparse || rules::Gradients<Config>::row_wise)) {
            throw py::type_error(argument_name("params", index) + " is " +
                                 format_name(format_of(param_view.type)) + ": " +
                                 (sparse ? "row-sparse gradients (SparseRows) update" : std::string(Rule::name) +
                                  " updates") + " float32 or float64 parameters only");
        }
        SparseRowsView rows_view;
        ArrayView grad_view;
        if (sparse) {
            if constexpr (!rules::Gradients<Config>::sparse) {
                throw py::type_error(argument_name("grads", index) + " is a row-sparse gradient (SparseRows), which " +
                                     Rule::name + " does not take");
            } else {
                if (!sparse_checked) {
                    try {
                        rules::Gradients<Config>::check_sparse(plan.config);
                    } catch (const std::invalid_argument& error) {
                        throw py::value_error(prefix + error.what());
                    }
                    sparse_checked = true;
                }
                rows_view = check_sparse_rows(grad, index, param_view);
                batch.regions.push_back(rows_view.indices_region);
                batch.regions.push_back(rows_view.values_region);
            }
        } else {
            if constexpr (!rules::Gradients<Config>::dense) {
                throw py::type_error(argument_name("grads", index) + " must be a row-sparse gradient (lrcore.SparseRows): " +
                                     Rule::name + " takes no dense gradients (as torch.optim.SparseAdam), got " +
                                     type_name(grad));
            }
            grad_view = check_like(grad, "grads", index, param_view, "params", false, Match::gradient);
            batch.regions.push_back(region_of(grad_view, "grads", index, false));
        }
        batch.regions.push_back(region_of(param_view, "params", index, true));
        batch.alive.push_back(std::move(param));
        batch.alive.push_back(std::move(grad));
        batch.updated.push_back(i);
        const py::handle param_array = param_view.object;  // `param` has moved into batch.alive, which keeps it
        const bool matrix = matrix_parameter<Rule>(param_array);
        // A 16-bit parameter's storage; its state format is that of its first state array.
        Storage storage;
        const char* first_state = nullptr;
        if (stored) {
            storage.param = format_of(param_view.type);
            storage.grad = format_of(grad_view.type);
            if (rounding.stochastic) {
                if (plan.steps == nullptr) {
                    throw py::type_error("stochastic rounding keys its random bits by each tensor's step: steps "
                                         "must be the int64 step counters, got None");
                }
                storage.rounding = Rounding::stochastic;
                storage.seed = rounding.seed;
                storage.stream = index;
                storage.step = static_cast<std::uint64_t>(plan.steps[i] + 1);
            }
        }
        if (has_masters) {
            py::object master = masters[i];
            if (!master.is_none()) {
                const ArrayView view = check_master(master, index, param_view);
                if (rounding.stochastic) {
                    throw py::value_error("stochastic rounding and master weights exclude each other: " +
                                          argument_name("params", index) +
                                          " has a master copy, which it takes rounded to the nearest");
                }
                batch.regions.push_back(region_of(view, "master_weights", index, true));
                batch.alive.push_back(std::move(master));
                storage.master = static_cast<float*>(view.data);
            }
        }
        auto attach = [&](auto& tensors) {
            using Tensor = typename std::remove_reference_t<decltype(tensors)>::value_type;
            using T = std::remove_pointer_t<decltype(Tensor::param)>;
            Tensor& tensor = tensors.emplace_back();
            tensor.param = static_cast<T*>(param_view.data);
            tensor.grad = static_cast<const T*>(grad_view.data);
            tensor.size = param_view.size;
            if constexpr (rules::Gradients<Config>::row_wise) {
                const std::size_t rows = row_count(param_view);
                tensor.row_length = rows == 0 || param_view.size == 0 ? 1 : param_view.size / rows;
            }
            if constexpr (Rule::has_step) tensor.step = plan.steps[i] + 1;
            if constexpr (rules::HasMatrixShape<Tensor>::value) {
                if (matrix && param_view.size != 0) {  // an empty matrix is skipped whole
                    const auto* array = py::detail::array_proxy(param_array.ptr());
                    tensor.rows = static_cast<std::size_t>(array->dimensions[array->nd - 2]);
                    tensor.columns = static_cast<std::size_t>(array->dimensions[array->nd - 1]);
                }
            }
            for (std::size_t s = 0; s < Rule::states.size(); ++s) {
                if (!needed[s]) continue;
                const auto& description = Rule::states[s];
                if (!description.exists_for(matrix)) continue;  // its entry (None by convention) is not read
                if (absent[s]) {
                    throw py::type_error(std::string(description.list_name) + " must be a list, got None (" +
                                         argument_name("params", index) + " has " +
                                         (matrix ? "2 or more dimensions" : "fewer than 2 dimensions") + ")");
                }
                py::object array = lists[s][i];
                // A missing array is created after the checks: a state the kernel
                // initializes itself, or, for an optimizer, one a configuration
                // change has just made necessary.
                const bool may_be_missing =
                    !description.per_row &&  // create(param) makes arrays shaped like the parameter
                    (description.template initialize<T>() != nullptr || (can_create && description.needed != nullptr));
                if (array.is_none() && may_be_missing) {
                    if (!PyList_Check(lists[s].ptr())) {
                        throw py::type_error(std::string(description.list_name) +
                                             " must be a list when it has None entries (they are created in it)");
                    }
                    batch.pending.push_back({params[i], py::reinterpret_borrow<py::list>(lists[s]), i, s,
                                             std::is_same_v<T, float>, tensors.size() - 1, sparse, stored});
                    continue;
                }
                const ArrayView view =
                    description.per_row ? check_row_state(array, description.list_name, index, param_view)
                    : description.shape == rules::StateShape::like_param
                        ? check_like(array, description.list_name, index, param_view, "params", true, Match::state)
                        : check_shaped_like(array, description.list_name, index, param_view, "params", true,
                                            state_shape(description, param_array), Match::state);
                if (stored) {
                    const Format format = format_of(view.type);
                    if (first_state == nullptr) {
                        storage.state = format;
                        first_state = description.list_name;
                    } else if (format != storage.state) {
                        throw py::type_error(argument_name(description.list_name, index) + " has dtype " +
                                             format_name(format) + " but " + argument_name(first_state, index) +
                                             " has dtype " + format_name(storage.state) +
                                             ": the state arrays of a parameter share one dtype");
                    }
                }
                batch.regions.push_back(region_of(view, description.list_name, index, true));
                batch.alive.push_back(std::move(array));
                tensor.*(description.template field<T>()) = static_cast<T*>(view.data);
            }
            for (std::size_t s = 0; s < scalars.size(); ++s) {
                py::object value = scalar_lists[s][i];
                if (value.is_none()) {  // created at its initial value after the checks
                    if (!PyList_Check(scalar_lists[s].ptr())) {
                        throw py::type_error(std::string(scalars[s].list_name) +
                                             " must be a list when it has None entries (they are created in it)");
                    }
                    batch.pending_scalars.push_back({py::reinterpret_borrow<py::list>(scalar_lists[s]), i, s,
                                                     std::is_same_v<T, float>, tensors.size() - 1, stored});
                    continue;
                }
                const ArrayView view = check_scalar_state(value, scalars[s].list_name, index);
                batch.regions.push_back(region_of(view, scalars[s].list_name, index, true));
                batch.alive.push_back(std::move(value));
                tensor.*(scalars[s].template field<T>()) = static_cast<double*>(view.data);
            }
        };
        if (stored) {
            attach(batch.stored);
            batch.storages.push_back(storage);
            batch.state_format_known.push_back(first_state != nullptr);
        } else if (!sparse) {
            if (param_view.type == ElementType::float32) {
                attach(batch.float32);
            } else {
                attach(batch.float64);
            }
        } else if constexpr (rules::Gradients<Config>::sparse) {
            // Coalesced now, before anything is written; the kernels read the result.
            detail::CoalescedIndex& coalesced = batch.next_index();
            if (rows_view.int32) {
                detail::radix_coalesce(static_cast<const std::int32_t*>(rows_view.indices), rows_view.count,
                                       rows_view.table_rows, coalesced);
            } else {
                detail::radix_coalesce(static_cast<const std::int64_t*>(rows_view.indices), rows_view.count,
                                       rows_view.table_rows, coalesced);
            }
            if (param_view.type == ElementType::float32) {
                attach(batch.sparse_float32);
                batch.rows_float32.push_back(detail::row_gradient(static_cast<const float*>(rows_view.values),
                                                                  rows_view.row_length, coalesced));
            } else {
                attach(batch.sparse_float64);
                batch.rows_float64.push_back(detail::row_gradient(static_cast<const double*>(rows_view.values),
                                                                  rows_view.row_length, coalesced));
            }
        }
    }
    if (plan.steps != nullptr) {
        const auto* steps_array = py::detail::array_proxy(steps_object.ptr());
        const auto begin = reinterpret_cast<std::uintptr_t>(steps_array->data);
        batch.regions.push_back(Region{begin, begin + count * sizeof(std::int64_t), "steps", group, true});
        batch.alive.push_back(py::reinterpret_borrow<py::object>(steps_object));
    }
    plan.float32_end = batch.float32.size();
    plan.float64_end = batch.float64.size();
    plan.stored_end = batch.stored.size();
    plan.sparse_float32_end = batch.sparse_float32.size();
    plan.sparse_float64_end = batch.sparse_float64.size();
    plan.updated_end = batch.updated.size();
    batch.groups.push_back(plan);
    first += count;
}

/// The optimizer's counters: a writeable int64 array [step_count, skipped_steps].
std::int64_t* check_counters(py::handle object) {
    if (object.is_none()) return nullptr;
    std::int64_t* counters = check_steps(object, 2);
    return counters;
}

/// The gradient pointers of a batch, by element type, for the whole-gradient passes.
struct GradientLists {
    std::vector<const float*> float32;
    std::vector<std::size_t> float32_sizes;
    std::vector<const double*> float64;
    std::vector<std::size_t> float64_sizes;
    struct Narrow {
        const void* data;
        std::size_t size;
        bool bfloat16;
        std::size_t position;  // in float32
    };
    std::vector<Narrow> narrow;  // 16-bit gradients, to widen into float32 copies

    /// Points the 16-bit gradients' entries at float32 copies of them (the
    /// passes then see exactly the values the kernels compute with). The
    /// copies belong to the calling thread and are reused by its next step.
    void widen() {
        if (narrow.empty()) return;
        thread_local std::vector<std::vector<float>> copies;
        if (copies.size() < narrow.size()) copies.resize(narrow.size());
        for (std::size_t k = 0; k < narrow.size(); ++k) {
            copies[k].resize(narrow[k].size);
            kernels::widen_array(narrow[k].data, narrow[k].bfloat16, narrow[k].size, copies[k].data());
            float32[narrow[k].position] = copies[k].data();
        }
    }

    template <class Batch>
    explicit GradientLists(const Batch& batch) {
        float32.reserve(batch.float32.size());
        float32_sizes.reserve(batch.float32.size());
        float64.reserve(batch.float64.size());
        float64_sizes.reserve(batch.float64.size());
        for (const auto& t : batch.float32) {
            float32.push_back(t.grad);
            float32_sizes.push_back(t.size);
        }
        for (const auto& t : batch.float64) {
            float64.push_back(t.grad);
            float64_sizes.push_back(t.size);
        }
        // A 16-bit gradient enters as its float32 value (widened by widen(), without the GIL).
        for (std::size_t i = 0; i < batch.stored.size(); ++i) {
            const auto& t = batch.stored[i];
            const Format format = batch.storages[i].grad;
            if (format != Format::float32) narrow.push_back({t.grad, t.size, format == Format::bfloat16, float32.size()});
            float32.push_back(t.grad);
            float32_sizes.push_back(t.size);
        }
        // Row-sparse gradients: their values, as given (before duplicates are summed).
        for (const auto& g : batch.rows_float32) {
            float32.push_back(g.values);
            float32_sizes.push_back(g.starts[g.count] * g.row_length);
        }
        for (const auto& g : batch.rows_float64) {
            float64.push_back(g.values);
            float64_sizes.push_back(g.starts[g.count] * g.row_length);
        }
    }
};

template <class Batch>
bool gradients_finite(const Batch& batch) {
    GradientLists g(batch);
    py::gil_scoped_release release;
    g.widen();
    return all_finite(g.float32.data(), g.float32_sizes.data(), g.float32.size()) &&
           all_finite(g.float64.data(), g.float64_sizes.data(), g.float64.size());
}

/// The global norm of every gradient of the batch, as lrcore.gradients.global_norm
/// computes it (lrcore/gradients.hpp). One read pass over the gradients.
template <class Batch>
double gradients_norm(const Batch& batch, double norm_type) {
    GradientLists g(batch);
    py::gil_scoped_release release;
    g.widen();
    return global_norm(g.float32.data(), g.float32_sizes.data(), g.float32.size(), g.float64.data(),
                       g.float64_sizes.data(), g.float64.size(), norm_type);
}

/// Global-norm clipping of one step call: off when max_grad_norm is None.
struct Clipping {
    bool on = false;
    double max_norm = 0.0;
    double norm_type = 2.0;
};

Clipping parse_clipping(py::handle max_grad_norm, py::handle norm_type) {
    Clipping clipping;
    clipping.norm_type = number_value(norm_type, "", "norm_type");
    if (!(clipping.norm_type > 0.0)) {  // NaN fails too
        throw py::value_error("norm_type must be a number > 0 or inf, got " + rules::format_value(clipping.norm_type));
    }
    if (!max_grad_norm.is_none()) {
        clipping.on = true;
        clipping.max_norm = number_value(max_grad_norm, "", "max_grad_norm");
        if (!(clipping.max_norm >= 0.0)) {
            throw py::value_error("max_grad_norm must be a number >= 0 (inf disables clipping) or None, got " +
                                  rules::format_value(clipping.max_norm));
        }
    }
    return clipping;
}

/// Where the optimizer keeps the last step's norm: a writeable float64 array
/// [total_norm, clipped] (clipped 1.0 when the step computed a norm, else 0.0).
double* check_grad_norm_out(py::handle object) {
    if (object.is_none()) return nullptr;
    const ArrayView view = check_float_array(object, "grad_norm", 0, true);
    if (view.type != ElementType::float64 || view.size != 2 || py::detail::array_proxy(object.ptr())->nd != 1) {
        throw py::type_error("grad_norm must be a writeable, contiguous float64 array of shape (2,)");
    }
    return static_cast<double*>(view.data);
}

template <class Config>
bool step(py::handle groups_object, py::handle counters_object, bool skip_nonfinite, py::handle create,
          bool labels, py::handle max_grad_norm, py::handle norm_type, py::handle grad_norm_object,
          py::handle rounding_seed) {
    using Rule = rules::Rule<Config>;
    try {
        detail::prepare_runtime();
    } catch (const std::invalid_argument& error) {
        throw py::value_error(error.what());
    }
    const Clipping clipping = parse_clipping(max_grad_norm, norm_type);
    const RoundingOption rounding = parse_rounding(rounding_seed);
    double* grad_norm = check_grad_norm_out(grad_norm_object);
    if (!PyList_Check(groups_object.ptr()) && !PyTuple_Check(groups_object.ptr())) {
        throw py::type_error(std::string("groups must be a list of group tuples, got ") + type_name(groups_object));
    }
    const auto groups = py::reinterpret_borrow<py::sequence>(groups_object);
    std::int64_t* counters = check_counters(counters_object);
    BatchLease<Config> lease;
    Batch<Config>& batch = *lease;
    const std::size_t group_count = py::len(groups);
    std::size_t first = 0;
    for (std::size_t g = 0; g < group_count; ++g) {
        py::object group = groups[g];
        gather_group(batch, group, g, first, labels, !create.is_none(), rounding);
        batch.alive.push_back(std::move(group));
    }
    check_no_overlap(batch.regions);
    if (clipping.on && !(batch.sparse_float32.empty() && batch.sparse_float64.empty())) {
        throw py::value_error("max_grad_norm (fused clipping) does not take row-sparse gradients (SparseRows)");
    }
    constexpr std::int64_t max_count = std::numeric_limits<std::int64_t>::max();
    if (counters != nullptr && (counters[0] == max_count || counters[1] == max_count)) {
        throw py::value_error("the optimizer's step counters are at their maximum (2**63 - 1)");
    }
    // The one read pass before anything is written: with clipping the global
    // norm, which is non-finite exactly when some gradient is (or when a sum
    // of finite powers overflows), so it also serves as the non-finite check;
    // without clipping, the non-finite check alone when asked for.
    double norm = std::numeric_limits<double>::quiet_NaN();
    double coefficient = 1.0;
    bool finite = true;
    if (clipping.on) {
        norm = gradients_norm(batch, clipping.norm_type);
        finite = std::isfinite(norm);
        // A non-finite norm leaves the gradients unscaled, as clip_grad_norm does.
        if (finite) coefficient = clip_coefficient(norm, clipping.max_norm);
    } else if (skip_nonfinite) {
        finite = gradients_finite(batch);
    }
    // grad_norm = [norm, the counters' sum after this step]: the optimizer reports the
    // norm only while the sum still matches, i.e. until the next step without clipping.
    auto record_norm = [&] {
        if (grad_norm == nullptr) return;
        grad_norm[0] = clipping.on ? norm : 0.0;
        grad_norm[1] = clipping.on && counters != nullptr
                           ? static_cast<double>(counters[0]) + static_cast<double>(counters[1])
                           : -1.0;
    };
    if (skip_nonfinite && !finite) {
        if (counters != nullptr) ++counters[1];
        record_norm();
        return false;
    }
    if (coefficient < 1.0) {
        for (GroupPlan<Config>& plan : batch.groups) plan.config.grad_scale = coefficient;
    }

    // Every check has passed. Create the missing scalar states and state arrays
    // (Python code runs here; if it fails, nothing has changed yet).
    constexpr auto& scalars = rules::scalars_of<Rule>();
    std::vector<py::array_t<double>> created_scalars;
    created_scalars.reserve(batch.pending_scalars.size());
    for (const PendingScalar& p : batch.pending_scalars) {
        py::array_t<double> value{std::vector<py::ssize_t>{}};
        *value.mutable_data() = scalars[p.scalar].initial;
        created_scalars.push_back(std::move(value));
    }
    if (!batch.pending.empty()) {
        if (create.is_none()) throw py::type_error("missing state arrays and no allocator to create them");
        std::vector<py::object> created;
        created.reserve(batch.pending.size());
        for (const PendingState& p : batch.pending) {
            const auto& description = Rule::states[p.state];
            const ArrayView param_view = check_parameter(p.param, "params", p.index);
            ArrayView view;
            if (description.shape == rules::StateShape::like_param) {
                py::object array = create(p.param);
                view = check_like(array, description.list_name, p.index, param_view, "params", true, Match::state);
                created.push_back(std::move(array));
            } else {
                const std::vector<Py_ssize_t> shape = state_shape(description, p.param);
                py::tuple shape_tuple(shape.size());
                for (std::size_t d = 0; d < shape.size(); ++d) shape_tuple[d] = py::int_(shape[d]);
                py::object array = create(p.param, "shape"_a = shape_tuple);
                view = check_shaped_like(array, description.list_name, p.index, param_view, "params", true, shape,
                                         Match::state);
                created.push_back(std::move(array));
            }
            if (p.stored) {
                // A new state array of a 16-bit parameter joins the dtype of its others (or sets it).
                Storage& storage = batch.storages[p.tensor];
                const Format format = format_of(view.type);
                if (!batch.state_format_known[p.tensor]) {
                    storage.state = format;
                    batch.state_format_known[p.tensor] = 1;
                } else if (format != storage.state) {
                    throw py::type_error(std::string("the allocator made ") +
                                         argument_name(description.list_name, p.index) + " of dtype " +
                                         format_name(format) + " for a parameter whose state is " +
                                         format_name(storage.state) + ": the state arrays of a parameter share one dtype");
                }
            }
        }
        // From here on no Python code runs until the step is complete.
        for (std::size_t k = 0; k < batch.pending.size(); ++k) {
            const PendingState& p = batch.pending[k];
            const auto& description = Rule::states[p.state];
            void* data = py::detail::array_proxy(created[k].ptr())->data;
            auto attach = [&](auto& tensor) {
                using T = std::remove_pointer_t<decltype(tensor.param)>;
                tensor.*(description.template field<T>()) = static_cast<T*>(data);
                if (auto flag = description.template initialize<T>(); flag != nullptr) tensor.*flag = true;
            };
            if (p.stored) {
                attach(batch.stored[p.tensor]);
            } else if (p.float32) {
                attach(p.sparse ? batch.sparse_float32[p.tensor] : batch.float32[p.tensor]);
            } else {
                attach(p.sparse ? batch.sparse_float64[p.tensor] : batch.float64[p.tensor]);
            }
            batch.alive.push_back(created[k]);
            // PyList_SetItem steals a reference and cannot fail for an index within the list.
            PyList_SetItem(p.list.ptr(), static_cast<Py_ssize_t>(p.index), created[k].release().ptr());
        }
    }
    for (std::size_t k = 0; k < batch.pending_scalars.size(); ++k) {
        const PendingScalar& p = batch.pending_scalars[k];
        double* data = created_scalars[k].mutable_data();
        if (p.stored) {
            batch.stored[p.tensor].*(scalars[p.scalar].template field<float>()) = data;
        } else if (p.float32) {
            batch.float32[p.tensor].*(scalars[p.scalar].template field<float>()) = data;
        } else {
            batch.float64[p.tensor].*(scalars[p.scalar].template field<double>()) = data;
        }
        batch.alive.push_back(created_scalars[k]);
        PyList_SetItem(p.list.ptr(), static_cast<Py_ssize_t>(p.index), created_scalars[k].release().ptr());
    }
    {
        py::gil_scoped_release release;
        for (const GroupPlan<Config>& plan : batch.groups) {
            if constexpr (has_group_state<Config>) {
                if (plan.float32_end > plan.float32_begin) {
                    detail::run_group_step<Config, float>(plan.config, plan.values,
                                                          batch.float32.data() + plan.float32_begin,
                                                          plan.float32_end - plan.float32_begin);
                }
                if (plan.float64_end > plan.float64_begin) {
                    detail::run_group_step<Config, double>(plan.config, plan.values,
                                                           batch.float64.data() + plan.float64_begin,
                                                           plan.float64_end - plan.float64_begin);
                }
                if (plan.stored_end > plan.stored_begin) {
                    detail::run_group_step<Config, float>(plan.config, plan.values,
                                                          batch.stored.data() + plan.stored_begin,
                                                          plan.stored_end - plan.stored_begin,
                                                          batch.storages.data() + plan.stored_begin);
                }
                continue;  // (rules with group state take dense gradients only)
            }
            if constexpr (rules::Gradients<Config>::dense) {
                if (plan.float32_end > plan.float32_begin) {
                    detail::run_step<Config, float>(plan.config, batch.float32.data() + plan.float32_begin,
                                                    plan.float32_end - plan.float32_begin);
                }
                if (plan.float64_end > plan.float64_begin) {
                    detail::run_step<Config, double>(plan.config, batch.float64.data() + plan.float64_begin,
                                                     plan.float64_end - plan.float64_begin);
                }
                if (plan.stored_end > plan.stored_begin) {
                    detail::run_step<Config, float>(plan.config, batch.stored.data() + plan.stored_begin,
                                                    plan.stored_end - plan.stored_begin,
                                                    batch.storages.data() + plan.stored_begin);
                }
            }
            if constexpr (rules::Gradients<Config>::sparse) {
                if (plan.sparse_float32_end > plan.sparse_float32_begin) {
                    detail::run_row_step<Config, float>(plan.config,
                                                        batch.sparse_float32.data() + plan.sparse_float32_begin,
                                                        batch.rows_float32.data() + plan.sparse_float32_begin,
                                                        plan.sparse_float32_end - plan.sparse_float32_begin);
                }
                if (plan.sparse_float64_end > plan.sparse_float64_begin) {
                    detail::run_row_step<Config, double>(plan.config,
                                                         batch.sparse_float64.data() + plan.sparse_float64_begin,
                                                         batch.rows_float64.data() + plan.sparse_float64_begin,
                                                         plan.sparse_float64_end - plan.sparse_float64_begin);
                }
            }
        }
    }
    // Every group advances its state, also one whose tensors all had no gradient (as the package does).
    if constexpr (has_group_state<Config>) {
        for (const GroupPlan<Config>& plan : batch.groups) write_group_state<Rule>(plan.scalars, plan.values.next);
    }
    for (const GroupPlan<Config>& plan : batch.groups) {
        if (plan.steps == nullptr) continue;
        for (std::size_t u = plan.updated_begin; u < plan.updated_end; ++u) ++plan.steps[batch.updated[u]];
    }
    if (counters != nullptr) ++counters[0];
    record_norm();
    return true;
}

/// The mode switch of a rule with modes (schedule-free train/eval): every
/// group (hyperparameters, params, state, group_state) not already in the
/// mode moves each parameter that has its mode state (z) in place; a
/// transaction like a step: everything is checked first, the group states'
/// mode is written last.
template <class Config>
void switch_mode(py::handle groups_object, bool to_train) {
    using Rule = RuleOf<Config>;
    if constexpr (has_group_state<Config>) {
        try {
            detail::prepare_runtime();
        } catch (const std::invalid_argument& error) {
            throw py::value_error(error.what());
        }
        if (!PyList_Check(groups_object.ptr()) && !PyTuple_Check(groups_object.ptr())) {
            throw py::type_error(std::string("groups must be a list of group tuples, got ") + type_name(groups_object));
        }
        const auto groups = py::reinterpret_borrow<py::sequence>(groups_object);
        constexpr std::size_t length = Rule::group_scalars.size();
        const auto& mode_state = Rule::states[Rule::mode_state];
        const py::str mode_key(mode_state.name);
        using Float32 = typename Rule::template Tensor<float>;
        using Float64 = typename Rule::template Tensor<double>;
        struct Switch {
            std::vector<Float32> float32;
            std::vector<Float64> float64;
            std::vector<Float32> stored;  // 16-bit parameters, rounded to the nearest
            std::vector<Storage> storages;
            double weight;
            double* scalars;
            typename Rule::GroupState state;
        };
        std::vector<Switch> switches;
        std::vector<Region> regions;
        std::vector<py::object> alive;
        std::size_t first = 0;
        const std::size_t group_count = py::len(groups);
        for (std::size_t g = 0; g < group_count; ++g) {
            py::object group_object = groups[g];
            const std::string prefix = group_prefix(true, g);
            if (!PyTuple_Check(group_object.ptr()) || PyTuple_GET_SIZE(group_object.ptr()) != 4) {
                throw py::type_error(prefix + "a group must be a tuple (hyperparameters, params, state, group_state)");
            }
            const auto items = py::reinterpret_borrow<py::tuple>(group_object);
            const Config config = parse_config<Config>(items[0], prefix);
            const py::sequence params = sequence_argument(items[1], "params");
            const std::size_t count = py::len(params);
            const py::handle state = items[2];
            if (!PyDict_Check(state.ptr())) throw py::type_error(prefix + "state must be a dict of state lists");
            double* scalars = check_group_state_array(items[3], length, prefix);
            const auto group_state = read_group_state<Rule>(scalars, prefix);
            regions.push_back(group_state_region(scalars, length, g));
            alive.push_back(group_object);
            if (group_state.train_mode == to_train) {
                first += count;
                continue;
            }
            PyObject* list_object = PyDict_GetItemWithError(state.ptr(), mode_key.ptr());
            if (list_object == nullptr && PyErr_Occurred()) throw py::error_already_set();
            const py::sequence list = check_list(list_object == nullptr ? Py_None : list_object, mode_state.list_name,
                                                 count);
            py::sequence masters;
            bool has_masters = false;
            if (PyObject* m = PyDict_GetItemWithError(state.ptr(), master_key().ptr()); m != nullptr && m != Py_None) {
                masters = check_list(m, "master_weights", count);
                has_masters = true;
            } else if (PyErr_Occurred()) {
                throw py::error_already_set();
            }
            Switch& entry = switches.emplace_back();
            entry.weight = Rule::mode_weight(config, to_train);
            entry.scalars = scalars;
            entry.state = group_state;
            entry.state.train_mode = to_train;
            for (std::size_t i = 0; i < count; ++i) {
                py::object z = list[i];
                if (z.is_none()) continue;  // never stepped: nothing to move
                py::object param = params[i];
                const ArrayView param_view = check_parameter(param, "params", first + i);
                const ArrayView z_view =
                    check_like(z, mode_state.list_name, first + i, param_view, "params", false, Match::state);
                regions.push_back(region_of(param_view, "params", first + i, true));
                regions.push_back(region_of(z_view, mode_state.list_name, first + i, false));
                Storage storage;
                if (is_16_bit(param_view.type)) {
                    storage.param = format_of(param_view.type);
                    storage.state = format_of(z_view.type);
                }
                if (has_masters && !masters[i].is_none()) {  // (refused for a float32/float64 parameter)
                    py::object master = masters[i];
                    const ArrayView view = check_master(master, first + i, param_view);
                    regions.push_back(region_of(view, "master_weights", first + i, true));
                    storage.master = static_cast<float*>(view.data);
                    alive.push_back(std::move(master));
                }
                auto attach = [&](auto& tensors) {
                    using Tensor = typename std::remove_reference_t<decltype(tensors)>::value_type;
                    using T = std::remove_pointer_t<decltype(Tensor::param)>;
                    Tensor& tensor = tensors.emplace_back();
                    tensor.param = static_cast<T*>(param_view.data);
                    tensor.size = param_view.size;
                    tensor.*(mode_state.template field<T>()) = static_cast<T*>(z_view.data);
                };
                if (is_16_bit(param_view.type)) {
                    attach(entry.stored);
                    entry.storages.push_back(storage);
                } else if (param_view.type == ElementType::float32) {
                    attach(entry.float32);
                } else {
                    attach(entry.float64);
                }
                alive.push_back(std::move(param));
                alive.push_back(std::move(z));
            }
            first += count;
        }
        check_no_overlap(regions);
        {
            py::gil_scoped_release release;
            for (const Switch& entry : switches) {
                detail::run_mode_switch<Config, float>(entry.weight, entry.float32.data(), entry.float32.size());
                detail::run_mode_switch<Config, double>(entry.weight, entry.float64.data(), entry.float64.size());
                detail::run_mode_switch<Config, float>(entry.weight, entry.stored.data(), entry.stored.size(),
                                                       entry.storages.data());
            }
        }
        for (const Switch& entry : switches) write_group_state<Rule>(entry.scalars, entry.state);
    } else {
        (void)groups_object;
        (void)to_train;
        throw py::type_error(std::string("the rule ") + Rule::name + " has no modes");
    }
}

/// What Python learns of a rule: the names, ranges and states it derives its
/// classes, functions and documentation from.
struct RuleEntry {
    std::string name;
    py::list hyperparameters;  // (name, kind "number" | "flag", range text)
    py::list states;           // (name, list name, needed when ("" = always), created by the kernel, shape, dims)
    py::list scalars;          // per-tensor scalar states: (name, list name, initial value)
    bool has_step = false;
    py::tuple row_states;          // the states with one value per row (shape param.shape[:1])
    bool dense_gradients = true;   // takes numpy gradients
    bool sparse_gradients = false; // takes lrcore.SparseRows gradients
    py::list group_scalars;    // (name, kind "count" | "number" | "flag", initial value); empty without group state
    bool has_modes = false;
    bool (*step)(py::handle, py::handle, bool, py::handle, bool, py::handle, py::handle, py::handle,
                 py::handle) = nullptr;
    void (*switch_mode)(py::handle, bool) = nullptr;
    void (*check_group_state)(py::handle, const std::string&) = nullptr;
    void (*check_hyperparameters)(py::handle, const std::string&) = nullptr;
    py::list (*needed_states)(py::handle) = nullptr;
};

template <class Config>
RuleEntry describe() {
    using Rule = rules::Rule<Config>;
    RuleEntry entry;
    entry.name = Rule::name;
    for (const auto& n : Rule::numbers) {
        entry.hyperparameters.append(py::make_tuple(n.name, "number", rules::describe(n.range)));
    }
    for (const auto& f : Rule::flags) entry.hyperparameters.append(py::make_tuple(f.name, "flag", "a bool"));
    for (const auto& s : Rule::states) {
        entry.states.append(py::make_tuple(s.name, s.list_name, s.needed_when, s.float32_initialize != nullptr,
                                           s.float32_initialize != nullptr ? s.initialized_from : "",
                                           rules::describe(s.shape), rules::describe(s.dims)));
    }
    for (const auto& s : rules::scalars_of<Rule>()) {
        entry.scalars.append(py::make_tuple(s.name, s.list_name, s.initial));
    }
    entry.has_step = Rule::has_step;
    py::list row_states;
    for (const auto& s : Rule::states) {
        if (s.per_row) row_states.append(s.name);
    }
    entry.row_states = py::tuple(row_states);
    entry.dense_gradients = rules::Gradients<Config>::dense;
    entry.sparse_gradients = rules::Gradients<Config>::sparse;
    if constexpr (has_group_state<Config>) {
        const typename Rule::GroupState initial{};
        std::array<double, Rule::group_scalars.size()> values{};
        write_group_state<Rule>(values.data(), initial);
        for (std::size_t k = 0; k < values.size(); ++k) {
            const auto& scalar = Rule::group_scalars[k];
            entry.group_scalars.append(py::make_tuple(scalar.name, rules::describe(scalar.kind), values[k]));
        }
        entry.has_modes = Rule::has_modes;
        entry.switch_mode = &switch_mode<Config>;
        entry.check_group_state = [](py::handle array, const std::string& prefix) {
            read_group_state<Rule>(check_group_state_array(array, Rule::group_scalars.size(), prefix), prefix);
        };
    }
    entry.step = &step<Config>;
    entry.check_hyperparameters = [](py::handle hyperparameters, const std::string& prefix) {
        parse_config<Config>(hyperparameters, prefix);
    };
    entry.needed_states = [](py::handle hyperparameters) {
        const Config config = parse_config<Config>(hyperparameters, "");
        py::list names;
        for (const auto& s : Rule::states) {
            if (s.needed_by(config)) names.append(s.name);
        }
        return names;
    };
    return entry;
}

/// Checks the parameters of an optimizer at construction, with the same
/// checks a step makes: each a float32/float64, C-contiguous, writeable array,
/// and no two sharing memory.
void check_parameters(py::handle params_object, std::size_t first_index) {
    const py::sequence params = sequence_argument(params_object, "params");
    const std::size_t count = py::len(params);
    std::vector<Region> regions;
    regions.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        const ArrayView view = check_parameter(params[i], "params", first_index + i);
        regions.push_back(region_of(view, "params", first_index + i, true));
    }
    check_no_overlap(regions);
}

/// lrcore.SparseRows. Construction checks what it can alone; a step checks
/// everything again against the parameter (arrays can be reshaped in place).
void register_sparse_rows(py::module_& m) {
    py::class_<SparseRowsArgument>(m, "SparseRows",
                                   "A row-sparse gradient of a table (a parameter of >= 2 dimensions): rows "
                                   "`indices` (1-D int32/int64) with their gradient rows `values`, of shape "
                                   "(len(indices), *param.shape[1:]) and the parameter's dtype. Duplicate indices "
                                   "are summed, in the order given, before the update; rows not referenced are "
                                   "neither read nor written, in the parameter or its state.")
        .def(py::init([](py::object indices, py::object values) {
                 py::module_ numpy = py::module_::import("numpy");
                 py::object index_array = numpy.attr("asarray")(indices);
                 py::object value_array = numpy.attr("asarray")(values);
                 const py::dtype index_type = py::reinterpret_borrow<py::array>(index_array).dtype();
                 if (index_type.kind() != 'i' || (index_type.itemsize() != 4 && index_type.itemsize() != 8)) {
                     throw py::type_error("indices must be an int32 or int64 array, got dtype " +
                                          py::str(index_type).cast<std::string>());
                 }
                 const auto* index_proxy = py::detail::array_proxy(index_array.ptr());
                 if (index_proxy->nd != 1) {
                     throw py::value_error("indices must be 1-D, got " + std::to_string(index_proxy->nd) +
                                           " dimensions");
                 }
                 const py::dtype value_type = py::reinterpret_borrow<py::array>(value_array).dtype();
                 if (value_type.kind() != 'f' || (value_type.itemsize() != 4 && value_type.itemsize() != 8)) {
                     throw py::type_error("values must be a float32 or float64 array, got dtype " +
                                          py::str(value_type).cast<std::string>());
                 }
                 const auto* value_proxy = py::detail::array_proxy(value_array.ptr());
                 if (value_proxy->nd < 2 || value_proxy->dimensions[0] != index_proxy->dimensions[0]) {
                     throw py::value_error("values must have shape (len(indices), *param.shape[1:]) with "
                                           "len(indices) = " + std::to_string(index_proxy->dimensions[0]) +
                                           ", got " + py::str(value_array.attr("shape")).cast<std::string>());
                 }
                 return SparseRowsArgument{index_array, value_array};
             }),
             "indices"_a, "values"_a)
        .def_property_readonly("indices", [](const SparseRowsArgument& g) { return g.indices; },
                               "The row numbers (1-D int32/int64 array).")
        .def_property_readonly("values", [](const SparseRowsArgument& g) { return g.values; },
                               "The gradient rows, one per index.")
        .def("__repr__", [](const SparseRowsArgument& g) {
            return "SparseRows(" + std::to_string(py::len(g.indices)) + " rows of " +
                   py::str(g.values.attr("shape")).cast<std::string>() + " " +
                   py::str(g.values.attr("dtype")).cast<std::string>() + ")";
        });
}

}  // namespace

void register_optimizers(py::module_& m) {
    py::module_ rules_module = m.def_submodule("rules", "The update rules, one object per rule, described as data");
    py::class_<RuleEntry>(rules_module, "Rule", "One update rule: its description and its step")
        .def_readonly("name", &RuleEntry::name)
        .def_readonly("hyperparameters", &RuleEntry::hyperparameters)
        .def_readonly("states", &RuleEntry::states)
        .def_readonly("scalars", &RuleEntry::scalars)
        .def_readonly("has_step", &RuleEntry::has_step)
        .def_readonly("row_states", &RuleEntry::row_states)
        .def_readonly("dense_gradients", &RuleEntry::dense_gradients)
        .def_readonly("sparse_gradients", &RuleEntry::sparse_gradients)
        .def_readonly("group_scalars", &RuleEntry::group_scalars)
        .def_readonly("has_modes", &RuleEntry::has_modes)
        .def(
            "step",
            [](const RuleEntry& rule, py::handle groups, py::handle counters, bool skip_nonfinite, py::handle create,
               bool group_labels, py::handle max_grad_norm, py::handle norm_type, py::handle grad_norm,
               py::handle rounding_seed) {
                return rule.step(groups, counters, skip_nonfinite, create, group_labels, max_grad_norm, norm_type,
                                 grad_norm, rounding_seed);
            },
            "groups"_a, "counters"_a = py::none(), "skip_nonfinite"_a = false, "create"_a = py::none(),
            "group_labels"_a = false, "max_grad_norm"_a = py::none(), "norm_type"_a = 2.0,
            "grad_norm"_a = py::none(), "rounding_seed"_a = py::none(),
            "One step over every group (hyperparameters, params, grads, state, steps): everything is checked, "
            "then missing state is created with create(param), then every group is updated in place. Returns "
            "False when skip_nonfinite found a non-finite gradient (nothing written). With max_grad_norm, the "
            "global norm of all gradients (norm_type) is computed after the checks and every gradient is scaled "
            "by clip_grad_norm's coefficient inside the kernels (the gradients are not written); a non-finite "
            "norm skips the step with skip_nonfinite, else leaves the gradients unscaled. grad_norm, a float64 "
            "array of shape (2,), receives [total_norm, 1.0] (or [0.0, 0.0] without clipping) with the counters.")
        .def(
            "check_hyperparameters",
            [](const RuleEntry& rule, py::handle hyperparameters, const std::string& prefix) {
                rule.check_hyperparameters(hyperparameters, prefix);
            },
            "hyperparameters"_a, "prefix"_a = "",
            "The checks a step makes of one group's hyperparameters, alone (for optimizer constructors); "
            "errors start with prefix.")
        .def(
            "needed_states",
            [](const RuleEntry& rule, py::handle hyperparameters) { return rule.needed_states(hyperparameters); },
            "hyperparameters"_a, "The names of the state arrays a step with these hyperparameters reads and writes.")
        .def(
            "switch_mode",
            [](const RuleEntry& rule, py::handle groups, bool train) {
                if (rule.switch_mode == nullptr) throw py::type_error("the rule " + rule.name + " has no modes");
                rule.switch_mode(groups, train);
            },
            "groups"_a, "train"_a,
            "Moves every group (hyperparameters, params, state, group_state) not already in the mode to it, in "
            "place: train puts the parameters at y (where gradients are taken), eval at the average x. Everything "
            "is checked first; a group's group_state records its mode.")
        .def(
            "check_group_state",
            [](const RuleEntry& rule, py::handle group_state, const std::string& prefix) {
                if (rule.check_group_state == nullptr) {
                    throw py::type_error("the rule " + rule.name + " has no group state");
                }
                rule.check_group_state(group_state, prefix);
            },
            "group_state"_a, "prefix"_a = "",
            "The checks a step makes of a group's state array, alone (for loading a state_dict).")
        .def("__repr__", [](const RuleEntry& rule) { return "<lrcore rule " + rule.name + ">"; });
    py::list names;
    rules::for_each_rule([&](auto rule) {
        using Rule = decltype(rule);
        rules_module.attr(Rule::name) = describe<typename Rule::Config>();
        names.append(Rule::name);
    });
    rules_module.attr("names") = py::tuple(names);
    m.def("check_parameters", &check_parameters, "params"_a, "first_index"_a = 0,
          "The checks a step makes of parameter arrays, alone (for optimizer constructors).");
    register_sparse_rows(m);
}

}  // namespace lrcore::python
