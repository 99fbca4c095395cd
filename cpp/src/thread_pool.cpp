#include "thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
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

class Pool {
public:
    static Pool& instance() {
        static Pool pool;
        return pool;
    }

    int num_threads() {
        std::lock_guard<std::mutex> lock(config_mutex_);
        ensure_configured();
        return thread_count_;
    }

    void set_num_threads(int count) {
        if (count < 1) {
            throw std::invalid_argument("set_num_threads: count must be >= 1, got " + std::to_string(count));
        }
        std::lock_guard<std::mutex> run_lock(run_mutex_);  // no step in flight while resizing
        std::lock_guard<std::mutex> lock(config_mutex_);
        stop_workers();
        thread_count_ = count;
        configured_ = true;
        start_workers();
    }

    void run(std::size_t count, TaskRef task) {
        if (count == 0) return;
        std::unique_lock<std::mutex> run_lock(run_mutex_, std::try_to_lock);
        int threads = 1;
        if (run_lock.owns_lock()) {
            std::lock_guard<std::mutex> lock(config_mutex_);
            ensure_configured();
            threads = thread_count_;
        }
        if (threads <= 1 || count == 1) {
            for (std::size_t i = 0; i < count; ++i) task(i);
            return;
        }
        {
            std::lock_guard<std::mutex> lock(job_mutex_);
            job_task_ = &task;
            job_count_ = count;
            job_blocks_ = std::min<std::size_t>(count, static_cast<std::size_t>(threads));
            next_index_.store(0, std::memory_order_relaxed);
            busy_workers_ = static_cast<int>(workers_.size());
            ++generation_;
        }
        job_ready_.notify_all();
        work_on_job(task, count, job_blocks_);
        std::unique_lock<std::mutex> lock(job_mutex_);
        job_done_.wait(lock, [&] { return busy_workers_ == 0; });
        job_task_ = nullptr;
    }

private:
    Pool() = default;
    ~Pool() {
        std::lock_guard<std::mutex> lock(config_mutex_);
        stop_workers();
    }

    void ensure_configured() {
        if (!configured_) {
            thread_count_ = default_thread_count();
            configured_ = true;
            start_workers();
        }
    }

    void start_workers() {
        stopping_ = false;
        // Each worker starts from the current job generation, read here while no
        // step can be in flight (callers hold run_mutex_), so it cannot miss
        // the first job published after its creation.
        const std::uint64_t current = generation_;
        for (int i = 1; i < thread_count_; ++i) {
            workers_.emplace_back([this, current] { worker_loop(current); });
        }
    }

    void stop_workers() {
        {
            std::lock_guard<std::mutex> lock(job_mutex_);
            stopping_ = true;
        }
        job_ready_.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
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
        for (;;) {
            const TaskRef* task = nullptr;
            std::size_t count = 0;
            std::size_t blocks = 0;
            {
                std::unique_lock<std::mutex> lock(job_mutex_);
                job_ready_.wait(lock, [&] { return stopping_ || generation_ != seen; });
                if (stopping_) return;
                seen = generation_;
                task = job_task_;
                count = job_count_;
                blocks = job_blocks_;
            }
            work_on_job(*task, count, blocks);
            {
                std::lock_guard<std::mutex> lock(job_mutex_);
                if (--busy_workers_ == 0) job_done_.notify_one();
            }
        }
    }

    std::mutex run_mutex_;     // one step at a time uses the workers
    std::mutex config_mutex_;  // thread count
    int thread_count_ = 1;
    bool configured_ = false;
    std::vector<std::thread> workers_;

    std::mutex job_mutex_;
    std::condition_variable job_ready_;
    std::condition_variable job_done_;
    std::uint64_t generation_ = 0;
    bool stopping_ = false;
    const TaskRef* job_task_ = nullptr;
    std::size_t job_count_ = 0;
    std::size_t job_blocks_ = 0;
    int busy_workers_ = 0;
    std::atomic<std::size_t> next_index_{0};
};

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
