// Adafactor's step driver: the three passes of kernels/factored_rules.hpp over
// each tensor, and the O(rows + columns) work between them, in torch's order
// (torch/optim/_adafactor.py, _single_tensor_adafactor):
//
//   t <- step;  w = t^beta2_decay;  rho = min(lr, 1/sqrt(t))
//   alpha = max(eps2, ||p|| / sqrt(n)) * rho                 (||p|| before weight decay)
//   p <- p * (1 - lr * weight_decay)
//   matrix: row_var <- lerp(row_var, mean of g*g over each row, w)
//           col_var <- lerp(col_var, mean of g*g over each column, w)
//           v = row_var * col_var / max(mean(row_var), eps1)  (per matrix of the stack)
//   vector: variance <- lerp(variance, g*g, w);  v = variance
//   u = (1 / sqrt(max(v, eps1^2))) * g
//   p <- p + (-alpha / max(1, ||u|| / (sqrt(n) * d))) * u
//
// The state is O(rows + columns) per matrix and so is the scratch here: per
// row three sums, per matrix `column_blocks` partial column sums; it belongs to
// the calling thread and is reused by its next step. The update u is computed
// twice (for its norm, then to apply it) rather than stored.
//
// Reduction order, fixed so that results do not depend on the thread count:
// a matrix's rows are cut into min(column_blocks, rows) blocks (block k holds
// rows [k*rows/K, (k+1)*rows/K)), each block sums its column statistics row by
// row from zero, and the blocks' sums are added in block order; sums along a
// row are the kernels' (16 partial sums); the per-row sums of p*p and u*u, and
// the row_var values for their mean, are added in row order in double. A
// vector is cut into segments of `vector_segment` elements, which play the
// part of rows. The norms are rounded to T (torch's norm is a T tensor) before
// they enter the double-precision step-size arithmetic.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "chunking.hpp"
#include "dispatch.hpp"
#include "kernels/step_constants.hpp"
#include "kernels/storage_formats.hpp"
#include "rules.hpp"
#include "step_drivers.hpp"
#include "thread_pool.hpp"

