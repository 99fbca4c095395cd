// Bindings of the whole-gradient passes: lrcore._core.gradients.{all_finite,
// global_norm, clip_grad_norm, clip_grad_value}, and the pieces of the global
// norm for callers holding the gradients in parts (norm_partials,
// norm_from_partials, clip_coefficient).
//
// Each call takes a list of gradient arrays (None entries are skipped; float32
// and float64 may be mixed), checks them all, then runs without the GIL.
// Norms add the float32 and the float64 sums of powers in that order, each
// reduced in a fixed order, so results never depend on the thread count.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "array_checks.hpp"
#include "lrcore/gradients.hpp"
#include "register.hpp"

namespace lrcore::python {
namespace {

using namespace pybind11::literals;

/// The checked arrays of one call, split by element type.
struct Gradients {
    std::vector<float*> float32;
    std::vector<std::size_t> float32_sizes;
    std::vector<double*> float64;
    std::vector<std::size_t> float64_sizes;
    std::vector<py::object> alive;  // keeps every array referenced while the GIL is released
};

Gradients gather(py::handle object, bool writeable) {
    if (!py::isinstance<py::sequence>(object) || py::isinstance<py::str>(object) ||
        py::isinstance<py::array>(object)) {
        throw py::type_error(std::string("grads must be a list of arrays, got ") + Py_TYPE(object.ptr())->tp_name);
    }
    const auto list = py::reinterpret_borrow<py::sequence>(object);
    const std::size_t count = py::len(list);
    Gradients gradients;
    std::vector<Region> regions;
    for (std::size_t i = 0; i < count; ++i) {
        py::object item = list[i];
        if (item.is_none()) continue;
        const ArrayView view = check_float_array(item, "grads", i, writeable);
        if (view.type == ElementType::float32) {
            gradients.float32.push_back(static_cast<float*>(view.data));
            gradients.float32_sizes.push_back(view.size);
        } else {
            gradients.float64.push_back(static_cast<double*>(view.data));
            gradients.float64_sizes.push_back(view.size);
        }
        regions.push_back(region_of(view, "grads", i, writeable));
        gradients.alive.push_back(std::move(item));
    }
    // Scaling the same memory twice would scale it twice.
    if (writeable) check_no_overlap(regions);
    return gradients;
}

double norm_type_value(double norm_type) {
    if (!(norm_type > 0.0)) {
        throw py::value_error("norm_type must be > 0 or inf, got " + std::to_string(norm_type));
    }
    return norm_type;
}

/// The norm of all arrays as one vector; call without the GIL.
double total_norm(const Gradients& g, double norm_type) {
    return global_norm(g.float32.data(), g.float32_sizes.data(), g.float32.size(), g.float64.data(),
                       g.float64_sizes.data(), g.float64.size(), norm_type);
}

bool all_finite_binding(py::handle grads) {
    const Gradients g = gather(grads, false);
    py::gil_scoped_release release;
    return all_finite(g.float32.data(), g.float32_sizes.data(), g.float32.size()) &&
           all_finite(g.float64.data(), g.float64_sizes.data(), g.float64.size());
}

double global_norm_binding(py::handle grads, double norm_type) {
    norm_type_value(norm_type);
    const Gradients g = gather(grads, false);
    py::gil_scoped_release release;
    return total_norm(g, norm_type);
}

double clip_grad_norm_binding(py::handle grads, double max_norm, double norm_type, bool error_if_nonfinite) {
    norm_type_value(norm_type);
    if (!(max_norm >= 0.0)) throw py::value_error("max_norm must be >= 0, got " + std::to_string(max_norm));
    const Gradients g = gather(grads, true);
    double norm = 0.0;
    {
        py::gil_scoped_release release;
        norm = total_norm(g, norm_type);
    }
    if (!std::isfinite(norm)) {
        if (error_if_nonfinite) {
            throw std::runtime_error("the total norm of order " + std::to_string(norm_type) +
                                  " of the gradients is non-finite (" + std::to_string(norm) +
                                  "), so they cannot be clipped; the gradients are unchanged");
        }
        return norm;
    }
    const double coefficient = clip_coefficient(norm, max_norm);
    if (coefficient < 1.0) {
        py::gil_scoped_release release;
        scale(g.float32.data(), g.float32_sizes.data(), g.float32.size(), coefficient);
        scale(g.float64.data(), g.float64_sizes.data(), g.float64.size(), coefficient);
    }
    return norm;
}

void clip_grad_value_binding(py::handle grads, double clip_value) {
    if (!(clip_value >= 0.0)) {
        throw py::value_error("clip_value must be a number >= 0, got " + py::repr(py::float_(clip_value)).cast<std::string>());
    }
    const Gradients g = gather(grads, true);
    py::gil_scoped_release release;
    clamp(g.float32.data(), g.float32_sizes.data(), g.float32.size(), clip_value);
    clamp(g.float64.data(), g.float64_sizes.data(), g.float64.size(), clip_value);
}

/// A copy of a std::vector<double> as a new 1-D float64 numpy array.
py::array_t<double> to_array(const std::vector<double>& values) {
    py::array_t<double> array(static_cast<py::ssize_t>(values.size()));
    std::copy(values.begin(), values.end(), array.mutable_data());
    return array;
}

py::tuple norm_partials_binding(py::handle grads, double norm_type) {
    norm_type_value(norm_type);
    const Gradients g = gather(grads, false);
    std::vector<double> float32_partials;
    std::vector<double> float64_partials;
    {
        py::gil_scoped_release release;
        norm_partials(g.float32.data(), g.float32_sizes.data(), g.float32.size(), norm_type, float32_partials);
        norm_partials(g.float64.data(), g.float64_sizes.data(), g.float64.size(), norm_type, float64_partials);
    }
    return py::make_tuple(to_array(float32_partials), to_array(float64_partials));
}

/// A 1-D float64 array's data and length (C-contiguous, native order), checked.
std::pair<const double*, std::size_t> partials_of(py::handle object, const char* name) {
    if (!py::isinstance<py::array_t<double>>(object)) {
        throw py::type_error(std::string(name) + " must be a 1-D float64 numpy array");
    }
    const auto array = py::reinterpret_borrow<py::array>(object);
    if (array.ndim() != 1 || !array.dtype().is(py::dtype::of<double>()) ||
        !(array.flags() & py::array::c_style)) {
        throw py::type_error(std::string(name) + " must be a 1-D, contiguous float64 numpy array");
    }
    return {static_cast<const double*>(array.data()), static_cast<std::size_t>(array.shape(0))};
}

double norm_from_partials_binding(py::handle float32_partials, py::handle float64_partials, double norm_type) {
    norm_type_value(norm_type);
    const auto [f32, f32_count] = partials_of(float32_partials, "float32_partials");
    const auto [f64, f64_count] = partials_of(float64_partials, "float64_partials");
    return norm_from_partials(f32, f32_count, f64, f64_count, norm_type);
}

}  // namespace

void register_gradients(py::module_ m) {
    m.def("clip_grad_value", &clip_grad_value_binding, "grads"_a, "clip_value"_a,
          "Clamps every element of every array to [-clip_value, clip_value], in place.");
    m.def("all_finite", &all_finite_binding, "grads"_a,
          "True when no element of any array in the list is NaN or Inf (None entries are skipped).");
    m.def("global_norm", &global_norm_binding, "grads"_a, "norm_type"_a = 2.0,
          "The norm of all elements of all arrays taken as one vector (norm_type > 0 or inf).");
    m.def("clip_grad_norm", &clip_grad_norm_binding, "grads"_a, "max_norm"_a, "norm_type"_a = 2.0,
          "error_if_nonfinite"_a = false,
          "Scales the arrays in place by max_norm / (total_norm + 1e-6) when that is < 1; returns total_norm.");
    m.def("norm_partials", &norm_partials_binding, "grads"_a, "norm_type"_a = 2.0,
          "Each 64 KiB chunk's contribution to global_norm (sum of |x|^p, or max |x| for inf), in chunk order: "
          "a tuple (float32 partials, float64 partials) of float64 arrays.");
    m.def("norm_from_partials", &norm_from_partials_binding, "float32_partials"_a, "float64_partials"_a,
          "norm_type"_a = 2.0,
          "The norm from every chunk's partial, combined as global_norm combines them (bitwise the same).");
    m.def("clip_coefficient", &clip_coefficient, "total_norm"_a, "max_norm"_a,
          "The factor clip_grad_norm scales by: max_norm / (total_norm + 1e-6) when that is < 1, else 1 "
          "(also 1 when total_norm is not finite).");
}

}  // namespace lrcore::python
