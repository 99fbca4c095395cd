// AVX-512F variant (512-bit vectors). Built with -mavx512f; used only on CPUs (and
// operating systems) that report AVX-512F.
#include "kernels/simd_avx512.hpp"
#include "kernels/kernel_table.hpp"
#include "kernels/update_rules.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_KERNEL_TABLE(avx512_kernels, "avx512", Avx512Lane)
}  // namespace lrcore::kernels

// The whole-gradient passes (kernels/gradient_passes.hpp) at the same width.
#include "kernels/gradient_passes.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_GRADIENT_PASS_TABLE(avx512_gradient_passes, "avx512", 64)
}  // namespace lrcore::kernels

// The row kernels of row-sparse gradients (kernels/row_rules.hpp) on the same lanes.
#include "kernels/row_rules.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_ROW_KERNEL_TABLE(avx512_row_kernels, "avx512", Avx512Lane)
}  // namespace lrcore::kernels
