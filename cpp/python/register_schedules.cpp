// Bindings of the closed-form schedules in lrcore/schedules.hpp.
//
// Each value type becomes a class of lrcore._core.schedules with a keyword
// constructor, read-only fields and __call__(t). Argument validation lives in
// the public Python classes (lrcore.schedules); only t is checked here,
// because a negative step is meaningless for every schedule.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lrcore/schedules.hpp"
#include "register.hpp"

namespace lrcore::python {

namespace {

namespace py = pybind11;
using namespace pybind11::literals;
namespace sched = lrcore::schedules;

// Defines the class with __call__(t) -> float; the caller adds init and fields.
template <class Schedule>
py::class_<Schedule> bind_schedule(py::module_& m, const char* name, const char* doc) {
    py::class_<Schedule> cls(m, name, doc);
    cls.def(
        "__call__",
        [](const Schedule& schedule, std::int64_t t) {
            if (t < 0) {
                throw py::value_error("t must be >= 0 (the number of steps taken), got " + std::to_string(t));
            }
            return schedule(t);
        },
        "t"_a, "Value at step t (t = number of steps already taken).");
    return cls;
}

sched::CyclicWave make_wave(double step_size_up, double step_size_down, sched::CyclicMode mode, double gamma) {
    return sched::CyclicWave{step_size_up, step_size_down, mode, gamma};
}

sched::OneCyclePhases make_phases(std::int64_t total_steps, double pct_start, sched::AnnealStrategy anneal_strategy,
                                  bool three_phase) {
    return sched::OneCyclePhases{total_steps, pct_start, anneal_strategy, three_phase};
}

}  // namespace

void register_schedules(py::module_ m) {
    py::enum_<sched::CyclicMode>(m, "CyclicMode", "Amplitude policy of Cyclic.")
        .value("triangular", sched::CyclicMode::triangular)
        .value("triangular2", sched::CyclicMode::triangular2)
        .value("exp_range", sched::CyclicMode::exp_range);
    py::enum_<sched::AnnealStrategy>(m, "AnnealStrategy", "Interpolation between OneCycle phase endpoints.")
        .value("cos", sched::AnnealStrategy::cosine)
        .value("linear", sched::AnnealStrategy::linear);

    bind_schedule<sched::Constant>(m, "Constant", "lr")
        .def(py::init([](double lr) { return sched::Constant{lr}; }), "lr"_a)
        .def_readonly("lr", &sched::Constant::lr);

    bind_schedule<sched::StepDecay>(m, "StepDecay", "lr * gamma^floor(t / step_size)")
        .def(py::init([](double lr, std::int64_t step_size, double gamma) {
                 return sched::StepDecay{lr, step_size, gamma};
             }),
             "lr"_a, "step_size"_a, "gamma"_a)
        .def_readonly("lr", &sched::StepDecay::lr)
        .def_readonly("step_size", &sched::StepDecay::step_size)
        .def_readonly("gamma", &sched::StepDecay::gamma);

    bind_schedule<sched::MultiStepDecay>(m, "MultiStepDecay", "lr * gamma^(number of milestones <= t)")
        .def(py::init([](double lr, std::vector<std::int64_t> milestones, double gamma) {
                 return sched::MultiStepDecay{lr, std::move(milestones), gamma};
             }),
             "lr"_a, "milestones"_a, "gamma"_a)
        .def_readonly("lr", &sched::MultiStepDecay::lr)
        .def_readonly("milestones", &sched::MultiStepDecay::milestones)
        .def_readonly("gamma", &sched::MultiStepDecay::gamma);

    bind_schedule<sched::ExponentialDecay>(m, "ExponentialDecay", "lr * gamma^(t / decay_steps)")
        .def(py::init([](double lr, double gamma, std::int64_t decay_steps, bool staircase) {
                 return sched::ExponentialDecay{lr, gamma, decay_steps, staircase};
             }),
             "lr"_a, "gamma"_a, "decay_steps"_a, "staircase"_a)
        .def_readonly("lr", &sched::ExponentialDecay::lr)
        .def_readonly("gamma", &sched::ExponentialDecay::gamma)
        .def_readonly("decay_steps", &sched::ExponentialDecay::decay_steps)
        .def_readonly("staircase", &sched::ExponentialDecay::staircase);

    bind_schedule<sched::InverseTimeDecay>(m, "InverseTimeDecay", "lr / (1 + decay_rate * t / decay_steps)")
        .def(py::init([](double lr, double decay_rate, std::int64_t decay_steps, bool staircase) {
                 return sched::InverseTimeDecay{lr, decay_rate, decay_steps, staircase};
             }),
             "lr"_a, "decay_rate"_a, "decay_steps"_a, "staircase"_a)
        .def_readonly("lr", &sched::InverseTimeDecay::lr)
        .def_readonly("decay_rate", &sched::InverseTimeDecay::decay_rate)
        .def_readonly("decay_steps", &sched::InverseTimeDecay::decay_steps)
        .def_readonly("staircase", &sched::InverseTimeDecay::staircase);

    bind_schedule<sched::PolynomialDecay>(m, "PolynomialDecay",
                                          "(lr - end_lr) * (1 - min(t, total_steps) / total_steps)^power + end_lr")
        .def(py::init([](double lr, std::int64_t total_steps, double power, double end_lr) {
                 return sched::PolynomialDecay{lr, total_steps, power, end_lr};
             }),
             "lr"_a, "total_steps"_a, "power"_a, "end_lr"_a)
        .def_readonly("lr", &sched::PolynomialDecay::lr)
        .def_readonly("total_steps", &sched::PolynomialDecay::total_steps)
        .def_readonly("power", &sched::PolynomialDecay::power)
        .def_readonly("end_lr", &sched::PolynomialDecay::end_lr);

    bind_schedule<sched::Linear>(m, "Linear",
                                 "lr * (start_factor + (end_factor - start_factor) * min(t, total_steps) / total_steps)")
        .def(py::init([](double lr, double start_factor, double end_factor, std::int64_t total_steps) {
                 return sched::Linear{lr, start_factor, end_factor, total_steps};
             }),
             "lr"_a, "start_factor"_a, "end_factor"_a, "total_steps"_a)
        .def_readonly("lr", &sched::Linear::lr)
        .def_readonly("start_factor", &sched::Linear::start_factor)
        .def_readonly("end_factor", &sched::Linear::end_factor)
        .def_readonly("total_steps", &sched::Linear::total_steps);

    bind_schedule<sched::CosineAnnealing>(m, "CosineAnnealing",
                                          "eta_min + (lr - eta_min) * (1 + cos(pi * t / t_max)) / 2")
        .def(py::init([](double lr, std::int64_t t_max, double eta_min) {
                 return sched::CosineAnnealing{lr, t_max, eta_min};
             }),
             "lr"_a, "t_max"_a, "eta_min"_a)
        .def_readonly("lr", &sched::CosineAnnealing::lr)
        .def_readonly("t_max", &sched::CosineAnnealing::t_max)
        .def_readonly("eta_min", &sched::CosineAnnealing::eta_min);

    bind_schedule<sched::CosineAnnealingWarmRestarts>(m, "CosineAnnealingWarmRestarts",
                                                      "Cosine annealing restarted every t_0 * t_mult^i steps")
        .def(py::init([](double lr, std::int64_t t_0, std::int64_t t_mult, double eta_min) {
                 return sched::CosineAnnealingWarmRestarts{lr, t_0, t_mult, eta_min};
             }),
             "lr"_a, "t_0"_a, "t_mult"_a, "eta_min"_a)
        .def_readonly("lr", &sched::CosineAnnealingWarmRestarts::lr)
        .def_readonly("t_0", &sched::CosineAnnealingWarmRestarts::t_0)
        .def_readonly("t_mult", &sched::CosineAnnealingWarmRestarts::t_mult)
        .def_readonly("eta_min", &sched::CosineAnnealingWarmRestarts::eta_min);

    bind_schedule<sched::Cyclic>(m, "Cyclic", "Triangular wave from base_lr towards max_lr")
        .def(py::init([](double base_lr, double max_lr, double step_size_up, double step_size_down,
                         sched::CyclicMode mode, double gamma) {
                 return sched::Cyclic{base_lr, max_lr, make_wave(step_size_up, step_size_down, mode, gamma)};
             }),
             "base_lr"_a, "max_lr"_a, "step_size_up"_a, "step_size_down"_a, "mode"_a, "gamma"_a)
        .def_readonly("base_lr", &sched::Cyclic::base_lr)
        .def_readonly("max_lr", &sched::Cyclic::max_lr);

    bind_schedule<sched::CyclicMomentum>(m, "CyclicMomentum",
                                         "Triangular wave from max_momentum towards base_momentum")
        .def(py::init([](double base_momentum, double max_momentum, double step_size_up, double step_size_down,
                         sched::CyclicMode mode, double gamma) {
                 return sched::CyclicMomentum{base_momentum, max_momentum,
                                              make_wave(step_size_up, step_size_down, mode, gamma)};
             }),
             "base_momentum"_a, "max_momentum"_a, "step_size_up"_a, "step_size_down"_a, "mode"_a, "gamma"_a)
        .def_readonly("base_momentum", &sched::CyclicMomentum::base_momentum)
        .def_readonly("max_momentum", &sched::CyclicMomentum::max_momentum);

    bind_schedule<sched::OneCycle>(m, "OneCycle", "The 1cycle policy: initial_lr -> max_lr -> min_lr")
        .def(py::init([](double max_lr, std::int64_t total_steps, double pct_start,
                         sched::AnnealStrategy anneal_strategy, double div_factor, double final_div_factor,
                         bool three_phase) {
                 return sched::OneCycle{max_lr, make_phases(total_steps, pct_start, anneal_strategy, three_phase),
                                        div_factor, final_div_factor};
             }),
             "max_lr"_a, "total_steps"_a, "pct_start"_a, "anneal_strategy"_a, "div_factor"_a, "final_div_factor"_a,
             "three_phase"_a)
        .def_property_readonly("initial_lr", &sched::OneCycle::initial_lr)
        .def_property_readonly("min_lr", &sched::OneCycle::min_lr);

    bind_schedule<sched::OneCycleMomentum>(m, "OneCycleMomentum",
                                           "The 1cycle momentum: max_momentum -> base_momentum -> max_momentum")
        .def(py::init([](double base_momentum, double max_momentum, std::int64_t total_steps, double pct_start,
                         sched::AnnealStrategy anneal_strategy, bool three_phase) {
                 return sched::OneCycleMomentum{make_phases(total_steps, pct_start, anneal_strategy, three_phase),
                                                base_momentum, max_momentum};
             }),
             "base_momentum"_a, "max_momentum"_a, "total_steps"_a, "pct_start"_a, "anneal_strategy"_a,
             "three_phase"_a);

    bind_schedule<sched::InverseSqrt>(m, "InverseSqrt",
                                      "lr * t / warmup_steps, then lr * sqrt(warmup_steps / t)")
        .def(py::init([](double lr, std::int64_t warmup_steps) { return sched::InverseSqrt{lr, warmup_steps}; }),
             "lr"_a, "warmup_steps"_a)
        .def_readonly("lr", &sched::InverseSqrt::lr)
        .def_readonly("warmup_steps", &sched::InverseSqrt::warmup_steps);
}

}  // namespace lrcore::python
