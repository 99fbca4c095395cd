// Each update rule described once, as data: its numeric hyperparameters
// (config field and the range it must lie in), its flags, its state arrays
// (tensor field, and the configurations that need it), and whether its
// tensors carry a step number.
//
// Everything that handles a rule generically reads this: validate() in
// optimizers.cpp, the Python binding (cpp/python/register_optimizers.cpp),
// which parses hyperparameters by these names, checks and attaches these
// state arrays, and exports the description to Python, where the optimizer
// classes, the functional layer and the documentation are derived from it.
//
// A new element-wise rule adds its config and tensor types (config.hpp,
// tensors.hpp), its constants and kernel, one Rule<> specialisation here and
// one line in for_each_rule().
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <type_traits>
#include <type_traits>

#include "kernels/step_constants.hpp"
#include "kernels/step_constants.hpp"
#include "lrcore/config.hpp"
#include "lrcore/tensors.hpp"

namespace lrcore::rules {

inline std::string format_value(double value);  // defined below, used by the rules' own checks

/// The range a numeric hyperparameter must lie in. Non-finite values are
/// always refused.
/// `non_negative_or_none` also accepts NaN, which stands for Python's None
/// (a default the kernel fills in, e.g. Adafactor's eps1); the binding maps
/// None to NaN and refuses an explicit NaN.
enum class Range {
    finite, non_negative, unit_interval, closed_unit_interval, open_unit_interval, above_one,
    non_positive, at_least_one, non_negative_or_none
};

/// How error messages and the documentation state a range.
constexpr const char* describe(Range range) {
    switch (range) {
        case Range::finite: return "a finite number";
        case Range::non_negative: return "a finite number >= 0";
        case Range::unit_interval: return "in [0, 1)";
        case Range::non_positive: return "a finite number <= 0";
        case Range::at_least_one: return "a finite number >= 1";
        case Range::non_negative_or_none: return "a finite number >= 0 or None";
        case Range::closed_unit_interval: return "in [0, 1]";
        case Range::open_unit_interval: return "in (0, 1)";
        case Range::above_one: return "a finite number > 1";
    }
    return "";
}

inline bool within(Range range, double value) {
    switch (range) {
        case Range::finite: return std::isfinite(value);
        case Range::non_negative: return std::isfinite(value) && value >= 0.0;
        case Range::unit_interval: return value >= 0.0 && value < 1.0;
        case Range::non_positive: return std::isfinite(value) && value <= 0.0;
        case Range::at_least_one: return std::isfinite(value) && value >= 1.0;
        case Range::non_negative_or_none: return std::isnan(value) || (std::isfinite(value) && value >= 0.0);
        case Range::closed_unit_interval: return value >= 0.0 && value <= 1.0;
        case Range::open_unit_interval: return value > 0.0 && value < 1.0;
        case Range::above_one: return std::isfinite(value) && value > 1.0;
    }
    return false;
}

/// A numeric hyperparameter. `argument` names the element of the torch
/// argument it comes from when that has another name (Rprop's "etas[0]" is
/// etaminus), so that a range error names what the user passed; null when
/// the names agree.
template <class Config>
struct Number {
    const char* name;
    double Config::*field;
    Range range;
    const char* argument = nullptr;
};

template <class Config>
struct Flag {
    const char* name;
    bool Config::*field;
};

/// The shape of a state array, from its parameter's shape p (torch's layouts):
/// like p, p with its last dimension 1 (statistics of each row of the last two
/// dimensions), or p with its second-to-last dimension 1 (of each column).
enum class StateShape { like_param, rows, columns };

/// Which parameters have a state array, by their number of dimensions.
enum class StateDims { any, matrix /* 2 or more */, vector /* 0 or 1 */ };

constexpr const char* describe(StateShape shape) {
    switch (shape) {
        case StateShape::like_param: return "param";
        case StateShape::rows: return "rows";
        case StateShape::columns: return "columns";
    }
    return "";
}

constexpr const char* describe(StateDims dims) {
    switch (dims) {
        case StateDims::any: return "any";
        case StateDims::matrix: return "matrix";
        case StateDims::vector: return "vector";
    }
    return "";
}

/// Whether a rule's tensors carry a matrix shape (fields `rows` and `columns`,
/// both 0 for a vector): then state arrays may be shaped by it.
template <class Tensor, class = void>
struct HasMatrixShape : std::false_type {};
template <class Tensor>
struct HasMatrixShape<Tensor, std::void_t<decltype(Tensor::rows), decltype(Tensor::columns)>> : std::true_type {};

template <class Tensor>
bool is_matrix(const Tensor& tensor) {
    if constexpr (HasMatrixShape<Tensor>::value) {
        return tensor.columns != 0;
    } else {
        (void)tensor;
        return false;
    }
}

/// One state array of a tensor. `needed` says for which configurations it
/// is read and written (always when null; `needed_when` says so in words).
/// A state array with `kernel_initialized` set is written by the kernel on its
/// first use instead of read (SGD's momentum buffer starts as the gradient);
/// otherwise a new one starts at zero. `initialized_from` says what the
/// kernel starts it from: "gradient" (SGD's momentum buffer) or "param"
/// (the schedule-free z). `shape` and `dims` say what it looks like and
/// which parameters have one (by default: shaped like the parameter, for
/// every parameter).
template <class Config, template <class> class Tensor>
struct State {
    const char* name;          // as the optimizer's state_dict names it, e.g. "exp_avg"
    const char* list_name;     // as the functional layer's argument names the list, e.g. "exp_avgs"
    const char* needed_when;  // "" when always
    bool (*needed)(const Config&);
    float* Tensor<float>::*float32_field;
    double* Tensor<double>::*float64_field;
    bool Tensor<float>::*float32_initialize = nullptr;
    bool Tensor<double>::*float64_initialize = nullptr;
    StateShape shape = StateShape::like_param;
    StateDims dims = StateDims::any;
    const char* initialized_from = "gradient";
    // One value per row of the parameter (shape param.shape[:1]) instead of one
    // per element: row-wise AdaGrad's accumulator.
    bool per_row = false;

