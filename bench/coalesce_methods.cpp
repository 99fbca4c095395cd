// Times the two coalescing methods of cpp/src/coalesce.hpp on the embedding
// workload's indices (16384 Zipf(1.1) draws into 2^20 rows, as
// lrcore.bench draws them) and checks that they agree. Build and run:
//   g++ -O2 -std=c++17 -Icpp/src bench/coalesce_methods.cpp -o /tmp/coalesce && /tmp/coalesce
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "coalesce.hpp"

int main() {
    const std::size_t rows = std::size_t{1} << 20, count = 16384;
    // Zipf by inverse transform over a truncated power law (the shape matters, not the exact draw).
    std::mt19937_64 rng(0);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    std::vector<std::int64_t> indices(count);
    const double s = 1.1;
    for (auto& index : indices) {
        const double u = uniform(rng);
        const double x = std::pow(1.0 - u * (1.0 - std::pow(double(rows), 1.0 - s)), 1.0 / (1.0 - s));
        index = std::min<std::int64_t>(static_cast<std::int64_t>(x) - 1, rows - 1);
        index = (index * 2654435761u) % rows;  // scatter the popular rows over the table
    }
    lrcore::detail::CoalescedIndex a, b;
    auto time = [&](auto&& f) {
        double best = 1e30;
        for (int r = 0; r < 200; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            f();
            best = std::min(best, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        }
        return best;
    };
    const double radix = time([&] { lrcore::detail::radix_coalesce(indices.data(), count, rows, a); });
    const double hash = time([&] { lrcore::detail::hash_coalesce(indices.data(), count, b); });
    lrcore::detail::CoalescedIndex c;
    const double unsorted = time([&] { lrcore::detail::hash_coalesce(indices.data(), count, c, false); });
    const bool same = a.rows == b.rows && a.starts == b.starts && a.positions == b.positions;
    std::printf("distinct rows %zu of %zu indices\nradix sort %.1f us\nhash       %.1f us (rows ascending)\nhash       %.1f us (first-occurrence order)\nsame result: %s\n",
                a.rows.size(), count, radix, hash, unsorted, same ? "yes" : "NO");
    return same ? 0 : 1;
}
