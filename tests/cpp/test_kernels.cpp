// Every update rule against a plain scalar reference written here, in float
// and double, for every option combination, on every kernel variant this CPU
// runs, at sizes that leave vector remainders (1, 7, 17, 1023, 4097).
//
// Beyond agreeing with the reference to a few ulps, results must be bitwise
// identical across kernel variants, across thread counts (on a tensor large
// enough to be split over the pool), and between one batched call over
// several tensors and one call per tensor.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "check.hpp"
#include "lrcore/lrcore.hpp"

namespace {

using lrcore::AdagradConfig;
using lrcore::AdamConfig;
using lrcore::RmspropConfig;
using lrcore::SgdConfig;

const std::size_t kSizes[] = {1, 7, 17, 1023, 4097};
constexpr int kSteps = 3;

/// A parameter and up to three state arrays, named per rule below.
template <class T>
struct Arrays {
    std::vector<T> param;
    std::vector<T> state[3];
    double scalar = 1.0;  // a per-tensor scalar state (NAdam's mu_product)

    bool operator==(const Arrays& other) const {
        auto same_bits = [](const std::vector<T>& a, const std::vector<T>& b) {
            return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
        };
        return same_bits(param, other.param) && same_bits(state[0], other.state[0]) &&
               same_bits(state[1], other.state[1]) && same_bits(state[2], other.state[2]) &&
               std::memcmp(&scalar, &other.scalar, sizeof(double)) == 0;
    }
};

/// `size` numbers in [low, high), the same for the same seed.
template <class T>
std::vector<T> random_vector(std::size_t size, std::uint32_t seed, double low = -1.0, double high = 1.0) {
    std::mt19937 engine(seed);
    std::uniform_real_distribution<double> distribution(low, high);
    std::vector<T> out(size);
    for (auto& x : out) x = static_cast<T>(distribution(engine));
    return out;
}

template <class T>
T* data_or_null(std::vector<T>& v, bool used) {
    return used ? v.data() : nullptr;
}

template <class T>
const char* type_name() {
    return sizeof(T) == sizeof(float) ? "float" : "double";
}

// Per-type tolerance for kernel vs reference after kSteps steps: the two
// evaluate the same formulas but may order or fuse a few operations
// differently (e.g. torch's lerp form of the moving averages).
template <class T>
struct Tolerance;
template <>
struct Tolerance<float> {
    static constexpr double relative = 2e-5;
    static constexpr double absolute = 1e-6;
};
template <>
struct Tolerance<double> {
    static constexpr double relative = 1e-12;
    static constexpr double absolute = 1e-14;
};

/// Checks that `actual` matches `expected` within tolerance; reports the first bad element.
template <class T>
void check_close(const std::vector<T>& actual, const std::vector<T>& expected, const std::string& what) {
    if (!LRCORE_CHECK_MESSAGE(actual.size() == expected.size(), what + ": size differs")) return;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        const double a = actual[i];
        const double e = expected[i];
        const double allowed = Tolerance<T>::absolute + Tolerance<T>::relative * std::abs(e);
        if (!(std::abs(a - e) <= allowed)) {
            std::ostringstream message;
            message.precision(17);
            message << what << ": element " << i << " is " << a << ", reference " << e;
            LRCORE_CHECK_MESSAGE(false, message.str());
            return;
        }
    }
    LRCORE_CHECK_MESSAGE(true, what);
}

// ---------------------------------------------------------------------------
// The rules. Each one lists option combinations covering every kernel branch,
// steps the arrays once through lrcore, and once through a reference that
// follows torch.optim's documented algorithm element by element, with the
// hyperparameters rounded to T.
// ---------------------------------------------------------------------------

struct Sgd {
    using Config = SgdConfig;
    static constexpr const char* name = "sgd";
    static constexpr const char* state_names[3] = {"momentum_buffer", "", ""};

    static std::vector<Config> configs() {
        std::vector<Config> out;
        for (double momentum : {0.0, 0.9}) {
            for (double dampening : {0.0, 0.25}) {
                for (bool nesterov : {false, true}) {
                    if ((dampening != 0.0 || nesterov) && momentum == 0.0) continue;
                    if (nesterov && dampening != 0.0) continue;
                    for (double weight_decay : {0.0, 0.01}) {
                        for (bool maximize : {false, true}) {
                            Config c;
                            c.lr = 0.1;
                            c.momentum = momentum;
                            c.dampening = dampening;
                            c.nesterov = nesterov;
                            c.weight_decay = weight_decay;
                            c.maximize = maximize;
                            out.push_back(c);
                        }
                    }
                }
            }
        }
        return out;
    }