    bool needed_by(const Config& config) const { return needed == nullptr || needed(config); }
    /// Whether a parameter with (matrix) or without (vector) a matrix shape has this state.
    bool exists_for(bool matrix) const { return dims == StateDims::any || (dims == StateDims::matrix) == matrix; }
    /// Its element count for a tensor of `size` elements whose last two dimensions are rows x columns.
    std::size_t elements(std::size_t size, std::size_t rows, std::size_t columns) const {
        switch (shape) {
            case StateShape::rows: return columns == 0 ? 0 : size / columns;
            case StateShape::columns: return rows == 0 ? 0 : size / rows;
            case StateShape::like_param: break;
        }
        return size;
    }
    template <class T>
    T* Tensor<T>::*field() const {
        if constexpr (sizeof(T) == sizeof(float)) {
            return float32_field;
        } else {
            return float64_field;
        }
    }
    template <class T>
    bool Tensor<T>::*initialize() const {
        if constexpr (sizeof(T) == sizeof(float)) {
            return float32_initialize;
        } else {
            return float64_initialize;
        }
    }
};

/// One per-tensor scalar state: a double per tensor (torch keeps it as a 0-d
/// tensor in the parameter's state, e.g. NAdam's mu_product). It starts at
/// `initial`. A step's per-step constants read its current value; after every
/// kernel of the step has run, the step driver replaces it with
/// next(config, step, value), `step` being the tensor's step number of that
/// update (so a step that fails its checks changes no scalar either).
/// A rule lists them in `scalars`; rules without one leave it out (see
/// scalars_of()). Scalar states need per-tensor step numbers (has_step).
template <class Config, template <class> class Tensor>
struct Scalar {
    const char* name;          // as the optimizer's state_dict names it, e.g. "mu_product"
    const char* list_name;     // as the functional layer's argument names the list, e.g. "mu_products"
    double initial;
    double (*next)(const Config&, std::int64_t step, double value);
    double* Tensor<float>::*float32_field;
    double* Tensor<double>::*float64_field;

