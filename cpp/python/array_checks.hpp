// Boundary checks for numpy arrays handed to the kernels.
//
// Everything a step will touch is inspected before anything is written: the
// object is a numpy array of float32 or float64 in native byte order, it is
// C-contiguous, writeable when it will be written, matches its parameter's
// shape and dtype, and overlaps none of the other arrays of the same tensor.
// Errors name the offending argument, e.g. "grads[3]".
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lrcore::python {

namespace py = pybind11;

/// An array's element type. bfloat16 (ml_dtypes.bfloat16) and float16 hold
/// parameters and gradients stepped with float32 math (lrcore::Storage).
enum class ElementType { float32, float64, bfloat16, float16 };

constexpr std::size_t element_bytes(ElementType type) {
    return type == ElementType::float64 ? 8 : type == ElementType::float32 ? 4 : 2;
}

constexpr bool is_16_bit(ElementType type) { return type == ElementType::bfloat16 || type == ElementType::float16; }

/// What dtype an array must have next to its parameter: the parameter's (`same`);
/// for a gradient, also float32 next to a 16-bit parameter; for a state array,
/// float32 or bfloat16 next to a 16-bit parameter.
enum class Match { same, gradient, state };

/// What the kernels need to know about one checked array.
struct ArrayView {
    py::handle object;
    void* data = nullptr;
    std::size_t size = 0;        // elements
    std::size_t bytes = 0;
    ElementType type = ElementType::float32;
};

/// "name[index]", the way errors refer to an element of an argument list.
std::string argument_name(const char* list_name, std::size_t index);

/// Checks an array of its own dtype: float32/float64 in native byte order,
/// C-contiguous, and writeable when it will be written.
ArrayView check_float_array(py::handle object, const char* list_name, std::size_t index, bool must_be_writeable);

/// Checks a parameter array: float32, float64, bfloat16 or float16, C-contiguous, writeable.
ArrayView check_parameter(py::handle object, const char* list_name, std::size_t index);

/// Checks an array that must match `param` (a gradient or a state array):
/// its shape, and its dtype as `match` says.
ArrayView check_like(py::handle object, const char* list_name, std::size_t index, const ArrayView& param,
                     const char* param_list_name, bool writeable, Match match = Match::same);

/// The same for a state array whose shape is not its parameter's (Adafactor's
/// row and column statistics): it must have exactly `shape`; `size` is its
/// element count. Errors name the parameter's shape too.
ArrayView check_shaped_like(py::handle object, const char* list_name, std::size_t index, const ArrayView& param,
                            const char* param_list_name, bool writeable, const std::vector<Py_ssize_t>& shape,
                            Match match = Match::same);

/// "(2, 3)", as numpy prints a shape.
std::string shape_text(const std::vector<Py_ssize_t>& shape);

/// Checks a per-tensor scalar state: a writeable, aligned, 0-d float64 array in native byte order.
ArrayView check_scalar_state(py::handle object, const char* list_name, std::size_t index);

/// Throws ValueError when two arrays of one tensor share memory.
void check_disjoint(const ArrayView& a, const std::string& a_name, const ArrayView& b, const std::string& b_name);

/// One array of a call, for the overlap check across all of its arrays.
struct Region {
    std::uintptr_t begin = 0;
    std::uintptr_t end = 0;
    const char* list_name = "";  // a string literal
    std::size_t index = 0;
    bool written = false;
};

inline Region region_of(const ArrayView& view, const char* list_name, std::size_t index, bool written) {
    const auto begin = reinterpret_cast<std::uintptr_t>(view.data);
    return Region{begin, begin + view.bytes, list_name, index, written};
}

/// Throws ValueError when an array that a call writes shares memory with any
/// other array of the call (arrays that are only read may share memory with
/// each other); empty arrays never overlap. O(n log n) when the written arrays
/// differ from the calling thread's previous call, O(n) plus a binary search
/// per read array when they are the same (an optimizer passes the same
/// parameters and states every step).
void check_no_overlap(const std::vector<Region>& regions);

/// A list argument of the step call: a Python sequence of known length.
py::sequence check_list(py::handle object, const char* name, std::size_t expected_length);

/// The per-tensor step counters: a writeable, contiguous, 1-D int64 array of the given length.
std::int64_t* check_steps(py::handle object, std::size_t expected_length);

}  // namespace lrcore::python

namespace lrcore::python {

/// lrcore.SparseRows: a row-sparse gradient as Python hands it to a step.
struct SparseRowsArgument {
    py::object indices;
    py::object values;
};

/// A row-sparse gradient after its checks against its parameter.
struct SparseRowsView {
    const void* indices = nullptr;
    bool int32 = false;              // else int64
    std::size_t count = 0;           // indices, and value rows
    const void* values = nullptr;
    std::size_t row_length = 0;      // elements per row: product of param.shape[1:]
    std::size_t table_rows = 0;      // param.shape[0]
    Region indices_region, values_region;
};

/// Whether `object` is an lrcore.SparseRows.
bool is_sparse_rows(py::handle object);

/// Checks grads[index], a SparseRows, against params[index]: the parameter has
/// at least 2 dimensions; indices is a 1-D int32/int64 array (native byte
/// order, contiguous) with every value in [0, param.shape[0]) (IndexError
/// otherwise); values has the parameter's dtype and shape (len(indices),
/// *param.shape[1:]) and is C-contiguous. Errors name "grads[index].indices" etc.
SparseRowsView check_sparse_rows(py::handle object, std::size_t index, const ArrayView& param);

/// Checks a state array with one value per row of `param`: its dtype, shape
/// param.shape[:1], C-contiguous and writeable.
ArrayView check_row_state(py::handle object, const char* list_name, std::size_t index, const ArrayView& param);

/// The number of rows of a parameter (shape[0]; 1 for a 0-d array).
std::size_t row_count(const ArrayView& param);

}  // namespace lrcore::python