    static std::string describe(const Config& c) {
        std::ostringstream s;
        s << "momentum=" << c.momentum << " dampening=" << c.dampening << " nesterov=" << c.nesterov
          << " weight_decay=" << c.weight_decay << " maximize=" << c.maximize;
        return s.str();
    }

    static bool uses_state(const Config& c, int k) { return k == 0 && c.momentum != 0.0; }

    template <class T>
    static void step(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        lrcore::SgdTensor<T> t;
        t.param = a.param.data();
        t.grad = grad.data();
        t.momentum_buffer = data_or_null(a.state[0], uses_state(c, 0));
        t.size = a.param.size();
        t.initialize_momentum_buffer = step == 1;
        lrcore::sgd_step(c, t);
    }

    template <class T>
    static void reference(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        const T lr = static_cast<T>(c.lr), momentum = static_cast<T>(c.momentum);
        const T weight_decay = static_cast<T>(c.weight_decay);
        const T one_minus_dampening = static_cast<T>(1.0 - c.dampening);
        for (std::size_t i = 0; i < a.param.size(); ++i) {
            T& p = a.param[i];
            T g = c.maximize ? -grad[i] : grad[i];
            if (c.weight_decay != 0.0) g = g + weight_decay * p;
            if (c.momentum != 0.0) {
                T& buffer = a.state[0][i];
                buffer = step == 1 ? g : momentum * buffer + one_minus_dampening * g;
                g = c.nesterov ? g + momentum * buffer : buffer;
            }
            p = p - lr * g;
        }
    }
};

struct Adagrad {
    using Config = AdagradConfig;
    static constexpr const char* name = "adagrad";
    static constexpr const char* state_names[3] = {"sum", "", ""};

    static std::vector<Config> configs() {
        std::vector<Config> out;
        for (double lr_decay : {0.0, 0.01}) {
            for (double weight_decay : {0.0, 0.1}) {
                for (bool maximize : {false, true}) {
                    Config c;
                    c.lr = 0.1;
                    c.lr_decay = lr_decay;
                    c.weight_decay = weight_decay;
                    c.maximize = maximize;
                    out.push_back(c);
                }
            }
        }
        return out;
    }

    static std::string describe(const Config& c) {
        std::ostringstream s;
        s << "lr_decay=" << c.lr_decay << " weight_decay=" << c.weight_decay << " maximize=" << c.maximize;
        return s.str();
    }

    static bool uses_state(const Config&, int k) { return k == 0; }

    template <class T>
    static void step(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        lrcore::AdagradTensor<T> t;
        t.param = a.param.data();
        t.grad = grad.data();
        t.sum = a.state[0].data();
        t.size = a.param.size();
        t.step = step;
        lrcore::adagrad_step(c, t);
    }

    template <class T>
    static void reference(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        const T clr = static_cast<T>(c.lr / (1.0 + (step - 1) * c.lr_decay));
        const T weight_decay = static_cast<T>(c.weight_decay), eps = static_cast<T>(c.eps);
        for (std::size_t i = 0; i < a.param.size(); ++i) {
            T& p = a.param[i];
            T& sum = a.state[0][i];
            T g = c.maximize ? -grad[i] : grad[i];
            if (c.weight_decay != 0.0) g = g + weight_decay * p;
            sum = sum + g * g;
            p = p - clr * g / (std::sqrt(sum) + eps);
        }
    }
};

struct Rmsprop {
    using Config = RmspropConfig;
    static constexpr const char* name = "rmsprop";
    static constexpr const char* state_names[3] = {"square_avg", "grad_avg", "momentum_buffer"};

    static std::vector<Config> configs() {
        std::vector<Config> out;
        for (bool centered : {false, true}) {
            for (double momentum : {0.0, 0.5}) {
                for (double weight_decay : {0.0, 0.01}) {
                    for (bool maximize : {false, true}) {
                        Config c;
                        c.lr = 0.01;
                        c.centered = centered;
                        c.momentum = momentum;
                        c.weight_decay = weight_decay;
                        c.maximize = maximize;
                        out.push_back(c);
                    }
                }
            }
        }
        return out;
    }

    static std::string describe(const Config& c) {
        std::ostringstream s;
        s << "centered=" << c.centered << " momentum=" << c.momentum << " weight_decay=" << c.weight_decay
          << " maximize=" << c.maximize;
        return s.str();
    }

