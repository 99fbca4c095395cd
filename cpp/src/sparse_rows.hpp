// The row step drivers: row-sparse gradients (SparseRows) and row-wise rules.
//
// A row-sparse gradient is coalesced first (coalesce.hpp: its distinct rows,
// ascending, and where their values are), then the rule's row kernel
// (kernels/row_rules.hpp) runs over chunks of distinct rows on the thread
// pool. Chunks cover whole rows and depend only on the rows and their length,
// so results do not depend on the thread count.
//
// The public entry points (lrcore/optimizers.hpp) check their arguments and
// call these; the Python binding checks and coalesces at its boundary and
// calls run_row_step directly.
#pragma once

#include <cstddef>

#include "coalesce.hpp"
#include "kernels/row_table.hpp"
#include "rules.hpp"

namespace lrcore::detail {

/// One step of Config's rule (Gradients<Config>::sparse or ::row_wise) over
/// `count` checked tables and their row gradients: every row in range, every
/// needed state set, every step number >= 1.
template <class Config, class T>
void run_row_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>* tensors,
                  const kernels::RowGradient<T>* grads, std::size_t count);

/// One step of a row-wise rule with dense gradients (every row), as run_step does for element-wise rules.
template <class Config, class T>
void run_row_wise_step(const Config& config, const typename rules::Rule<Config>::template Tensor<T>* tensors,
                       std::size_t count);

/// The row gradient of `values` (rows of `row_length`) at the distinct rows of `index`.
template <class T>
kernels::RowGradient<T> row_gradient(const T* values, std::size_t row_length, const CoalescedIndex& index) {
    kernels::RowGradient<T> g;
    g.values = values;
    g.rows = index.rows.data();
    g.starts = index.starts.data();
    g.positions = index.positions.data();
    g.count = index.rows.size();
    g.row_length = row_length;
    return g;
}

}  // namespace lrcore::detail
