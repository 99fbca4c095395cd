// Binding of the benchmark's memory roof: lrcore._core.bench.roof_stream.
//
// Takes, per tensor, the arrays an update rule only reads (the gradient) and
// those it reads and writes (parameter and state), checks them all, then runs
// the roof kernel over every tensor in one call without the GIL, as the step
// bindings do, so the two are timed alike.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>
#include <vector>

#include "../src/roof.hpp"  // internal header (cpp/src is not on _core's include path)
#include "array_checks.hpp"
#include "register.hpp"

namespace lrcore::python {
namespace {

using namespace pybind11::literals;

/// Checks one roof array: a C-contiguous float32/float64 numpy array, writeable if it is updated.
ArrayView check_roof_array(py::handle object, const std::string& name, bool must_be_writeable) {
    if (!py::isinstance<py::array>(object)) {
        throw py::type_error(name + " must be a numpy array, got " + Py_TYPE(object.ptr())->tp_name);
    }
    const auto array = py::reinterpret_borrow<py::array>(object);
    ArrayView view;
    if (array.dtype().equal(py::dtype::of<float>())) {
        view.type = ElementType::float32;
    } else if (array.dtype().equal(py::dtype::of<double>())) {
        view.type = ElementType::float64;
    } else {
        throw py::type_error(name + " must have dtype float32 or float64, got " +
                             py::str(array.dtype()).cast<std::string>());
    }
    if ((array.flags() & py::array::c_style) == 0) throw py::value_error(name + " must be C-contiguous");
    if (must_be_writeable && !array.writeable()) throw py::value_error(name + " is read-only");
    view.object = object;
    view.data = const_cast<void*>(array.data());
    view.size = static_cast<std::size_t>(array.size());
    view.bytes = view.size * static_cast<std::size_t>(array.itemsize());
    return view;
}

py::sequence check_sequence(py::handle object, const std::string& name) {
    if (!py::isinstance<py::sequence>(object) || py::isinstance<py::str>(object) ||
        py::isinstance<py::array>(object)) {
        throw py::type_error(name + " must be a list, got " + Py_TYPE(object.ptr())->tp_name);
    }
    return py::reinterpret_borrow<py::sequence>(object);
}

template <class T>
void attach(bench::RoofTensor<T>& tensor, const std::vector<ArrayView>& inputs, const std::vector<ArrayView>& updates) {
    for (std::size_t k = 0; k < inputs.size(); ++k) tensor.inputs[k] = static_cast<const T*>(inputs[k].data);
    for (std::size_t k = 0; k < updates.size(); ++k) tensor.updates[k] = static_cast<T*>(updates[k].data);
    tensor.input_count = inputs.size();
    tensor.update_count = updates.size();
    tensor.size = updates.front().size;
}

void roof_binding(py::handle inputs_object, py::handle updates_object) {
    const py::sequence inputs_list = check_sequence(inputs_object, "inputs");
    const py::sequence updates_list = check_sequence(updates_object, "updates");
    const std::size_t count = py::len(updates_list);
    if (py::len(inputs_list) != count) {
        throw py::value_error("inputs has " + std::to_string(py::len(inputs_list)) + " entries but updates has " +
                              std::to_string(count));
    }
    std::vector<bench::RoofTensor<float>> float32;
    std::vector<bench::RoofTensor<double>> float64;
    std::vector<py::object> alive;  // keeps every array referenced while the GIL is released
    for (std::size_t i = 0; i < count; ++i) {
        const std::string index = "[" + std::to_string(i) + "]";
        const py::sequence tensor_inputs = check_sequence(inputs_list[i], "inputs" + index);
        const py::sequence tensor_updates = check_sequence(updates_list[i], "updates" + index);
        const std::size_t input_count = py::len(tensor_inputs);
        const std::size_t update_count = py::len(tensor_updates);
        if (input_count < 1 || input_count > bench::roof_max_inputs) {
            throw py::value_error("inputs" + index + " must hold 1 to " + std::to_string(bench::roof_max_inputs) +
                                  " arrays, got " + std::to_string(input_count));
        }
        if (update_count < 1 || update_count > bench::roof_max_updates) {
            throw py::value_error("updates" + index + " must hold 1 to " + std::to_string(bench::roof_max_updates) +
                                  " arrays, got " + std::to_string(update_count));
        }
        std::vector<ArrayView> inputs, updates;
        std::vector<std::string> names;
        auto add = [&](std::vector<ArrayView>& views, py::object object, const std::string& name, bool writeable) {
            const ArrayView view = check_roof_array(object, name, writeable);
            if (!updates.empty() || !views.empty()) {
                const ArrayView& first = updates.empty() ? views.front() : updates.front();
                if (view.type != first.type || view.size != first.size) {
                    throw py::value_error(name + " must have the dtype and size of updates" + index + "[0]");
                }
            }
            views.push_back(view);
            names.push_back(name);
            alive.push_back(std::move(object));
        };
        for (std::size_t k = 0; k < update_count; ++k) {
            add(updates, tensor_updates[k], "updates" + index + "[" + std::to_string(k) + "]", true);
        }
        for (std::size_t k = 0; k < input_count; ++k) {
            add(inputs, tensor_inputs[k], "inputs" + index + "[" + std::to_string(k) + "]", false);
        }
        // Updated arrays must not overlap anything else of their tensor.
        for (std::size_t a = 0; a < update_count; ++a) {
            for (std::size_t b = a + 1; b < names.size(); ++b) {
                const ArrayView& other = b < update_count ? updates[b] : inputs[b - update_count];
                check_disjoint(updates[a], names[a], other, names[b]);
            }
        }
        if (updates.front().type == ElementType::float32) {
            attach(float32.emplace_back(), inputs, updates);
        } else {
            attach(float64.emplace_back(), inputs, updates);
        }
    }
    py::gil_scoped_release release;
    if (!float32.empty()) bench::roof_stream(float32.data(), float32.size());
    if (!float64.empty()) bench::roof_stream(float64.data(), float64.size());
}

}  // namespace

void register_bench(py::module_ m) {
    m.def("roof_stream", &roof_binding, "inputs"_a, "updates"_a,
          "The benchmark's memory roof, in place: for tensor i, s = sum(inputs[i]) and every array u of "
          "updates[i] becomes u + s. inputs[i] holds 1-2 arrays that are only read, updates[i] 1-4 arrays "
          "that are read and written, so a rule's traffic is matched by e.g. inputs=[[grad]], "
          "updates=[[param, exp_avg, exp_avg_sq]] for Adam. Same chunking, thread pool and instruction "
          "set as the update rules.");
}

}  // namespace lrcore::python