    static bool uses_state(const Config& c, int k) {
        return k == 0 || (k == 1 && c.centered) || (k == 2 && c.momentum > 0.0);
    }

    template <class T>
    static void step(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int) {
        lrcore::RmspropTensor<T> t;
        t.param = a.param.data();
        t.grad = grad.data();
        t.square_avg = a.state[0].data();
        t.grad_avg = data_or_null(a.state[1], uses_state(c, 1));
        t.momentum_buffer = data_or_null(a.state[2], uses_state(c, 2));
        t.size = a.param.size();
        lrcore::rmsprop_step(c, t);
    }

    template <class T>
    static void reference(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int) {
        const T lr = static_cast<T>(c.lr), alpha = static_cast<T>(c.alpha), eps = static_cast<T>(c.eps);
        const T one_minus_alpha = static_cast<T>(1.0 - c.alpha);
        const T weight_decay = static_cast<T>(c.weight_decay), momentum = static_cast<T>(c.momentum);
        for (std::size_t i = 0; i < a.param.size(); ++i) {
            T& p = a.param[i];
            T& square_avg = a.state[0][i];
            T g = c.maximize ? -grad[i] : grad[i];
            if (c.weight_decay != 0.0) g = g + weight_decay * p;
            square_avg = alpha * square_avg + one_minus_alpha * g * g;
            T avg;
            if (c.centered) {
                T& grad_avg = a.state[1][i];
                grad_avg = alpha * grad_avg + one_minus_alpha * g;
                avg = std::sqrt(square_avg - grad_avg * grad_avg) + eps;
            } else {
                avg = std::sqrt(square_avg) + eps;
            }
            if (c.momentum > 0.0) {
                T& buffer = a.state[2][i];
                buffer = momentum * buffer + g / avg;
                p = p - lr * buffer;
            } else {
                p = p - lr * g / avg;
            }
        }
    }
};

struct Adam {
    using Config = AdamConfig;
    static constexpr const char* name = "adam";
    static constexpr const char* state_names[3] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

    static std::vector<Config> configs() {
        std::vector<Config> out;
        for (bool amsgrad : {false, true}) {
            for (bool decoupled : {false, true}) {
                for (double weight_decay : {0.0, 0.01}) {
                    for (bool maximize : {false, true}) {
                        Config c;
                        c.lr = 0.01;
                        c.amsgrad = amsgrad;
                        c.decoupled_weight_decay = decoupled;
                        c.weight_decay = weight_decay;
                        c.maximize = maximize;
                        out.push_back(c);
                    }
                }
            }
        }
        return out;
    }

    static std::string describe(const Config& c) {
        std::ostringstream s;
        s << "amsgrad=" << c.amsgrad << " decoupled_weight_decay=" << c.decoupled_weight_decay
          << " weight_decay=" << c.weight_decay << " maximize=" << c.maximize;
        return s.str();
    }

    static bool uses_state(const Config& c, int k) { return k < 2 || c.amsgrad; }

    template <class T>
    static void step(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        lrcore::AdamTensor<T> t;
        t.param = a.param.data();
        t.grad = grad.data();
        t.exp_avg = a.state[0].data();
        t.exp_avg_sq = a.state[1].data();
        t.max_exp_avg_sq = data_or_null(a.state[2], uses_state(c, 2));
        t.size = a.param.size();
        t.step = step;
        lrcore::adam_step(c, t);
    }

    template <class T>
    static void reference(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        const double bias_correction1 = 1.0 - std::pow(c.beta1, step);
        const double bias_correction2 = 1.0 - std::pow(c.beta2, step);
        const T step_size = static_cast<T>(c.lr / bias_correction1);
        const T bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
        const T beta1 = static_cast<T>(c.beta1), beta2 = static_cast<T>(c.beta2);
        const T one_minus_beta1 = static_cast<T>(1.0 - c.beta1), one_minus_beta2 = static_cast<T>(1.0 - c.beta2);
        const T weight_decay = static_cast<T>(c.weight_decay), eps = static_cast<T>(c.eps);
        const T decay_factor = static_cast<T>(1.0 - c.lr * c.weight_decay);
        for (std::size_t i = 0; i < a.param.size(); ++i) {
            T& p = a.param[i];
            T& exp_avg = a.state[0][i];
            T& exp_avg_sq = a.state[1][i];
            T g = c.maximize ? -grad[i] : grad[i];
            if (c.weight_decay != 0.0) {
                if (c.decoupled_weight_decay) {
                    p = p * decay_factor;
                } else {
                    g = g + weight_decay * p;
                }
            }
            exp_avg = beta1 * exp_avg + one_minus_beta1 * g;
            exp_avg_sq = beta2 * exp_avg_sq + one_minus_beta2 * g * g;
            T second_moment = exp_avg_sq;
            if (c.amsgrad) {
                T& max_exp_avg_sq = a.state[2][i];
                max_exp_avg_sq = std::max(max_exp_avg_sq, exp_avg_sq);
                second_moment = max_exp_avg_sq;
            }
            p = p - step_size * exp_avg / (std::sqrt(second_moment) / bias_correction2_sqrt + eps);
        }
    }
};

