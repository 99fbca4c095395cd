// Logistic regression trained with lrcore from C++, no Python involved.
//
// Generates a linearly separable-ish binary classification problem, then fits
// weights and a bias with AdamW, full batch, the learning rate following a
// cosine schedule (lrcore::schedules::CosineAnnealing). Prints the loss as it
// goes and exits with status 1 unless the model learned the problem, so the
// build's test suite can run it as a check of the installed package.
//
// Build against an installed lrcore (see docs/cpp.md):
//   cmake -S examples/cpp -B build-example -DCMAKE_PREFIX_PATH=<prefix>
//   cmake --build build-example && ./build-example/logistic_regression
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include <lrcore/lrcore.hpp>

namespace {

constexpr std::size_t samples = 4000;
constexpr std::size_t features = 16;
constexpr std::int64_t steps = 300;

struct Dataset {
    std::vector<float> x;  // samples x features, row-major
    std::vector<float> y;  // 0 or 1
};

/// Labels drawn from the logistic model itself, so the best achievable accuracy is known to be high but below 1.
Dataset make_dataset(std::uint32_t seed) {
    std::mt19937 engine(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::vector<float> true_weights(features);
    for (auto& w : true_weights) w = 2.0f * normal(engine);
    const float true_bias = 0.5f;

    Dataset data{std::vector<float>(samples * features), std::vector<float>(samples)};
    for (std::size_t i = 0; i < samples; ++i) {
        float logit = true_bias;
        for (std::size_t j = 0; j < features; ++j) {
            const float value = normal(engine);
            data.x[i * features + j] = value;
            logit += true_weights[j] * value;
        }
        data.y[i] = uniform(engine) < 1.0f / (1.0f + std::exp(-logit)) ? 1.0f : 0.0f;
    }
    return data;
}

/// Mean cross-entropy of the model on the data; fills the gradient of that
/// loss with respect to the weights and the bias, and counts correct predictions.
double loss_and_gradient(const Dataset& data, const std::vector<float>& weights, float bias,
                         std::vector<float>& weight_grad, float& bias_grad, std::size_t& correct) {
    std::vector<double> grad(features, 0.0);
    double bias_sum = 0.0;
    double loss = 0.0;
    correct = 0;
    for (std::size_t i = 0; i < samples; ++i) {
        const float* row = &data.x[i * features];
        double logit = bias;
        for (std::size_t j = 0; j < features; ++j) logit += static_cast<double>(weights[j]) * row[j];
        const double probability = 1.0 / (1.0 + std::exp(-logit));
        const double label = data.y[i];
        // log(1 + exp(-|z|)) form keeps the loss finite for large logits.
        loss += std::log1p(std::exp(-std::abs(logit))) + std::max(logit, 0.0) - label * logit;
        const double error = probability - label;
        for (std::size_t j = 0; j < features; ++j) grad[j] += error * row[j];
        bias_sum += error;
        correct += (probability >= 0.5) == (label == 1.0) ? 1 : 0;
    }
    for (std::size_t j = 0; j < features; ++j) weight_grad[j] = static_cast<float>(grad[j] / samples);
    bias_grad = static_cast<float>(bias_sum / samples);
    return loss / samples;
}

}  // namespace

int main() {
    const Dataset data = make_dataset(2024);

    // Parameters and their optimizer state: plain arrays owned by the caller.
    std::vector<float> weights(features, 0.0f), weight_grad(features);
    std::vector<float> weight_exp_avg(features, 0.0f), weight_exp_avg_sq(features, 0.0f);
    float bias = 0.0f, bias_grad = 0.0f, bias_exp_avg = 0.0f, bias_exp_avg_sq = 0.0f;

    lrcore::AdamConfig config;
    config.weight_decay = 1e-3;
    config.decoupled_weight_decay = true;  // AdamW
    lrcore::validate(config);              // fail early, before the loop

    // The learning rate for step t + 1 is schedule(t): 0.1 annealed to 0.001.
    const lrcore::schedules::CosineAnnealing schedule{0.1, steps, 0.001};

    lrcore::AdamTensor<float> tensors[2];
    tensors[0].param = weights.data();
    tensors[0].grad = weight_grad.data();
    tensors[0].exp_avg = weight_exp_avg.data();
    tensors[0].exp_avg_sq = weight_exp_avg_sq.data();
    tensors[0].size = features;
    tensors[1].param = &bias;
    tensors[1].grad = &bias_grad;
    tensors[1].exp_avg = &bias_exp_avg;
    tensors[1].exp_avg_sq = &bias_exp_avg_sq;
    tensors[1].size = 1;

    std::printf("lrcore %d.%d.%d, kernels: %s, threads: %d\n", LRCORE_VERSION_MAJOR, LRCORE_VERSION_MINOR,
                LRCORE_VERSION_PATCH, lrcore::active_isa().c_str(), lrcore::get_num_threads());

    std::size_t correct = 0;
    const double initial_loss = loss_and_gradient(data, weights, bias, weight_grad, bias_grad, correct);
    double loss = initial_loss;
    for (std::int64_t t = 0; t < steps; ++t) {
        config.lr = schedule(t);
        tensors[0].step = tensors[1].step = t + 1;  // 1-based number of this update
        lrcore::adam_step(config, tensors, 2);      // both tensors in one call
        loss = loss_and_gradient(data, weights, bias, weight_grad, bias_grad, correct);
        if ((t + 1) % 50 == 0) {
            std::printf("step %3lld  lr %.5f  loss %.4f  accuracy %.3f\n", static_cast<long long>(t + 1), config.lr,
                        loss, static_cast<double>(correct) / samples);
        }
    }

    const double accuracy = static_cast<double>(correct) / samples;
    const bool learned = loss < 0.5 * initial_loss && accuracy > 0.85;
    std::printf("loss %.4f -> %.4f, accuracy %.3f: %s\n", initial_loss, loss, accuracy,
                learned ? "learned" : "FAILED to learn");
    return learned ? 0 : 1;
}
