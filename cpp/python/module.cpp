// The compiled module lrcore._core: declares submodules and calls one
// register_* function per bound family. No logic lives here.
#include <pybind11/pybind11.h>

#include "register.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "lrcore compiled core: SIMD optimizer kernels, runtime controls and schedule closed forms";
    lrcore::python::register_runtime(m);
    lrcore::python::register_optimizers(m);
    lrcore::python::register_schedules(m.def_submodule("schedules", "Closed-form learning-rate schedules"));
    lrcore::python::register_gradients(m.def_submodule("gradients", "Whole-gradient passes: non-finite check, global norm, clipping"));
    lrcore::python::register_bench(m.def_submodule("bench", "Benchmark support: the memory roof kernel"));
}