/// Option combinations shared by the rules with decoupled weight decay.
template <class Config>
std::vector<Config> decay_configs(bool has_decoupled) {
    std::vector<Config> out;
    for (double weight_decay : {0.0, 0.01}) {
        for (bool decoupled : {false, true}) {
            if (decoupled && !has_decoupled) continue;
            for (bool maximize : {false, true}) {
                Config c;
                c.lr = 0.01;
                c.weight_decay = weight_decay;
                if constexpr (!std::is_same_v<Config, lrcore::AdamaxConfig> && !std::is_same_v<Config, lrcore::LionConfig>) {
                    c.decoupled_weight_decay = decoupled;
                }
                c.maximize = maximize;
                out.push_back(c);
            }
        }
    }
    return out;
}

template <class Config>
std::string describe_decay(const Config& c) {
    std::ostringstream s;
    s << "weight_decay=" << c.weight_decay << " maximize=" << c.maximize;
    if constexpr (!std::is_same_v<Config, lrcore::AdamaxConfig> && !std::is_same_v<Config, lrcore::LionConfig>) {
        s << " decoupled_weight_decay=" << c.decoupled_weight_decay;
    }
    return s.str();
}

struct Nadam {
    using Config = lrcore::NadamConfig;
    static constexpr const char* name = "nadam";
    static constexpr const char* state_names[3] = {"exp_avg", "exp_avg_sq", ""};

    static std::vector<Config> configs() { return decay_configs<Config>(true); }
    static std::string describe(const Config& c) { return describe_decay(c); }
    static bool uses_state(const Config&, int k) { return k < 2; }

    template <class T>
    static void step(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        lrcore::NadamTensor<T> t;
        t.param = a.param.data();
        t.grad = grad.data();
        t.exp_avg = a.state[0].data();
        t.exp_avg_sq = a.state[1].data();
        t.mu_product = &a.scalar;
        t.size = a.param.size();
        t.step = step;
        lrcore::nadam_step(c, t);
    }

    template <class T>
    static void reference(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        auto momentum = [&](int t) { return c.beta1 * (1.0 - 0.5 * std::pow(0.96, t * c.momentum_decay)); };
        const double mu = momentum(step), mu_next = momentum(step + 1);
        a.scalar *= mu;
        const T grad_coefficient = static_cast<T>(c.lr * (1.0 - mu) / (1.0 - a.scalar));
        const T exp_avg_coefficient = static_cast<T>(c.lr * mu_next / (1.0 - a.scalar * mu_next));
        const T bias_correction2 = static_cast<T>(1.0 - std::pow(c.beta2, step));
        const T beta1 = static_cast<T>(c.beta1), beta2 = static_cast<T>(c.beta2);
        const T one_minus_beta1 = static_cast<T>(1.0 - c.beta1), one_minus_beta2 = static_cast<T>(1.0 - c.beta2);
        const T weight_decay = static_cast<T>(c.weight_decay), eps = static_cast<T>(c.eps);
        const T decay_factor = static_cast<T>(1.0 - c.lr * c.weight_decay);
        for (std::size_t i = 0; i < a.param.size(); ++i) {
            T& p = a.param[i];
            T& m = a.state[0][i];
            T& v = a.state[1][i];
            T g = c.maximize ? -grad[i] : grad[i];
            if (c.weight_decay != 0.0) {
                if (c.decoupled_weight_decay) {
                    p = p * decay_factor;
                } else {
                    g = g + weight_decay * p;
                }
            }
            m = beta1 * m + one_minus_beta1 * g;
            v = beta2 * v + one_minus_beta2 * g * g;
            const T denom = std::sqrt(v / bias_correction2) + eps;
            p = p - grad_coefficient * g / denom - exp_avg_coefficient * m / denom;
        }
    }
};

