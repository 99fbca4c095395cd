#include "array_checks.hpp"

#include <algorithm>

#include "coalesce.hpp"

namespace lrcore::python {
namespace {

// numpy type numbers (stable across numpy 1.x and 2.x).
constexpr int npy_float = 11;
constexpr int npy_double = 12;
constexpr int npy_half = 23;

bool native_byte_order(char byteorder) {
    return byteorder == '=' || byteorder == '|' ||
           (byteorder == '<') == (PY_LITTLE_ENDIAN != 0);
}

/// The type number ml_dtypes' bfloat16 has in this process (user types are
/// numbered as they register), or -1 without ml_dtypes. Looked up only when an
/// array of a user type arrives, so float32/float64 steps never import it.
int bfloat16_type_number() {
    static const int number = [] {
        try {
            const py::object bfloat16 = py::module_::import("ml_dtypes").attr("bfloat16");
            return py::module_::import("numpy").attr("dtype")(bfloat16).attr("num").cast<int>();
        } catch (const py::error_already_set&) {
            return -1;
        }
    }();
    return number;
}

/// The element type of a dtype lrcore steps, or false.
bool element_type_of(const py::detail::PyArrayDescr_Proxy* descr, ElementType& type) {
    if (!native_byte_order(descr->byteorder)) return false;
    switch (descr->type_num) {
        case npy_float: type = ElementType::float32; return true;
        case npy_double: type = ElementType::float64; return true;
        case npy_half: type = ElementType::float16; return true;
        default: break;
    }
    if (descr->type_num >= 256 && descr->type_num == bfloat16_type_number()) {
        type = ElementType::bfloat16;
        return true;
    }
    return false;
}

/// Whether an array of `type` may go with a parameter of `param` as `match` says.
bool matches(ElementType type, ElementType param, Match match) {
    if (type == param) return true;
    if (!is_16_bit(param)) return false;
    switch (match) {
        case Match::same: return false;
        case Match::gradient: return type == ElementType::float32;
        case Match::state: return type == ElementType::float32 || type == ElementType::bfloat16;
    }
    return false;
}

const char* allowed_text(Match match) {
    switch (match) {
        case Match::same: return "";
        case Match::gradient: return " (a gradient has its parameter's dtype, or float32 for a 16-bit parameter)";
        case Match::state: return " (the state of a 16-bit parameter is float32 or bfloat16)";
    }
    return "";
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
    // Names are built only for an error: this runs for every array of every step.
    if (!py::isinstance<py::array>(object)) {
        throw py::type_error(argument_name(list_name, index) + " must be a numpy array, got " + type_name(object));
    }
    const auto* array = py::detail::array_proxy(object.ptr());
    const auto* descr = py::detail::array_descriptor_proxy(array->descr);
    ArrayView view;
    if (descr->type_num == npy_float && native_byte_order(descr->byteorder)) {
        view.type = ElementType::float32;
    } else if (descr->type_num == npy_double && native_byte_order(descr->byteorder)) {
        view.type = ElementType::float64;
    } else {
        throw py::type_error(argument_name(list_name, index) +
                             " must have dtype float32 or float64 (native byte order), got " + dtype_name(array));
    }
    if (!c_contiguous(array)) {
        throw py::value_error(argument_name(list_name, index) +
                              " must be C-contiguous (use numpy.ascontiguousarray), got a strided view");
    }
    if (must_be_writeable && !writeable(array)) {
        throw py::value_error(argument_name(list_name, index) + " is read-only; lrcore updates it in place");
    }
    view.object = object;
    view.data = array->data;
    view.size = element_count(array);
    view.bytes = view.size * (view.type == ElementType::float32 ? 4 : 8);
    return view;
}

ArrayView check_parameter(py::handle object, const char* list_name, std::size_t index) {
    if (!py::isinstance<py::array>(object)) {
        throw py::type_error(argument_name(list_name, index) + " must be a numpy array, got " + type_name(object));
    }
    const auto* array = py::detail::array_proxy(object.ptr());
    ArrayView view;
    if (!element_type_of(py::detail::array_descriptor_proxy(array->descr), view.type)) {
        throw py::type_error(argument_name(list_name, index) +
                             " must have dtype float32, float64, bfloat16 (ml_dtypes) or float16 (native byte "
                             "order), got " + dtype_name(array));
    }
    if (!c_contiguous(array)) {
        throw py::value_error(argument_name(list_name, index) +
                              " must be C-contiguous (use numpy.ascontiguousarray), got a strided view");
    }
    if (!writeable(array)) {
        throw py::value_error(argument_name(list_name, index) + " is read-only; lrcore updates it in place");
    }
    view.object = object;
    view.data = array->data;
    view.size = element_count(array);
    view.bytes = view.size * element_bytes(view.type);
    return view;
}

namespace {

/// The dtype check of check_like and check_shaped_like: the array's element type.
ElementType check_dtype_like(const py::detail::PyArray_Proxy* array, const py::detail::PyArray_Proxy* reference,
                             const char* list_name, std::size_t index, const ArrayView& param,
                             const char* param_list_name, Match match) {
    ElementType type = ElementType::float32;
    if (!element_type_of(py::detail::array_descriptor_proxy(array->descr), type) ||
        !matches(type, param.type, match)) {
        throw py::type_error(argument_name(list_name, index) + " has dtype " + dtype_name(array) + " but " +
                             argument_name(param_list_name, index) + " has dtype " + dtype_name(reference) +
                             allowed_text(match));
    }
    return type;
}

}  // namespace

ArrayView check_like(py::handle object, const char* list_name, std::size_t index, const ArrayView& param,
                     const char* param_list_name, bool must_be_writeable, Match match) {
    if (!py::isinstance<py::array>(object)) {
        throw py::type_error(argument_name(list_name, index) + " must be a numpy array, got " + type_name(object));
    }
    const auto* array = py::detail::array_proxy(object.ptr());
    const auto* reference = py::detail::array_proxy(param.object.ptr());
    const ElementType type = check_dtype_like(array, reference, list_name, index, param, param_list_name, match);
    bool same_shape = array->nd == reference->nd;
    for (int d = 0; same_shape && d < array->nd; ++d) {
        same_shape = array->dimensions[d] == reference->dimensions[d];
    }
    if (!same_shape) {
        throw py::value_error(argument_name(list_name, index) + " has shape " + shape_string(array) + " but " +
                              argument_name(param_list_name, index) + " has shape " + shape_string(reference));
    }
    if (!c_contiguous(array)) {
        throw py::value_error(argument_name(list_name, index) +
                              " must be C-contiguous (use numpy.ascontiguousarray), got a strided view");
    }
    if (must_be_writeable && !writeable(array)) {
        throw py::value_error(argument_name(list_name, index) + " is read-only; lrcore updates it in place");
    }
    ArrayView view;
    view.object = object;
    view.data = array->data;
    view.size = param.size;
    view.bytes = param.size * element_bytes(type);
    view.type = type;
    return view;
}

std::string shape_text(const std::vector<Py_ssize_t>& shape) {
    std::string out = "(";
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (d > 0) out += ", ";
        out += std::to_string(shape[d]);
    }
    if (shape.size() == 1) out += ",";
    return out + ")";
}

ArrayView check_shaped_like(py::handle object, const char* list_name, std::size_t index, const ArrayView& param,
                            const char* param_list_name, bool must_be_writeable, const std::vector<Py_ssize_t>& shape,
                            Match match) {
    if (!py::isinstance<py::array>(object)) {
        throw py::type_error(argument_name(list_name, index) + " must be a numpy array, got " + type_name(object));
    }
    const auto* array = py::detail::array_proxy(object.ptr());
    const auto* reference = py::detail::array_proxy(param.object.ptr());
    const ElementType type = check_dtype_like(array, reference, list_name, index, param, param_list_name, match);
    bool same_shape = static_cast<std::size_t>(array->nd) == shape.size();
    for (int d = 0; same_shape && d < array->nd; ++d) same_shape = array->dimensions[d] == shape[d];
    if (!same_shape) {
        throw py::value_error(argument_name(list_name, index) + " has shape " + shape_string(array) +
                              " but must have shape " + shape_text(shape) + " for " +
                              argument_name(param_list_name, index) + " of shape " + shape_string(reference));
    }
    if (!c_contiguous(array)) {
        throw py::value_error(argument_name(list_name, index) +
                              " must be C-contiguous (use numpy.ascontiguousarray), got a strided view");
    }
    if (must_be_writeable && !writeable(array)) {
        throw py::value_error(argument_name(list_name, index) + " is read-only; lrcore updates it in place");
    }
    ArrayView view;
    view.object = object;
    view.data = array->data;
    view.size = element_count(array);
    view.bytes = view.size * element_bytes(type);
    view.type = type;
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

namespace {

/// A written region's interval and its position among the call's written regions.
struct WrittenInterval {
    std::uintptr_t begin;
    std::uintptr_t end;
    std::size_t position;
};

/// The written intervals of this thread's last successful check, in call order
/// and sorted by address (pairwise disjoint).
struct VerifiedWrites {
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> in_call_order;
    std::vector<WrittenInterval> by_address;
};

py::value_error overlap_error(const Region& a, const Region& b) {
    return py::value_error(argument_name(a.list_name, a.index) + " and " + argument_name(b.list_name, b.index) +
                           " share memory; each must be a separate array");
}

}  // namespace

void check_no_overlap(const std::vector<Region>& regions) {
    thread_local std::vector<const Region*> written;
    thread_local VerifiedWrites verified;
    written.clear();
    for (const Region& r : regions) {
        if (r.written && r.end > r.begin) written.push_back(&r);
    }
    bool same = verified.in_call_order.size() == written.size();
    for (std::size_t k = 0; same && k < written.size(); ++k) {
        same = verified.in_call_order[k] == std::make_pair(written[k]->begin, written[k]->end);
    }
    if (!same) {
        // Sorted by address (ties in call order), neighbours must not overlap.
        verified.in_call_order.clear();
        auto& sorted = verified.by_address;
        sorted.clear();
        for (std::size_t k = 0; k < written.size(); ++k) sorted.push_back({written[k]->begin, written[k]->end, k});
        std::sort(sorted.begin(), sorted.end(), [](const WrittenInterval& a, const WrittenInterval& b) {
            return a.begin < b.begin || (a.begin == b.begin && a.position < b.position);
        });
        for (std::size_t k = 0; k + 1 < sorted.size(); ++k) {
            if (sorted[k].end > sorted[k + 1].begin) {
                throw overlap_error(*written[sorted[k + 1].position], *written[sorted[k].position]);
            }
        }
        for (const Region* r : written) verified.in_call_order.emplace_back(r->begin, r->end);
    }
    // A region only read may touch no written one: the written intervals are
    // disjoint and sorted, so their ends are sorted too, and only the last one
    // starting before the read region ends can reach into it.
    const auto& sorted = verified.by_address;
    for (const Region& read : regions) {
        if (read.written || read.end <= read.begin) continue;
        auto after = std::partition_point(sorted.begin(), sorted.end(),
                                          [&](const WrittenInterval& w) { return w.begin < read.end; });
        if (after != sorted.begin() && (after - 1)->end > read.begin) {
            throw overlap_error(read, *written[(after - 1)->position]);
        }
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

ArrayView check_scalar_state(py::handle object, const char* list_name, std::size_t index) {
    if (!py::isinstance<py::array>(object)) {
        throw py::type_error(argument_name(list_name, index) + " must be a 0-d float64 numpy array (one per tensor), got " +
                             type_name(object));
    }
    const auto* array = py::detail::array_proxy(object.ptr());
    const auto* descr = py::detail::array_descriptor_proxy(array->descr);
    if (descr->type_num != npy_double || !native_byte_order(descr->byteorder) || array->nd != 0) {
        throw py::type_error(argument_name(list_name, index) + " must be a 0-d float64 numpy array, got " +
                             dtype_name(array) + " of shape " + shape_string(array));
    }
    if (reinterpret_cast<std::uintptr_t>(array->data) % alignof(double) != 0) {
        throw py::value_error(argument_name(list_name, index) + " must be aligned to 8 bytes");
    }
    if (!writeable(array)) {
        throw py::value_error(argument_name(list_name, index) + " is read-only; lrcore updates it in place");
    }
    ArrayView view;
    view.object = object;
    view.data = array->data;
    view.size = 1;
    view.bytes = sizeof(double);
    view.type = ElementType::float64;
    return view;
}

}  // namespace lrcore::python

namespace lrcore::python {
namespace {

/// "grads[3].values", the way sparse-gradient errors name an array.
std::string member_name(std::size_t index, const char* member) {
    return argument_name("grads", index) + "." + member;
}

}  // namespace

bool is_sparse_rows(py::handle object) {
    static PyTypeObject* type = reinterpret_cast<PyTypeObject*>(py::type::of<SparseRowsArgument>().ptr());
    return Py_TYPE(object.ptr()) == type;
}

std::size_t row_count(const ArrayView& param) {
    const auto* array = py::detail::array_proxy(param.object.ptr());
    return array->nd == 0 ? 1 : static_cast<std::size_t>(array->dimensions[0]);
}

SparseRowsView check_sparse_rows(py::handle object, std::size_t index, const ArrayView& param) {
    const auto& argument = object.cast<const SparseRowsArgument&>();
    const auto* table = py::detail::array_proxy(param.object.ptr());
    if (table->nd < 2) {
        throw py::value_error(argument_name("params", index) + " has shape " + shape_string(table) +
                              ": a row-sparse gradient (SparseRows) needs a parameter of at least 2 dimensions");
    }
    SparseRowsView view;
    view.table_rows = static_cast<std::size_t>(table->dimensions[0]);
    view.row_length = 1;
    for (int d = 1; d < table->nd; ++d) view.row_length *= static_cast<std::size_t>(table->dimensions[d]);

    const std::string indices_name = member_name(index, "indices");
    const auto* indices = require_array(argument.indices, indices_name);
    const py::dtype index_type = py::reinterpret_borrow<py::array>(argument.indices).dtype();
    if (index_type.kind() != 'i' || (index_type.itemsize() != 4 && index_type.itemsize() != 8) ||
        !native_byte_order(index_type.byteorder())) {
        throw py::type_error(indices_name + " must have dtype int32 or int64, got " + dtype_name(indices));
    }
    if (indices->nd != 1) {
        throw py::value_error(indices_name + " must be 1-D, got shape " + shape_string(indices));
    }
    if (!c_contiguous(indices)) throw py::value_error(indices_name + " must be contiguous, got a strided view");
    view.int32 = index_type.itemsize() == 4;
    view.count = static_cast<std::size_t>(indices->dimensions[0]);
    view.indices = indices->data;

    const std::string values_name = member_name(index, "values");
    const auto* values = require_array(argument.values, values_name);
    const auto* descr = py::detail::array_descriptor_proxy(values->descr);
    const int wanted = param.type == ElementType::float32 ? npy_float : npy_double;
    if (descr->type_num != wanted || !native_byte_order(descr->byteorder)) {
        throw py::type_error(values_name + " has dtype " + dtype_name(values) + " but " +
                             argument_name("params", index) + " has dtype " + dtype_name(table));
    }
    bool shape_ok = values->nd == table->nd && static_cast<std::size_t>(values->dimensions[0]) == view.count;
    for (int d = 1; shape_ok && d < table->nd; ++d) shape_ok = values->dimensions[d] == table->dimensions[d];
    if (!shape_ok) {
        std::string wanted_shape = "(" + std::to_string(view.count);
        for (int d = 1; d < table->nd; ++d) wanted_shape += ", " + std::to_string(table->dimensions[d]);
        throw py::value_error(values_name + " has shape " + shape_string(values) + " but must have shape " +
                              wanted_shape + ") (len(indices), *" + argument_name("params", index) + ".shape[1:])");
    }
    if (!c_contiguous(values)) {
        throw py::value_error(values_name + " must be C-contiguous (use numpy.ascontiguousarray), got a strided view");
    }
    view.values = values->data;

    const std::size_t bad = view.int32
        ? detail::first_out_of_range(static_cast<const std::int32_t*>(view.indices), view.count, view.table_rows)
        : detail::first_out_of_range(static_cast<const std::int64_t*>(view.indices), view.count, view.table_rows);
    if (bad != view.count) {
        const long long value = view.int32 ? static_cast<const std::int32_t*>(view.indices)[bad]
                                           : static_cast<const std::int64_t*>(view.indices)[bad];
        throw py::index_error(indices_name + "[" + std::to_string(bad) + "] = " + std::to_string(value) +
                              " is out of range for " + argument_name("params", index) + " with " +
                              std::to_string(view.table_rows) + " rows");
    }
    const auto begin = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p); };
    const std::size_t index_bytes = view.count * (view.int32 ? 4 : 8);
    const std::size_t value_bytes = view.count * view.row_length * (param.type == ElementType::float32 ? 4 : 8);
    view.indices_region = Region{begin(view.indices), begin(view.indices) + index_bytes, "grads", index, false};
    view.values_region = Region{begin(view.values), begin(view.values) + value_bytes, "grads", index, false};
    return view;
}

ArrayView check_row_state(py::handle object, const char* list_name, std::size_t index, const ArrayView& param) {
    const std::string name = argument_name(list_name, index);
    const auto* array = require_array(object, name);
    const auto* reference = py::detail::array_proxy(param.object.ptr());
    const auto* descr = py::detail::array_descriptor_proxy(array->descr);
    const int wanted = param.type == ElementType::float32 ? npy_float : npy_double;
    if (descr->type_num != wanted || !native_byte_order(descr->byteorder)) {
        throw py::type_error(name + " has dtype " + dtype_name(array) + " but " + argument_name("params", index) +
                             " has dtype " + dtype_name(reference));
    }
    const bool shape_ok = reference->nd == 0
        ? array->nd == 0
        : array->nd == 1 && array->dimensions[0] == reference->dimensions[0];
    if (!shape_ok) {
        throw py::value_error(name + " has shape " + shape_string(array) + " but must have one value per row of " +
                              argument_name("params", index) + " (shape " + shape_string(reference) + "[:1])");
    }
    if (!c_contiguous(array)) {
        throw py::value_error(name + " must be C-contiguous (use numpy.ascontiguousarray), got a strided view");
    }
    if (!writeable(array)) throw py::value_error(name + " is read-only; lrcore updates it in place");
    ArrayView view;
    view.object = object;
    view.data = array->data;
    view.size = element_count(array);
    view.type = param.type;
    view.bytes = view.size * (param.type == ElementType::float32 ? 4 : 8);
    return view;
}

}  // namespace lrcore::python
