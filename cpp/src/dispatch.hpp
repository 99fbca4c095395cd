// Chooses the kernel table for this CPU (once, on first use) and lets the
// runtime API override the choice.
#pragma once

#include "kernels/kernel_table.hpp"

namespace lrcore::kernels {

/// The table every step uses. The first call selects it: LRCORE_ISA when set,
/// otherwise the best variant the CPU supports.
const KernelTable& active_kernels();

}  // namespace lrcore::kernels