struct Radam {
    using Config = lrcore::RadamConfig;
    static constexpr const char* name = "radam";
    static constexpr const char* state_names[3] = {"exp_avg", "exp_avg_sq", ""};

    static std::vector<Config> configs() {
        std::vector<Config> out = decay_configs<Config>(true);
        Config never_rectified;  // rho_inf = 3: the un-adapted branch on every step
        never_rectified.beta2 = 0.5;
        out.push_back(never_rectified);
        return out;
    }
    static std::string describe(const Config& c) { return describe_decay(c) + " beta2=" + std::to_string(c.beta2); }
    static bool uses_state(const Config&, int k) { return k < 2; }

    template <class T>
    static void step(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        lrcore::RadamTensor<T> t;
        t.param = a.param.data();
        t.grad = grad.data();
        t.exp_avg = a.state[0].data();
        t.exp_avg_sq = a.state[1].data();
        t.size = a.param.size();
        t.step = step;
        lrcore::radam_step(c, t);
    }

    template <class T>
    static void reference(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        const double bias_correction2 = 1.0 - std::pow(c.beta2, step);
        const double rho_inf = 2.0 / (1.0 - c.beta2) - 1.0;
        const double rho_t = rho_inf - 2.0 * step * std::pow(c.beta2, step) / bias_correction2;
        const bool rectified = rho_t > 5.0;
        const double r = rectified ? std::sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) : 0.0;
        const T step_size = static_cast<T>(c.lr / (1.0 - std::pow(c.beta1, step)));
        const T adaptive_scale = static_cast<T>(std::sqrt(bias_correction2) * r);
        const T beta1 = static_cast<T>(c.beta1), beta2 = static_cast<T>(c.beta2);
        const T one_minus_beta1 = static_cast<T>(1.0 - c.beta1), one_minus_beta2 = static_cast<T>(1.0 - c.beta2);
        const T weight_decay = static_cast<T>(c.weight_decay), eps = static_cast<T>(c.eps);
        const T decay_factor = static_cast<T>(1.0 - c.lr * c.weight_decay);
        for (std::size_t i = 0; i < a.param.size(); ++i) {
            T& p = a.param[i];
            T& m = a.state[0][i];
            T& v = a.state[1][i];
            T g = c.maximize ? -grad[i] : grad[i];
            if (c.weight_decay != 0.0) {
                if (c.decoupled_weight_decay) {
                    p = p * decay_factor;
                } else {
                    g = g + weight_decay * p;
                }
            }
            m = beta1 * m + one_minus_beta1 * g;
            v = beta2 * v + one_minus_beta2 * g * g;
            p = rectified ? p - step_size * m * adaptive_scale / (std::sqrt(v) + eps) : p - step_size * m;
        }
    }
};

struct Adamax {
    using Config = lrcore::AdamaxConfig;
    static constexpr const char* name = "adamax";
    static constexpr const char* state_names[3] = {"exp_avg", "exp_inf", ""};

    static std::vector<Config> configs() { return decay_configs<Config>(false); }
    static std::string describe(const Config& c) { return describe_decay(c); }
    static bool uses_state(const Config&, int k) { return k < 2; }

    template <class T>
    static void step(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        lrcore::AdamaxTensor<T> t;
        t.param = a.param.data();
        t.grad = grad.data();
        t.exp_avg = a.state[0].data();
        t.exp_inf = a.state[1].data();
        t.size = a.param.size();
        t.step = step;
        lrcore::adamax_step(c, t);
    }

    template <class T>
    static void reference(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int step) {
        const T clr = static_cast<T>(c.lr / (1.0 - std::pow(c.beta1, step)));
        const T beta1 = static_cast<T>(c.beta1), beta2 = static_cast<T>(c.beta2);
        const T one_minus_beta1 = static_cast<T>(1.0 - c.beta1);
        const T weight_decay = static_cast<T>(c.weight_decay), eps = static_cast<T>(c.eps);
        for (std::size_t i = 0; i < a.param.size(); ++i) {
            T& p = a.param[i];
            T& m = a.state[0][i];
            T& u = a.state[1][i];
            T g = c.maximize ? -grad[i] : grad[i];
            if (c.weight_decay != 0.0) g = g + weight_decay * p;
            m = beta1 * m + one_minus_beta1 * g;
            u = std::max(beta2 * u, std::abs(g) + eps);
            p = p - clr * m / u;
        }
    }
};

