"""lrcore: SIMD CPU optimizer kernels updating numpy arrays in place, and learning-rate schedules."""