    template <class T>
    double* Tensor<T>::*field() const {
        if constexpr (sizeof(T) == sizeof(float)) {
            return float32_field;
        } else {
            return float64_field;
        }
    }
};

template <class Config>
struct Rule;

template <>
struct Rule<SgdConfig> {
    using Config = SgdConfig;
    static constexpr const char* name = "sgd";
    template <class T>
    using Tensor = SgdTensor<T>;
    static constexpr bool has_step = false;
    static constexpr std::array<Number<SgdConfig>, 4> numbers{{
        {"lr", &SgdConfig::lr, Range::non_negative},
        {"momentum", &SgdConfig::momentum, Range::non_negative},
        {"dampening", &SgdConfig::dampening, Range::finite},
        {"weight_decay", &SgdConfig::weight_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<SgdConfig>, 2> flags{{
        {"nesterov", &SgdConfig::nesterov},
        {"maximize", &SgdConfig::maximize},
    }};
    static constexpr std::array<State<SgdConfig, SgdTensor>, 1> states{{
        {"momentum_buffer", "momentum_buffers", "momentum != 0", [](const SgdConfig& c) { return c.momentum != 0.0; },
         &SgdTensor<float>::momentum_buffer, &SgdTensor<double>::momentum_buffer,
         &SgdTensor<float>::initialize_momentum_buffer, &SgdTensor<double>::initialize_momentum_buffer},
    }};
    static void check(const SgdConfig& c) {
        if (c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0)) {
            throw std::invalid_argument("nesterov requires momentum > 0 and dampening == 0");
        }
    }
};

template <>
struct Rule<AdagradConfig> {
    using Config = AdagradConfig;
    static constexpr const char* name = "adagrad";
    template <class T>
    using Tensor = AdagradTensor<T>;
    static constexpr bool has_step = true;
    static constexpr std::array<Number<AdagradConfig>, 4> numbers{{
        {"lr", &AdagradConfig::lr, Range::non_negative},
        {"lr_decay", &AdagradConfig::lr_decay, Range::non_negative},
        {"weight_decay", &AdagradConfig::weight_decay, Range::non_negative},
        {"eps", &AdagradConfig::eps, Range::non_negative},
    }};
    static constexpr std::array<Flag<AdagradConfig>, 1> flags{{{"maximize", &AdagradConfig::maximize}}};
    static constexpr std::array<State<AdagradConfig, AdagradTensor>, 1> states{{
        {"sum", "state_sums", "", nullptr, &AdagradTensor<float>::sum, &AdagradTensor<double>::sum},
    }};
    static void check(const AdagradConfig&) {}
};

template <>
struct Rule<RmspropConfig> {
    using Config = RmspropConfig;
    static constexpr const char* name = "rmsprop";
    template <class T>
    using Tensor = RmspropTensor<T>;
    static constexpr bool has_step = false;
    static constexpr std::array<Number<RmspropConfig>, 5> numbers{{
        {"lr", &RmspropConfig::lr, Range::non_negative},
        {"alpha", &RmspropConfig::alpha, Range::non_negative},
        {"eps", &RmspropConfig::eps, Range::non_negative},
        {"weight_decay", &RmspropConfig::weight_decay, Range::non_negative},
        {"momentum", &RmspropConfig::momentum, Range::non_negative},
    }};
    static constexpr std::array<Flag<RmspropConfig>, 2> flags{{
        {"centered", &RmspropConfig::centered},
        {"maximize", &RmspropConfig::maximize},
    }};
    static constexpr std::array<State<RmspropConfig, RmspropTensor>, 3> states{{
        {"square_avg", "square_avgs", "", nullptr, &RmspropTensor<float>::square_avg, &RmspropTensor<double>::square_avg},
        {"grad_avg", "grad_avgs", "centered", [](const RmspropConfig& c) { return c.centered; },
         &RmspropTensor<float>::grad_avg, &RmspropTensor<double>::grad_avg},
        {"momentum_buffer", "momentum_buffers", "momentum > 0", [](const RmspropConfig& c) { return c.momentum > 0.0; },
         &RmspropTensor<float>::momentum_buffer, &RmspropTensor<double>::momentum_buffer},
    }};
    static void check(const RmspropConfig&) {}
};

template <>
struct Rule<AdamConfig> {
    using Config = AdamConfig;
    static constexpr const char* name = "adam";
    template <class T>
    using Tensor = AdamTensor<T>;
    static constexpr bool has_step = true;
    static constexpr std::array<Number<AdamConfig>, 5> numbers{{
        {"lr", &AdamConfig::lr, Range::non_negative},
        {"beta1", &AdamConfig::beta1, Range::unit_interval},
        {"beta2", &AdamConfig::beta2, Range::unit_interval},
        {"eps", &AdamConfig::eps, Range::non_negative},
        {"weight_decay", &AdamConfig::weight_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<AdamConfig>, 3> flags{{
        {"amsgrad", &AdamConfig::amsgrad},
        {"maximize", &AdamConfig::maximize},
        {"decoupled_weight_decay", &AdamConfig::decoupled_weight_decay},
    }};
    static constexpr std::array<State<AdamConfig, AdamTensor>, 3> states{{
        {"exp_avg", "exp_avgs", "", nullptr, &AdamTensor<float>::exp_avg, &AdamTensor<double>::exp_avg},
        {"exp_avg_sq", "exp_avg_sqs", "", nullptr, &AdamTensor<float>::exp_avg_sq, &AdamTensor<double>::exp_avg_sq},
        {"max_exp_avg_sq", "max_exp_avg_sqs", "amsgrad", [](const AdamConfig& c) { return c.amsgrad; },
         &AdamTensor<float>::max_exp_avg_sq, &AdamTensor<double>::max_exp_avg_sq},
    }};
    static void check(const AdamConfig&) {}
};

template <>
struct Rule<AdafactorConfig> {
    using Config = AdafactorConfig;
    static constexpr const char* name = "adafactor";
    template <class T>
    using Tensor = AdafactorTensor<T>;
    static constexpr bool has_step = true;
    static constexpr std::array<Number<AdafactorConfig>, 6> numbers{{
        {"lr", &AdafactorConfig::lr, Range::non_negative},
        {"beta2_decay", &AdafactorConfig::beta2_decay, Range::non_positive},
        {"eps1", &AdafactorConfig::eps1, Range::non_negative_or_none},
        {"eps2", &AdafactorConfig::eps2, Range::non_negative},
        {"d", &AdafactorConfig::d, Range::at_least_one},
        {"weight_decay", &AdafactorConfig::weight_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<AdafactorConfig>, 1> flags{{{"maximize", &AdafactorConfig::maximize}}};
    static constexpr std::array<State<AdafactorConfig, AdafactorTensor>, 3> states{{
        {"row_var", "row_vars", "", nullptr, &AdafactorTensor<float>::row_var, &AdafactorTensor<double>::row_var,
         nullptr, nullptr, StateShape::rows, StateDims::matrix},
        {"col_var", "col_vars", "", nullptr, &AdafactorTensor<float>::col_var, &AdafactorTensor<double>::col_var,
         nullptr, nullptr, StateShape::columns, StateDims::matrix},
        {"variance", "variances", "", nullptr, &AdafactorTensor<float>::variance,
         &AdafactorTensor<double>::variance, nullptr, nullptr, StateShape::like_param, StateDims::vector},
    }};
    static void check(const AdafactorConfig&) {}
};

template <>
struct Rule<NadamConfig> {
    using Config = NadamConfig;
    static constexpr const char* name = "nadam";
    template <class T>
    using Tensor = NadamTensor<T>;
    static constexpr bool has_step = true;
    static constexpr std::array<Number<NadamConfig>, 6> numbers{{
        {"lr", &NadamConfig::lr, Range::non_negative},
        {"beta1", &NadamConfig::beta1, Range::unit_interval},
        {"beta2", &NadamConfig::beta2, Range::unit_interval},
        {"eps", &NadamConfig::eps, Range::non_negative},
        {"weight_decay", &NadamConfig::weight_decay, Range::non_negative},
        {"momentum_decay", &NadamConfig::momentum_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<NadamConfig>, 2> flags{{
        {"decoupled_weight_decay", &NadamConfig::decoupled_weight_decay},
        {"maximize", &NadamConfig::maximize},
    }};
    static constexpr std::array<State<NadamConfig, NadamTensor>, 2> states{{
        {"exp_avg", "exp_avgs", "", nullptr, &NadamTensor<float>::exp_avg, &NadamTensor<double>::exp_avg},
        {"exp_avg_sq", "exp_avg_sqs", "", nullptr, &NadamTensor<float>::exp_avg_sq, &NadamTensor<double>::exp_avg_sq},
    }};
    static constexpr std::array<Scalar<NadamConfig, NadamTensor>, 1> scalars{{
        {"mu_product", "mu_products", 1.0,
         [](const NadamConfig& c, std::int64_t step, double value) { return value * kernels::nadam_momentum(c, step); },
         &NadamTensor<float>::mu_product, &NadamTensor<double>::mu_product},
    }};
    static void check(const NadamConfig&) {}
};

template <>
struct Rule<RadamConfig> {
    using Config = RadamConfig;
    static constexpr const char* name = "radam";
    template <class T>
    using Tensor = RadamTensor<T>;
    static constexpr bool has_step = true;
    static constexpr std::array<Number<RadamConfig>, 5> numbers{{
        {"lr", &RadamConfig::lr, Range::non_negative},
        {"beta1", &RadamConfig::beta1, Range::unit_interval},
        {"beta2", &RadamConfig::beta2, Range::unit_interval},
        {"eps", &RadamConfig::eps, Range::non_negative},
        {"weight_decay", &RadamConfig::weight_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<RadamConfig>, 2> flags{{
        {"decoupled_weight_decay", &RadamConfig::decoupled_weight_decay},
        {"maximize", &RadamConfig::maximize},
    }};
    static constexpr std::array<State<RadamConfig, RadamTensor>, 2> states{{
        {"exp_avg", "exp_avgs", "", nullptr, &RadamTensor<float>::exp_avg, &RadamTensor<double>::exp_avg},
        {"exp_avg_sq", "exp_avg_sqs", "", nullptr, &RadamTensor<float>::exp_avg_sq, &RadamTensor<double>::exp_avg_sq},
    }};
    static void check(const RadamConfig&) {}
};

template <>
struct Rule<AdamaxConfig> {
    using Config = AdamaxConfig;
    static constexpr const char* name = "adamax";
    template <class T>
    using Tensor = AdamaxTensor<T>;
    static constexpr bool has_step = true;
    static constexpr std::array<Number<AdamaxConfig>, 5> numbers{{
        {"lr", &AdamaxConfig::lr, Range::non_negative},
        {"beta1", &AdamaxConfig::beta1, Range::unit_interval},
        {"beta2", &AdamaxConfig::beta2, Range::unit_interval},
        {"eps", &AdamaxConfig::eps, Range::non_negative},
        {"weight_decay", &AdamaxConfig::weight_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<AdamaxConfig>, 1> flags{{{"maximize", &AdamaxConfig::maximize}}};
    static constexpr std::array<State<AdamaxConfig, AdamaxTensor>, 2> states{{
        {"exp_avg", "exp_avgs", "", nullptr, &AdamaxTensor<float>::exp_avg, &AdamaxTensor<double>::exp_avg},
        {"exp_inf", "exp_infs", "", nullptr, &AdamaxTensor<float>::exp_inf, &AdamaxTensor<double>::exp_inf},
    }};
    static void check(const AdamaxConfig&) {}
};

template <>
struct Rule<LionConfig> {
    using Config = LionConfig;
    static constexpr const char* name = "lion";
    template <class T>
    using Tensor = LionTensor<T>;
    static constexpr bool has_step = false;
    static constexpr std::array<Number<LionConfig>, 4> numbers{{
        {"lr", &LionConfig::lr, Range::non_negative},
        {"beta1", &LionConfig::beta1, Range::unit_interval},
        {"beta2", &LionConfig::beta2, Range::unit_interval},
        {"weight_decay", &LionConfig::weight_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<LionConfig>, 1> flags{{{"maximize", &LionConfig::maximize}}};
    static constexpr std::array<State<LionConfig, LionTensor>, 1> states{{
        {"exp_avg", "exp_avgs", "", nullptr, &LionTensor<float>::exp_avg, &LionTensor<double>::exp_avg},
    }};
    static void check(const LionConfig&) {}
};

/// A rule's scalar states: Rule::scalars, or none when the rule lists none.
template <class R, class = void>
struct ScalarsOf {
    static constexpr std::array<Scalar<typename R::Config, R::template Tensor>, 0> value{};
};
template <class R>
struct ScalarsOf<R, std::void_t<decltype(R::scalars)>> {
    static constexpr const auto& value = R::scalars;
};
template <class R>
constexpr const auto& scalars_of() {
    static_assert(ScalarsOf<R>::value.size() == 0 || R::has_step, "scalar states need per-tensor step numbers");
    return ScalarsOf<R>::value;
}

template <>
struct Rule<AdadeltaConfig> {
    using Config = AdadeltaConfig;
    static constexpr const char* name = "adadelta";
    template <class T>
    using Tensor = AdadeltaTensor<T>;
    static constexpr bool has_step = false;
    static constexpr std::array<Number<AdadeltaConfig>, 4> numbers{{
        {"lr", &AdadeltaConfig::lr, Range::non_negative},
        {"rho", &AdadeltaConfig::rho, Range::closed_unit_interval},
        {"eps", &AdadeltaConfig::eps, Range::non_negative},
        {"weight_decay", &AdadeltaConfig::weight_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<AdadeltaConfig>, 1> flags{{{"maximize", &AdadeltaConfig::maximize}}};
    static constexpr std::array<State<AdadeltaConfig, AdadeltaTensor>, 2> states{{
        {"square_avg", "square_avgs", "", nullptr, &AdadeltaTensor<float>::square_avg,
         &AdadeltaTensor<double>::square_avg},
        {"acc_delta", "acc_deltas", "", nullptr, &AdadeltaTensor<float>::acc_delta, &AdadeltaTensor<double>::acc_delta},
    }};
    static void check(const AdadeltaConfig&) {}
};

template <>
struct Rule<RpropConfig> {
    using Config = RpropConfig;
    static constexpr const char* name = "rprop";
    template <class T>
    using Tensor = RpropTensor<T>;
    static constexpr bool has_step = false;
    static constexpr std::array<Number<RpropConfig>, 5> numbers{{
        {"lr", &RpropConfig::lr, Range::non_negative},
        {"etaminus", &RpropConfig::etaminus, Range::open_unit_interval, "etas[0]"},
        {"etaplus", &RpropConfig::etaplus, Range::above_one, "etas[1]"},
        {"step_size_min", &RpropConfig::step_size_min, Range::non_negative, "step_sizes[0]"},
        {"step_size_max", &RpropConfig::step_size_max, Range::non_negative, "step_sizes[1]"},
    }};
    static constexpr std::array<Flag<RpropConfig>, 1> flags{{{"maximize", &RpropConfig::maximize}}};
    static constexpr std::array<State<RpropConfig, RpropTensor>, 2> states{{
        {"prev", "prevs", "", nullptr, &RpropTensor<float>::prev, &RpropTensor<double>::prev},
        {"step_size", "step_sizes", "", nullptr, &RpropTensor<float>::step_size, &RpropTensor<double>::step_size,
         &RpropTensor<float>::initialize_step_size, &RpropTensor<double>::initialize_step_size},
    }};
    // torch does not check step_sizes; an empty interval would clamp every
    // step size to step_size_max, which is never what was meant.
    static void check(const RpropConfig& c) {
        if (c.step_size_min > c.step_size_max) {
            throw std::invalid_argument("step_size_min must be <= step_size_max (step_sizes), got " +
                                        format_value(c.step_size_min) + " > " + format_value(c.step_size_max));
        }
    }
};

template <>
struct Rule<AsgdConfig> {
    using Config = AsgdConfig;
    static constexpr const char* name = "asgd";
    template <class T>
    using Tensor = AsgdTensor<T>;
    static constexpr bool has_step = true;
    // torch checks lr and weight_decay only; lambd < 0 would make 1 + lambd * lr * t
    // negative, and a fractional power of it has no real value.
    static constexpr std::array<Number<AsgdConfig>, 5> numbers{{
        {"lr", &AsgdConfig::lr, Range::non_negative},
        {"lambd", &AsgdConfig::lambd, Range::non_negative},
        {"alpha", &AsgdConfig::alpha, Range::finite},
        {"t0", &AsgdConfig::t0, Range::finite},
        {"weight_decay", &AsgdConfig::weight_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<AsgdConfig>, 1> flags{{{"maximize", &AsgdConfig::maximize}}};
    static constexpr std::array<State<AsgdConfig, AsgdTensor>, 1> states{{
        {"ax", "axs", "", nullptr, &AsgdTensor<float>::ax, &AsgdTensor<double>::ax},
    }};
    // Both start unset (NaN): the first step uses lr and 1, as torch creates them (AsgdConstants).
    static constexpr std::array<Scalar<AsgdConfig, AsgdTensor>, 2> scalars{{
        {"eta", "etas", std::numeric_limits<double>::quiet_NaN(),
         [](const AsgdConfig& c, std::int64_t step, double) { return kernels::asgd_next_eta(c, step); },
         &AsgdTensor<float>::eta, &AsgdTensor<double>::eta},
        {"mu", "mus", std::numeric_limits<double>::quiet_NaN(),
         [](const AsgdConfig& c, std::int64_t step, double) { return kernels::asgd_next_mu(c, step); },
         &AsgdTensor<float>::mu, &AsgdTensor<double>::mu},
    }};
    static void check(const AsgdConfig&) {}
};

inline std::string format_value(double value);  // below

/// What a scalar of a group's state holds (how Python stores and checks it).
enum class ScalarKind { count, number, flag };

constexpr const char* describe(ScalarKind kind) {
    switch (kind) {
        case ScalarKind::count: return "count";
        case ScalarKind::number: return "number";
        case ScalarKind::flag: return "flag";
    }
    return "";
}

/// One scalar of a rule's per-group state (rules with `GroupState`): state
/// that evolves with the steps of a parameter group rather than per element
/// or per tensor, e.g. the schedule-free step count and weight sum. Exactly
/// one of the three fields is set, by `kind`.
template <class GroupState>
struct GroupScalar {
    const char* name;
    ScalarKind kind;
    std::int64_t GroupState::*count = nullptr;
    double GroupState::*number = nullptr;
    bool GroupState::*flag = nullptr;
};

/// Whether Rule keeps per-group state: it then names `GroupState` (a value
/// type, default-constructed for a new group), lists its `group_scalars`, and
/// provides `StepValues advance(config, state)` (the step's group-level values
/// in double, and the state after it; throws std::invalid_argument or
/// WrongMode when the step cannot be taken) and `check_group_state(state)`.
/// A rule with `has_modes` also switches its parameters between two points:
/// `mode_weight(config, to_train)` is the lerp weight toward its state array
/// `mode_state`, and the group's state records the mode (`train_mode`).
template <class R, class = void>
struct HasGroupState : std::false_type {};
template <class R>
struct HasGroupState<R, std::void_t<typename R::GroupState>> : std::true_type {};

/// The error of a step taken in the wrong mode (Python: RuntimeError).
struct WrongMode : std::logic_error {
    using std::logic_error::logic_error;
};

/// The schedule-free rules' shared group state and checks.
struct ScheduleFreeGroup {
    using GroupState = ScheduleFreeGroupState;
    using StepValues = kernels::ScheduleFreeSchedule;
    static constexpr bool has_modes = true;
    static constexpr std::size_t mode_state = 0;  // z
    static constexpr std::array<GroupScalar<ScheduleFreeGroupState>, 4> group_scalars{{
        {"k", ScalarKind::count, &ScheduleFreeGroupState::k, nullptr, nullptr},
        {"lr_max", ScalarKind::number, nullptr, &ScheduleFreeGroupState::lr_max, nullptr},
        {"weight_sum", ScalarKind::number, nullptr, &ScheduleFreeGroupState::weight_sum, nullptr},
        {"train_mode", ScalarKind::flag, nullptr, nullptr, &ScheduleFreeGroupState::train_mode},
    }};

    /// The ranges a group's state can reach: k >= 0 (and below 2**53, exact in
    /// the double Python stores it in), lr_max -1 (no step yet) or >= 0, weight_sum >= 0.
    static void check_group_state(const ScheduleFreeGroupState& s) {
        if (s.k < 0 || s.k >= (std::int64_t{1} << 53)) {
            throw std::invalid_argument("k must be an integer in [0, 2**53), got " + std::to_string(s.k));
        }
        if (!(std::isfinite(s.lr_max) && (s.lr_max == -1.0 || s.lr_max >= 0.0))) {
            throw std::invalid_argument("lr_max must be -1 or a finite number >= 0, got " + format_value(s.lr_max));
        }
        if (!(std::isfinite(s.weight_sum) && s.weight_sum >= 0.0)) {
            throw std::invalid_argument("weight_sum must be a finite number >= 0, got " +
                                        format_value(s.weight_sum));
        }
    }

    static kernels::ScheduleFreeSchedule schedule(double lr, double warmup_steps, double r, double weight_lr_power,
                                                  double beta2, const ScheduleFreeGroupState& s) {
        if (!s.train_mode) {
            throw WrongMode("the optimizer is in eval mode (the parameters hold the average x): call train() "
                            "before step(), and eval() before evaluating or saving");
        }
        const auto values = kernels::ScheduleFreeSchedule::make(lr, warmup_steps, r, weight_lr_power, beta2, s);
        if (!values.finite) {
            throw std::invalid_argument("the warmup-scaled lr or the average's weight (k + 1)**r * "
                                        "lr_max**weight_lr_power is not finite at k = " + std::to_string(s.k) +
                                        " (lr * warmup = " + format_value(values.lr) + ", r = " + format_value(r) +
                                        ", weight_lr_power = " + format_value(weight_lr_power) + ", lr_max = " +
                                        format_value(values.next.lr_max) + ")");
        }
        return values;
    }

    /// The lerp weight from y toward z that gives x (eval) or from x that gives y (train).
    static double weight_toward_z(double beta, bool to_train) { return to_train ? 1.0 - beta : 1.0 - 1.0 / beta; }
};

template <>
struct Rule<ScheduleFreeAdamWConfig> : ScheduleFreeGroup {
    using Config = ScheduleFreeAdamWConfig;
    static constexpr const char* name = "schedule_free_adamw";
    template <class T>
    using Tensor = ScheduleFreeAdamWTensor<T>;
    static constexpr bool has_step = false;
    static constexpr std::array<Number<Config>, 8> numbers{{
        {"lr", &Config::lr, Range::non_negative},
        {"beta1", &Config::beta1, Range::open_unit_interval},
        {"beta2", &Config::beta2, Range::unit_interval},
        {"eps", &Config::eps, Range::non_negative},
        {"weight_decay", &Config::weight_decay, Range::non_negative},
        {"warmup_steps", &Config::warmup_steps, Range::non_negative},
        {"r", &Config::r, Range::finite},
        {"weight_lr_power", &Config::weight_lr_power, Range::finite},
    }};
    static constexpr std::array<Flag<Config>, 0> flags{};
    static constexpr std::array<State<Config, ScheduleFreeAdamWTensor>, 2> states{{
        {"z", "zs", "", nullptr, &ScheduleFreeAdamWTensor<float>::z, &ScheduleFreeAdamWTensor<double>::z,
         &ScheduleFreeAdamWTensor<float>::initialize_z, &ScheduleFreeAdamWTensor<double>::initialize_z,
         StateShape::like_param, StateDims::any, "param"},
        {"exp_avg_sq", "exp_avg_sqs", "", nullptr, &ScheduleFreeAdamWTensor<float>::exp_avg_sq,
         &ScheduleFreeAdamWTensor<double>::exp_avg_sq},
    }};
    static void check(const Config&) {}
    static StepValues advance(const Config& c, const GroupState& s) {
        return schedule(c.lr, c.warmup_steps, c.r, c.weight_lr_power, c.beta2, s);
    }
    static double mode_weight(const Config& c, bool to_train) { return weight_toward_z(c.beta1, to_train); }
};

template <>
struct Rule<ScheduleFreeSgdConfig> : ScheduleFreeGroup {
    using Config = ScheduleFreeSgdConfig;
    static constexpr const char* name = "schedule_free_sgd";
    template <class T>
    using Tensor = ScheduleFreeSgdTensor<T>;
    static constexpr bool has_step = false;
    static constexpr std::array<Number<Config>, 6> numbers{{
        {"lr", &Config::lr, Range::non_negative},
        {"momentum", &Config::momentum, Range::open_unit_interval},
        {"weight_decay", &Config::weight_decay, Range::non_negative},
        {"warmup_steps", &Config::warmup_steps, Range::non_negative},
        {"r", &Config::r, Range::finite},
        {"weight_lr_power", &Config::weight_lr_power, Range::finite},
    }};
    static constexpr std::array<Flag<Config>, 0> flags{};
    static constexpr std::array<State<Config, ScheduleFreeSgdTensor>, 1> states{{
        {"z", "zs", "", nullptr, &ScheduleFreeSgdTensor<float>::z, &ScheduleFreeSgdTensor<double>::z,
         &ScheduleFreeSgdTensor<float>::initialize_z, &ScheduleFreeSgdTensor<double>::initialize_z,
         StateShape::like_param, StateDims::any, "param"},
    }};
    static void check(const Config&) {}
    static StepValues advance(const Config& c, const GroupState& s) {
        return schedule(c.lr, c.warmup_steps, c.r, c.weight_lr_power, 0.0, s);
    }
    static double mode_weight(const Config& c, bool to_train) { return weight_toward_z(c.momentum, to_train); }
};

template <>
struct Rule<SparseAdamConfig> {
    using Config = SparseAdamConfig;
    static constexpr const char* name = "sparse_adam";
    template <class T>
    using Tensor = SparseAdamTensor<T>;
    static constexpr bool has_step = true;
    static constexpr std::array<Number<SparseAdamConfig>, 4> numbers{{
        {"lr", &SparseAdamConfig::lr, Range::non_negative},
        {"beta1", &SparseAdamConfig::beta1, Range::unit_interval},
        {"beta2", &SparseAdamConfig::beta2, Range::unit_interval},
        {"eps", &SparseAdamConfig::eps, Range::non_negative},
    }};
    static constexpr std::array<Flag<SparseAdamConfig>, 1> flags{{{"maximize", &SparseAdamConfig::maximize}}};
    static constexpr std::array<State<SparseAdamConfig, SparseAdamTensor>, 2> states{{
        {"exp_avg", "exp_avgs", "", nullptr, &SparseAdamTensor<float>::exp_avg, &SparseAdamTensor<double>::exp_avg},
        {"exp_avg_sq", "exp_avg_sqs", "", nullptr, &SparseAdamTensor<float>::exp_avg_sq,
         &SparseAdamTensor<double>::exp_avg_sq},
    }};
    static void check(const SparseAdamConfig&) {}
};

template <>
struct Rule<RowwiseAdagradConfig> {
    using Config = RowwiseAdagradConfig;
    static constexpr const char* name = "rowwise_adagrad";
    template <class T>
    using Tensor = RowwiseAdagradTensor<T>;
    static constexpr bool has_step = false;
    static constexpr std::array<Number<RowwiseAdagradConfig>, 3> numbers{{
        {"lr", &RowwiseAdagradConfig::lr, Range::non_negative},
        {"eps", &RowwiseAdagradConfig::eps, Range::non_negative},
        {"weight_decay", &RowwiseAdagradConfig::weight_decay, Range::non_negative},
    }};
    static constexpr std::array<Flag<RowwiseAdagradConfig>, 1> flags{{{"maximize", &RowwiseAdagradConfig::maximize}}};
    static constexpr std::array<State<RowwiseAdagradConfig, RowwiseAdagradTensor>, 1> states{{
        {"sum", "state_sums", "", nullptr, &RowwiseAdagradTensor<float>::sum, &RowwiseAdagradTensor<double>::sum,
         nullptr, nullptr, StateShape::like_param, StateDims::any, "gradient", true},
    }};
    static void check(const RowwiseAdagradConfig&) {}
};

/// Calls f(Rule<Config>{}) for every rule, in the order they are documented.
template <class F>
void for_each_rule(F&& f) {
    f(Rule<SgdConfig>{});
    f(Rule<AdagradConfig>{});
    f(Rule<RmspropConfig>{});
    f(Rule<AdamConfig>{});
    f(Rule<AdafactorConfig>{});
    f(Rule<NadamConfig>{});
    f(Rule<RadamConfig>{});
    f(Rule<AdamaxConfig>{});
    f(Rule<LionConfig>{});
    f(Rule<AdadeltaConfig>{});
    f(Rule<RpropConfig>{});
    f(Rule<AsgdConfig>{});
    f(Rule<ScheduleFreeAdamWConfig>{});
    f(Rule<ScheduleFreeSgdConfig>{});
    f(Rule<SparseAdamConfig>{});
    f(Rule<RowwiseAdagradConfig>{});
}

/// The shortest decimal form that reads back as `value` (as Python's repr
/// prints it), so a message never shows a tiny value as 0.000000.
inline std::string format_value(double value) {
    char text[32];
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(text, sizeof(text), "%.*g", precision, value);
        if (std::strtod(text, nullptr) == value) break;
    }
    // %g takes an exponent once it has more integer digits than its precision
    // (60 reads "6e+01"); whole numbers below 1e16 are written out, as Python does.
    if (value == std::trunc(value) && std::abs(value) >= 1.0 && std::abs(value) < 1e16) {
        std::snprintf(text, sizeof(text), "%.0f", value);
    }
    return text;
}

/// Throws std::invalid_argument naming the first hyperparameter out of its
/// range, then runs the rule's own checks across hyperparameters.
template <class Config>
void validate_config(const Config& config) {
    for (const auto& number : Rule<Config>::numbers) {
        const double value = config.*number.field;
        if (!within(number.range, value)) {
            std::string message = std::string(number.name) + " must be " + describe(number.range) + ", got " +
                                  format_value(value);
            if (number.argument != nullptr) message += std::string(" (") + number.argument + ")";
            throw std::invalid_argument(message);
        }
    }
    // Not a hyperparameter of the description: set by the caller (clipping, loss scaling).
    if (!std::isfinite(config.grad_scale)) {
        throw std::invalid_argument("grad_scale must be a finite number, got " + format_value(config.grad_scale));
    }
    Rule<Config>::check(config);
}

/// Which gradients a rule takes. The default, for an element-wise rule: dense
/// arrays only. A rule that also takes row-sparse gradients (SparseRows) has
/// a specialisation with `sparse` set, a row kernel in kernels/row_rules.hpp,
/// and `check_sparse`: what a configuration must satisfy to step with one.
/// `row_wise` rules work on whole rows even with a dense gradient.
template <class Config>
struct Gradients {
    static constexpr bool dense = true;
    static constexpr bool sparse = false;
    static constexpr bool row_wise = false;
    static void check_sparse(const Config&) {}
};

template <>
struct Gradients<SgdConfig> {
    static constexpr bool dense = true;
    static constexpr bool sparse = true;
    static constexpr bool row_wise = false;
    // torch's sparse SGD path has neither (a sparse momentum buffer would fill in).
    static void check_sparse(const SgdConfig& c) {
        if (c.momentum != 0.0) throw std::invalid_argument("momentum must be 0 with row-sparse gradients (SparseRows)");
        if (c.weight_decay != 0.0) {
            throw std::invalid_argument("weight_decay must be 0 with row-sparse gradients (SparseRows)");
        }
    }
};

template <>
struct Gradients<AdagradConfig> {
    static constexpr bool dense = true;
    static constexpr bool sparse = true;
    static constexpr bool row_wise = false;
    // As torch refuses it: an L2 term would touch every row.
    static void check_sparse(const AdagradConfig& c) {
        if (c.weight_decay != 0.0) {
            throw std::invalid_argument("weight_decay must be 0 with row-sparse gradients (SparseRows), as in torch");
        }
    }
};

template <>
struct Gradients<SparseAdamConfig> {
    static constexpr bool dense = false;
    static constexpr bool sparse = true;
    static constexpr bool row_wise = false;
    static void check_sparse(const SparseAdamConfig&) {}
};

template <>
struct Gradients<RowwiseAdagradConfig> {
    static constexpr bool dense = true;
    static constexpr bool sparse = true;
    static constexpr bool row_wise = true;
    static void check_sparse(const RowwiseAdagradConfig&) {}
};

}  // namespace lrcore::rules
