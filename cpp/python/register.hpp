// One registration function per bound family, each in its own translation unit.
#pragma once

#include <pybind11/pybind11.h>

namespace lrcore::python {

void register_runtime(pybind11::module_& m);
void register_optimizers(pybind11::module_& m);
void register_schedules(pybind11::module_ m);
void register_bench(pybind11::module_ m);
void register_gradients(pybind11::module_ m);

}  // namespace lrcore::python
