// AVX-512F variant (512-bit vectors). Built with -mavx512f; used only on CPUs (and
// operating systems) that report AVX-512F.
#include "kernels/simd_avx512.hpp"
#include "kernels/kernel_table.hpp"
#include "kernels/update_rules.hpp"

namespace lrcore::kernels {
LRCORE_DEFINE_KERNEL_TABLE(avx512_kernels, "avx512", Avx512Lane)
}  // namespace lrcore::kernels
