// The portable variant: SSE2 on x86-64 (part of the architecture), plain
// scalar code elsewhere, or anywhere when the build asks for the portable
// scalar kernels alone (LRCORE_PORTABLE, so that path is built and tested on
// x86-64 too). Compiled with the project's default flags only.
#if (defined(__SSE2__) || defined(_M_X64)) && !defined(LRCORE_SCALAR_BASELINE)
#include "kernels/simd_sse2.hpp"
#define LRCORE_BASELINE_LANE Sse2Lane
#else
#include "kernels/simd_scalar.hpp"
#define LRCORE_BASELINE_LANE ScalarLane
#endif
#include "kernels/kernel_table.hpp"
#include "kernels/update_rules.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_KERNEL_TABLE(baseline_kernels, "baseline", LRCORE_BASELINE_LANE)
}  // namespace lrcore::kernels

// The whole-gradient passes (kernels/gradient_passes.hpp) at the same width.
#include "kernels/gradient_passes.hpp"

namespace lrcore::kernels {
#if (defined(__SSE2__) || defined(_M_X64)) && !defined(LRCORE_SCALAR_BASELINE)
LRCORE_DEFINE_GRADIENT_PASS_TABLE(baseline_gradient_passes, "baseline", 16)
#else
LRCORE_DEFINE_REFERENCE_GRADIENT_PASS_TABLE(baseline_gradient_passes, "baseline")
#endif
}  // namespace lrcore::kernels

// The row kernels of row-sparse gradients (kernels/row_rules.hpp) on the same lanes.
#include "kernels/row_rules.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_ROW_KERNEL_TABLE(baseline_row_kernels, "baseline", LRCORE_BASELINE_LANE)
}  // namespace lrcore::kernels
