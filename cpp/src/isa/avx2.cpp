// AVX2 variant (256-bit vectors). Built with -mavx2; used only on CPUs that report AVX2.
#include "kernels/simd_avx2.hpp"
#include "kernels/kernel_table.hpp"
#include "kernels/update_rules.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_KERNEL_TABLE(avx2_kernels, "avx2", Avx2Lane)
}  // namespace lrcore::kernels

// The whole-gradient passes (kernels/gradient_passes.hpp) at the same width.
#include "kernels/gradient_passes.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_GRADIENT_PASS_TABLE(avx2_gradient_passes, "avx2", 32)
}  // namespace lrcore::kernels

// The row kernels of row-sparse gradients (kernels/row_rules.hpp) on the same lanes.
#include "kernels/row_rules.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_ROW_KERNEL_TABLE(avx2_row_kernels, "avx2", Avx2Lane)
}  // namespace lrcore::kernels
