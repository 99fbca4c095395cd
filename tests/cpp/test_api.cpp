// The public C++ API apart from the arithmetic: runtime controls, argument
// validation (bad input throws before anything is written), schedule
// validation, empty tensors, and the version macros.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "lrcore/lrcore.hpp"

namespace {

void check_runtime_controls() {
    const std::vector<std::string> available = lrcore::available_isas();
    const std::vector<std::string> compiled = lrcore::compiled_isas();
    LRCORE_CHECK(!available.empty() && available.back() == "baseline");
    for (const auto& isa : available) {
        LRCORE_CHECK_MESSAGE(std::find(compiled.begin(), compiled.end(), isa) != compiled.end(),
                             isa + " is available but not compiled");
    }
    LRCORE_CHECK(std::find(available.begin(), available.end(), lrcore::active_isa()) != available.end());

    const std::string previous_isa = lrcore::active_isa();
    LRCORE_CHECK_THROWS(lrcore::set_isa("no-such-isa"), std::invalid_argument);
    LRCORE_CHECK(lrcore::active_isa() == previous_isa);
    for (const auto& isa : compiled) {
        if (std::find(available.begin(), available.end(), isa) == available.end()) {
            LRCORE_CHECK_THROWS(lrcore::set_isa(isa), std::runtime_error);
        }
    }

    const int threads = lrcore::get_num_threads();
    LRCORE_CHECK(threads >= 1);
    LRCORE_CHECK_THROWS(lrcore::set_num_threads(0), std::invalid_argument);
    LRCORE_CHECK(lrcore::get_num_threads() == threads);
    lrcore::set_num_threads(3);
    LRCORE_CHECK(lrcore::get_num_threads() == 3);
    lrcore::set_num_threads(threads);

    LRCORE_CHECK(!lrcore::get_flush_denormals());
    lrcore::set_flush_denormals(true);
    LRCORE_CHECK(lrcore::get_flush_denormals());
    lrcore::set_flush_denormals(false);
}

void check_config_validation() {
    lrcore::SgdConfig sgd;
    sgd.lr = -1.0;
    LRCORE_CHECK_THROWS(lrcore::validate(sgd), std::invalid_argument);
    sgd = lrcore::SgdConfig{};
    sgd.nesterov = true;  // without momentum
    LRCORE_CHECK_THROWS(lrcore::validate(sgd), std::invalid_argument);
    sgd.momentum = 0.9;
    lrcore::validate(sgd);

    lrcore::AdamConfig adam;
    adam.beta1 = 1.0;
    LRCORE_CHECK_THROWS(lrcore::validate(adam), std::invalid_argument);
    adam = lrcore::AdamConfig{};
    adam.eps = std::nan("");
    LRCORE_CHECK_THROWS(lrcore::validate(adam), std::invalid_argument);

    lrcore::AdagradConfig adagrad;
    adagrad.lr_decay = -0.5;
    LRCORE_CHECK_THROWS(lrcore::validate(adagrad), std::invalid_argument);

    lrcore::RmspropConfig rmsprop;
    rmsprop.momentum = -0.1;
    LRCORE_CHECK_THROWS(lrcore::validate(rmsprop), std::invalid_argument);

    lrcore::AdadeltaConfig adadelta;
    adadelta.rho = 1.0;  // torch's range is [0, 1]
    lrcore::validate(adadelta);
    adadelta.rho = 1.5;
    LRCORE_CHECK_THROWS(lrcore::validate(adadelta), std::invalid_argument);

    lrcore::RpropConfig rprop;
    lrcore::validate(rprop);
    rprop.etaminus = 1.0;  // torch's range: 0 < etaminus < 1 < etaplus
    LRCORE_CHECK_THROWS(lrcore::validate(rprop), std::invalid_argument);
    rprop = lrcore::RpropConfig{};
    rprop.etaplus = 1.0;
    LRCORE_CHECK_THROWS(lrcore::validate(rprop), std::invalid_argument);
    rprop = lrcore::RpropConfig{};
    rprop.step_size_min = 60.0;  // above step_size_max
    LRCORE_CHECK_THROWS(lrcore::validate(rprop), std::invalid_argument);
    lrcore::AsgdConfig asgd;
    lrcore::validate(asgd);
    asgd.lambd = -1e-4;
    LRCORE_CHECK_THROWS(lrcore::validate(asgd), std::invalid_argument);
    try {
        rprop = lrcore::RpropConfig{};
        rprop.etaminus = 0.0;
        lrcore::validate(rprop);
        LRCORE_CHECK_MESSAGE(false, "etaminus = 0 was accepted");
    } catch (const std::invalid_argument& error) {
        // The message names the field and the torch argument it comes from.
        LRCORE_CHECK(std::string(error.what()) == "etaminus must be in (0, 1), got 0 (etas[0])");
    }
}

/// A step call with any bad tensor throws before touching the good ones.
void check_step_validation() {
    std::vector<float> param(8, 1.0f), grad(8, 0.5f), exp_avg(8, 0.0f), exp_avg_sq(8, 0.0f);
    lrcore::AdamTensor<float> tensors[2];
    tensors[0].param = param.data();
    tensors[0].grad = grad.data();
    tensors[0].exp_avg = exp_avg.data();
    tensors[0].exp_avg_sq = exp_avg_sq.data();
    tensors[0].size = param.size();
    tensors[1] = tensors[0];
    tensors[1].exp_avg_sq = nullptr;  // missing state

    LRCORE_CHECK_THROWS(lrcore::adam_step(lrcore::AdamConfig{}, tensors, 2), std::invalid_argument);
    tensors[1] = tensors[0];
    tensors[1].step = 0;  // steps are 1-based
    LRCORE_CHECK_THROWS(lrcore::adam_step(lrcore::AdamConfig{}, tensors, 2), std::invalid_argument);
    lrcore::AdamConfig amsgrad;
    amsgrad.amsgrad = true;  // needs max_exp_avg_sq
    LRCORE_CHECK_THROWS(lrcore::adam_step(amsgrad, tensors[0]), std::invalid_argument);
    lrcore::AdamConfig bad_lr;
    bad_lr.lr = -1.0;
    LRCORE_CHECK_THROWS(lrcore::adam_step(bad_lr, tensors[0]), std::invalid_argument);
    LRCORE_CHECK(std::all_of(param.begin(), param.end(), [](float p) { return p == 1.0f; }));
    LRCORE_CHECK(std::all_of(exp_avg.begin(), exp_avg.end(), [](float m) { return m == 0.0f; }));

    lrcore::SgdConfig momentum;
    momentum.momentum = 0.9;
    lrcore::SgdTensor<float> sgd;
    sgd.param = param.data();
    sgd.grad = grad.data();
    sgd.size = param.size();
    LRCORE_CHECK_THROWS(lrcore::sgd_step(momentum, sgd), std::invalid_argument);

    lrcore::RmspropConfig centered;
    centered.centered = true;
    lrcore::RmspropTensor<float> rmsprop;
    rmsprop.param = param.data();
    rmsprop.grad = grad.data();
    rmsprop.square_avg = exp_avg_sq.data();
    rmsprop.size = param.size();
    LRCORE_CHECK_THROWS(lrcore::rmsprop_step(centered, rmsprop), std::invalid_argument);

    lrcore::RpropTensor<float> rprop;  // step_size is required even on the first step, which writes it
    rprop.param = param.data();
    rprop.grad = grad.data();
    rprop.prev = exp_avg.data();
    rprop.size = param.size();
    rprop.initialize_step_size = true;
    LRCORE_CHECK_THROWS(lrcore::rprop_step(lrcore::RpropConfig{}, rprop), std::invalid_argument);

    lrcore::AsgdTensor<float> asgd;  // eta and mu are required
    asgd.param = param.data();
    asgd.grad = grad.data();
    asgd.ax = exp_avg.data();
    asgd.size = param.size();
    double eta = 0.01;
    asgd.eta = &eta;
    LRCORE_CHECK_THROWS(lrcore::asgd_step(lrcore::AsgdConfig{}, asgd), std::invalid_argument);
    LRCORE_CHECK(eta == 0.01);

    lrcore::AdagradTensor<double> adagrad;  // param/grad null with size 8
    adagrad.size = 8;
    LRCORE_CHECK_THROWS(lrcore::adagrad_step(lrcore::AdagradConfig{}, adagrad), std::invalid_argument);
    LRCORE_CHECK(std::all_of(param.begin(), param.end(), [](float p) { return p == 1.0f; }));
}

/// Throws std::invalid_argument whose message starts with `field`, the name of the bad argument.
template <class F>
void check_names(F&& make_bad, const std::string& field) {
    try {
        make_bad();
        LRCORE_CHECK_MESSAGE(false, "no exception for a bad " + field);
    } catch (const std::invalid_argument& error) {
        const std::string message = error.what();
        LRCORE_CHECK_MESSAGE(message.rfind(field, 0) == 0, "message does not start with " + field + ": " + message);
    }
}

/// The schedules' field lists: validate() and make<S>() refuse each bad field by name, accept good ones.
void check_schedule_validation() {
    namespace s = lrcore::schedules;
    const double nan = std::nan("");

    check_names([] { s::make<s::Constant>(-0.1); }, "lr");
    check_names([&] { s::make<s::Constant>(nan); }, "lr");
    check_names([] { s::make<s::StepDecay>(0.1, 0); }, "step_size");
    check_names([] { s::make<s::StepDecay>(0.1, 10, 0.0); }, "gamma");
    check_names([] { s::make<s::MultiStepDecay>(0.1, std::vector<std::int64_t>{5, 3}); }, "milestones");
    check_names([] { s::make<s::MultiStepDecay>(0.1, std::vector<std::int64_t>{-1, 3}); }, "milestones[0]");
    check_names([] { s::make<s::ExponentialDecay>(0.1, 0.5, 0); }, "decay_steps");
    check_names([] { s::make<s::InverseTimeDecay>(0.1, -1.0); }, "decay_rate");
    check_names([] { s::make<s::PolynomialDecay>(0.1, 10, -1.0); }, "power");
    check_names([] { s::make<s::PolynomialDecay>(0.1, 10, 1.0, -0.5); }, "end_lr");
    check_names([] { s::make<s::Linear>(0.1, 0.0); }, "start_factor");
    check_names([] { s::make<s::Linear>(0.1, 0.5, 1.5); }, "end_factor");
    check_names([] { s::make<s::Linear>(0.1, 0.5, 1.0, 0); }, "total_steps");
    check_names([] { s::make<s::CosineAnnealing>(0.1, 0); }, "T_max");
    check_names([] { s::make<s::CosineAnnealingWarmRestarts>(0.1, 10, 0); }, "T_mult");
    check_names([] { s::make<s::Cyclic>(-0.1, 1.0); }, "base_lr");
    check_names([] { s::make<s::Cyclic>(0.1, 1.0, s::CyclicWave{0.0}); }, "step_size_up");
    check_names([] { s::make<s::Cyclic>(0.1, 1.0, s::CyclicWave{2.5}); }, "step_size_up");  // whole steps only
    check_names([] { s::make<s::Cyclic>(0.1, 1.0, s::CyclicWave{2.0, -1.0}); }, "step_size_down");
    check_names([] { s::make<s::Cyclic>(0.1, 1.0, s::CyclicWave{2.0, 2.0, static_cast<s::CyclicMode>(9)}); },
                "mode");
    check_names([] { s::make<s::CyclicMomentum>(0.95, 0.9); }, "base_momentum");
    check_names([] { s::make<s::CyclicMomentum>(0.8, 1.5); }, "max_momentum");
    check_names([] { s::make<s::OneCycle>(0.1, s::OneCyclePhases{0}); }, "total_steps");
    check_names([] { s::make<s::OneCycle>(0.1, s::OneCyclePhases{100, 1.5}); }, "pct_start");
    check_names([] { s::make<s::OneCycle>(0.1, s::OneCyclePhases{10, 0.1}); }, "pct_start");  // empty warm-up
    check_names([] { s::make<s::OneCycle>(0.1, s::OneCyclePhases{100}, 0.0); }, "div_factor");
    check_names([] { s::make<s::OneCycleMomentum>(s::OneCyclePhases{100}, 0.99, 0.9); }, "base_momentum");
    check_names([] { s::make<s::InverseSqrt>(0.1, 0); }, "warmup_steps");

    // Aggregate initialization does not check; validate() does, on any object.
    s::StepDecay step{0.1, 30};
    s::validate(step);
    step.step_size = -3;
    check_names([&] { s::validate(step); }, "step_size");

    // Good schedules pass and evaluate as their aggregates do.
    const auto one_cycle = s::make<s::OneCycle>(0.1, s::OneCyclePhases{1000, 0.3, s::AnnealStrategy::linear, true});
    LRCORE_CHECK(one_cycle(500) == (s::OneCycle{0.1, s::OneCyclePhases{1000, 0.3, s::AnnealStrategy::linear, true}}(500)));
    LRCORE_CHECK(s::make<s::MultiStepDecay>(1.0, std::vector<std::int64_t>{2, 2}, 0.5)(2) == 0.25);
    s::validate(s::Linear{0.1});
    s::validate(s::CyclicMomentum{});
    s::validate(s::OneCycleMomentum{s::OneCyclePhases{100}});
    s::validate(s::Cyclic{0.0, 0.0, s::CyclicWave{1.0, 0.0, s::CyclicMode::exp_range, 0.5}});
}

/// Schedule-free SGD through the public API: validation, the group state's
/// transaction, the mode check, the train/eval switch, against a plain
/// double-precision loop of the package's formulas.
void check_schedule_free() {
    lrcore::ScheduleFreeAdamWConfig adamw;
    adamw.beta1 = 0.0;  // eval would divide by it
    LRCORE_CHECK_THROWS(lrcore::validate(adamw), std::invalid_argument);
    lrcore::ScheduleFreeSgdConfig config;
    config.momentum = 1.0;
    LRCORE_CHECK_THROWS(lrcore::validate(config), std::invalid_argument);
    config = lrcore::ScheduleFreeSgdConfig{};
    config.lr = 0.1;
    config.warmup_steps = 2;

    std::vector<double> y{1.0, -2.0, 0.5}, z(3), grad{0.3, -0.1, 0.2};
    lrcore::ScheduleFreeSgdTensor<double> tensor{y.data(), grad.data(), z.data(), y.size(), true};
    lrcore::ScheduleFreeGroupState state;
    LRCORE_CHECK(!state.train_mode && state.k == 0 && state.lr_max == -1.0);
    LRCORE_CHECK_THROWS(lrcore::schedule_free_sgd_step(config, state, &tensor, 1), std::logic_error);
    LRCORE_CHECK(state.k == 0 && y[0] == 1.0);
    lrcore::schedule_free_sgd_train(config, state, &tensor, 1);  // z not initialized yet: nothing moves
    LRCORE_CHECK(state.train_mode && y[0] == 1.0);

    std::vector<double> ry = y, rz = y;
    double lr_max = -1.0, weight_sum = 0.0;
    for (int k = 0; k < 4; ++k) {
        lrcore::schedule_free_sgd_step(config, state, &tensor, 1);
        tensor.initialize_z = false;
        const double lr = config.lr * (k < config.warmup_steps ? (k + 1) / config.warmup_steps : 1.0);
        lr_max = std::max(lr, lr_max);
        const double weight = lr_max * lr_max;
        weight_sum += weight;
        const double c = weight / weight_sum;
        for (std::size_t i = 0; i < ry.size(); ++i) {
            ry[i] = ry[i] + c * (rz[i] - ry[i]) + lr * (config.momentum * (1 - c) - 1) * grad[i];
            rz[i] -= lr * grad[i];
        }
    }
    LRCORE_CHECK(state.k == 4 && state.lr_max == lr_max && state.weight_sum == weight_sum);
    for (std::size_t i = 0; i < ry.size(); ++i) {
        LRCORE_CHECK(std::abs(y[i] - ry[i]) < 1e-12 && std::abs(z[i] - rz[i]) < 1e-12);
    }
    const std::vector<double> before = y;
    lrcore::schedule_free_sgd_eval(config, state, &tensor, 1);
    LRCORE_CHECK(!state.train_mode);
    for (std::size_t i = 0; i < y.size(); ++i) {
        // y = (1 - momentum) z + momentum x
        LRCORE_CHECK(std::abs((1 - config.momentum) * z[i] + config.momentum * y[i] - before[i]) < 1e-12);
    }
    lrcore::schedule_free_sgd_eval(config, state, &tensor, 1);  // already in eval mode: a no-op
    lrcore::schedule_free_sgd_train(config, state, &tensor, 1);
    for (std::size_t i = 0; i < y.size(); ++i) LRCORE_CHECK(std::abs(y[i] - before[i]) < 1e-12);

    // A weight that overflows is refused before anything changes.
    config.r = 2000.0;
    const lrcore::ScheduleFreeGroupState kept = state;
    const std::vector<double> y_kept = y;
    LRCORE_CHECK_THROWS(lrcore::schedule_free_sgd_step(config, state, &tensor, 1), std::invalid_argument);
    LRCORE_CHECK(state.k == kept.k && state.weight_sum == kept.weight_sum && y == y_kept);
}

/// Empty tensors (and empty calls) are no-ops, even with null pointers.
void check_empty() {
    lrcore::AdamTensor<double> empty;
    lrcore::adam_step(lrcore::AdamConfig{}, empty);
    lrcore::adam_step(lrcore::AdamConfig{}, static_cast<const lrcore::AdamTensor<double>*>(nullptr), 0);
    lrcore::SgdTensor<float> sgd;
    lrcore::sgd_step(lrcore::SgdConfig{}, sgd);
    LRCORE_CHECK(true);
}

/// NAdam's mu_product lives in the caller's double: null is refused before anything is
/// written, a failed step leaves it alone, and each step multiplies it by mu_t.
void check_scalar_state() {
    std::vector<float> param(9, 1.0f), grad(9, 0.5f), exp_avg(9, 0.0f), exp_avg_sq(9, 0.0f);
    lrcore::NadamTensor<float> tensors[2];
    double mu_products[2] = {1.0, 1.0};
    for (auto& t : tensors) {
        t.param = param.data();
        t.grad = grad.data();
        t.exp_avg = exp_avg.data();
        t.exp_avg_sq = exp_avg_sq.data();
        t.size = 9;
    }
    tensors[1].param = nullptr;  // an empty second tensor may have null pointers
    tensors[1].size = 0;
    tensors[0].mu_product = nullptr;
    LRCORE_CHECK_THROWS(lrcore::nadam_step(lrcore::NadamConfig{}, tensors, 2), std::invalid_argument);
    tensors[0].mu_product = &mu_products[0];
    lrcore::NadamConfig bad;
    bad.momentum_decay = -1.0;
    LRCORE_CHECK_THROWS(lrcore::nadam_step(bad, tensors, 2), std::invalid_argument);
    LRCORE_CHECK(mu_products[0] == 1.0 && param[0] == 1.0f);
    tensors[1].mu_product = &mu_products[1];
    const lrcore::NadamConfig config;
    for (std::int64_t step = 1; step <= 2; ++step) {
        tensors[0].step = tensors[1].step = step;
        lrcore::nadam_step(config, tensors, 2);
    }
    auto mu = [&](double t) { return config.beta1 * (1.0 - 0.5 * std::pow(0.96, t * config.momentum_decay)); };
    LRCORE_CHECK(mu_products[0] == 1.0 * mu(1) * mu(2));
    LRCORE_CHECK(mu_products[1] == mu_products[0]);  // an empty tensor's scalar still steps, as in torch
    LRCORE_CHECK(param[0] < 1.0f);

    lrcore::LionConfig lion;
    lion.beta2 = 1.0;
    LRCORE_CHECK_THROWS(lrcore::validate(lion), std::invalid_argument);
    lrcore::RadamConfig radam;
    radam.eps = -1.0;
    LRCORE_CHECK_THROWS(lrcore::validate(radam), std::invalid_argument);
    lrcore::AdamaxConfig adamax;
    adamax.beta1 = std::nan("");
    LRCORE_CHECK_THROWS(lrcore::validate(adamax), std::invalid_argument);
}

void check_version() {
    const std::string version = std::to_string(LRCORE_VERSION_MAJOR) + "." + std::to_string(LRCORE_VERSION_MINOR) +
                                "." + std::to_string(LRCORE_VERSION_PATCH);
    // LRCORE_PROJECT_VERSION comes from CMake's project(VERSION): the two must agree.
    LRCORE_CHECK_MESSAGE(version == LRCORE_PROJECT_VERSION,
                         "version.hpp says " + version + ", CMakeLists.txt says " LRCORE_PROJECT_VERSION);
}

/// Row-sparse gradients: duplicates summed, untouched rows and state bitwise
/// unchanged, every ISA the same bits, bad input refused before any write.
void check_sparse_rows() {
    constexpr std::size_t rows = 6, length = 21;  // a row: vector body and scalar tail on every ISA
    const std::vector<std::int64_t> indices{4, 1, 4, 4};
    std::vector<float> values(indices.size() * length);
    for (std::size_t k = 0; k < values.size(); ++k) values[k] = 0.01f * static_cast<float>(k % 37) - 0.1f;
    std::vector<float> first_param, first_sum;
    for (const auto& isa : lrcore::available_isas()) {
        const std::string previous = lrcore::active_isa();
        lrcore::set_isa(isa);
        std::vector<float> param(rows * length, 1.0f), sum(rows * length, 0.5f);
        lrcore::AdagradConfig config;
        config.lr = 0.1;
        lrcore::AdagradTensor<float> table;
        table.param = param.data();
        table.sum = sum.data();
        table.size = param.size();
        table.step = 1;
        lrcore::SparseRows<float> grad{indices.data(), values.data(), indices.size(), length};
        lrcore::adagrad_step(config, table, grad);
        for (std::size_t r : {0, 2, 3, 5}) {
            for (std::size_t j = 0; j < length; ++j) {
                LRCORE_CHECK(param[r * length + j] == 1.0f && sum[r * length + j] == 0.5f);
            }
        }
        // Row 4: the three value rows summed in the order given, then one AdaGrad update.
        for (std::size_t j = 0; j < length; ++j) {
            const float g = (values[j] + values[2 * length + j]) + values[3 * length + j];
            const float s = 0.5f + g * g;
            LRCORE_CHECK(sum[4 * length + j] == s);
            LRCORE_CHECK(param[4 * length + j] == 1.0f + (-0.1f) * (g / (std::sqrt(s) + 1e-10f)));
        }
        if (first_param.empty()) {
            first_param = param;
            first_sum = sum;
        } else {
            LRCORE_CHECK_MESSAGE(param == first_param && sum == first_sum, isa + " differs");
        }
        lrcore::set_isa(previous);
    }

    std::vector<double> param(rows * 2, 1.0), exp_avg(rows * 2, 0.0), exp_avg_sq(rows * 2, 0.0);
    const std::vector<double> before = param;
    lrcore::SparseAdamTensor<double> table;
    table.param = param.data();
    table.exp_avg = exp_avg.data();
    table.exp_avg_sq = exp_avg_sq.data();
    table.size = param.size();
    const std::vector<std::int64_t> bad{1, 6};
    const std::vector<double> two_rows(4, 1.0);
    LRCORE_CHECK_THROWS(lrcore::sparse_adam_step(lrcore::SparseAdamConfig{}, table,
                                                 lrcore::SparseRows<double>{bad.data(), two_rows.data(), 2, 2}),
                        std::out_of_range);
    LRCORE_CHECK_THROWS(lrcore::sparse_adam_step(lrcore::SparseAdamConfig{}, table,
                                                 lrcore::SparseRows<double>{bad.data(), two_rows.data(), 2, 5}),
                        std::invalid_argument);  // a row length that does not divide the table
    lrcore::AdagradTensor<double> adagrad_table;
    adagrad_table.param = param.data();
    adagrad_table.sum = exp_avg.data();
    adagrad_table.size = param.size();
    lrcore::AdagradConfig decay;
    decay.weight_decay = 0.1;
    const std::vector<std::int64_t> good{1, 2};
    LRCORE_CHECK_THROWS(lrcore::adagrad_step(decay, adagrad_table,
                                             lrcore::SparseRows<double>{good.data(), two_rows.data(), 2, 2}),
                        std::invalid_argument);
    LRCORE_CHECK(param == before && std::all_of(exp_avg.begin(), exp_avg.end(), [](double m) { return m == 0.0; }));

    // Row-wise AdaGrad, dense: sum[r] += mean of squares, p -= lr g / (sqrt(sum[r]) + eps).
    std::vector<double> table_values{1.0, 2.0, 3.0, 4.0}, gradient{0.5, 0.5, 1.0, 3.0}, accumulators(2, 0.0);
    lrcore::RowwiseAdagradTensor<double> rowwise;
    rowwise.param = table_values.data();
    rowwise.grad = gradient.data();
    rowwise.sum = accumulators.data();
    rowwise.size = 4;
    rowwise.row_length = 2;
    lrcore::RowwiseAdagradConfig rowwise_config;
    rowwise_config.lr = 0.5;
    rowwise_config.eps = 0.0;
    lrcore::rowwise_adagrad_step(rowwise_config, rowwise);
    LRCORE_CHECK(accumulators[0] == 0.25 && accumulators[1] == 5.0);
    LRCORE_CHECK(table_values[0] == 1.0 - 0.5 && table_values[1] == 2.0 - 0.5);
    LRCORE_CHECK(std::abs(table_values[3] - (4.0 - 0.5 * 3.0 / std::sqrt(5.0))) < 1e-15);
    rowwise.row_length = 3;
    LRCORE_CHECK_THROWS(lrcore::rowwise_adagrad_step(rowwise_config, rowwise), std::invalid_argument);
}

/// Adafactor through the public API: its ranges, the shaped-state checks (nothing written on a
/// refusal), and one step on a 2 x 3 matrix and a vector against the formula in optimizers.hpp.
void check_adafactor() {
    lrcore::AdafactorConfig config;
    lrcore::validate(config);  // eps1 NaN: the element type's machine epsilon
    check_names([] { lrcore::AdafactorConfig c; c.beta2_decay = 0.5; lrcore::validate(c); }, "beta2_decay");
    check_names([] { lrcore::AdafactorConfig c; c.d = 0.5; lrcore::validate(c); }, "d");
    check_names([] { lrcore::AdafactorConfig c; c.eps1 = -1.0; lrcore::validate(c); }, "eps1");
    check_names([] { lrcore::AdafactorConfig c; c.eps1 = INFINITY; lrcore::validate(c); }, "eps1");
    check_names([] { lrcore::AdafactorConfig c; c.eps2 = -1.0; lrcore::validate(c); }, "eps2");

    std::vector<double> param{1.0, -2.0, 3.0, 0.5, 0.25, -1.5};
    const std::vector<double> grad{0.5, 1.0, -0.25, 2.0, -1.0, 0.75};
    std::vector<double> row_var(2, 0.0), col_var(3, 0.0);
    lrcore::AdafactorTensor<double> matrix;
    matrix.param = param.data();
    matrix.grad = grad.data();
    matrix.row_var = row_var.data();
    matrix.size = 6;
    matrix.rows = 2;
    matrix.columns = 3;
    const std::vector<double> before = param;
    LRCORE_CHECK_THROWS(lrcore::adafactor_step(config, matrix), std::invalid_argument);  // col_var missing
    matrix.col_var = col_var.data();
    matrix.columns = 4;  // 2 x 4 does not divide 6
    LRCORE_CHECK_THROWS(lrcore::adafactor_step(config, matrix), std::invalid_argument);
    matrix.columns = 3;
    matrix.step = 0;
    LRCORE_CHECK_THROWS(lrcore::adafactor_step(config, matrix), std::invalid_argument);
    LRCORE_CHECK(param == before && row_var[0] == 0.0 && col_var[0] == 0.0);

    // Step 1: w = 1, so the factors are the means of g*g; rho = min(lr, 1) = lr.
    matrix.step = 1;
    config.weight_decay = 0.1;
    lrcore::adafactor_step(config, matrix);
    double param_squares = 0.0;
    for (double p : before) param_squares += p * p;
    const double alpha = std::max(config.eps2, std::sqrt(param_squares) / std::sqrt(6.0)) * config.lr;
    double rows[2] = {}, columns[3] = {};
    for (int r = 0; r < 2; ++r) {
        for (int c = 0; c < 3; ++c) {
            rows[r] += grad[r * 3 + c] * grad[r * 3 + c] / 3.0;
            columns[c] += grad[r * 3 + c] * grad[r * 3 + c] / 2.0;
        }
    }
    const double mean = (rows[0] + rows[1]) / 2.0;
    double update[6], update_squares = 0.0;
    for (int k = 0; k < 6; ++k) {
        update[k] = grad[k] / std::sqrt(rows[k / 3] * columns[k % 3] / mean);
        update_squares += update[k] * update[k];
    }
    const double clipping = std::max(1.0, std::sqrt(update_squares) / (std::sqrt(6.0) * config.d));
    for (int k = 0; k < 6; ++k) {
        const double expected = before[k] * (1.0 - config.lr * config.weight_decay) - alpha / clipping * update[k];
        LRCORE_CHECK_MESSAGE(std::abs(param[k] - expected) <= 1e-14, "adafactor matrix element " + std::to_string(k));
    }
    for (int r = 0; r < 2; ++r) LRCORE_CHECK(std::abs(row_var[r] - rows[r]) <= 1e-15);
    for (int c = 0; c < 3; ++c) LRCORE_CHECK(std::abs(col_var[c] - columns[c]) <= 1e-15);

    // A vector keeps `variance`; at step 1 it is g*g and every |u| is 1, clipped to rms d = 1.
    std::vector<float> vector_param{2.0f, -1.0f, 0.5f}, variance(3, 0.0f);
    const std::vector<float> vector_grad{0.5f, -4.0f, 1.0f};
    lrcore::AdafactorTensor<float> vector;
    vector.param = vector_param.data();
    vector.grad = vector_grad.data();
    vector.size = 3;
    LRCORE_CHECK_THROWS(lrcore::adafactor_step(lrcore::AdafactorConfig{}, vector), std::invalid_argument);
    vector.variance = variance.data();
    lrcore::adafactor_step(lrcore::AdafactorConfig{}, vector);
    const float rms = std::sqrt((4.0f + 1.0f + 0.25f) / 3.0f);
    const float expected_vector[3] = {2.0f - 0.01f * rms, -1.0f + 0.01f * rms, 0.5f - 0.01f * rms};
    for (int k = 0; k < 3; ++k) {
        LRCORE_CHECK(variance[k] == vector_grad[k] * vector_grad[k]);
        LRCORE_CHECK_MESSAGE(std::abs(vector_param[k] - expected_vector[k]) <= 1e-6f,
                             "adafactor vector element " + std::to_string(k));
    }
}

/// The bits of x rounded to bfloat16, nearest even (finite x).
std::uint16_t bfloat16_bits(float x) {
    std::uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    return static_cast<std::uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

float bfloat16_value(std::uint16_t h) {
    const std::uint32_t b = std::uint32_t{h} << 16;
    float x;
    std::memcpy(&x, &b, sizeof x);
    return x;
}

void check_mixed_precision() {
    // Adam on a bfloat16 parameter with a float32 master copy: the master follows the float32
    // run bitwise, the parameter is the master rounded to nearest even.
    constexpr std::size_t n = 1000;
    std::vector<float> reference(n), master(n), grad32(n), m32(n), v32(n), m(n), v(n);
    std::vector<std::uint16_t> param(n), grad(n);
    for (std::size_t i = 0; i < n; ++i) {
        param[i] = bfloat16_bits(std::sin(0.37f * static_cast<float>(i)));
        master[i] = reference[i] = bfloat16_value(param[i]);
    }
    lrcore::AdamConfig config;
    config.lr = 0.01;
    for (std::int64_t step = 1; step <= 5; ++step) {
        for (std::size_t i = 0; i < n; ++i) {
            grad[i] = bfloat16_bits(std::cos(0.11f * static_cast<float>(i * step)));
            grad32[i] = bfloat16_value(grad[i]);
        }
        lrcore::AdamTensor<float> mixed{reinterpret_cast<float*>(param.data()), reinterpret_cast<float*>(grad.data()),
                                        m.data(), v.data(), nullptr, n, step};
        lrcore::Storage storage;
        storage.param = storage.grad = lrcore::Format::bfloat16;
        storage.master = master.data();
        lrcore::adam_step(config, &mixed, &storage, 1);
        lrcore::AdamTensor<float> plain{reference.data(), grad32.data(), m32.data(), v32.data(), nullptr, n, step};
        lrcore::adam_step(config, plain);
    }
    bool same = true;
    for (std::size_t i = 0; i < n; ++i) same = same && master[i] == reference[i] && param[i] == bfloat16_bits(reference[i]);
    LRCORE_CHECK_MESSAGE(same, "the master copy follows the float32 run and the parameter is it rounded");

    // A bad storage throws before anything is written.
    const std::vector<std::uint16_t> before = param;
    const std::vector<float> master_before = master;
    lrcore::AdamTensor<float> mixed{reinterpret_cast<float*>(param.data()), reinterpret_cast<float*>(grad.data()),
                                    m.data(), v.data(), nullptr, n, 6};
    lrcore::Storage storage;
    storage.param = lrcore::Format::float32;  // not a 16-bit format
    LRCORE_CHECK_THROWS(lrcore::adam_step(config, &mixed, &storage, 1), std::invalid_argument);
    storage.param = lrcore::Format::bfloat16;
    storage.grad = lrcore::Format::float16;  // neither the parameter's format nor float32
    LRCORE_CHECK_THROWS(lrcore::adam_step(config, &mixed, &storage, 1), std::invalid_argument);
    storage.grad = lrcore::Format::bfloat16;
    storage.master = master.data();
    storage.rounding = lrcore::Rounding::stochastic;  // excludes a master copy
    LRCORE_CHECK_THROWS(lrcore::adam_step(config, &mixed, &storage, 1), std::invalid_argument);
    LRCORE_CHECK(param == before && master == master_before);
}

}  // namespace

int main() {
    check_runtime_controls();
    check_config_validation();
    check_step_validation();
    check_schedule_validation();
    check_empty();
    check_scalar_state();
    check_version();
    check_sparse_rows();
    check_adafactor();
    check_schedule_free();
    check_mixed_precision();
    return lrcore_test::finish();
}