namespace lrcore::detail {
namespace {

/// Blocks of rows per matrix whose column sums are kept apart (the most
/// threads a matrix's statistics pass can use).
constexpr std::size_t column_blocks = 8;
/// Elements per segment of a vector: the unit of its sums (and of its tasks).
constexpr std::size_t vector_segment = 4096;

template <class T>
struct Scratch {
    std::vector<T> column_sums;       // per matrix, per block, per column
    std::vector<T> row_grad_sums;     // per row (segment): sum of g*g
    std::vector<T> row_param_sums;    // sum of p*p
    std::vector<T> row_update_sums;   // sum of u*u
    std::vector<T> row_var_means;     // per matrix: max(mean(row_var), eps1)
};

/// A piece of a pass: rows [row_begin, row_end) of matrix `matrix` (or segments of a vector).
struct RowRange {
    std::size_t matrix;
    std::size_t row_begin;
    std::size_t row_end;
};

template <class T>
T lerp_value(T start, T end, const kernels::LerpConstants<T>& w) {
    const T base = w.base_is_start ? start : end;
    return base + w.coefficient * (end - start);
}

/// Python's max(a, b): a unless b > a (so a NaN b gives a).
double python_max(double a, double b) { return b > a ? b : a; }

/// torch.clamp_(min=bound): NaN stays NaN.
template <class T>
T clamp_below(T x, T bound) { return x != x ? x : (x > bound ? x : bound); }

/// Runs task(i) for i in [0, count), on the pool when the tensor is large enough.
template <class T, class Task>
void run_tasks(std::size_t count, bool parallel, Task&& task) {
    if (!parallel || count < 2) {
        for (std::size_t i = 0; i < count; ++i) task(i);
        return;
    }
    auto guarded = [&](std::size_t i) {
        const DenormalGuard guard;
        task(i);
    };
    parallel_for(count, TaskRef(guarded));
}

constexpr std::size_t page_bytes = 4096;

/// The first element of `buffer` (which has page_bytes / sizeof(T) elements to spare) that lies
/// half a page, modulo a page, after `other`.
template <class T>
T* half_a_page_from(T* buffer, const T* other) {
    const std::uintptr_t distance =
        (reinterpret_cast<std::uintptr_t>(buffer) - reinterpret_cast<std::uintptr_t>(other)) % page_bytes;
    return buffer + ((page_bytes / 2 + page_bytes - distance) % page_bytes) / sizeof(T);
}

/// Rows per task of the norm and apply passes: about one chunk of elements.
template <class T>
std::size_t rows_per_task(std::size_t columns) {
    const std::size_t rows = chunk_bytes / sizeof(T) / columns;
    return rows == 0 ? 1 : rows;
}

/// Sum in double of values[0..count), in order.
template <class T>
double ordered_sum(const T* values, std::size_t count) {
    double sum = 0.0;
    for (std::size_t i = 0; i < count; ++i) sum += static_cast<double>(values[i]);
    return sum;
}

/// neg_step = -alpha / max(1, ||u|| / (sqrt(n) * d)), from the sums of p*p and u*u.
template <class T>
T negative_step(const kernels::AdafactorConstants<T>& c, double param_squares, double update_squares,
                std::size_t size) {
    const double root_size = std::pow(static_cast<double>(size), 0.5);
    const double param_norm = static_cast<double>(static_cast<T>(std::sqrt(param_squares)));
    const double alpha = python_max(c.eps2, param_norm / root_size) * c.relative_step;
    const double update_norm = static_cast<double>(static_cast<T>(std::sqrt(update_squares)));
    const double clipping = python_max(1.0, update_norm / (root_size * c.d));
    return static_cast<T>(-alpha / clipping);
}

template <class T>
void matrix_step(const kernels::AdafactorKernels<T>& k, const kernels::AdafactorConstants<T>& c,
                 const AdafactorTensor<T>& t, Scratch<T>& s) {
    const std::size_t rows = t.rows;
    const std::size_t columns = t.columns;
    const std::size_t matrices = t.size / (rows * columns);
    const std::size_t total_rows = matrices * rows;
    const std::size_t blocks = rows < column_blocks ? rows : column_blocks;
    const bool parallel = worth_parallel<T>(t.size);
    // The column sums are stored as the gradient rows are read; placed half a page away from the
    // gradient (and so from the parameter, which numpy starts at the same page offset), no load
    // waits on an unrelated store with the same address bits (4 KiB aliasing): about 15% of the
    // statistics pass on a 4096 x 4096 float32 matrix.
    s.column_sums.assign(matrices * blocks * columns + page_bytes / sizeof(T), T(0));
    T* const column_base = half_a_page_from(s.column_sums.data(), t.grad);
    s.row_grad_sums.resize(total_rows);
    s.row_param_sums.resize(total_rows);
    s.row_update_sums.resize(total_rows);
    s.row_var_means.resize(matrices);

    // Pass 1: per block of rows, its rows' sums and its column sums.
    run_tasks<T>(matrices * blocks, parallel, [&](std::size_t j) {
        const std::size_t m = j / blocks;
        const std::size_t b = j % blocks;
        const std::size_t begin = b * rows / blocks;
        const std::size_t end = (b + 1) * rows / blocks;
        const std::size_t first = m * rows + begin;
        k.matrix_statistics(c, t.param + first * columns, t.grad + first * columns, end - begin, columns,
                            column_base + j * columns, s.row_grad_sums.data() + first,
                            s.row_param_sums.data() + first);
    });

    // The factors: O(rows + columns) per matrix.
    const T row_count = static_cast<T>(rows);
    const T column_count = static_cast<T>(columns);
    for (std::size_t m = 0; m < matrices; ++m) {
        const T* partial = column_base + m * blocks * columns;
        T* col_var = t.col_var + m * columns;
        for (std::size_t col = 0; col < columns; ++col) {
            T sum = partial[col];
            for (std::size_t b = 1; b < blocks; ++b) sum = sum + partial[b * columns + col];
            col_var[col] = lerp_value(col_var[col], sum / row_count, c.variance_lerp);
        }
        T* row_var = t.row_var + m * rows;
        const T* row_sums = s.row_grad_sums.data() + m * rows;
        for (std::size_t r = 0; r < rows; ++r) row_var[r] = lerp_value(row_var[r], row_sums[r] / column_count, c.variance_lerp);
        const T mean = static_cast<T>(ordered_sum(row_var, rows) / static_cast<double>(rows));
        s.row_var_means[m] = clamp_below(mean, c.eps1);
    }

    // Pass 2 and 3 over the same pieces: the update's norm, then the update.
    // A thread_local named inside a task would be the worker's own: tasks see it through a reference.
    thread_local std::vector<RowRange> calling_thread_pieces;
    std::vector<RowRange>& pieces = calling_thread_pieces;
    pieces.clear();
    const std::size_t step_rows = rows_per_task<T>(columns);
    for (std::size_t m = 0; m < matrices; ++m) {
        for (std::size_t r = 0; r < rows; r += step_rows) pieces.push_back({m, r, r + step_rows < rows ? r + step_rows : rows});
    }
    run_tasks<T>(pieces.size(), parallel, [&](std::size_t j) {
        const RowRange& piece = pieces[j];
        const std::size_t first = piece.matrix * rows + piece.row_begin;
        k.matrix_update_norm(c, t.grad + first * columns, t.row_var + first, t.col_var + piece.matrix * columns,
                             s.row_var_means[piece.matrix], piece.row_end - piece.row_begin, columns,
                             s.row_update_sums.data() + first);
    });
    const T neg_step = negative_step(c, ordered_sum(s.row_param_sums.data(), total_rows),
                                     ordered_sum(s.row_update_sums.data(), total_rows), t.size);
    run_tasks<T>(pieces.size(), parallel, [&](std::size_t j) {
        const RowRange& piece = pieces[j];
        const std::size_t first = piece.matrix * rows + piece.row_begin;
        k.matrix_apply(c, t.param + first * columns, t.grad + first * columns, t.row_var + first,
                       t.col_var + piece.matrix * columns, s.row_var_means[piece.matrix], neg_step,
                       piece.row_end - piece.row_begin, columns);
    });
}

template <class T>
void vector_step(const kernels::AdafactorKernels<T>& k, const kernels::AdafactorConstants<T>& c,
                 const AdafactorTensor<T>& t, Scratch<T>& s) {
    const std::size_t segments = (t.size + vector_segment - 1) / vector_segment;
    const bool parallel = worth_parallel<T>(t.size);
    s.row_param_sums.resize(segments);
    s.row_update_sums.resize(segments);
    auto length = [&](std::size_t j) {
        const std::size_t begin = j * vector_segment;
        return t.size - begin < vector_segment ? t.size - begin : vector_segment;
    };
    run_tasks<T>(segments, parallel, [&](std::size_t j) {
        const std::size_t begin = j * vector_segment;
        k.vector_statistics(c, t.param + begin, t.grad + begin, t.variance + begin, length(j),
                            s.row_param_sums.data() + j);
    });
    run_tasks<T>(segments, parallel, [&](std::size_t j) {
        const std::size_t begin = j * vector_segment;
        k.vector_update_norm(c, t.grad + begin, t.variance + begin, length(j), s.row_update_sums.data() + j);
    });
    const T neg_step = negative_step(c, ordered_sum(s.row_param_sums.data(), segments),
                                     ordered_sum(s.row_update_sums.data(), segments), t.size);
    run_tasks<T>(segments, parallel, [&](std::size_t j) {
        const std::size_t begin = j * vector_segment;
        k.vector_apply(c, t.param + begin, t.grad + begin, t.variance + begin, neg_step, length(j));
    });
}

template <class T>
void adafactor_run(const AdafactorConfig& config, const AdafactorTensor<T>* tensors, std::size_t count) {
    const kernels::AdafactorKernels<T>& k = kernels::active_kernels().of<T>().adafactor;
    thread_local Scratch<T> scratch;
    const DenormalGuard guard;  // the driver's own arithmetic rounds like the kernels'
    for (std::size_t i = 0; i < count; ++i) {
        const AdafactorTensor<T>& t = tensors[i];
        if (t.size == 0) continue;
        const auto constants = kernels::AdafactorConstants<T>::make(config, t.step);
        if (rules::is_matrix(t)) {
            matrix_step(k, constants, t, scratch);
        } else {
            vector_step(k, constants, t, scratch);
        }
    }
}

/// Adafactor over stored arrays (16-bit parameters or states, a master copy):
/// each tensor is widened into float32 copies, stepped as a float32 tensor and
/// rounded back, element by element as kernels/storage_formats.hpp defines it
/// (so on every instruction set alike). Simpler than typed passes, and slower:
/// Adafactor's speed is in its small state, not in its parameter traffic.
void adafactor_run_stored(const AdafactorConfig& config, const AdafactorTensor<float>* tensors, std::size_t count,
                          const Storage* storages) {
    using rules::Rule;
    thread_local std::vector<float> copies;
    for (std::size_t i = 0; i < count; ++i) {
        const AdafactorTensor<float>& t = tensors[i];
        const Storage& storage = storages[i];
        if (t.size == 0) continue;
        AdafactorTensor<float> copy = t;
        constexpr auto& states = Rule<AdafactorConfig>::states;
        std::array<std::size_t, states.size()> sizes{};
        std::size_t total = 2 * t.size;
        for (std::size_t s = 0; s < states.size(); ++s) {
            if (t.*(states[s].field<float>()) != nullptr) sizes[s] = states[s].elements(t.size, t.rows, t.columns);
            total += sizes[s];
        }
        copies.resize(total);
        float* next = copies.data();
        auto widen = [&](const float* data, Format format, std::size_t n) {
            float* out = next;
            next += n;
            if (format == Format::float32) {
                std::copy(data, data + n, out);
            } else {
                kernels::widen_array(data, format == Format::bfloat16, n, out);
            }
            return out;
        };
        copy.param = storage.master != nullptr ? widen(storage.master, Format::float32, t.size)
                                               : widen(t.param, storage.param, t.size);
        copy.grad = widen(t.grad, storage.grad, t.size);
        for (std::size_t s = 0; s < states.size(); ++s) {
            if (sizes[s] != 0) copy.*(states[s].field<float>()) = widen(t.*(states[s].field<float>()), storage.state, sizes[s]);
        }
        adafactor_run(config, &copy, 1);
        const bool stochastic = storage.rounding == Rounding::stochastic;
        auto round = [&](const float* values, float* data, Format format, std::size_t n, bool random, unsigned slot) {
            if (format == Format::float32) {
                std::copy(values, values + n, data);
                return;
            }
            const std::uint64_t key = random ? kernels::rounding_key(storage.seed, storage.stream, storage.step, slot) : 0;
            kernels::round_array(values, n, data, format == Format::bfloat16, random, key);
        };
        if (storage.master != nullptr) {
            std::copy(copy.param, copy.param + t.size, storage.master);
            round(copy.param, t.param, storage.param, t.size, false, 0);
        } else {
            round(copy.param, t.param, storage.param, t.size, stochastic, 0);
        }
        for (std::size_t s = 0; s < states.size(); ++s) {
            if (sizes[s] != 0) {
                round(copy.*(states[s].field<float>()), t.*(states[s].field<float>()), storage.state, sizes[s],
                      stochastic, static_cast<unsigned>(s + 1));
            }
        }
    }
}

}  // namespace

template <>
void run_step<AdafactorConfig, float>(const AdafactorConfig& config, const AdafactorTensor<float>* tensors,
                                      std::size_t count, const Storage* storages) {
    if (storages != nullptr) {
        adafactor_run_stored(config, tensors, count, storages);
    } else {
        adafactor_run(config, tensors, count);
    }
}

template <>
void run_step<AdafactorConfig, double>(const AdafactorConfig& config, const AdafactorTensor<double>* tensors,
                                       std::size_t count, const Storage*) {
    adafactor_run(config, tensors, count);
}

}  // namespace lrcore::detail
