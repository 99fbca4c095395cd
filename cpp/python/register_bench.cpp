// Binding of the benchmark's memory roof: lrcore._core.bench.roof_stream.
//
// Takes, per tensor, the arrays an update rule only reads (the gradient) and
// those it reads and writes (parameter and state), checks them all, then runs
// the roof kernel over every tensor in one call without the GIL, as the step
// bindings do. The checks are kept lean (names are built only for an error
// message) so the roof's time is no more than the data movement it measures.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "roof.hpp"
#include "array_checks.hpp"
#include "register.hpp"

namespace lrcore::python {
namespace {

using namespace pybind11::literals;

// numpy type numbers (stable across numpy 1.x and 2.x).
constexpr int npy_float = 11;
constexpr int npy_double = 12;

std::string array_name(const char* list, std::size_t tensor, std::size_t k) {
    return std::string(list) + "[" + std::to_string(tensor) + "][" + std::to_string(k) + "]";
}

/// Checks one roof array: a C-contiguous float32/float64 numpy array in native
/// byte order, writeable if it is updated.
ArrayView check_roof_array(py::handle object, const char* list, std::size_t tensor, std::size_t k,
                           bool must_be_writeable) {
    if (!py::isinstance<py::array>(object)) {
        throw py::type_error(array_name(list, tensor, k) + " must be a numpy array, got " +
                             Py_TYPE(object.ptr())->tp_name);
    }
    const auto* array = py::detail::array_proxy(object.ptr());
    const auto* descr = py::detail::array_descriptor_proxy(array->descr);
    const bool native = descr->byteorder == '=' || descr->byteorder == '|' ||
                        (descr->byteorder == '<') == (PY_LITTLE_ENDIAN != 0);
    ArrayView view;
    if (descr->type_num == npy_float && native) {
        view.type = ElementType::float32;
    } else if (descr->type_num == npy_double && native) {
        view.type = ElementType::float64;
    } else {
        throw py::type_error(array_name(list, tensor, k) + " must have dtype float32 or float64 (native byte order)");
    }
    if ((array->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) == 0) {
        throw py::value_error(array_name(list, tensor, k) + " must be C-contiguous");
    }
    if (must_be_writeable && (array->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_) == 0) {
        throw py::value_error(array_name(list, tensor, k) + " is read-only");
    }
    std::size_t size = 1;
    for (int d = 0; d < array->nd; ++d) size *= static_cast<std::size_t>(array->dimensions[d]);
    view.object = object;
    view.data = array->data;
    view.size = size;
    view.bytes = size * (view.type == ElementType::float32 ? 4 : 8);
    return view;
}

bool overlap(const ArrayView& a, const ArrayView& b) {
    if (a.bytes == 0 || b.bytes == 0) return false;
    const auto a_begin = reinterpret_cast<std::uintptr_t>(a.data);
    const auto b_begin = reinterpret_cast<std::uintptr_t>(b.data);
    return a_begin < b_begin + b.bytes && b_begin < a_begin + a.bytes;
}

py::sequence check_sequence(py::handle object, const char* name, std::size_t tensor, bool nested) {
    if (!py::isinstance<py::sequence>(object) || py::isinstance<py::str>(object) ||
        py::isinstance<py::array>(object)) {
        throw py::type_error((nested ? std::string(name) + "[" + std::to_string(tensor) + "]" : std::string(name)) +
                             " must be a list, got " + Py_TYPE(object.ptr())->tp_name);
    }
    return py::reinterpret_borrow<py::sequence>(object);
}

template <class T>
void attach(bench::RoofTensor<T>& tensor, const ArrayView* inputs, std::size_t input_count,
            const ArrayView* updates, std::size_t update_count) {
    for (std::size_t k = 0; k < input_count; ++k) tensor.inputs[k] = static_cast<const T*>(inputs[k].data);
    for (std::size_t k = 0; k < update_count; ++k) tensor.updates[k] = static_cast<T*>(updates[k].data);
    tensor.input_count = input_count;
    tensor.update_count = update_count;
    tensor.size = updates[0].size;
}

void roof_binding(py::handle inputs_object, py::handle updates_object) {
    const py::sequence inputs_list = check_sequence(inputs_object, "inputs", 0, false);
    const py::sequence updates_list = check_sequence(updates_object, "updates", 0, false);
    const std::size_t count = py::len(updates_list);
    if (py::len(inputs_list) != count) {
        throw py::value_error("inputs has " + std::to_string(py::len(inputs_list)) + " entries but updates has " +
                              std::to_string(count));
    }
    std::vector<bench::RoofTensor<float>> float32;
    std::vector<bench::RoofTensor<double>> float64;
    std::vector<py::object> alive;  // keeps every array referenced while the GIL is released
    alive.reserve(count * 4);
    for (std::size_t i = 0; i < count; ++i) {
        const py::sequence tensor_inputs = check_sequence(inputs_list[i], "inputs", i, true);
        const py::sequence tensor_updates = check_sequence(updates_list[i], "updates", i, true);
        const std::size_t input_count = py::len(tensor_inputs);
        const std::size_t update_count = py::len(tensor_updates);
        if (input_count < 1 || input_count > bench::roof_max_inputs) {
            throw py::value_error("inputs[" + std::to_string(i) + "] must hold 1 to " +
                                  std::to_string(bench::roof_max_inputs) + " arrays, got " +
                                  std::to_string(input_count));
        }
        if (update_count < 1 || update_count > bench::roof_max_updates) {
            throw py::value_error("updates[" + std::to_string(i) + "] must hold 1 to " +
                                  std::to_string(bench::roof_max_updates) + " arrays, got " +
                                  std::to_string(update_count));
        }
        // views[0 .. update_count) are the updates, then the inputs.
        ArrayView views[bench::roof_max_updates + bench::roof_max_inputs];
        const std::size_t total = update_count + input_count;
        for (std::size_t a = 0; a < total; ++a) {
            const bool is_update = a < update_count;
            const std::size_t k = is_update ? a : a - update_count;
            py::object object = is_update ? tensor_updates[k] : tensor_inputs[k];
            views[a] = check_roof_array(object, is_update ? "updates" : "inputs", i, k, is_update);
            if (views[a].type != views[0].type || views[a].size != views[0].size) {
                throw py::value_error(array_name(is_update ? "updates" : "inputs", i, k) +
                                      " must have the dtype and size of updates[" + std::to_string(i) + "][0]");
            }
            alive.push_back(std::move(object));
        }
        // Updated arrays must not overlap anything else of their tensor.
        for (std::size_t a = 0; a < update_count; ++a) {
            for (std::size_t b = a + 1; b < total; ++b) {
                if (overlap(views[a], views[b])) {
                    const std::string other = b < update_count ? array_name("updates", i, b)
                                                               : array_name("inputs", i, b - update_count);
                    throw py::value_error(array_name("updates", i, a) + " and " + other +
                                          " share memory; each must be a separate array");
                }
            }
        }
        if (views[0].type == ElementType::float32) {
            attach(float32.emplace_back(), views + update_count, input_count, views, update_count);
        } else {
            attach(float64.emplace_back(), views + update_count, input_count, views, update_count);
        }
    }
    py::gil_scoped_release release;
    if (!float32.empty()) bench::roof_stream(float32.data(), float32.size());
    if (!float64.empty()) bench::roof_stream(float64.data(), float64.size());
}

/// roof_read / roof_update: one list of arrays, split by dtype.
template <bool Writeable>
void one_array_roof_binding(py::handle arrays_object, double addend) {
    const py::sequence list = check_sequence(arrays_object, "arrays", 0, false);
    const std::size_t count = py::len(list);
    std::vector<float*> float32;
    std::vector<std::size_t> float32_sizes;
    std::vector<double*> float64;
    std::vector<std::size_t> float64_sizes;
    std::vector<ArrayView> views;
    std::vector<py::object> alive;
    for (std::size_t i = 0; i < count; ++i) {
        py::object object = list[i];
        const ArrayView view = check_roof_array(object, "arrays", i, 0, Writeable);
        if (Writeable) {
            for (std::size_t j = 0; j < views.size(); ++j) {
                if (overlap(views[j], view)) {
                    throw py::value_error("arrays[" + std::to_string(j) + "] and arrays[" + std::to_string(i) +
                                          "] share memory; each must be a separate array");
                }
            }
        }
        views.push_back(view);
        if (view.type == ElementType::float32) {
            float32.push_back(static_cast<float*>(view.data));
            float32_sizes.push_back(view.size);
        } else {
            float64.push_back(static_cast<double*>(view.data));
            float64_sizes.push_back(view.size);
        }
        alive.push_back(std::move(object));
    }
    py::gil_scoped_release release;
    if constexpr (Writeable) {
        bench::roof_update(float32.data(), float32_sizes.data(), float32.size(), addend);
        bench::roof_update(float64.data(), float64_sizes.data(), float64.size(), addend);
    } else {
        (void)addend;
        bench::roof_read(float32.data(), float32_sizes.data(), float32.size());
        bench::roof_read(float64.data(), float64_sizes.data(), float64.size());
    }
}

void roof_read_binding(py::handle arrays) { one_array_roof_binding<false>(arrays, 0.0); }
void roof_update_binding(py::handle arrays, double addend) { one_array_roof_binding<true>(arrays, addend); }

}  // namespace

void register_bench(py::module_ m) {
    m.def("roof_stream", &roof_binding, "inputs"_a, "updates"_a,
          "The benchmark's memory roof, in place: for tensor i, s = sum(inputs[i]) and every array u of "
          "updates[i] becomes u + s. inputs[i] holds 1-2 arrays that are only read, updates[i] 1-4 arrays "
          "that are read and written, so a rule's traffic is matched by e.g. inputs=[[grad]], "
          "updates=[[param, exp_avg, exp_avg_sq]] for Adam. Same chunking, thread pool and instruction "
          "set as the update rules.");
    m.def("roof_read", &roof_read_binding, "arrays"_a,
          "The memory roof of a read-only pass (all_finite, a norm): reads every element of every array "
          "once, doing trivial arithmetic, chunked and threaded like the gradient passes.");
    m.def("roof_update", &roof_update_binding, "arrays"_a, "addend"_a = 0.0,
          "The memory roof of an in-place pass (the clip scaling): every element x of every array "
          "becomes x + addend, chunked and threaded like the gradient passes.");
}

}  // namespace lrcore::python