struct Lion {
    using Config = lrcore::LionConfig;
    static constexpr const char* name = "lion";
    static constexpr const char* state_names[3] = {"exp_avg", "", ""};

    static std::vector<Config> configs() { return decay_configs<Config>(false); }
    static std::string describe(const Config& c) { return describe_decay(c); }
    static bool uses_state(const Config&, int k) { return k == 0; }

    template <class T>
    static void step(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int) {
        lrcore::LionTensor<T> t;
        t.param = a.param.data();
        t.grad = grad.data();
        t.exp_avg = a.state[0].data();
        t.size = a.param.size();
        lrcore::lion_step(c, t);
    }

    template <class T>
    static void reference(const Config& c, Arrays<T>& a, const std::vector<T>& grad, int) {
        const T beta1 = static_cast<T>(c.beta1), beta2 = static_cast<T>(c.beta2);
        const T one_minus_beta1 = static_cast<T>(1.0 - c.beta1), one_minus_beta2 = static_cast<T>(1.0 - c.beta2);
        const T lr = static_cast<T>(c.lr), decay_factor = static_cast<T>(1.0 - c.lr * c.weight_decay);
        for (std::size_t i = 0; i < a.param.size(); ++i) {
            T& p = a.param[i];
            T& m = a.state[0][i];
            const T g = c.maximize ? -grad[i] : grad[i];
            const T direction = beta1 * m + one_minus_beta1 * g;
            const T sign = direction > T(0) ? T(1) : (direction < T(0) ? T(-1) : T(0));
            if (c.weight_decay != 0.0) p = p * decay_factor;
            p = p - lr * sign;
            m = beta2 * m + one_minus_beta2 * g;
        }
    }
};

/// Fresh arrays of `size` elements: a random parameter, zeroed state (unused state stays empty).
template <class Rule, class T>
Arrays<T> initial_arrays(const typename Rule::Config& c, std::size_t size, std::uint32_t seed) {
    Arrays<T> a;
    a.param = random_vector<T>(size, seed);
    for (int k = 0; k < 3; ++k) {
        if (Rule::uses_state(c, k)) a.state[k].assign(size, T(0));
    }
    return a;
}

template <class T>
std::vector<T> gradient(std::size_t size, std::uint32_t seed, int step) {
    return random_vector<T>(size, seed * 7919u + static_cast<std::uint32_t>(step));
}

/// kSteps steps through lrcore (with the active kernel variant) or through the reference.
template <class Rule, class T>
Arrays<T> run(const typename Rule::Config& c, std::size_t size, std::uint32_t seed, bool reference) {
    Arrays<T> a = initial_arrays<Rule, T>(c, size, seed);
    for (int step = 1; step <= kSteps; ++step) {
        const std::vector<T> grad = gradient<T>(size, seed, step);
        if (reference) {
            Rule::template reference<T>(c, a, grad, step);
        } else {
            Rule::template step<T>(c, a, grad, step);
        }
    }
    return a;
}

template <class Rule, class T>
void check_against_reference(const Arrays<T>& actual, const Arrays<T>& expected, const typename Rule::Config& c,
                             const std::string& where) {
    check_close(actual.param, expected.param, where + " param");
    LRCORE_CHECK_MESSAGE(actual.scalar == expected.scalar, where + " scalar state");
    for (int k = 0; k < 3; ++k) {
        if (Rule::uses_state(c, k)) check_close(actual.state[k], expected.state[k], where + " " + Rule::state_names[k]);
    }
}

/// Every option combination and size, on every variant: close to the
/// reference, and bitwise equal to the first (best) variant.
template <class Rule, class T>
void check_rule(const std::vector<std::string>& isas) {
    std::uint32_t seed = 1;
    for (const auto& c : Rule::configs()) {
        for (std::size_t size : kSizes) {
            ++seed;
            const std::string what = std::string(Rule::name) + "<" + type_name<T>() + "> size=" +
                                     std::to_string(size) + " " + Rule::describe(c);
            const Arrays<T> expected = run<Rule, T>(c, size, seed, true);
            Arrays<T> first;
            for (const auto& isa : isas) {
                lrcore::set_isa(isa);
                const Arrays<T> actual = run<Rule, T>(c, size, seed, false);
                check_against_reference<Rule, T>(actual, expected, c, "[" + isa + "] " + what);
                if (isa == isas.front()) {
                    first = actual;
                } else {
                    LRCORE_CHECK_MESSAGE(actual == first,
                                         "[" + isa + "] differs bitwise from [" + isas.front() + "]: " + what);
                }
            }
        }
    }
}

