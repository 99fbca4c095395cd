// Coalescing a row-sparse gradient: which distinct rows it touches, and for
// each the positions of its value rows, so that duplicates can be summed.
//
// The result depends only on the indices: the distinct rows come out in
// ascending order and each row's positions in ascending order, so the sum of
// a row's values is always taken in the order they were given, whatever the
// thread count or instruction set. Nothing here allocates once the output's
// vectors have grown to the largest gradient seen (they are reused per thread).
//
// Two methods were measured on the embedding workload (16384 Zipf indices into
// 2^20 rows; bench/coalesce_methods.cpp reproduces it): an LSD radix sort of
// (row, position) pairs and a hash table keyed by row. Both are here so the
// measurement uses the library's own code; the step uses radix_coalesce (see
// the CHANGELOG entry for the figures).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace lrcore::detail {

/// The distinct rows of a gradient and where their values are.
struct CoalescedIndex {
    std::vector<std::int64_t> rows;       // distinct rows, ascending
    std::vector<std::size_t> starts;      // rows.size() + 1 offsets into positions
    std::vector<std::size_t> positions;   // value rows of rows[u]: positions[starts[u] .. starts[u + 1])
    // Scratch of the sort.
    std::vector<std::uint64_t> keys, sorted;
    std::vector<std::size_t> counts;
};

/// The position of the first index outside [0, table_rows), or `count` when all are inside.
template <class Index>
std::size_t first_out_of_range(const Index* indices, std::size_t count, std::size_t table_rows) {
    for (std::size_t k = 0; k < count; ++k) {
        const Index index = indices[k];
        if (index < 0 || static_cast<std::uint64_t>(index) >= table_rows) return k;
    }
    return count;
}

/// Radix-sorts (row, position) pairs by row (stable, so positions stay
/// ascending within a row), 11 bits per pass, only over the bits a row of
/// this table can have. Every index must be in [0, table_rows).
template <class Index>
void radix_coalesce(const Index* indices, std::size_t count, std::size_t table_rows, CoalescedIndex& out) {
    out.rows.clear();
    out.starts.clear();
    out.positions.clear();
    out.keys.resize(count);
    out.sorted.resize(count);
    // Pack (row, position): rows above 2^32 or more than 2^32 positions take the
    // wide path (two 64-bit words would be needed); that is std::stable_sort below.
    const bool packs = table_rows <= (std::uint64_t{1} << 32) && count <= (std::uint64_t{1} << 32);
    if (!packs) {
        out.positions.resize(count);
        for (std::size_t k = 0; k < count; ++k) out.positions[k] = k;
        std::stable_sort(out.positions.begin(), out.positions.end(),
                         [&](std::size_t a, std::size_t b) { return indices[a] < indices[b]; });
    } else {
        for (std::size_t k = 0; k < count; ++k) {
            out.keys[k] = (static_cast<std::uint64_t>(indices[k]) << 32) | static_cast<std::uint64_t>(k);
        }
        unsigned row_bits = 0;
        while (row_bits < 32 && (std::uint64_t{1} << row_bits) < table_rows) ++row_bits;
        constexpr unsigned bits = 11;
        constexpr std::size_t buckets = std::size_t{1} << bits;
        out.counts.resize(buckets);
        std::uint64_t* from = out.keys.data();
        std::uint64_t* to = out.sorted.data();
        for (unsigned shift = 32; shift < 32 + row_bits; shift += bits) {
            std::fill(out.counts.begin(), out.counts.end(), std::size_t{0});
            for (std::size_t k = 0; k < count; ++k) ++out.counts[(from[k] >> shift) & (buckets - 1)];
            std::size_t total = 0;
            for (std::size_t& c : out.counts) {
                const std::size_t n = c;
                c = total;
                total += n;
            }
            for (std::size_t k = 0; k < count; ++k) to[out.counts[(from[k] >> shift) & (buckets - 1)]++] = from[k];
            std::swap(from, to);
        }
        out.positions.resize(count);
        for (std::size_t k = 0; k < count; ++k) out.positions[k] = static_cast<std::size_t>(from[k] & 0xffffffffu);
    }
    for (std::size_t k = 0; k < count; ++k) {
        const auto row = static_cast<std::int64_t>(indices[out.positions[k]]);
        if (out.rows.empty() || out.rows.back() != row) {
            out.rows.push_back(row);
            out.starts.push_back(k);
        }
    }
    out.starts.push_back(count);
}

/// The same result by hashing: rows are found in a table keyed by row (open
/// addressing), positions grouped by a counting pass, then the distinct rows
/// sorted (few) and their groups put in that order. With `ascending` false the
/// rows stay in first-occurrence order (as deterministic, but not sorted).
template <class Index>
void hash_coalesce(const Index* indices, std::size_t count, CoalescedIndex& out, bool ascending = true) {
    out.rows.clear();
    out.starts.clear();
    out.positions.clear();
    std::size_t capacity = 16;
    while (capacity < 2 * count) capacity *= 2;
    // keys: the slot's row + 1 (0 = empty); sorted: the slot's group number.
    out.keys.assign(capacity, 0);
    out.sorted.resize(capacity);
    out.counts.resize(count);  // group of each position
    std::vector<std::size_t>& group_of = out.counts;
    std::vector<std::int64_t> group_rows;  // first-occurrence order
    group_rows.reserve(count);
    for (std::size_t k = 0; k < count; ++k) {
        const auto row = static_cast<std::uint64_t>(indices[k]);
        std::size_t slot = static_cast<std::size_t>((row * 0x9E3779B97F4A7C15ull) >> 20) & (capacity - 1);
        while (out.keys[slot] != 0 && out.keys[slot] != row + 1) slot = (slot + 1) & (capacity - 1);
        if (out.keys[slot] == 0) {
            out.keys[slot] = row + 1;
            out.sorted[slot] = group_rows.size();
            group_rows.push_back(static_cast<std::int64_t>(row));
        }
        group_of[k] = static_cast<std::size_t>(out.sorted[slot]);
    }
    const std::size_t groups = group_rows.size();
    // Order the groups by row, then lay out each group's positions in ascending order.
    std::vector<std::size_t> order(groups);
    for (std::size_t u = 0; u < groups; ++u) order[u] = u;
    if (ascending) {
        std::sort(order.begin(), order.end(),
                  [&](std::size_t a, std::size_t b) { return group_rows[a] < group_rows[b]; });
    }
    std::vector<std::size_t> rank(groups), fill(groups + 1, 0);
    for (std::size_t u = 0; u < groups; ++u) rank[order[u]] = u;
    for (std::size_t k = 0; k < count; ++k) ++fill[rank[group_of[k]] + 1];
    for (std::size_t u = 0; u < groups; ++u) fill[u + 1] += fill[u];
    out.starts.assign(fill.begin(), fill.end());
    out.positions.resize(count);
    for (std::size_t k = 0; k < count; ++k) out.positions[fill[rank[group_of[k]]]++] = k;
    out.rows.resize(groups);
    for (std::size_t u = 0; u < groups; ++u) out.rows[u] = group_rows[order[u]];
}

}  // namespace lrcore::detail
