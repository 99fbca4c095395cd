// A persistent pool of worker threads shared by all steps.
//
// run(count, task) calls task(i) for every i in [0, count), spreading the
// indices over the calling thread and the workers, and returns when all are
// done. Threads are created once (and again only when the thread count
// changes), never per step. A caller that finds the pool busy with another
// caller's step runs its own tasks inline instead of waiting.
#pragma once

#include <cstddef>

namespace lrcore::detail {

/// Non-owning reference to a callable taking a task index.
class TaskRef {
public:
    template <class F>
    explicit TaskRef(F& f)
        : object_(&f), call_([](void* o, std::size_t i) { (*static_cast<F*>(o))(i); }) {}
    void operator()(std::size_t i) const { call_(object_, i); }

private:
    void* object_;
    void (*call_)(void*, std::size_t);
};

/// Runs task(i) for i in [0, count) on up to get_num_threads() threads.
void parallel_for(std::size_t count, TaskRef task);

/// Scoped floating-point mode for kernel code: flushes denormals to zero when
/// lrcore::get_flush_denormals() is on, and restores the previous mode. The
/// update rules hold one around each piece of work; passes that must see
/// denormals as they are (gradient norms) do not.
class DenormalGuard {
public:
    DenormalGuard();
    ~DenormalGuard();
    DenormalGuard(const DenormalGuard&) = delete;
    DenormalGuard& operator=(const DenormalGuard&) = delete;

private:
    unsigned saved_ = 0;
    bool changed_ = false;
};

}  // namespace lrcore::detail
