// The whole-gradient passes (lrcore/gradients.hpp) give bitwise the same
// results on every instruction set and thread count, match a long-double
// reference closely, and all_finite finds a non-finite value wherever it is
// (before the aligned vector body, inside it, in the tail of a chunk).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "lrcore/gradients.hpp"
#include "lrcore/runtime.hpp"

namespace {

template <class T>
struct Arrays {
    std::vector<std::vector<T>> storage;
    std::vector<const T*> pointers;
    std::vector<std::size_t> sizes;
};

// Sizes that are multiples of no vector width, one larger than a chunk, and
// start offsets of 0..3 elements so every alignment of the vector body occurs.
template <class T>
Arrays<T> make_arrays(std::uint32_t seed) {
    const std::size_t sizes[] = {1, 3, 17, 31, 33, 129, 4099, 70001, 300007};
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    Arrays<T> a;
    std::size_t offset = 0;
    for (const std::size_t size : sizes) {
        std::vector<T> buffer(size + 4);
        for (auto& v : buffer) v = static_cast<T>(normal(rng) * 3.0);
        a.storage.push_back(std::move(buffer));
        a.sizes.push_back(size);
        offset = (offset + 1) % 4;
        a.pointers.push_back(a.storage.back().data() + offset);
    }
    return a;
}

std::uint64_t bits_of(double x) {
    std::uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

template <class T>
void check_type(const std::vector<std::string>& isas, const char* type_name) {
    const Arrays<T> a = make_arrays<T>(sizeof(T) == 4 ? 11 : 12);
    const T* const* p = a.pointers.data();
    const std::size_t* s = a.sizes.data();
    const std::size_t n = a.sizes.size();
    long double squares = 0, magnitudes = 0, cubes = 0, largest = 0;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < s[i]; ++j) {
            const long double v = std::fabs(static_cast<long double>(p[i][j]));
            squares += v * v;
            magnitudes += v;
            cubes += v * v * v;
            largest = v > largest ? v : largest;
        }
    }
    const double powers[] = {2.0, 1.0, 3.0, 0.5};
    const long double expected[] = {squares, magnitudes, cubes, 0};
    std::vector<std::uint64_t> first;
    for (const auto& isa : isas) {
        lrcore::set_isa(isa);
        for (const int threads : {1, 2, 3}) {
            lrcore::set_num_threads(threads);
            std::vector<std::uint64_t> got;
            for (std::size_t k = 0; k < 4; ++k) {
                const double sum = lrcore::sum_of_powers(p, s, n, powers[k]);
                got.push_back(bits_of(sum));
                if (k < 3) {
                    const double relative = std::fabs(static_cast<double>((sum - expected[k]) / expected[k]));
                    LRCORE_CHECK_MESSAGE(relative < 1e-12, std::string(type_name) + " " + isa + " p=" +
                                                               std::to_string(powers[k]) + " relative error " +
                                                               std::to_string(relative));
                }
            }
            const double top = lrcore::max_abs(p, s, n);
            LRCORE_CHECK_MESSAGE(top == static_cast<double>(largest), std::string(type_name) + " " + isa + " max_abs");
            got.push_back(bits_of(top));
            LRCORE_CHECK(lrcore::all_finite(p, s, n));
            if (first.empty()) first = got;
            LRCORE_CHECK_MESSAGE(got == first, std::string(type_name) + " " + isa + " threads " +
                                                   std::to_string(threads) + ": not bitwise equal to " + isas[0]);
        }
    }

    // One NaN or Inf at a time, at every position of a 2.5-chunk array, start
    // offsets 0..3, sampled densely near chunk starts and ends.
    const std::size_t chunk = 64 * 1024 / sizeof(T);
    std::vector<T> buffer(chunk * 5 / 2 + 40, static_cast<T>(0.5));
    for (const auto& isa : isas) {
        lrcore::set_isa(isa);
        for (std::size_t offset = 0; offset < 4; ++offset) {
            T* x = buffer.data() + offset;
            const std::size_t size = buffer.size() - 4;
            const T* arrays[] = {x};
            const std::size_t sizes_one[] = {size};
            for (std::size_t at = 0; at < size; ++at) {
                const std::size_t in_chunk = at % chunk;
                if (in_chunk > 70 && in_chunk + 70 < chunk && at + 70 < size && at % 997 != 0) continue;
                for (const T bad : {std::numeric_limits<T>::quiet_NaN(), -std::numeric_limits<T>::infinity()}) {
                    x[at] = bad;
                    const bool finite = lrcore::all_finite(arrays, sizes_one, 1);
                    const double top = lrcore::max_abs(arrays, sizes_one, 1);
                    x[at] = static_cast<T>(0.5);
                    LRCORE_CHECK_MESSAGE(!finite, std::string(type_name) + " " + isa + " missed a non-finite at " +
                                                      std::to_string(at) + " offset " + std::to_string(offset));
                    LRCORE_CHECK_MESSAGE(bad == bad ? std::isinf(top) : std::isnan(top),
                                         std::string(type_name) + " " + isa + " max_abs at " + std::to_string(at));
                }
            }
        }
    }
}

}  // namespace

int main() {
    const std::vector<std::string> isas = lrcore::available_isas();
    const std::string initial_isa = lrcore::active_isa();
    const int initial_threads = lrcore::get_num_threads();
    check_type<float>(isas, "float32");
    check_type<double>(isas, "float64");
    lrcore::set_isa(initial_isa);
    lrcore::set_num_threads(initial_threads);
    return lrcore_test::finish();
}
