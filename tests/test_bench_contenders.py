"""The optional contenders (DeepSpeed's CPU Adagrad, bitsandbytes): skipped with a reason, or verified and timed."""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest

import lrcore
from lrcore.__main__ import main as lrcore_main
from lrcore.bench import _contenders
from lrcore.bench._rules import RULES
from lrcore.bench._runner import Options, run_case
from lrcore.bench._timing import TimingBudget
from lrcore.bench._workloads import parse_workloads

TINY = ["--quick", "--seconds", "0.002", "--threads", "1", "--sizes", "1000", "--no-progress"]


@pytest.fixture(autouse=True)
def fresh_lookups(monkeypatch):
    before = lrcore.get_num_threads()
    if "OMP_WAIT_POLICY" in os.environ:
        monkeypatch.setenv("OMP_WAIT_POLICY", os.environ["OMP_WAIT_POLICY"])
    else:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    _contenders.clear_caches()
    yield
    _contenders.clear_caches()
    lrcore.set_num_threads(before)


def test_absent_libraries_are_skipped_with_a_reason(capsys, monkeypatch):
    for name in ("deepspeed", "deepspeed.ops", "deepspeed.ops.adam", "deepspeed.ops.adagrad", "deepspeed.ops.lion",
                 "bitsandbytes"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError, installed or not
    status = lrcore_main(["bench", *TINY, "--rules", "adam,adagrad", "--against", "numpy,deepspeed,bnb,bnb-8bit"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "skipped   deepspeed: deepspeed is not installed" in out
    assert "skipped   bnb: bitsandbytes is not installed" in out
    assert "skipped   bnb-8bit: bitsandbytes is not installed" in out
    assert "[bitsandbytes is not installed]" in out and "bitsandbytes not installed" in out


def test_rules_a_library_lacks_are_unsupported_with_a_reason():
    assert "Adam and AdamW only" in _contenders.CONTENDERS["bnb"].unsupported(RULES["sgd"])
    assert "Adagrad and Lion only" in _contenders.CONTENDERS["deepspeed"].unsupported(RULES["rmsprop"])
    assert _contenders.CONTENDERS["bnb-8bit"].tolerance == _contenders.BNB_8BIT_TOLERANCE
    assert _contenders.CONTENDERS["bnb"].tolerance is None


def _options(against):
    return Options([RULES["adam"]], parse_workloads(["1000"]), [1], against, np.dtype(np.float32),
                   TimingBudget(0.002, 3, 10, 1e-4))


def _fake_bitsandbytes(monkeypatch, torch, optimizer=None):
    optim = types.ModuleType("bitsandbytes.optim")
    base = optimizer or torch.optim.Adam

    class Adam32bit(base):  # type: ignore[misc,valid-type]
        pass

    optim.Adam32bit = Adam32bit
    optim.Adam8bit = Adam32bit
    module = types.ModuleType("bitsandbytes")
    module.optim = optim
    module.__version__ = "0.0-fake"
    monkeypatch.setitem(sys.modules, "bitsandbytes", module)
    monkeypatch.setitem(sys.modules, "bitsandbytes.optim", optim)
    _contenders.clear_caches()


def test_an_injected_bitsandbytes_runs_and_verifies(monkeypatch):
    torch = pytest.importorskip("torch")
    _fake_bitsandbytes(monkeypatch, torch)
    case = run_case(RULES["adam"], parse_workloads(["1000"])[0], 1, _options(["bnb", "bnb-8bit"]))
    assert case.status == "ok", case.reason
    for name in ("bnb", "bnb-8bit"):
        entry = case.contenders[name]
        assert entry.status == "ok", entry.reason
        assert entry.seconds > 0 and entry.deviation <= 1e-3


def test_an_injected_wrong_bitsandbytes_is_a_mismatch_not_timed(monkeypatch):
    torch = pytest.importorskip("torch")

    class NoBiasCorrection(torch.optim.SGD):  # a wrong "Adam": plain SGD with Adam's arguments
        def __init__(self, params, lr, betas, eps, **kwargs):
            super().__init__(params, lr=lr)

    _fake_bitsandbytes(monkeypatch, torch, NoBiasCorrection)
    case = run_case(RULES["adam"], parse_workloads(["1000"])[0], 1, _options(["bnb", "bnb-8bit"]))
    for name in ("bnb", "bnb-8bit"):
        assert case.contenders[name].status == "mismatch"
        assert case.contenders[name].seconds is None


def test_adafactor_on_a_matrix_is_verified_against_the_reference_and_torch():
    """The factored path (a matrix workload), lrcore and both torch contenders checked before timing."""
    pytest.importorskip("torch")
    workload = parse_workloads(["67x129"])[0]
    assert workload.shapes == ((67, 129),) and workload.label == "67x129"
    options = Options([RULES["adafactor"]], [workload], [1], ["torch-loop", "torch-foreach", "numpy"],
                      np.dtype(np.float32), TimingBudget(0.002, 3, 10, 1e-4))
    case = run_case(RULES["adafactor"], workload, 1, options)
    assert case.status == "ok", case.reason
    for name in ("torch-loop", "torch-foreach"):
        assert case.contenders[name].status == "ok", case.contenders[name].reason
    assert case.contenders["numpy"].status != "ok"  # no preallocated-numpy Adafactor: skipped, with a reason
    # Per element a step must read the gradient and read and write the parameter; the factored state is not per element.
    assert case.bytes_per_step == workload.elements * 3 * 4


def test_the_root_mean_square_measure_accepts_quantization_noise_and_refuses_a_wrong_formula():
    from lrcore.bench._verify import deviation, rms_deviation

    rng = np.random.default_rng(3)
    initial = [np.zeros(10_000)]
    update = rng.standard_normal(10_000)
    noisy = update.copy()
    noisy[:20] *= 0.75  # a few elements off by a quarter, as coarse 8-bit levels leave them
    assert deviation([noisy], [update], initial) > 0.1
    assert rms_deviation([noisy], [update], initial) < 0.02
    assert rms_deviation([update * 0.7], [update], initial) == pytest.approx(0.3)
    assert rms_deviation([np.full(10_000, np.nan)], [update], initial) == float("inf")
    assert rms_deviation([update[:10]], [update], initial) == float("inf")
    assert _contenders.CONTENDERS["bnb-8bit"].measure is rms_deviation
    assert _contenders.CONTENDERS["bnb"].measure is deviation


def test_the_installed_bitsandbytes_verifies_in_32_and_8_bits():
    pytest.importorskip("torch")
    pytest.importorskip("bitsandbytes")
    if _contenders.bitsandbytes_optim() is None:
        pytest.skip("bitsandbytes is installed but does not import here")
    case = run_case(RULES["adam"], parse_workloads(["65536"])[0], 1, _options(["bnb", "bnb-8bit"]))
    assert case.status == "ok", case.reason
    for name in ("bnb", "bnb-8bit"):
        entry = case.contenders[name]
        assert entry.status == "ok", entry.reason
    assert case.contenders["bnb"].deviation <= 1e-3
    assert case.contenders["bnb-8bit"].deviation <= _contenders.BNB_8BIT_TOLERANCE


def test_the_installed_deepspeed_verifies_its_lion():
    pytest.importorskip("torch")
    pytest.importorskip("deepspeed")
    if _contenders.deepspeed_lion() is None:
        pytest.skip("this deepspeed has no DeepSpeedCPULion")
    options = Options([RULES["lion"]], parse_workloads(["1000"]), [1], ["deepspeed"], np.dtype(np.float32),
                      TimingBudget(0.002, 3, 10, 1e-4))
    case = run_case(RULES["lion"], parse_workloads(["1000"])[0], 1, options)
    entry = case.contenders["deepspeed"]
    assert entry.status == "ok", entry.reason
    assert entry.deviation <= 1e-3
