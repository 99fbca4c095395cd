// Runtime controls: which instruction-set variant runs the kernels, how many
// threads share the work, and whether denormals are flushed to zero.
//
// All settings are process-wide and may be changed at any time from any
// thread; a change applies to the steps that start afterwards. None of them
// changes results except set_flush_denormals.
//
// Environment variables, read once on first use:
//   LRCORE_ISA=avx2          force a variant (an unknown or unsupported name
//                            makes the first step throw instead of falling back)
//   LRCORE_NUM_THREADS=4     default thread count (a whole number >= 1)
#pragma once

#include <string>
#include <vector>

namespace lrcore {

/// Name of the kernel variant in use ("avx512", "avx2" or "baseline").
/// The first call picks the best variant this CPU supports, unless the
/// environment variable LRCORE_ISA names one (then it throws as set_isa does
/// if that name is unknown or unsupported).
std::string active_isa();

/// The variants this CPU can run, best first. Always ends with "baseline".
std::vector<std::string> available_isas();

/// The variants this build contains, whether or not this CPU can run them.
std::vector<std::string> compiled_isas();

/// Use the named variant from now on. Throws std::invalid_argument for an
/// unknown name and std::runtime_error for one this CPU cannot run.
void set_isa(const std::string& name);

/// Threads used by a step (the calling thread plus pool workers). The default
/// is the number of CPUs available to the process, or LRCORE_NUM_THREADS.
/// Small steps (about 32k elements in total) run on the calling thread alone.
int get_num_threads();
/// Sets the thread count (>= 1); throws std::invalid_argument otherwise.
/// Waits for a step in flight, then restarts the pool's workers.
void set_num_threads(int count);

/// When on, kernels run with denormal inputs and results flushed to zero
/// (x86 FTZ/DAZ), restoring the caller's floating-point mode afterwards.
/// Off by default, which matches torch and numpy exactly.
bool get_flush_denormals();
void set_flush_denormals(bool enabled);

}  // namespace lrcore
