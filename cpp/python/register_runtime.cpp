// Bindings of the runtime controls: kernel variant, threads, denormal mode.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "lrcore/runtime.hpp"
#include "register.hpp"

namespace lrcore::python {

void register_runtime(pybind11::module_& m) {
    namespace py = pybind11;
    using namespace pybind11::literals;
    m.def("isa", &active_isa, "Name of the kernel variant in use (chosen on first use; LRCORE_ISA forces one).");
    m.def("available_isas", &available_isas, "Kernel variants this CPU can run, best first.");
    m.def("compiled_isas", &compiled_isas, "Kernel variants compiled into this build.");
    m.def("set_isa", &set_isa, "name"_a, "Use the named kernel variant from now on.");
    m.def("get_num_threads", &get_num_threads, "Threads a step may use (the caller included).");
    m.def("set_num_threads", &set_num_threads, "count"_a, "Set the number of threads a step may use (>= 1).");
    m.def("get_flush_denormals", &get_flush_denormals, "Whether kernels flush denormals to zero.");
    m.def("set_flush_denormals", &set_flush_denormals, "enabled"_a,
          "Flush denormal inputs and results to zero inside the kernels (x86 FTZ/DAZ).");
}

}  // namespace lrcore::python
