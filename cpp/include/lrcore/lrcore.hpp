// lrcore: SIMD optimizer kernels. Include this header to get the whole C++ API.
#pragma once

#include "lrcore/config.hpp"
#include "lrcore/optimizers.hpp"
#include "lrcore/runtime.hpp"
#include "lrcore/tensors.hpp"
#include "lrcore/version.hpp"