/// The richest option combination of each rule, for the large-size checks.
SgdConfig full_sgd() {
    SgdConfig c;
    c.lr = 0.1;
    c.momentum = 0.9;
    c.nesterov = true;
    c.weight_decay = 0.01;
    return c;
}
AdagradConfig full_adagrad() {
    AdagradConfig c;
    c.lr_decay = 0.01;
    c.weight_decay = 0.01;
    return c;
}
RmspropConfig full_rmsprop() {
    RmspropConfig c;
    c.centered = true;
    c.momentum = 0.5;
    c.weight_decay = 0.01;
    return c;
}
AdamConfig full_adam() {
    AdamConfig c;
    c.amsgrad = true;
    c.decoupled_weight_decay = true;
    c.weight_decay = 0.01;
    return c;
}

/// A tensor large enough to be split into chunks over the pool: same bits
/// with 1 and 2 threads, and still close to the reference.
template <class Rule, class T>
void check_threads(const typename Rule::Config& c) {
    constexpr std::size_t size = 300001;
    const std::string what = std::string(Rule::name) + "<" + type_name<T>() + "> size=" + std::to_string(size);
    lrcore::set_num_threads(1);
    const Arrays<T> one = run<Rule, T>(c, size, 99, false);
    lrcore::set_num_threads(2);
    const Arrays<T> two = run<Rule, T>(c, size, 99, false);
    LRCORE_CHECK_MESSAGE(one == two, what + ": 1 and 2 threads differ bitwise");
    check_against_reference<Rule, T>(two, run<Rule, T>(c, size, 99, true), c, what);
}

/// One adam_step over several tensors (different sizes and step counts, one
/// large enough for the pool) gives the same bits as one call per tensor.
template <class T>
void check_batched_call() {
    const AdamConfig c = full_adam();
    const std::size_t sizes[] = {70001, 17, 0, 40000};
    const std::int64_t steps[] = {1, 5, 5, 5};
    constexpr std::size_t count = 4;
    Arrays<T> batched[count], single[count];
    std::vector<T> grads[count];
    std::vector<lrcore::AdamTensor<T>> tensors(count);
    for (std::size_t i = 0; i < count; ++i) {
        batched[i] = initial_arrays<Adam, T>(c, sizes[i], 500 + static_cast<std::uint32_t>(i));
        single[i] = batched[i];
        grads[i] = gradient<T>(sizes[i], 600 + static_cast<std::uint32_t>(i), 1);
        auto& t = tensors[i];
        t.param = batched[i].param.data();
        t.grad = grads[i].data();
        t.exp_avg = batched[i].state[0].data();
        t.exp_avg_sq = batched[i].state[1].data();
        t.max_exp_avg_sq = batched[i].state[2].data();
        t.size = sizes[i];
        t.step = steps[i];
    }
    lrcore::adam_step(c, tensors.data(), count);
    for (std::size_t i = 0; i < count; ++i) {
        Adam::step<T>(c, single[i], grads[i], static_cast<int>(steps[i]));
        LRCORE_CHECK_MESSAGE(batched[i] == single[i], std::string("batched adam_step<") + type_name<T>() +
                                                          "> differs from a single call for tensor " +
                                                          std::to_string(i));
    }
}

}  // namespace

/// A quiet NaN of type T with `payload` in its low mantissa bits, so that
/// which operand a result came from can be read off its bits.
template <class T>
T nan_with_payload(std::uint32_t payload) {
    if constexpr (sizeof(T) == 4) {
        const std::uint32_t bits = 0x7fc00000u | payload;
        T x;
        std::memcpy(&x, &bits, sizeof(x));
        return x;
    } else {
        const std::uint64_t bits = 0x7ff8000000000000ull | payload;
        T x;
        std::memcpy(&x, &bits, sizeof(x));
        return x;
    }
}

