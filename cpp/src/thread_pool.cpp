#include "thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define LRCORE_HAVE_ATFORK 1
#endif
#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#define LRCORE_HAVE_MXCSR 1
#endif

#include "lrcore/runtime.hpp"

namespace lrcore::detail {
namespace {

int cpus_available() {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    const unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? static_cast<int>(n) : 1;
}

int default_thread_count() {
    if (const char* env = std::getenv("LRCORE_NUM_THREADS"); env != nullptr && *env != '\0') {
        char* end = nullptr;
        const long n = std::strtol(env, &end, 10);
        if (end == env || *end != '\0' || n < 1 || n > 4096) {
            throw std::invalid_argument(std::string("LRCORE_NUM_THREADS must be a whole number >= 1, got '") +
                                        env + "'");
        }
        return static_cast<int>(n);
    }
    return cpus_available();
}

std::atomic<bool> flush_denormals{false};

/// The pool's locks and condition variables. They live behind a pointer so
/// that a child process made by fork() can swap in fresh ones: the parent's
/// copies may record owners and waiters (the parent's workers) that do not
/// exist in the child, and waiting on or signalling them there can block
/// forever. The child leaks the old set, which is cheaper than any attempt to
/// destroy objects in an undefined state.
struct Sync {
    std::mutex run_mutex;     // one step at a time uses the workers
    std::mutex config_mutex;  // thread count and the worker list
    std::mutex job_mutex;     // the published job
    std::condition_variable job_ready;
    std::condition_variable job_done;
};

class Pool {
public:
    static Pool& instance() {
        static Pool pool;
        return pool;
    }

    int num_threads() {
        std::lock_guard<std::mutex> lock(sync_->config_mutex);
        ensure_configured();
        return thread_count_;
    }

    void set_num_threads(int count) {
        if (count < 1) {
            throw std::invalid_argument("set_num_threads: count must be >= 1, got " + std::to_string(count));
        }
        std::lock_guard<std::mutex> run_lock(sync_->run_mutex);  // no step in flight while resizing
        std::lock_guard<std::mutex> lock(sync_->config_mutex);
        const int previous = thread_count_;
        const bool was_configured = configured_;
        stop_workers();
        thread_count_ = count;
        configured_ = true;
        try {
            start_workers();
        } catch (const std::system_error& e) {
            // Leave the pool as it was: the workers that did start are
            // stopped and the old count comes back. If even the old workers
            // cannot be recreated now, run() retries on the next step and
            // meanwhile runs steps on the calling thread.
            stop_workers();
            thread_count_ = previous;
            configured_ = was_configured;
            if (was_configured) try_start_workers();
            throw std::runtime_error("set_num_threads(" + std::to_string(count) +
                                     "): could not start the worker threads (" + e.what() +
                                     "); the thread count is unchanged");
        }
    }

    void run(std::size_t count, TaskRef task) {
        if (count == 0) return;
        Sync& sync = *sync_;
        std::unique_lock<std::mutex> run_lock(sync.run_mutex, std::try_to_lock);
        std::size_t helpers = 0;  // workers that take part in this job
        if (run_lock.owns_lock()) {
            std::lock_guard<std::mutex> lock(sync.config_mutex);
            ensure_configured();
            if (!running_) try_start_workers();
            helpers = workers_.size();
        }
        if (helpers == 0 || count == 1) {
            for (std::size_t i = 0; i < count; ++i) task(i);
            return;
        }
        std::size_t blocks = 0;
        {
            std::lock_guard<std::mutex> lock(sync.job_mutex);
            job_task_ = &task;
            job_count_ = count;
            job_blocks_ = blocks = std::min<std::size_t>(count, helpers + 1);
            next_index_.store(0, std::memory_order_relaxed);
            busy_workers_ = static_cast<int>(helpers);
            ++generation_;
        }
        sync.job_ready.notify_all();
        work_on_job(task, count, blocks);
        std::unique_lock<std::mutex> lock(sync.job_mutex);
        sync.job_done.wait(lock, [&] { return busy_workers_ == 0; });
        job_task_ = nullptr;
    }

    // fork() handlers, registered once with pthread_atfork. Before the fork
    // the forking thread takes every lock of the pool, in the order the pool
    // itself takes them (run, config, job): that waits for a step in flight
    // to finish and keeps new ones from starting, so the child's copy of the
    // pool's state is a quiet one (no job published, workers idle).
    void before_fork() {
        sync_->run_mutex.lock();
        sync_->config_mutex.lock();
        sync_->job_mutex.lock();
    }

    void after_fork_in_parent() {
        sync_->job_mutex.unlock();
        sync_->config_mutex.unlock();
        sync_->run_mutex.unlock();
    }

    // Only the forking thread exists in the child. The parent's workers are
    // gone, so their std::thread objects are neither joined nor destroyed
    // (destroying a joinable one would terminate): they are leaked along with
    // the old locks. The child keeps the configured thread count and starts
    // its own workers on its first parallel step.
    void after_fork_in_child() {
        sync_ = new Sync;  // the old one is deliberately leaked, see Sync
        static_cast<void>(new std::vector<std::thread>(std::move(workers_)));  // deliberately leaked
        workers_.clear();
        running_ = false;
        stopping_ = false;
        job_task_ = nullptr;
        busy_workers_ = 0;
    }

private:
    Pool() = default;
    ~Pool() {
        std::lock_guard<std::mutex> lock(sync_->config_mutex);
        stop_workers();
    }

