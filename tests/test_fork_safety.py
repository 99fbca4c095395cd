"""The thread pool across fork(): children made after the pool has started work.

A child of fork() has only the forking thread: the parent's workers and any
lock state they left behind are gone. Before the pool was fork-aware, a
child's first pool-sized step waited forever for workers it did not have. So
every scenario runs in its own interpreter under a timeout, and every child
is waited for with a deadline: a regression fails the test instead of hanging.

Results never depend on the thread count, so a child's results must be
bitwise equal to the parent's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


pytestmark = pytest.mark.skipif(os.name != "posix" or not hasattr(os, "fork"),
                                reason="fork() and fork handlers are POSIX-only")

# Shared by every scenario: a pool-sized workload (2**20 float32 elements
# with 2 threads is well past the size that is split over the pool) and its
# results as bytes, so parent and child compare them bitwise.
PRELUDE = textwrap.dedent("""
    import multiprocessing, os, sys, threading, time
    import numpy as np
    import lrcore

    N = 2 ** 20

    def workload(seed=0):
        rng = np.random.default_rng(seed)
        p = rng.standard_normal(N).astype(np.float32)
        g = rng.standard_normal(N).astype(np.float32)
        m, v = np.zeros_like(p), np.zeros_like(p)
        steps = np.zeros(1, np.int64)
        lrcore.functional.adam([p], [g], [m], [v], steps, lr=0.01)
        norm = lrcore.global_norm([g, p])
        total = lrcore.clip_grad_norm([g], max_norm=1.0)
        finite = lrcore.all_finite([g, p, m, v])
        g_bad = g.copy()
        g_bad[N // 2 + 3] = np.inf
        not_finite = lrcore.all_finite([p, g_bad])
        return b"".join([p.tobytes(), m.tobytes(), v.tobytes(), g.tobytes(),
                         np.array([norm, total], np.float64).tobytes(), bytes([finite, not_finite])])

    def wait_for(pid, seconds=60):
        # The exit code of child `pid`, or 99 after killing it if it is still running at the deadline.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return 99

    def check(condition, message):
        if not condition:
            print("FAILED:", message, flush=True)
            sys.exit(1)

    lrcore.set_num_threads(2)
    EXPECTED = workload()
    check(EXPECTED[-2:] == bytes([1, 0]), "all_finite results")
""")


def run_scenario(tmp_path, body: str, timeout: float = 120) -> str:
    script = tmp_path / "scenario.py"
    script.write_text(PRELUDE + textwrap.dedent(body) + "\nprint('OK', flush=True)\n")
    environment = {k: v for k, v in os.environ.items() if k not in ("LRCORE_NUM_THREADS", "LRCORE_ISA")}
    try:
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout,
                                env=environment, cwd=tmp_path)
    except subprocess.TimeoutExpired as e:  # pragma: no cover - only on a regression
        pytest.fail(f"scenario hung (killed after {timeout} s); output so far: {e.stdout!r} {e.stderr!r}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK"), result.stdout
    return result.stdout


def test_os_fork_child_runs_pool_sized_work(tmp_path):
    run_scenario(tmp_path, """
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                if lrcore.get_num_threads() != 2:
                    code = 2        # the child keeps the configured count
                elif workload() != EXPECTED:
                    code = 3        # bitwise, like the parent's
                else:
                    lrcore.set_num_threads(3)   # the child can resize its own pool
                    if workload() != EXPECTED or lrcore.get_num_threads() != 3:
                        code = 4
            except BaseException:
                code = 5
            os._exit(code)
        check(wait_for(pid) == 0, f"child failed")
        # The parent is unaffected: same pool, same results, for several more steps.
        check(lrcore.get_num_threads() == 2, "parent thread count")
        for _ in range(3):
            check(workload() == EXPECTED, "parent after fork")
    """)


def test_fork_of_a_fork(tmp_path):
    # The child's lazily started pool must itself survive a fork.
    run_scenario(tmp_path, """
        pid = os.fork()
        if pid == 0:
            ok = workload() == EXPECTED
            grandchild = os.fork()
            if grandchild == 0:
                os._exit(0 if workload() == EXPECTED else 3)
            ok = ok and wait_for(grandchild) == 0 and workload() == EXPECTED
            os._exit(0 if ok else 3)
        check(wait_for(pid) == 0, "child or grandchild failed")
        check(workload() == EXPECTED, "parent after fork")
    """)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_workers(tmp_path, method):
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"start method {method!r} is not available here")
    run_scenario(tmp_path, f"""
        def worker(connection):
            lrcore.set_num_threads(2)   # a no-op after fork; spawned workers start fresh
            connection.send(workload())
            connection.close()

        if __name__ == "__main__":
            context = multiprocessing.get_context({method!r})
            for _ in range(2):
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=worker, args=(sender,))
                process.start()
                sender.close()
                check(receiver.poll(60), "worker produced no result within 60 s")
                result = receiver.recv()
                process.join(timeout=60)
                if process.exitcode is None:
                    process.kill()
                check(process.exitcode == 0, f"worker exit code {{process.exitcode}}")
                check(result == EXPECTED, "worker result differs from the parent's")
                check(workload() == EXPECTED, "parent after a worker")
    """)


def test_fork_while_another_thread_is_stepping(tmp_path):
    # Another thread runs pool-sized steps back to back while the main thread
    # forks: each fork happens between two of its steps (the fork handlers
    # wait for a step in flight), and each child must still work.
    run_scenario(tmp_path, """
        stop = threading.Event()
        errors = []
        steps_done = [0]

        def stepper():
            try:
                while not stop.is_set():
                    if workload(1) != EXPECTED_1:
                        errors.append("stepping thread got different results")
                    steps_done[0] += 1
            except BaseException as e:
                errors.append(repr(e))

        EXPECTED_1 = workload(1)
        thread = threading.Thread(target=stepper)
        thread.start()
        try:
            for attempt in range(4):
                while steps_done[0] < 2 * (attempt + 1):   # the other thread is busy stepping
                    time.sleep(0.001)
                pid = os.fork()
                if pid == 0:
                    ok = workload() == EXPECTED and workload(1) == EXPECTED_1
                    os._exit(0 if ok else 3)
                check(wait_for(pid) == 0, f"child {attempt} failed")
        finally:
            stop.set()
            thread.join(timeout=60)
        check(not thread.is_alive(), "stepping thread did not finish")
        check(not errors, errors)
        check(workload() == EXPECTED, "parent after forks")
    """, timeout=180)


def test_failed_resize_keeps_the_old_pool(tmp_path):
    # Thread creation fails when the address space cannot hold another thread
    # stack; this works even as root (unlike RLIMIT_NPROC). The limit is only
    # the soft one and is raised again right after the failed call.
    resource = pytest.importorskip("resource")
    if not hasattr(resource, "RLIMIT_AS"):
        pytest.skip("no RLIMIT_AS on this platform")
    output = run_scenario(tmp_path, """
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as f:
            in_use = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (in_use + 64 * 2 ** 20, hard))
        try:
            lrcore.set_num_threads(64)   # 63 stacks of 8 MiB by default: cannot fit
        except RuntimeError as e:
            failed = str(e)
        else:
            failed = None
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        if failed is None:
            print("NOT PROVOKED", flush=True)
        else:
            check("could not start the worker threads" in failed, failed)
            check("thread count is unchanged" in failed, failed)
        check(lrcore.get_num_threads() == (2 if failed else 64), "thread count after the resize")
        for _ in range(2):
            check(workload() == EXPECTED, "pool after the failed resize")
        lrcore.set_num_threads(3)       # and it can still be resized
        check(workload() == EXPECTED, "pool after a later resize")
    """)
    if "NOT PROVOKED" in output:
        pytest.skip("thread creation did not fail under the address-space limit here")


def test_fork_while_another_thread_switches_the_kernel_variant(tmp_path):
    # The variant choice has a lock of its own; a fork while another thread holds
    # it (set_isa in a loop) must not leave the child unable to step.
    run_scenario(tmp_path, """
        names = lrcore.available_isas()
        stop = threading.Event()
        def switch():
            k = 0
            while not stop.is_set():
                lrcore.set_isa(names[k % len(names)])
                k += 1
        switcher = threading.Thread(target=switch)
        switcher.start()
        try:
            for _ in range(8):
                pid = os.fork()
                if pid == 0:
                    ok = lrcore.isa() in names and workload() == EXPECTED
                    lrcore.set_isa(names[-1])
                    os._exit(0 if ok and lrcore.isa() == names[-1] else 3)
                check(wait_for(pid) == 0, "child after a fork during set_isa failed or hung")
        finally:
            stop.set()
            switcher.join()
        check(workload() == EXPECTED, "parent after the forks")
    """)