template <class T>
bool same_bits(T a, T b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

/// AMSGrad's running maximum must propagate NaN the way np.maximum does
/// (NaN if either operand is; the stored maximum's NaN if both are) in every
/// lane: scalar prologue and tail as well as the vector body, on every
/// variant. The x86 max instructions alone would return the new second
/// moment instead, silently dropping a NaN already stored in the maximum.
template <class T>
void check_amsgrad_max_propagates_nan(const std::vector<std::string>& isas) {
    AdamConfig c;
    c.amsgrad = true;
    const T beta2 = static_cast<T>(c.beta2);
    const T old_max_nan = nan_with_payload<T>(1);
    const T second_moment_nan = nan_with_payload<T>(2);
    constexpr std::size_t total = 80;
    for (const auto& isa : isas) {
        lrcore::set_isa(isa);
        for (std::size_t offset : {0, 1, 3}) {
            const std::size_t size = total - offset;
            std::vector<T> param(total, T(1)), grad(total, T(0)), exp_avg(total, T(0)), exp_avg_sq(total, T(1)),
                max_exp_avg_sq(total, T(2));
            for (std::size_t i = offset; i < total; ++i) {
                const std::size_t k = i - offset;
                if (k % 3 == 0) max_exp_avg_sq[i] = old_max_nan;
                if (k % 4 == 1 || k % 5 == 0) exp_avg_sq[i] = second_moment_nan;
                if (k % 7 == 2) max_exp_avg_sq[i] = T(0.5);  // the new second moment wins here
            }
            const std::vector<T> old_max = max_exp_avg_sq, old_sq = exp_avg_sq;
            lrcore::AdamTensor<T> t;
            t.param = param.data() + offset;
            t.grad = grad.data() + offset;
            t.exp_avg = exp_avg.data() + offset;
            t.exp_avg_sq = exp_avg_sq.data() + offset;
            t.max_exp_avg_sq = max_exp_avg_sq.data() + offset;
            t.size = size;
            t.step = 1;
            lrcore::adam_step(c, t);
            for (std::size_t i = offset; i < total; ++i) {
                T expected;
                if (std::isnan(old_max[i])) {
                    expected = old_max[i];
                } else if (std::isnan(old_sq[i])) {
                    expected = old_sq[i];  // beta2 * NaN keeps the NaN's bits
                } else {
                    expected = std::max(old_max[i], beta2 * old_sq[i]);
                }
                std::ostringstream where;
                where << "[" << isa << "] " << type_name<T>() << " amsgrad max, offset " << offset << ", element "
                      << i - offset;
                LRCORE_CHECK_MESSAGE(same_bits(max_exp_avg_sq[i], expected), where.str());
                LRCORE_CHECK_MESSAGE(std::isnan(param[i]) == std::isnan(expected), where.str() + " (param)");
            }
        }
    }
}

int main() {
    const std::vector<std::string> isas = lrcore::available_isas();
    const std::string initial_isa = lrcore::active_isa();
    std::printf("kernel variants on this CPU:");
    for (const auto& isa : isas) std::printf(" %s", isa.c_str());
    std::printf("\n");

    // Forcing a variant must actually select it.
    for (const auto& isa : isas) {
        lrcore::set_isa(isa);
        LRCORE_CHECK(lrcore::active_isa() == isa);
    }

    check_rule<Sgd, float>(isas);
    check_rule<Sgd, double>(isas);
    check_rule<Adagrad, float>(isas);
    check_rule<Adagrad, double>(isas);
    check_rule<Rmsprop, float>(isas);
    check_rule<Rmsprop, double>(isas);
    check_rule<Adam, float>(isas);
    check_rule<Adam, double>(isas);
    check_amsgrad_max_propagates_nan<float>(isas);
    check_amsgrad_max_propagates_nan<double>(isas);
    check_rule<Nadam, float>(isas);
    check_rule<Nadam, double>(isas);
    check_rule<Radam, float>(isas);
    check_rule<Radam, double>(isas);
    check_rule<Adamax, float>(isas);
    check_rule<Adamax, double>(isas);
    check_rule<Lion, float>(isas);
    check_rule<Lion, double>(isas);

    lrcore::set_isa(isas.front());
    const int initial_threads = lrcore::get_num_threads();
    check_threads<Sgd, float>(full_sgd());
    check_threads<Sgd, double>(full_sgd());
    check_threads<Adagrad, float>(full_adagrad());
    check_threads<Adagrad, double>(full_adagrad());
    check_threads<Rmsprop, float>(full_rmsprop());
    check_threads<Rmsprop, double>(full_rmsprop());
    check_threads<Adam, float>(full_adam());
    check_threads<Adam, double>(full_adam());

    lrcore::set_num_threads(2);
    check_batched_call<float>();
    check_batched_call<double>();

    lrcore::set_num_threads(initial_threads);
    lrcore::set_isa(initial_isa);
    return lrcore_test::finish();
}
