// How a step's work is cut up: fixed chunks of each tensor, run on the
// calling thread when the step is small and on the pool otherwise. Every
// multi-tensor pass (update rules, gradient checks, the benchmark's roof)
// uses these, so they all split work the same way.
//
// Chunk boundaries depend only on the tensor sizes and the element type, never
// on the thread count, so results (and reductions done per chunk, in chunk
// order) are the same whatever the number of threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "thread_pool.hpp"

namespace lrcore::detail {

/// Each chunk covers at most this many bytes of one tensor's elements.
constexpr std::size_t chunk_bytes = 64 * 1024;
/// Below this many bytes of elements in a whole pass, waking the pool (tens of
/// microseconds on a loaded machine) costs more than more threads save.
constexpr std::size_t parallel_threshold_bytes = 1 << 20;

struct Chunk {
    std::size_t tensor;
    std::size_t begin;
    std::size_t end;
};

/// The chunks of `count` tensors of T whose sizes are size_of(i), in tensor
/// order. The vector belongs to the calling thread and is reused by its next call.
template <class T, class SizeOf>
const std::vector<Chunk>& chunks_of(std::size_t count, SizeOf&& size_of) {
    constexpr std::size_t chunk_elements = chunk_bytes / sizeof(T);
    thread_local std::vector<Chunk> chunks;
    chunks.clear();
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t size = size_of(i);
        for (std::size_t begin = 0; begin < size; begin += chunk_elements) {
            chunks.push_back({i, begin, std::min(size, begin + chunk_elements)});
        }
    }
    return chunks;
}

/// Whether a pass over `elements` elements of T is worth the pool.
template <class T>
bool worth_parallel(std::size_t elements) {
    return elements * sizeof(T) >= parallel_threshold_bytes;
}

/// Calls run(tensor, begin, end) over every element of `count` tensors: whole
/// tensors on the calling thread for a small pass, fixed chunks on the pool
/// otherwise.
template <class T, class SizeOf, class Run>
void for_each_range(std::size_t count, SizeOf&& size_of, Run&& run) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) total += size_of(i);
    if (total == 0) return;
    if (!worth_parallel<T>(total)) {
        for (std::size_t i = 0; i < count; ++i) {
            if (const std::size_t size = size_of(i); size != 0) run(i, std::size_t{0}, size);
        }
        return;
    }
    const std::vector<Chunk>& chunks = chunks_of<T>(count, size_of);
    const Chunk* data = chunks.data();
    auto task = [&](std::size_t c) { run(data[c].tensor, data[c].begin, data[c].end); };
    parallel_for(chunks.size(), TaskRef(task));
}

}  // namespace lrcore::detail
