#include "array_checks.hpp"

#include <algorithm>

namespace lrcore::python {
namespace {

// numpy type numbers (stable across numpy 1.x and 2.x).
constexpr int npy_float = 11;
constexpr int npy_double = 12;

bool native_byte_order(char byteorder) {
    return byteorder == '=' || byteorder == '|' ||
           (byteorder == '<') == (PY_LITTLE_ENDIAN != 0);
}

const char* type_name(py::handle object) { return Py_TYPE(object.ptr())->tp_name; }

std::string dtype_name(const py::detail::PyArray_Proxy* array) {
    return py::str(py::handle(reinterpret_cast<PyObject*>(array->descr))).cast<std::string>();
}

std::string shape_string(const py::detail::PyArray_Proxy* array) {
    std::string out = "(";
    for (int d = 0; d < array->nd; ++d) {
        if (d > 0) out += ", ";
        out += std::to_string(array->dimensions[d]);
    }
    if (array->nd == 1) out += ",";
    return out + ")";
}

const py::detail::PyArray_Proxy* require_array(py::handle object, const std::string& name) {
    if (!py::isinstance<py::array>(object)) {
        throw py::type_error(name + " must be a numpy array, got " + type_name(object));
    }
    return py::detail::array_proxy(object.ptr());
}

bool c_contiguous(const py::detail::PyArray_Proxy* array) {
    return (array->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) != 0;
}

bool writeable(const py::detail::PyArray_Proxy* array) {
    return (array->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_) != 0;
}

std::size_t element_count(const py::detail::PyArray_Proxy* array) {
    std::size_t n = 1;
    for (int d = 0; d < array->nd; ++d) n *= static_cast<std::size_t>(array->dimensions[d]);
    return n;
}

}  // namespace

std::string argument_name(const char* list_name, std::size_t index) {
    return std::string(list_name) + "[" + std::to_string(index) + "]";
}

ArrayView check_float_array(py::handle object, const char* list_name, std::size_t index, bool must_be_writeable) {
    const std::string name = argument_name(list_name, index);
    const auto* array = require_array(object, name);
    const auto* descr = py::detail::array_descriptor_proxy(array->descr);
    ArrayView view;
    if (descr->type_num == npy_float && native_byte_order(descr->byteorder)) {
        view.type = ElementType::float32;
    } else if (descr->type_num == npy_double && native_byte_order(descr->byteorder)) {
        view.type = ElementType::float64;
    } else {
        throw py::type_error(name + " must have dtype float32 or float64 (native byte order), got " +
                             dtype_name(array));
    }
    if (!c_contiguous(array)) {
        throw py::value_error(name + " must be C-contiguous (use numpy.ascontiguousarray), got a strided view");
    }
    if (must_be_writeable && !writeable(array)) {
        throw py::value_error(name + " is read-only; lrcore updates it in place");
    }
    view.object = object;
    view.data = array->data;
    view.size = element_count(array);
    view.bytes = view.size * (view.type == ElementType::float32 ? 4 : 8);
    return view;
}

ArrayView check_parameter(py::handle object, const char* list_name, std::size_t index) {
    return check_float_array(object, list_name, index, true);
}

ArrayView check_like(py::handle object, const char* list_name, std::size_t index, const ArrayView& param,
                     const char* param_list_name, bool must_be_writeable) {
    const std::string name = argument_name(list_name, index);
    const auto* array = require_array(object, name);
    const auto* reference = py::detail::array_proxy(param.object.ptr());
    const auto* descr = py::detail::array_descriptor_proxy(array->descr);
    const int wanted = param.type == ElementType::float32 ? npy_float : npy_double;
    if (descr->type_num != wanted || !native_byte_order(descr->byteorder)) {
        throw py::type_error(name + " has dtype " + dtype_name(array) + " but " +
                             argument_name(param_list_name, index) + " has dtype " + dtype_name(reference));
    }
    bool same_shape = array->nd == reference->nd;
    for (int d = 0; same_shape && d < array->nd; ++d) {
        same_shape = array->dimensions[d] == reference->dimensions[d];
    }
    if (!same_shape) {
        throw py::value_error(name + " has shape " + shape_string(array) + " but " +
                              argument_name(param_list_name, index) + " has shape " + shape_string(reference));
    }
    if (!c_contiguous(array)) {
        throw py::value_error(name + " must be C-contiguous (use numpy.ascontiguousarray), got a strided view");
    }
    if (must_be_writeable && !writeable(array)) {
        throw py::value_error(name + " is read-only; lrcore updates it in place");
    }
    ArrayView view;
    view.object = object;
    view.data = array->data;
    view.size = param.size;
    view.bytes = param.bytes;
    view.type = param.type;
    return view;
}

void check_disjoint(const ArrayView& a, const std::string& a_name, const ArrayView& b, const std::string& b_name) {
    if (a.bytes == 0 || b.bytes == 0) return;
    const auto a_begin = reinterpret_cast<std::uintptr_t>(a.data);
    const auto b_begin = reinterpret_cast<std::uintptr_t>(b.data);
    if (a_begin < b_begin + b.bytes && b_begin < a_begin + a.bytes) {
        throw py::value_error(a_name + " and " + b_name + " share memory; each must be a separate array");
    }
}

void check_no_overlap(std::vector<Region>& regions) {
    auto overlap_error = [](const Region& a, const Region& b) {
        return py::value_error(argument_name(a.list_name, a.index) + " and " + argument_name(b.list_name, b.index) +
                               " share memory; each must be a separate array");
    };
    // Written regions first, sorted by address; they must be pairwise disjoint.
    const auto written_end = std::partition(regions.begin(), regions.end(),
                                            [](const Region& r) { return r.written && r.end > r.begin; });
    const auto by_begin = [](const Region& a, const Region& b) { return a.begin < b.begin; };
    std::sort(regions.begin(), written_end, by_begin);
    for (auto it = regions.begin(); it != written_end && it + 1 != written_end; ++it) {
        if (it->end > (it + 1)->begin) throw overlap_error(*(it + 1), *it);
    }
    // Each region only read may touch none of them: disjoint and sorted, the
    // written regions' ends are sorted too, so only the last one starting
    // before the read region ends can reach into it.
    for (auto read = written_end; read != regions.end(); ++read) {
        if (read->end <= read->begin) continue;
        auto after = std::partition_point(regions.begin(), written_end,
                                          [&](const Region& w) { return w.begin < read->end; });
        if (after != regions.begin() && (after - 1)->end > read->begin) throw overlap_error(*read, *(after - 1));
    }
}

py::sequence check_list(py::handle object, const char* name, std::size_t expected_length) {
    if (!py::isinstance<py::sequence>(object) || py::isinstance<py::str>(object) ||
        py::isinstance<py::array>(object)) {
        throw py::type_error(std::string(name) + " must be a list of arrays, got " + type_name(object));
    }
    auto sequence = py::reinterpret_borrow<py::sequence>(object);
    const std::size_t length = py::len(sequence);
    if (length != expected_length) {
        throw py::value_error(std::string(name) + " has " + std::to_string(length) + " entries but params has " +
                              std::to_string(expected_length));
    }
    return sequence;
}

std::int64_t* check_steps(py::handle object, std::size_t expected_length) {
    const auto* array = require_array(object, "steps");
    const auto descr = py::reinterpret_borrow<py::dtype>(reinterpret_cast<PyObject*>(array->descr));
    const bool int64 = descr.kind() == 'i' && descr.itemsize() == 8 && native_byte_order(descr.byteorder());
    if (!int64) throw py::type_error("steps must have dtype int64, got " + dtype_name(array));
    if (array->nd != 1 || static_cast<std::size_t>(array->dimensions[0]) != expected_length) {
        throw py::value_error("steps must have shape (" + std::to_string(expected_length) + ",), got " +
                              shape_string(array));
    }
    if (!c_contiguous(array) || !writeable(array)) throw py::value_error("steps must be contiguous and writeable");
    auto* steps = reinterpret_cast<std::int64_t*>(array->data);
    for (std::size_t i = 0; i < expected_length; ++i) {
        if (steps[i] < 0) {
            throw py::value_error("steps[" + std::to_string(i) + "] must be >= 0, got " + std::to_string(steps[i]));
        }
    }
    return steps;
}

}  // namespace lrcore::python
