"""Cython code can cimport lrcore's kernels (lrcore/cpp.pxd) and call them without the GIL.

Compiles a small extension against the installed package, the way a user
would (headers from lrcore.get_include(), the static library from
lrcore.get_library()), and checks that it computes exactly what the Python
API computes. Skips when Cython, a C++ compiler or Python's headers are missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lrcore
from lrcore import schedules
from lrcore._build_info import get_include, get_library

pytest.importorskip("Cython")

EXTENSION_SOURCE = textwrap.dedent(
    """
    # distutils: language = c++
    # cython: language_level=3, boundscheck=False, wraparound=False
    from libc.stdint cimport int64_t, uint16_t
    from libcpp.string cimport string

    from lrcore cimport cpp
    from lrcore.cpp cimport AdamConfig, AdamTensor, adam_step, CosineAnnealing


    def train_quadratic(float[::1] param, const float[::1] target, float[::1] grad, float[::1] exp_avg,
                        float[::1] exp_avg_sq, int64_t steps, double lr, double weight_decay):
        \"\"\"AdamW on 0.5 * |param - target|^2, lr cosine-annealed to 0 over `steps`, all without the GIL.\"\"\"
        cdef AdamConfig config
        config.weight_decay = weight_decay
        config.decoupled_weight_decay = True
        cdef CosineAnnealing schedule
        schedule.lr = lr
        schedule.t_max = steps
        schedule.eta_min = 0.0
        cdef AdamTensor[float] tensor
        tensor.param = &param[0]
        tensor.grad = &grad[0]
        tensor.exp_avg = &exp_avg[0]
        tensor.exp_avg_sq = &exp_avg_sq[0]
        tensor.size = param.shape[0]
        cdef int64_t t
        cdef Py_ssize_t i
        with nogil:
            for t in range(steps):
                for i in range(param.shape[0]):
                    grad[i] = param[i] - target[i]
                config.lr = schedule(t)
                tensor.step = t + 1
                adam_step(config, tensor)


    def sgd_batch(double[::1] first, double[::1] first_grad, double[::1] first_buffer,
                  double[::1] second, double[::1] second_grad, double[::1] second_buffer):
        \"\"\"One SGD step (momentum, Nesterov, weight decay) over two float64 tensors in one call.\"\"\"
        cdef cpp.SgdConfig config
        config.lr = 0.1
        config.momentum = 0.9
        config.nesterov = True
        config.weight_decay = 0.01
        cdef cpp.SgdTensor[double] tensors[2]
        tensors[0].param = &first[0]
        tensors[0].grad = &first_grad[0]
        tensors[0].momentum_buffer = &first_buffer[0]
        tensors[0].size = first.shape[0]
        tensors[0].initialize_momentum_buffer = True
        tensors[1] = tensors[0]
        tensors[1].param = &second[0]
        tensors[1].grad = &second_grad[0]
        tensors[1].momentum_buffer = &second_buffer[0]
        tensors[1].size = second.shape[0]
        with nogil:
            cpp.sgd_step(config, tensors, 2)


    def rprop_steps(double[::1] param, double[:, ::1] grads, double[::1] prev, double[::1] step_size, double lr):
        \"\"\"Rprop over the rows of grads; the first step starts step_size at lr (its contents ignored).\"\"\"
        cdef cpp.RpropConfig config
        config.lr = lr
        config.etaminus = 0.4
        config.step_size_max = 0.05
        cdef cpp.RpropTensor[double] tensor
        tensor.param = &param[0]
        tensor.prev = &prev[0]
        tensor.step_size = &step_size[0]
        tensor.size = param.shape[0]
        cdef Py_ssize_t k
        with nogil:
            for k in range(grads.shape[0]):
                tensor.grad = &grads[k, 0]
                tensor.initialize_step_size = k == 0
                cpp.rprop_step(config, tensor)


    def adadelta_step(float[::1] param, const float[::1] grad, float[::1] square_avg, float[::1] acc_delta):
        \"\"\"One Adadelta step with weight decay and maximize.\"\"\"
        cdef cpp.AdadeltaConfig config
        config.weight_decay = 0.1
        config.maximize = True
        cdef cpp.AdadeltaTensor[float] tensor
        tensor.param = &param[0]
        tensor.grad = &grad[0]
        tensor.square_avg = &square_avg[0]
        tensor.acc_delta = &acc_delta[0]
        tensor.size = param.shape[0]
        with nogil:
            cpp.adadelta_step(config, &tensor, 1)


    def asgd_steps(double[::1] param, double[:, ::1] grads, double[::1] ax):
        \"\"\"ASGD over the rows of grads, eta and mu in local doubles (NaN: not set yet); returns them.\"\"\"
        cdef cpp.AsgdConfig config
        config.lr = 0.05
        config.t0 = 2.0
        cdef double eta = float("nan")
        cdef double mu = float("nan")
        cdef cpp.AsgdTensor[double] tensor
        tensor.param = &param[0]
        tensor.ax = &ax[0]
        tensor.eta = &eta
        tensor.mu = &mu
        tensor.size = param.shape[0]
        cdef Py_ssize_t k
        with nogil:
            for k in range(grads.shape[0]):
                tensor.grad = &grads[k, 0]
                tensor.step = k + 1
                cpp.asgd_step(config, tensor)
        return eta, mu


    def bad_step():
        \"\"\"A negative learning rate: the C++ std::invalid_argument must surface as ValueError.\"\"\"
        cdef float value = 1.0
        cdef AdamConfig config
        config.lr = -1.0
        cdef AdamTensor[float] tensor
        tensor.param = &value
        tensor.grad = &value
        tensor.exp_avg = &value
        tensor.exp_avg_sq = &value
        tensor.size = 1
        with nogil:
            adam_step(config, tensor)


    def nadam_steps(double[::1] param, const double[::1] grad, double[::1] exp_avg, double[::1] exp_avg_sq,
                    int64_t steps):
        \"\"\"NAdam (decoupled decay) for `steps` steps on a fixed gradient; returns the final mu_product.\"\"\"
        cdef cpp.NadamConfig config
        config.weight_decay = 0.01
        config.decoupled_weight_decay = True
        cdef double mu_product = 1.0
        cdef cpp.NadamTensor[double] tensor
        tensor.param = &param[0]
        tensor.grad = &grad[0]
        tensor.exp_avg = &exp_avg[0]
        tensor.exp_avg_sq = &exp_avg_sq[0]
        tensor.mu_product = &mu_product
        tensor.size = param.shape[0]
        cdef int64_t t
        with nogil:
            for t in range(steps):
                tensor.step = t + 1
                cpp.nadam_step(config, tensor)
        return mu_product


    def bfloat16_adam_with_master(uint16_t[::1] param, const uint16_t[::1] grad, float[::1] master,
                                  float[::1] exp_avg, float[::1] exp_avg_sq, int64_t step):
        \"\"\"One Adam step on a bfloat16 parameter (its uint16 bits) with a float32 master copy.\"\"\"
        cdef cpp.AdamConfig config
        config.lr = 0.01
        cdef cpp.AdamTensor[float] tensor
        tensor.param = <float*>&param[0]
        tensor.grad = <const float*>&grad[0]
        tensor.exp_avg = &exp_avg[0]
        tensor.exp_avg_sq = &exp_avg_sq[0]
        tensor.max_exp_avg_sq = NULL
        tensor.size = param.shape[0]
        tensor.step = step
        cdef cpp.Storage storage
        storage.param = cpp.Format.bfloat16
        storage.grad = cpp.Format.bfloat16
        storage.state = cpp.Format.float32
        storage.master = &master[0]
        storage.rounding = cpp.Rounding.nearest_even
        with nogil:
            cpp.adam_step(config, &tensor, &storage, 1)


    def runtime():
        return (cpp.active_isa().decode(), [name.decode() for name in cpp.available_isas()],
                cpp.get_num_threads(),
                (cpp.LRCORE_VERSION_MAJOR, cpp.LRCORE_VERSION_MINOR, cpp.LRCORE_VERSION_PATCH))


    def one_cycle(int64_t t):
        cdef cpp.OneCycle schedule
        schedule.max_lr = 1.0
        schedule.div_factor = 10.0
        schedule.final_div_factor = 1.0
        schedule.phases.total_steps = 11
        schedule.phases.pct_start = 0.5
        schedule.phases.anneal_strategy = cpp.AnnealStrategy.linear
        schedule.phases.three_phase = False
        return schedule(t)


    def schedule_free_sgd(float[::1] param, const float[::1] grad, float[::1] z, int64_t steps):
        \"\"\"Schedule-free SGD (lr 0.1, warmup 3) for `steps` steps with one gradient, then eval mode.\"\"\"
        cdef cpp.ScheduleFreeSgdConfig config
        config.lr = 0.1
        config.warmup_steps = 3
        cdef cpp.ScheduleFreeGroupState state
        cdef cpp.ScheduleFreeSgdTensor[float] tensor
        tensor.param = &param[0]
        tensor.grad = &grad[0]
        tensor.z = &z[0]
        tensor.size = param.shape[0]
        tensor.initialize_z = True
        cdef int64_t t
        with nogil:
            cpp.schedule_free_sgd_train(config, state, &tensor, 1)
            for t in range(steps):
                cpp.schedule_free_sgd_step(config, state, &tensor, 1)
                tensor.initialize_z = False
            cpp.schedule_free_sgd_eval(config, state, &tensor, 1)
        return state.k, state.lr_max, state.weight_sum, state.train_mode


    def schedule_free_step_in_eval_mode():
        \"\"\"A schedule-free step in eval mode: std::logic_error must surface as RuntimeError.\"\"\"
        cdef float value = 1.0
        cdef cpp.ScheduleFreeAdamWConfig config
        cdef cpp.ScheduleFreeGroupState state
        cdef cpp.ScheduleFreeAdamWTensor[float] tensor
        tensor.param = &value
        tensor.grad = &value
        tensor.z = &value
        tensor.exp_avg_sq = &value
        tensor.size = 1
        with nogil:
            cpp.schedule_free_adamw_step(config, state, &tensor, 1)
    """
)


def _compiler() -> str:
    candidates = [os.environ.get("CXX"), sysconfig.get_config_var("CXX"), "c++", "g++", "clang++"]
    for candidate in candidates:
        if candidate and shutil.which(candidate.split()[0]):
            return candidate.split()[0]
    pytest.skip("no C++ compiler found")


def _cython_include_dir() -> str:
    """The directory holding the lrcore package with cpp.pxd (split across two places by editable installs)."""
    for directory in lrcore.__path__:
        if (Path(directory) / "cpp.pxd").exists() and (Path(directory) / "__init__.py").exists():
            return str(Path(directory).parent)
    pytest.fail(f"lrcore/cpp.pxd is not installed (searched {list(lrcore.__path__)})")


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    if sys.platform == "win32":
        pytest.skip("the test drives a Unix-style compiler command line")
    python_include = sysconfig.get_paths()["include"]
    if not (Path(python_include) / "Python.h").exists():
        pytest.skip("Python development headers are not installed")
    compiler = _compiler()
    build = tmp_path_factory.mktemp("cython_extension")
    source = build / "lrcore_cython_check.pyx"
    source.write_text(EXTENSION_SOURCE)
    subprocess.run(
        [sys.executable, "-m", "cython", "--cplus", "-3", "-I", _cython_include_dir(), str(source),
         "-o", str(build / "lrcore_cython_check.cpp")],
        check=True, capture_output=True, text=True,
    )
    module_path = build / ("lrcore_cython_check" + sysconfig.get_config_var("EXT_SUFFIX"))
    command = [compiler, "-std=c++17", "-O1", "-shared", "-fPIC", "-w",
               "-I", python_include, "-I", get_include(),
               str(build / "lrcore_cython_check.cpp"), get_library(), "-pthread", "-o", str(module_path)]
    if sys.platform == "darwin":
        command[1:1] = ["-undefined", "dynamic_lookup"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"compiling the Cython extension failed:\n{' '.join(command)}\n{result.stderr}"
    spec = importlib.util.spec_from_file_location("lrcore_cython_check", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cython_training_matches_python_api(extension):
    rng = np.random.default_rng(0)
    size, steps, lr, weight_decay = 1000, 50, 0.05, 0.01
    target = rng.standard_normal(size).astype(np.float32)
    start = rng.standard_normal(size).astype(np.float32)

    param = start.copy()
    extension.train_quadratic(param, target, np.empty_like(param), np.zeros_like(param), np.zeros_like(param),
                              steps, lr, weight_decay)

    expected = start.copy()
    optimizer = lrcore.AdamW([expected], lr=schedules.CosineAnnealing(lr, T_max=steps), weight_decay=weight_decay)
    for _ in range(steps):
        optimizer.step([expected - target])

    np.testing.assert_array_equal(param, expected)  # same kernels, same constants: same bits
    assert np.abs(param - target).mean() < 0.5 * np.abs(start - target).mean()


def test_cython_batched_call_matches_python_api(extension):
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(n) for n in (17, 1023)]
    grads = [rng.standard_normal(n) for n in (17, 1023)]
    buffers = [np.zeros(n) for n in (17, 1023)]
    initial = [p.copy() for p in params]
    expected = [p.copy() for p in params]

    extension.sgd_batch(params[0], grads[0], buffers[0], params[1], grads[1], buffers[1])
    lrcore.SGD(expected, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01).step(grads)

    for got, want in zip(params, expected):
        np.testing.assert_array_equal(got, want)
    for buffer, grad, param in zip(buffers, grads, initial):  # first momentum step: buffer = g + wd * p
        np.testing.assert_array_equal(buffer, grad + 0.01 * param)


def test_cython_rprop_and_adadelta_match_python_api(extension):
    rng = np.random.default_rng(2)
    start = rng.standard_normal(37)
    grads = rng.standard_normal((6, 37))
    param, prev, step_size = start.copy(), np.zeros(37), np.full(37, np.nan)  # step_size: set by the first step
    extension.rprop_steps(param, grads, prev, step_size, 0.02)
    expected = start.copy()
    optimizer = lrcore.Rprop([expected], lr=0.02, etas=(0.4, 1.2), step_sizes=(1e-6, 0.05))
    for grad in grads:
        optimizer.step([grad])
    np.testing.assert_array_equal(param, expected)
    state = optimizer.state_dict()["state"][0]
    np.testing.assert_array_equal(prev, state["prev"])
    np.testing.assert_array_equal(step_size, state["step_size"])

    start32 = rng.standard_normal(45).astype(np.float32)
    grad32 = rng.standard_normal(45).astype(np.float32)
    param32, square_avg, acc_delta = start32.copy(), np.zeros(45, np.float32), np.zeros(45, np.float32)
    extension.adadelta_step(param32, grad32, square_avg, acc_delta)
    expected32 = start32.copy()
    lrcore.Adadelta([expected32], weight_decay=0.1, maximize=True).step([grad32])
    np.testing.assert_array_equal(param32, expected32)


def test_cython_asgd_keeps_eta_and_mu_in_the_callers_doubles(extension):
    rng = np.random.default_rng(3)
    start = rng.standard_normal(29)
    grads = rng.standard_normal((5, 29))
    param, ax = start.copy(), np.zeros(29)
    eta, mu = extension.asgd_steps(param, grads, ax)
    expected = start.copy()
    optimizer = lrcore.ASGD([expected], lr=0.05, t0=2.0)
    for grad in grads:
        optimizer.step([grad])
    state = optimizer.state_dict()["state"][0]
    np.testing.assert_array_equal(param, expected)
    np.testing.assert_array_equal(ax, state["ax"])
    assert eta == float(state["eta"]) and mu == float(state["mu"]) == 1 / 3


def test_cython_errors_become_python_exceptions(extension):
    with pytest.raises(ValueError, match="lr"):
        extension.bad_step()


def test_cython_runtime_and_schedules(extension):
    isa, available, threads, version = extension.runtime()
    assert isa == lrcore.isa()
    assert available == lrcore.available_isas()
    assert threads == lrcore.get_num_threads()
    assert ".".join(map(str, version)) == lrcore.__version__
    python_schedule = schedules.OneCycle(1.0, total_steps=11, pct_start=0.5, anneal_strategy="linear",
                                         div_factor=10.0, final_div_factor=1.0)
    for t in (0, 3, 9, 10, 50):
        assert extension.one_cycle(t) == python_schedule(t)


def test_cython_schedule_free_matches_the_functional_layer(extension):
    rng = np.random.default_rng(5)
    param = rng.standard_normal(37).astype(np.float32)
    grad = rng.standard_normal(37).astype(np.float32)
    z = np.zeros_like(param)
    expected = param.copy()
    group_state = lrcore.functional.new_group_state("schedule_free_sgd")
    zs = [None]
    lrcore.functional.schedule_free_sgd_train([expected], zs, group_state, lr=0.1, warmup_steps=3)
    for _ in range(5):
        lrcore.functional.schedule_free_sgd([expected], [grad], zs, group_state, lr=0.1, warmup_steps=3)
    lrcore.functional.schedule_free_sgd_eval([expected], zs, group_state, lr=0.1, warmup_steps=3)
    k, lr_max, weight_sum, train_mode = extension.schedule_free_sgd(param, grad, z, 5)
    np.testing.assert_array_equal(param, expected)
    np.testing.assert_array_equal(z, zs[0])
    assert [k, lr_max, weight_sum, float(train_mode)] == group_state.tolist()
    with pytest.raises(RuntimeError, match="eval mode"):
        extension.schedule_free_step_in_eval_mode()
def test_cython_nadam_keeps_its_scalar_state_in_the_callers_double(extension):
    rng = np.random.default_rng(2)
    param = rng.standard_normal(77)
    grad = rng.standard_normal(77)
    expected = param.copy()
    mu_product = extension.nadam_steps(param, grad, np.zeros(77), np.zeros(77), 7)
    optimizer = lrcore.NAdam([expected], weight_decay=0.01, decoupled_weight_decay=True)
    for _ in range(7):
        optimizer.step([grad])
    np.testing.assert_array_equal(param, expected)
    assert mu_product == float(optimizer.state_dict()["state"][0]["mu_product"])


def test_cython_mixed_precision_matches_the_functional_layer(extension):
    bfloat16 = pytest.importorskip("ml_dtypes").bfloat16
    rng = np.random.default_rng(8)
    param = rng.standard_normal(300).astype(bfloat16)
    expected = param.copy()
    master, expected_master = param.astype(np.float32), param.astype(np.float32)
    exp_avg, exp_avg_sq = np.zeros(300, np.float32), np.zeros(300, np.float32)
    states = [np.zeros(300, np.float32), np.zeros(300, np.float32)]
    steps = np.zeros(1, np.int64)
    for step in range(1, 4):
        grad = rng.standard_normal(300).astype(bfloat16)
        extension.bfloat16_adam_with_master(param.view(np.uint16), grad.view(np.uint16), master, exp_avg,
                                            exp_avg_sq, step)
        lrcore.functional.adam([expected], [grad], [states[0]], [states[1]], steps, lr=0.01,
                               master_weights=[expected_master])
    np.testing.assert_array_equal(master, expected_master)
    np.testing.assert_array_equal(param.view(np.uint16), expected.view(np.uint16))