    void ensure_configured() {
        if (!configured_) {
            thread_count_ = default_thread_count();
            configured_ = true;
        }
    }

    /// Starts thread_count_ - 1 workers; callers hold run_mutex and
    /// config_mutex. On failure the workers already started stay in workers_
    /// (for stop_workers) and the exception propagates.
    void start_workers() {
        stopping_ = false;
        running_ = true;
        // Each worker starts from the current job generation, read here while no
        // step can be in flight (callers hold run_mutex), so it cannot miss
        // the first job published after its creation.
        const std::uint64_t current = generation_;
        workers_.reserve(static_cast<std::size_t>(thread_count_ - 1));
        for (int i = 1; i < thread_count_; ++i) {
            workers_.emplace_back([this, current] { worker_loop(current); });
        }
    }

    /// start_workers() that gives up quietly: with no workers, steps run on
    /// the calling thread (same results, threads never change them) and the
    /// next step tries again.
    void try_start_workers() {
        try {
            start_workers();
        } catch (const std::system_error&) {
            stop_workers();
        }
    }

    void stop_workers() {
        {
            std::lock_guard<std::mutex> lock(sync_->job_mutex);
            stopping_ = true;
        }
        sync_->job_ready.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
        running_ = false;
    }

    /// Tasks are handed out in contiguous blocks, one per thread: each thread
    /// then streams through one long stretch of memory, which the hardware
    /// prefetchers follow far better than interleaved small pieces. A thread
    /// that finishes early takes any block not yet started.
    void work_on_job(const TaskRef& task, std::size_t count, std::size_t blocks) {
        for (;;) {
            const std::size_t block = next_index_.fetch_add(1, std::memory_order_relaxed);
            if (block >= blocks) break;
            const std::size_t begin = block * count / blocks;
            const std::size_t end = (block + 1) * count / blocks;
            for (std::size_t i = begin; i < end; ++i) task(i);
        }
    }

    void worker_loop(std::uint64_t seen) {
        // A worker belongs to one Sync for its whole life: workers are only
        // created and stopped in the process that owns them, never across a fork.
        Sync& sync = *sync_;
        for (;;) {
            const TaskRef* task = nullptr;
            std::size_t count = 0;
            std::size_t blocks = 0;
            {
                std::unique_lock<std::mutex> lock(sync.job_mutex);
                sync.job_ready.wait(lock, [&] { return stopping_ || generation_ != seen; });
                if (stopping_) return;
                seen = generation_;
                task = job_task_;
                count = job_count_;
                blocks = job_blocks_;
            }
            work_on_job(*task, count, blocks);
            {
                std::lock_guard<std::mutex> lock(sync.job_mutex);
                if (--busy_workers_ == 0) sync.job_done.notify_one();
            }
        }
    }

    Sync* sync_ = new Sync;  // never freed: see Sync; the pool lives as long as the process
    int thread_count_ = 1;
    bool configured_ = false;
    bool running_ = false;  // workers_ holds the thread_count_ - 1 workers
    std::vector<std::thread> workers_;

    std::uint64_t generation_ = 0;
    bool stopping_ = false;
    const TaskRef* job_task_ = nullptr;
    std::size_t job_count_ = 0;
    std::size_t job_blocks_ = 0;
    int busy_workers_ = 0;
    std::atomic<std::size_t> next_index_{0};
};

#if LRCORE_HAVE_ATFORK
void pool_before_fork() { Pool::instance().before_fork(); }
void pool_after_fork_in_parent() { Pool::instance().after_fork_in_parent(); }
void pool_after_fork_in_child() { Pool::instance().after_fork_in_child(); }

/// Registers the fork handlers when the library is loaded, so they are in
/// place before any thread can exist. Pool::instance() is created first:
/// handlers registered later run earlier before a fork and later after it, so
/// the pool is constructed before, and outlives, anything that registers its
/// own handlers afterwards.
[[maybe_unused]] const bool fork_handlers_registered = [] {
    Pool::instance();
    return pthread_atfork(pool_before_fork, pool_after_fork_in_parent, pool_after_fork_in_child) == 0;
}();
#endif

}  // namespace

void parallel_for(std::size_t count, TaskRef task) { Pool::instance().run(count, task); }

DenormalGuard::DenormalGuard() {
#if defined(LRCORE_HAVE_MXCSR)
    if (flush_denormals.load(std::memory_order_relaxed)) {
        saved_ = _mm_getcsr();
        constexpr unsigned ftz_daz = 0x8040;  // flush-to-zero (bit 15) | denormals-are-zero (bit 6)
        _mm_setcsr(saved_ | ftz_daz);
        changed_ = true;
    }
#endif
}

DenormalGuard::~DenormalGuard() {
#if defined(LRCORE_HAVE_MXCSR)
    if (changed_) _mm_setcsr(saved_);
#endif
}

}  // namespace lrcore::detail

namespace lrcore {

int get_num_threads() { return detail::Pool::instance().num_threads(); }
void set_num_threads(int count) { detail::Pool::instance().set_num_threads(count); }
bool get_flush_denormals() { return detail::flush_denormals.load(); }
void set_flush_denormals(bool enabled) { detail::flush_denormals.store(enabled); }

}  // namespace lrcore
