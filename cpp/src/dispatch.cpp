#include "dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "lrcore/runtime.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define LRCORE_HAVE_ATFORK 1
#endif

namespace lrcore::kernels {
namespace {

bool always_supported() { return true; }

#if defined(LRCORE_HAVE_X86_VARIANTS)
// __builtin_cpu_supports also checks that the operating system saves the
// wider registers (XCR0), so a "yes" means the instructions are usable.
bool cpu_has_avx2() {
    __builtin_cpu_init();
    // The AVX2 variant converts float16 with F16C and sums squares with FMA,
    // which every AVX2 CPU also has.
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
}
bool cpu_has_avx512() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#endif

struct Variant {
    const char* name;
    bool (*supported)();
    const KernelTable& (*table)();
};

// Best first.
const Variant variants[] = {
#if defined(LRCORE_HAVE_X86_VARIANTS)
    {"avx512", &cpu_has_avx512, &avx512_kernels},
    {"avx2", &cpu_has_avx2, &avx2_kernels},
#endif
    {"baseline", &always_supported, &baseline_kernels},
};

std::string joined_names() {
    std::string out;
    for (const auto& v : variants) {
        if (!out.empty()) out += ", ";
        out += v.name;
    }
    return out;
}

const Variant& find_variant(const std::string& name, const char* source) {
    for (const auto& v : variants) {
        if (name == v.name) {
            if (!v.supported()) {
                throw std::runtime_error(std::string(source) + ": kernel variant '" + name +
                                         "' is not supported by this CPU");
            }
            return v;
        }
    }
    throw std::invalid_argument(std::string(source) + ": unknown kernel variant '" + name +
                                "' (this build has: " + joined_names() + ")");
}

const KernelTable& initial_choice() {
    if (const char* forced = std::getenv("LRCORE_ISA"); forced != nullptr && *forced != '\0') {
        return find_variant(forced, "LRCORE_ISA").table();
    }
    for (const auto& v : variants) {
        if (v.supported()) return v.table();
    }
    return baseline_kernels();
}

std::atomic<const KernelTable*> active{nullptr};
std::mutex choice_mutex;

#if LRCORE_HAVE_ATFORK
// A fork while another thread chooses or sets the variant would leave the
// child with choice_mutex locked by a thread it does not have. The forking
// thread takes the lock before the fork and releases it on both sides, so the
// child always starts with it free.
[[maybe_unused]] const bool fork_handlers_registered = pthread_atfork(
    [] { choice_mutex.lock(); }, [] { choice_mutex.unlock(); }, [] { choice_mutex.unlock(); }) == 0;
#endif

}  // namespace

const KernelTable& active_kernels() {
    const KernelTable* table = active.load(std::memory_order_acquire);
    if (table == nullptr) {
        std::lock_guard<std::mutex> lock(choice_mutex);
        table = active.load(std::memory_order_relaxed);
        if (table == nullptr) {
            table = &initial_choice();  // may throw; then nothing is stored
            active.store(table, std::memory_order_release);
        }
    }
    return *table;
}

}  // namespace lrcore::kernels

namespace lrcore {

std::string active_isa() { return kernels::active_kernels().name; }

std::vector<std::string> available_isas() {
    std::vector<std::string> names;
    for (const auto& v : kernels::variants) {
        if (v.supported()) names.emplace_back(v.name);
    }
    return names;
}

std::vector<std::string> compiled_isas() {
    std::vector<std::string> names;
    for (const auto& v : kernels::variants) names.emplace_back(v.name);
    return names;
}

void set_isa(const std::string& name) {
    const auto& table = kernels::find_variant(name, "set_isa").table();
    std::lock_guard<std::mutex> lock(kernels::choice_mutex);
    kernels::active.store(&table, std::memory_order_release);
}

}  // namespace lrcore
