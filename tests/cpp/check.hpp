// A minimal test harness for the C++ tests: no framework, no registration.
//
// LRCORE_CHECK(condition) and LRCORE_CHECK_THROWS(expression, Exception)
// record a failure with its location and keep going, so one run reports every
// broken case; a test program ends with `return lrcore_test::finish();`,
// which prints a summary and returns the failure count as the exit status
// (non-zero fails the ctest).
#pragma once

#include <cstdio>
#include <string>

namespace lrcore_test {

struct Counters {
    long checks = 0;
    long failures = 0;
};

inline Counters& counters() {
    static Counters c;
    return c;
}

/// Records one check; prints `message` with its location when it failed.
inline bool record(bool ok, const char* file, int line, const std::string& message) {
    ++counters().checks;
    if (!ok) {
        ++counters().failures;
        // Cap the output: a broken kernel fails thousands of cases the same way.
        if (counters().failures <= 50) std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, message.c_str());
        if (counters().failures == 50) std::fprintf(stderr, "(further failures not printed)\n");
    }
    return ok;
}

/// Prints the summary; the return value is the process exit status.
inline int finish() {
    const Counters& c = counters();
    std::printf("%ld checks, %ld failed\n", c.checks, c.failures);
    return c.failures == 0 ? 0 : 1;
}

}  // namespace lrcore_test

#define LRCORE_CHECK(condition) ::lrcore_test::record(static_cast<bool>(condition), __FILE__, __LINE__, #condition)

#define LRCORE_CHECK_MESSAGE(condition, message) \
    ::lrcore_test::record(static_cast<bool>(condition), __FILE__, __LINE__, (message))

#define LRCORE_CHECK_THROWS(expression, Exception)                                                  \
    do {                                                                                            \
        bool lrcore_thrown_ = false;                                                                \
        try {                                                                                       \
            (void)(expression);                                                                     \
        } catch (const Exception&) {                                                                \
            lrcore_thrown_ = true;                                                                  \
        } catch (...) {                                                                             \
        }                                                                                           \
        ::lrcore_test::record(lrcore_thrown_, __FILE__, __LINE__, #expression " throws " #Exception); \
    } while (false)
