// AVX2 variant (256-bit vectors). Built with -mavx2; used only on CPUs that report AVX2.
#include "kernels/simd_avx2.hpp"
#include "kernels/kernel_table.hpp"
#include "kernels/update_rules.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_KERNEL_TABLE(avx2_kernels, "avx2", Avx2Lane)
}  // namespace lrcore::kernels
