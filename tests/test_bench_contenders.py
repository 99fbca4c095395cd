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


def _lion_with_coefficients(p0, g1, g2, one_minus_beta1):
    """Two Lion steps (lr 1e-4, beta1 0.9, beta2 0.99) with 1 - beta1 given as a float32: how another
    implementation may round it (DeepSpeed takes 1 - beta1 in float32)."""
    f = np.float32
    p, m = p0.copy(), np.zeros_like(p0)
    for g in (g1, g2):
        direction = f(0.9) * m + f(one_minus_beta1) * g
        p -= f(1e-4) * np.sign(direction)
        m[...] = f(0.99) * m + f(0.01) * g
    return p


def test_lion_sign_ties_may_flip_but_nothing_else_may():
    from lrcore import reference
    from lrcore.bench._verify import deviation, sign_ties

    rng = np.random.default_rng(5)
    n = 4096
    p0 = rng.standard_normal(n).astype(np.float32)
    g1 = rng.standard_normal(n).astype(np.float32)
    g2 = rng.standard_normal(n).astype(np.float32)
    # Element 7: a second direction 0.9 * (0.01 * g1) + (1 - 0.9) * g2 that cancels to rounding, so
    # that 1 - beta1 rounded as lrcore rounds it (0.1) and in float32 (0.100000024) give opposite signs.
    f = np.float32
    g1[7] = f(1.5)
    momentum = f(0.9) * (f(0.01) * g1[7])
    candidates = np.nextafter(-momentum / f(0.1), np.float32(np.inf)) + np.arange(-40, 40, dtype=np.float32) * \
        np.spacing(momentum / f(0.1))
    flips = [c for c in candidates.astype(np.float32)
             if np.sign(momentum + f(0.1) * c) != np.sign(momentum + (1 - f(0.9)) * c)]
    assert flips, "no float32 gradient near the cancellation makes the two roundings disagree"
    g2[7] = flips[0]
    hp = RULES["lion"].hyperparameters
    assert (hp["beta1"], hp["beta2"], hp["lr"]) == (0.9, 0.99, 1e-4)  # what _lion_with_coefficients assumes
    expected, m = p0.copy(), np.zeros_like(p0)
    for g in (g1, g2):
        reference.lion([expected], [g], [m], lr=1e-4, beta1=0.9, beta2=0.99)
    ties = sign_ties("lion", hp, [p0], [g1], [g2])
    assert sign_ties("adam", RULES["adam"].hyperparameters, [p0], [g1], [g2]) is None
    assert ties[0][7] and ties[0].sum() == 1  # the constructed tie, and no other element of normal gradients

    other = _lion_with_coefficients(p0, g1, g2, 1 - np.float32(0.9))  # 0.100000024 instead of 0.1
    assert other[7] != expected[7]  # the tie went the other way ...
    assert np.array_equal(np.delete(other, 7), np.delete(expected, 7))  # ... and only it
    assert deviation([other], [expected], [p0]) > 0.1  # element by element: far beyond the 1e-3 tolerance
    assert deviation([other], [expected], [p0], ties=ties) == 0.0  # the tie is excused

    wrong = other.copy()
    wrong[100] += np.float32(2e-4)  # a flipped sign where there is no tie
    assert deviation([wrong], [expected], [p0], ties=ties) > 0.1
    beyond = other.copy()
    beyond[7] += np.float32(1e-3)  # at the tie, but more than a flipped sign can move it
    assert deviation([beyond], [expected], [p0], ties=ties) > 0.1
    nan = other.copy()
    nan[7] = np.nan
    assert deviation([nan], [expected], [p0], ties=ties) == float("inf")
