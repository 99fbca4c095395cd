"""lrcore.torch with bfloat16 and float16 parameters: mixed precision on real torch models.

A 16-bit parameter is stepped in place through a 16-bit numpy view of its
storage, with float32 math. What is checked here:

* master weights: a bf16 (and fp16) model trained with ``master_weights=True``
  by every rule and option set of tests/rules.py keeps masters bitwise equal
  to a float32 run fed the same gradients, and parameters equal to those
  rounded to 16 bits;
* agreement with torch.optim.AdamW(foreach=False) on the same bf16 model;
* stochastic rounding: small updates do not stall, and the bits do not
  depend on the thread count or the instruction set;
* state_dict: fp32 and bf16 state and the masters as torch tensors, resumed
  through torch.save / torch.load(weights_only=True) bitwise; exchange with
  torch.optim's bf16 state;
* bad inputs refused by name with nothing modified.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest

from rules import RULE_CASES, RULE_IDS

torch = pytest.importorskip("torch", reason="lrcore.torch needs torch")
lrtorch = pytest.importorskip("lrcore.torch")
pytest.importorskip("ml_dtypes", reason="bfloat16 arrays need ml_dtypes")

import lrcore  # noqa: E402

pytestmark = pytest.mark.torch

SIXTEEN_BIT = [torch.bfloat16, torch.float16]
STEPS = 20


@pytest.fixture(autouse=True, scope="module")
def torch_single_thread():
    # torch's OpenMP workers spin after each operation and starve lrcore's pool (docs/torch.md).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_model(dtype, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).to(dtype)


def make_batches(dtype, steps=STEPS, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(40, 6, generator=generator).to(dtype), torch.randint(0, 3, (40,), generator=generator))
            for _ in range(steps)]


def backward(model, batch):
    x, y = batch
    # The loss in float32 (as autocast does for cross-entropy); the model's gradients in its dtype.
    torch.nn.functional.cross_entropy(model(x).float(), y).backward()


def bits(tensor):
    """A tensor's bits, for bitwise comparisons (NaN-safe, -0.0 != 0.0)."""
    tensor = tensor.detach().contiguous()
    return tensor.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()])


def assert_bitwise(a, b, what=""):
    a, b = list(a), list(b)
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        assert x.dtype == y.dtype and x.shape == y.shape, f"{what} tensor {k}: {x.dtype} {x.shape} vs {y.dtype} {y.shape}"
        assert torch.equal(bits(x), bits(y)), f"{what} tensor {k} differs"


def optimizer_of(rule, params, **options):
    optimizer = getattr(lrtorch, rule.description.class_name)(params, **options)
    if rule.description.has_modes:
        optimizer.train()
    return optimizer


def snapshot(model, optimizer):
    """Everything a step may change: parameters, gradients, the state (deep copy), the counters."""
    return ([p.detach().clone() for p in model.parameters()],
            [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            copy.deepcopy(optimizer.state_dict()))


def assert_unchanged(before, model, optimizer):
    params, grads, state_dict = before
    assert_bitwise(params, model.parameters(), "parameter")
    for k, (grad, p) in enumerate(zip(grads, model.parameters())):
        assert (grad is None) == (p.grad is None), f"gradient {k}"
        if grad is not None:
            assert_bitwise([grad], [p.grad], f"gradient {k}")
    now = optimizer.state_dict()
    assert now["lrcore"] == state_dict["lrcore"]
    assert now["param_groups"] == state_dict["param_groups"]
    assert sorted(now["state"]) == sorted(state_dict["state"])
    for index, entry in state_dict["state"].items():
        assert sorted(now["state"][index]) == sorted(entry), f"state {index}"
        for name, value in entry.items():
            assert_bitwise([value], [now["state"][index][name]], f"state {index} {name!r}")


# ---------------------------------------------------------------- master weights
@pytest.mark.parametrize("dtype", SIXTEEN_BIT, ids=str)
@pytest.mark.parametrize("rule, config", RULE_CASES, ids=RULE_IDS)
def test_master_weights_are_the_float32_run(rule, config, dtype):
    """A 16-bit model trained with master_weights=True (its gradients from loss.backward() in 16 bits) and
    a float32 copy stepped with the same gradients in float32: the masters are the float32 parameters,
    bitwise, and the model's parameters are those rounded to the nearest 16-bit value."""
    model = make_model(dtype)
    shadow = [p.detach().float().clone().requires_grad_() for p in model.parameters()]
    optimizer = optimizer_of(rule, model.parameters(), master_weights=True, **config)
    reference = optimizer_of(rule, shadow, **config)
    params = list(model.parameters())
    assert_bitwise([optimizer.state[p]["master_weight"] for p in params], shadow, "initial master")
    for batch in make_batches(dtype):
        optimizer.zero_grad()
        backward(model, batch)
        for p, s in zip(params, shadow):
            s.grad = p.grad.float()
        optimizer.step()
        reference.step()
    assert_bitwise([optimizer.state[p]["master_weight"] for p in params], shadow, "master")
    assert_bitwise(params, [s.detach().to(dtype) for s in shadow], "parameter")
    # The state is float32 and equals the float32 run's.
    for p, s in zip(params, shadow):
        for name, value in reference.state[s].items():
            assert_bitwise([optimizer.state[p][name]], [value], name)
    assert optimizer.step_count == STEPS
    if rule.description.has_modes:  # eval() moves the masters to the average and rounds them into the params
        optimizer.eval()
        reference.eval()
        assert_bitwise([optimizer.state[p]["master_weight"] for p in params], shadow, "eval master")
        assert_bitwise(params, [s.detach().to(dtype) for s in shadow], "eval parameter")


def test_master_weights_with_float32_gradients():
    """torch 2.13's ``grad_dtype``: a bf16 model whose gradients autograd accumulates in float32; the
    step reads them as they are."""
    model = make_model(torch.bfloat16)
    for p in model.parameters():
        p.grad_dtype = torch.float32
    shadow = [p.detach().float().clone().requires_grad_() for p in model.parameters()]
    optimizer = lrtorch.AdamW(model.parameters(), lr=1e-2, master_weights=True)
    reference = lrtorch.AdamW(shadow, lr=1e-2)
    for batch in make_batches(torch.bfloat16):
        optimizer.zero_grad()
        backward(model, batch)
        for p, s in zip(model.parameters(), shadow):
            assert p.grad.dtype == torch.float32
            s.grad = p.grad.clone()
        optimizer.step()
        reference.step()
    params = list(model.parameters())
    assert_bitwise([optimizer.state[p]["master_weight"] for p in params], shadow, "master")
    assert_bitwise(params, [s.detach().bfloat16() for s in shadow], "parameter")


def test_mixed_dtypes_in_one_optimizer():
    """float32, float64 and 16-bit parameters in one optimizer: only the 16-bit ones get a master and
    float32 state; the others step as without the options."""
    torch.manual_seed(3)
    tensors = [torch.randn(5, 4).to(dtype).requires_grad_()
               for dtype in (torch.bfloat16, torch.float32, torch.float16, torch.float64)]
    alone = [t.detach().clone().requires_grad_() for t in tensors[1::2]]
    optimizer = lrtorch.Adam([{"params": tensors[:2]}, {"params": tensors[2:], "lr": 0.02}], lr=0.01,
                             master_weights=True)
    reference = lrtorch.Adam([{"params": alone[:1]}, {"params": alone[1:], "lr": 0.02}], lr=0.01)
    for step in range(5):
        for t, a in zip(tensors[1::2], alone):
            t.grad = torch.randn(t.shape, dtype=t.dtype)
            a.grad = t.grad.clone()
        for t in tensors[::2]:
            t.grad = torch.randn(t.shape, dtype=t.dtype)
        optimizer.step()
        reference.step()
    assert_bitwise(tensors[1::2], alone, "float32/float64 parameter")
    for t in tensors[::2]:
        assert optimizer.state[t]["master_weight"].dtype == torch.float32
        assert optimizer.state[t]["exp_avg"].dtype == torch.float32
        assert_bitwise([t], [optimizer.state[t]["master_weight"].to(t.dtype)])
    for t in tensors[1::2]:
        assert "master_weight" not in optimizer.state[t]
        assert optimizer.state[t]["exp_avg"].dtype == t.dtype


def test_parameter_written_outside_the_optimizer_renews_its_master():
    """model.load_state_dict (or any in-place write) after the optimizer was made: the next step starts
    from the value written, not from the master made at construction; a write of the value the
    parameter already has keeps the master's low bits."""
    model = make_model(torch.bfloat16)
    pretrained = make_model(torch.bfloat16, seed=5).state_dict()
    optimizer = lrtorch.AdamW(model.parameters(), lr=1e-2, master_weights=True)
    model.load_state_dict(pretrained)
    expected = make_model(torch.bfloat16, seed=5)
    reference = lrtorch.AdamW(expected.parameters(), lr=1e-2, master_weights=True)
    for batch in make_batches(torch.bfloat16, steps=3):
        for m, o in ((model, optimizer), (expected, reference)):
            o.zero_grad()
            backward(m, batch)
            o.step()
    assert_bitwise(model.parameters(), expected.parameters(), "parameter")
    masters = [optimizer.state[p]["master_weight"].clone() for p in model.parameters()]
    assert any(not torch.equal(m.bfloat16().float(), m) for m in masters)  # the masters have low bits
    model.load_state_dict(model.state_dict())  # the same values again: the masters stay
    for m, o in ((model, optimizer), (expected, reference)):
        o.zero_grad()
        backward(m, make_batches(torch.bfloat16, steps=1, seed=9)[0])
        o.step()
    assert_bitwise([optimizer.state[p]["master_weight"] for p in model.parameters()],
                   [reference.state[p]["master_weight"] for p in expected.parameters()], "master")


# ------------------------------------------------------------- against torch.optim
def bf16_spacing(values):
    """The spacing of bfloat16 numbers at each value's magnitude (8 significant bits)."""
    magnitude = values.float().abs().clamp_min(2.0 ** -126)
    return torch.exp2(torch.floor(torch.log2(magnitude)) - 7)


def rms(pairs):
    pairs = list(pairs)
    squares = sum(((a.detach().float() - b.detach().float()) ** 2).sum().item() for a, b in pairs)
    return (squares / sum(a.numel() for a, _ in pairs)) ** 0.5


@pytest.mark.parametrize("state_dtype", [None, "bfloat16"])
def test_adamw_agrees_with_torch_on_bf16(state_dtype):
    """lrcore.torch.AdamW against torch.optim.AdamW(foreach=False) on the same bf16 model, 60 steps, both
    fed the gradients of torch's model (loss.backward() in bf16), next to a float32 copy stepped by
    torch.optim.AdamW with those gradients (the run without rounding). torch computes each operation in
    float32 and rounds it to bf16 (bf16 state; weight decay and update rounded separately); lrcore
    rounds only what it stores. They agree to bf16 rounding:

    * after the first step every element is within 2 bf16 spacings of torch's (12.9% of them differ);
    * at every step lrcore's RMS distance from the unrounded run is at most 1.05x torch's (measured
      max 0.993x with float32 state, 1.012x with bf16 state; 3.0e-3 vs 3.4e-3 at step 60);
    * after 60 steps the largest difference between lrcore and torch, 6.8e-3 (7.8e-3 with bf16 state),
      is smaller than torch's own from the unrounded run, 1.5e-2. (At step 2 it is 1.95e-3, one
      spacing at 0.25-0.5, against torch's 1.5e-3: two bf16 values differ by whole spacings.)
    """
    lrcore_model, torch_model = make_model(torch.bfloat16), make_model(torch.bfloat16)
    exact = [p.detach().float().clone().requires_grad_() for p in torch_model.parameters()]
    ours = lrtorch.AdamW(lrcore_model.parameters(), lr=1e-2, state_dtype=state_dtype)
    theirs = torch.optim.AdamW(torch_model.parameters(), lr=1e-2, foreach=False)
    unrounded = torch.optim.AdamW(exact, lr=1e-2, foreach=False)
    ours_params, torch_params = list(lrcore_model.parameters()), list(torch_model.parameters())
    for step, batch in enumerate(make_batches(torch.bfloat16, steps=60)):
        theirs.zero_grad()
        backward(torch_model, batch)
        for p, q, e in zip(ours_params, torch_params, exact):
            p.grad = q.grad.clone()
            e.grad = q.grad.float()
        ours.step()
        theirs.step()
        unrounded.step()
        assert rms(zip(ours_params, exact)) <= 1.05 * rms(zip(torch_params, exact)), step
        if step == 0:
            assert rms(zip(ours_params, torch_params)) > 0.0  # (not the same roundings)
            for p, q in zip(ours_params, torch_params):
                larger = torch.maximum(p.detach().float().abs(), q.detach().float().abs())
                assert ((p.detach().float() - q.detach().float()).abs() <= 2 * bf16_spacing(larger)).all()

    def largest(pairs):
        return max((a.detach().float() - b.detach().float()).abs().max().item() for a, b in pairs)

    assert largest(zip(ours_params, torch_params)) < largest(zip(torch_params, exact))
    expected = torch.bfloat16 if state_dtype == "bfloat16" else torch.float32
    assert all(entry["exp_avg"].dtype == expected for entry in ours.state.values())


# ------------------------------------------------------------ stochastic rounding
def test_stochastic_rounding_does_not_stall():
    """1000 SGD steps of -1e-4 on bf16 ones (the spacing below 1.0 is 2**-8 = 3.9e-3, so each update is
    under half of it): rounded to the nearest the parameters never move; rounded stochastically they
    end near 0.9 on average."""
    n = 4096
    nearest = torch.ones(n, dtype=torch.bfloat16, requires_grad=True)
    stochastic = torch.ones(n, dtype=torch.bfloat16, requires_grad=True)
    plain = lrtorch.SGD([nearest], lr=1.0)
    rounding = lrtorch.SGD([stochastic], lr=1.0, stochastic_rounding=True, seed=7)
    gradient = torch.full((n,), 1e-4, dtype=torch.bfloat16)
    for _ in range(1000):
        nearest.grad = gradient
        stochastic.grad = gradient
        plain.step()
        rounding.step()
    assert torch.equal(nearest.detach(), torch.ones(n, dtype=torch.bfloat16))
    mean = stochastic.detach().float().mean().item()
    target = 1.0 - 1000 * gradient[0].item()  # 1e-4 in bf16 is 1.0014e-4
    # Each element's rounding errors are unbiased; measured: mean 0.8994, standard deviation 0.020,
    # so the mean of 4096 elements has a standard error of ~3e-4.
    assert abs(mean - target) < 5e-3, (mean, target)
    assert stochastic.detach().float().std().item() > 0.0
    # SGD keeps no step in torch; with stochastic rounding each tensor's step is kept (the key of its bits).
    assert rounding.state[stochastic]["step"].item() == 1000.0


def train_stochastic(dtype, steps=4, size=1 << 19, seed=123):  # 2 MiB of float32 work: the pool runs
    torch.manual_seed(0)
    params = [torch.randn(size).to(dtype).requires_grad_(), torch.randn(64, 33).to(dtype).requires_grad_()]
    # bf16 state for bf16 parameters (rounded stochastically too); float32 state for float16 ones.
    optimizer = lrtorch.AdamW(params, lr=1e-3, weight_decay=0.1, stochastic_rounding=True, seed=seed,
                              state_dtype="bfloat16" if dtype is torch.bfloat16 else None)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator).to(dtype)
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("dtype", SIXTEEN_BIT, ids=str)
def test_stochastic_rounding_is_deterministic_across_threads_and_isas(dtype):
    """The random bits are keyed by (seed, tensor, step, element): any thread count and instruction set
    gives the same parameters and bf16 state, bit for bit."""
    threads, isa = lrcore.get_num_threads(), lrcore.isa()
    results = []
    try:
        for name in lrcore.available_isas():
            for count in (1, 2, 3):
                lrcore.set_isa(name)
                lrcore.set_num_threads(count)
                params, optimizer = train_stochastic(dtype)
                results.append((name, count, params, [optimizer.state[p][s] for p in params
                                                      for s in ("exp_avg", "exp_avg_sq")]))
    finally:
        lrcore.set_isa(isa)
        lrcore.set_num_threads(threads)
    first = results[0]
    for other in results[1:]:
        assert_bitwise(first[2], other[2], f"parameters {first[:2]} vs {other[:2]}")
        assert_bitwise(first[3], other[3], f"state {first[:2]} vs {other[:2]}")
    # The rounding is random: another seed gives other bits (in about half of the elements rounded).
    other, _ = train_stochastic(dtype, seed=124)
    assert not torch.equal(bits(other[0]), bits(first[2][0]))


# ------------------------------------------------------------------ state_dict
def saved_and_loaded(value):
    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


RESUME_CASES = [
    ("AdamW", torch.bfloat16, dict(lr=1e-2, master_weights=True)),
    ("AdamW", torch.bfloat16, dict(lr=1e-2, state_dtype="bfloat16")),
    ("AdamW", torch.bfloat16, dict(lr=1e-2, stochastic_rounding=True, seed=5)),
    ("AdamW", torch.bfloat16, dict(lr=1e-2, stochastic_rounding=True, seed=5, state_dtype="bfloat16")),
    ("SGD", torch.bfloat16, dict(lr=0.05, momentum=0.9, stochastic_rounding=True, seed=-3)),
    ("SGD", torch.bfloat16, dict(lr=0.05, stochastic_rounding=True)),  # no state but the step
    ("NAdam", torch.float16, dict(lr=1e-2, master_weights=True)),
    ("Adafactor", torch.bfloat16, dict(lr=1e-2, stochastic_rounding=True, state_dtype="bfloat16")),
    ("ScheduleFreeAdamW", torch.bfloat16, dict(lr=1e-2, stochastic_rounding=True)),
    ("ScheduleFreeAdamW", torch.bfloat16, dict(lr=1e-2, master_weights=True)),
]


@pytest.mark.parametrize("name, dtype, options", RESUME_CASES,
                         ids=[f"{n}-{d}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, d, o in RESUME_CASES])
def test_resume_through_torch_save_is_bitwise(name, dtype, options):
    """Train 2n steps; or n, save model and optimizer (torch.save), load them into new ones
    (torch.load(weights_only=True)), n more: the same bits, masters, state and step counts included."""
    batches = make_batches(dtype, steps=12)

    def make(seed=0):
        model = make_model(dtype, seed)
        optimizer = getattr(lrtorch, name)(model.parameters(), **options)
        if optimizer.rule.has_modes:
            optimizer.train()
        return model, optimizer

    def train(model, optimizer, part):
        for batch in part:
            optimizer.zero_grad()
            backward(model, batch)
            optimizer.step()

    model, optimizer = make()
    train(model, optimizer, batches)
    first, first_optimizer = make()
    train(first, first_optimizer, batches[:6])
    checkpoint = saved_and_loaded({"model": first.state_dict(), "optimizer": first_optimizer.state_dict()})
    for entry in checkpoint["optimizer"]["state"].values():
        for key, value in entry.items():
            if value.dim() == 0:  # step (float32, torch's), the per-tensor scalars (float64, lrcore's)
                continue
            if key == "master_weight":
                assert value.dtype == torch.float32
            else:
                assert value.dtype == (torch.bfloat16 if options.get("state_dtype") else torch.float32), key
    resumed, resumed_optimizer = make(seed=11)  # other initial values: everything comes from the checkpoint
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    train(resumed, resumed_optimizer, batches[6:])
    assert_bitwise(model.parameters(), resumed.parameters(), "parameter")
    expected, got = optimizer.state_dict(), resumed_optimizer.state_dict()
    assert expected["lrcore"] == got["lrcore"]
    for index, entry in expected["state"].items():
        assert sorted(entry) == sorted(got["state"][index])
        for key, value in entry.items():
            assert_bitwise([value], [got["state"][index][key]], f"state {index} {key!r}")


def test_state_dict_exchange_with_torch_optim():
    """torch.optim.AdamW on bf16 parameters keeps bf16 state: it loads into lrcore.torch.AdamW widened
    exactly to float32 (and with a master made from the parameter); lrcore.torch's float32 state loads
    into torch.optim, which casts it to its parameters' dtype."""
    theirs_model, ours_model = make_model(torch.bfloat16), make_model(torch.bfloat16)
    theirs = torch.optim.AdamW(theirs_model.parameters(), lr=1e-2, foreach=False)
    for batch in make_batches(torch.bfloat16, steps=3):
        theirs.zero_grad()
        backward(theirs_model, batch)
        theirs.step()
    ours_model.load_state_dict(theirs_model.state_dict())
    ours = lrtorch.AdamW(ours_model.parameters(), lr=1e-2, master_weights=True)
    saved = saved_and_loaded(theirs.state_dict())
    ours.load_state_dict(saved)
    for p, q in zip(ours_model.parameters(), theirs_model.parameters()):
        for name in ("exp_avg", "exp_avg_sq"):
            assert ours.state[p][name].dtype == torch.float32
            assert torch.equal(ours.state[p][name], theirs.state[q][name].float())
        assert torch.equal(ours.state[p]["master_weight"], p.detach().float())
        assert ours.state[p]["step"].item() == 3.0
    batch = make_batches(torch.bfloat16, steps=1, seed=4)[0]
    ours.zero_grad()
    backward(ours_model, batch)
    ours.step()
    back = torch.optim.AdamW(make_model(torch.bfloat16, seed=2).parameters(), lr=1e-2, foreach=False)
    back.load_state_dict(saved_and_loaded(ours.state_dict()))
    for entry, ours_entry in zip(back.state.values(), ours.state.values()):
        assert entry["exp_avg"].dtype == torch.bfloat16
        assert torch.equal(entry["exp_avg"], ours_entry["exp_avg"].bfloat16())


def test_load_state_dict_refuses_what_does_not_fit():
    model = make_model(torch.bfloat16)
    optimizer = lrtorch.AdamW(model.parameters(), lr=1e-2, master_weights=True)
    optimizer.zero_grad()
    backward(model, make_batches(torch.bfloat16, steps=1)[0])
    optimizer.step()
    state_dict = saved_and_loaded(optimizer.state_dict())
    # A master where the optimizer keeps none.
    plain = lrtorch.AdamW(make_model(torch.bfloat16).parameters(), lr=1e-2)
    before = copy.deepcopy(plain.state_dict())
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[0\] has a 'master_weight'.*master_weights=False"):
        plain.load_state_dict(state_dict)
    assert plain.state_dict()["state"] == before["state"] == {}
    # A master of the wrong dtype or shape.
    target_model = make_model(torch.bfloat16)
    target = lrtorch.AdamW(target_model.parameters(), lr=1e-2, master_weights=True)
    masters = [target.state[p]["master_weight"].clone() for p in target_model.parameters()]
    for bad in (state_dict["state"][0]["master_weight"].double(), state_dict["state"][0]["master_weight"][:2]):
        broken = copy.deepcopy(state_dict)
        broken["state"][0]["master_weight"] = bad
        with pytest.raises(ValueError, match=r"'master_weight' of param_groups\[0\]\['params'\]\[0\].*float32"):
            target.load_state_dict(broken)
        assert_bitwise([target.state[p]["master_weight"] for p in target_model.parameters()], masters)
        assert all(list(target.state[p]) == ["master_weight"] for p in target_model.parameters())


# ------------------------------------------------------------------- bad inputs
def test_options_are_checked_by_name():
    bf16 = [torch.zeros(3, dtype=torch.bfloat16, requires_grad=True)]
    fp32 = [torch.zeros(3, requires_grad=True), torch.zeros(2, dtype=torch.float64, requires_grad=True)]
    with pytest.raises(ValueError, match=r"master_weights needs a bfloat16 or float16 parameter.*torch.float32"):
        lrtorch.AdamW(fp32, master_weights=True)
    with pytest.raises(ValueError, match=r"stochastic_rounding needs a bfloat16 or float16 parameter"):
        lrtorch.SGD(fp32, stochastic_rounding=True)
    with pytest.raises(ValueError, match=r"state_dtype='bfloat16' needs a bfloat16 or float16 parameter"):
        lrtorch.Adam(fp32, state_dtype="bfloat16")
    with pytest.raises(ValueError, match="master_weights and stochastic_rounding exclude each other"):
        lrtorch.AdamW(bf16, master_weights=True, stochastic_rounding=True)
    for bad in ("float16", "float64", np.float32, torch.float16, "fp32", [None]):
        with pytest.raises(ValueError, match=r"state_dtype must be None, 'float32' or 'bfloat16'"):
            lrtorch.AdamW(bf16, state_dtype=bad)
    with pytest.raises(TypeError, match="master_weights must be a bool"):
        lrtorch.AdamW(bf16, master_weights="yes")
    with pytest.raises(TypeError, match="stochastic_rounding must be a bool"):
        lrtorch.AdamW(bf16, stochastic_rounding=1)
    for seed in (1.5, "7", None, True):
        with pytest.raises(TypeError, match="seed must be an int"):
            lrtorch.AdamW(bf16, stochastic_rounding=True, seed=seed)
    # Nothing was written: no master made, the parameters untouched.
    assert torch.equal(bf16[0], torch.zeros(3, dtype=torch.bfloat16))
    # float32 state for 16-bit parameters may be asked for by name; the options are attributes.
    optimizer = lrtorch.AdamW(bf16, state_dtype="float32", stochastic_rounding=True, seed=2**70)
    assert (optimizer.state_dtype, optimizer.master_weights, optimizer.stochastic_rounding) == (
        "float32", False, True)
    # Row-wise Adagrad (one value per row) updates float32/float64 only: refused at the step, by name.
    rowwise = lrtorch.RowWiseAdagrad([("table", torch.zeros(4, 3, dtype=torch.bfloat16, requires_grad=True))])
    rowwise.param_groups[0]["params"][0].grad = torch.ones(4, 3, dtype=torch.bfloat16)
    with pytest.raises(TypeError, match=r"params\[0\] is bfloat16.*parameter 'table'"):
        rowwise.step()
    assert rowwise.step_count == 0 and not rowwise.state


def set_gradient(param, grad):
    param.grad_dtype = None  # torch refuses a gradient of another dtype unless asked
    param.grad = grad


@pytest.mark.parametrize("options", [dict(master_weights=True), dict(stochastic_rounding=True), {},
                                     dict(state_dtype="bfloat16")], ids=str)
@pytest.mark.parametrize("param_dtype, grad_dtype", [
    (torch.bfloat16, torch.float16), (torch.bfloat16, torch.float64), (torch.float16, torch.bfloat16),
    (torch.float32, torch.bfloat16), (torch.float64, torch.float32), (torch.float16, torch.float64)],
    ids=lambda d: str(d).split(".")[-1])
def test_gradient_dtype_mixes_are_refused_with_nothing_modified(options, param_dtype, grad_dtype):
    """A gradient must have its parameter's dtype, or float32 for a 16-bit parameter. The bad one is the
    last parameter's, after a step that made state and masters: nothing at all changes."""
    model = make_model(torch.bfloat16)
    odd = torch.nn.Parameter(torch.randn(3, 4).to(param_dtype))
    named = [*model.named_parameters(), ("odd", odd)]
    optimizer = lrtorch.AdamW(named, lr=1e-2, **options)
    optimizer.zero_grad()
    backward(model, make_batches(torch.bfloat16, steps=1)[0])
    odd.grad = torch.ones(3, 4, dtype=param_dtype)
    optimizer.step()
    backward(model, make_batches(torch.bfloat16, steps=1, seed=2)[0])
    set_gradient(odd, torch.ones(3, 4, dtype=grad_dtype))
    before = snapshot(torch.nn.ParameterList([*model.parameters(), odd]), optimizer)
    with pytest.raises(TypeError, match=r"grads\[4\].*dtype.*parameter 'odd'"):
        optimizer.step()
    assert_unchanged(before, torch.nn.ParameterList([*model.parameters(), odd]), optimizer)
    assert optimizer.step_count == 1
    # and the first step of a new parameter: no state is made for it
    fresh = torch.nn.Parameter(torch.randn(2).to(param_dtype))
    optimizer.add_param_group({"params": [fresh], "param_names": ["fresh"]})
    set_gradient(fresh, torch.ones(2, dtype=grad_dtype))
    odd.grad = None
    before = snapshot(torch.nn.ParameterList([*model.parameters(), odd, fresh]), optimizer)
    with pytest.raises(TypeError, match=r"grads\[5\].*dtype"):
        optimizer.step()
    assert_unchanged(before, torch.nn.ParameterList([*model.parameters(), odd, fresh]), optimizer)
    assert not any(name != "master_weight" for name in optimizer.state.get(fresh, {}))


def test_a_bad_hyperparameter_leaves_masters_and_stochastic_steps_alone():
    for options in (dict(master_weights=True), dict(stochastic_rounding=True, state_dtype="bfloat16")):
        model = make_model(torch.bfloat16)
        optimizer = lrtorch.AdamW(model.parameters(), lr=1e-2, **options)
        for batch in make_batches(torch.bfloat16, steps=2):
            optimizer.zero_grad()
            backward(model, batch)
            optimizer.step()
        optimizer.param_groups[0]["lr"] = -1.0
        before = snapshot(model, optimizer)
        with pytest.raises(ValueError, match=r"param_groups\[0\].*lr"):
            optimizer.step()
        assert_unchanged(before, model, optimizer)
        # A parameter written from outside before the failed step: its master is renewed only by a step
        # that happens.
        if options.get("master_weights"):
            with torch.no_grad():
                next(model.parameters()).add_(1.0)
            before = snapshot(model, optimizer)
            with pytest.raises(ValueError, match=r"param_groups\[0\].*lr"):
                optimizer.step()
            assert_unchanged(before, model, optimizer)
            optimizer.param_groups[0]["lr"] = 0.0
            optimizer.step()
            first = next(model.parameters())
            assert torch.equal(optimizer.state[first]["master_weight"], before[0][0].float())


# ------------------------------------------------------------------- fp16 model
def test_float16_model_trains():
    """An fp16 model with master weights learns as its float32 twin does (bitwise, by the test above);
    here: the loss goes down and the state is float32, the parameters stay float16."""
    model = make_model(torch.float16)
    optimizer = lrtorch.Adam(model.parameters(), lr=1e-2, master_weights=True)
    losses = []
    for x, _ in make_batches(torch.float16, steps=60):
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # a task to learn
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    for p in model.parameters():
        assert p.dtype == torch.float16
        assert optimizer.state[p]["exp_avg"].dtype == torch.float32
        assert torch.equal(p.detach(), optimizer.state[p]["master_weight"].half())


def test_views_share_the_tensors_memory():
    """The numpy arrays the native step updates are the tensors' own storage (no copy)."""
    from lrcore.torch._optimizer import _array_of

    import ml_dtypes

    for dtype, numpy_dtype in ((torch.bfloat16, np.dtype(ml_dtypes.bfloat16)), (torch.float16, np.float16)):
        tensor = torch.arange(6, dtype=dtype).reshape(2, 3)
        array = _array_of(tensor, "t")
        assert array.dtype == numpy_dtype and array.shape == (2, 3)
        assert array.ctypes.data == tensor.data_ptr()
        array[1, 2] = -0.5
        assert tensor[1, 2].item() == -0.5
    model = make_model(torch.bfloat16)
    pointers = [p.data_ptr() for p in model.parameters()]
    optimizer = lrtorch.AdamW(model.parameters(), lr=1e-2)
    backward(model, make_batches(torch.bfloat16, steps=1)[0])
    optimizer.step()
    assert [p.data_ptr() for p in model.parameters()] == pointers


def test_gradients_kept_between_steps_are_read_anew():
    """zero_grad(set_to_none=False) keeps one bf16 gradient tensor per parameter, which the step reads
    through a cached view of its memory: the same result as fresh gradients every step."""
    kept, fresh = make_model(torch.bfloat16), make_model(torch.bfloat16)
    kept_optimizer = lrtorch.AdamW(kept.parameters(), lr=1e-2, master_weights=True)
    fresh_optimizer = lrtorch.AdamW(fresh.parameters(), lr=1e-2, master_weights=True)
    for batch in make_batches(torch.bfloat16, steps=5):
        kept_optimizer.zero_grad(set_to_none=False)
        fresh_optimizer.zero_grad(set_to_none=True)
        backward(kept, batch)
        backward(fresh, batch)
        kept_optimizer.step()
        fresh_optimizer.step()
    assert all(array is not None for array in kept_optimizer._plans[0].grad_arrays)  # the cached views ran
    assert_bitwise(kept.parameters(), fresh.parameters(), "parameter")


@pytest.mark.parametrize("rule, config", RULE_CASES, ids=RULE_IDS)
def test_every_rule_resumes_bitwise_with_stochastic_rounding(rule, config):
    """Every rule and option set with stochastic rounding and bf16 state (state the kernel creates, as
    Rprop's step_size, is made bf16 too): 10 steps straight, or 5, torch.save / torch.load, 5 more on
    new objects, give the same bits; and the rounding is not to the nearest (another seed differs)."""
    batches = make_batches(torch.bfloat16, steps=10)

    def run(part, model=None, checkpoint=None, seed=3):
        model = model or make_model(torch.bfloat16)
        optimizer = optimizer_of(rule, model.parameters(), stochastic_rounding=True, seed=seed,
                                 state_dtype="bfloat16", **config)
        if checkpoint is not None:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
        for batch in part:
            optimizer.zero_grad()
            backward(model, batch)
            optimizer.step()
        return model, optimizer

    straight, straight_optimizer = run(batches)
    first, first_optimizer = run(batches[:5])
    checkpoint = saved_and_loaded({"model": first.state_dict(), "optimizer": first_optimizer.state_dict()})
    resumed, resumed_optimizer = run(batches[5:], make_model(torch.bfloat16, seed=4), checkpoint)
    assert_bitwise(straight.parameters(), resumed.parameters(), "parameter")
    for p, q in zip(straight.parameters(), resumed.parameters()):
        entry, other = straight_optimizer.state[p], resumed_optimizer.state[q]
        assert sorted(entry) == sorted(other) and entry["step"].item() == 10.0
        for name, value in entry.items():
            if value.dim() > 0:
                assert value.dtype == torch.bfloat16, name
            assert_bitwise([value], [other[name]], name)
    reseeded, _ = run(batches, seed=4)
    assert any(not torch.equal(bits(p), bits(q)) for p, q in zip(straight.parameters(), reseeded.parameters()))


def test_stochastic_steps_are_the_native_steps():
    """lrcore.torch passes the native step what it would be given directly: the tensors' views, each
    tensor's step counter (kept in state["step"]) and the seed. Three AdamW steps on two bf16 parameters
    in two groups, and the same through lrcore._core.rules.adam.step on numpy arrays: the same bits."""
    import ml_dtypes

    from lrcore import _core

    torch.manual_seed(0)
    params = [torch.randn(7, 5).bfloat16().requires_grad_(), torch.randn(300).bfloat16().requires_grad_()]
    arrays = [p.detach().float().numpy().astype(ml_dtypes.bfloat16) for p in params]
    optimizer = lrtorch.AdamW([{"params": params[:1]}, {"params": params[1:], "lr": 3e-3}], lr=1e-2,
                              stochastic_rounding=True, seed=99, state_dtype="bfloat16")
    hyperparameters = [optimizer._resolve_group(group) for group in optimizer.param_groups]
    states = [{"exp_avg": [np.zeros(a.shape, ml_dtypes.bfloat16)],
               "exp_avg_sq": [np.zeros(a.shape, ml_dtypes.bfloat16)]} for a in arrays]
    steps = [np.zeros(1, np.int64), np.zeros(1, np.int64)]
    generator = torch.Generator().manual_seed(5)
    for _ in range(3):
        grads = [torch.randn(p.shape, generator=generator).bfloat16() for p in params]
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        native_grads = [g.float().numpy().astype(ml_dtypes.bfloat16) for g in grads]
        _core.rules.adam.step([(hyperparameters[k], [arrays[k]], [native_grads[k]], states[k], steps[k])
                               for k in range(2)], rounding_seed=99)
    for k, p in enumerate(params):
        assert np.array_equal(p.detach().float().numpy(), arrays[k].astype(np.float32))
        for name in ("exp_avg", "exp_avg_sq"):
            assert np.array_equal(optimizer.state[p][name].float().numpy(), states[k][name][0].astype(np.float32))
        assert optimizer.state[p]["step"].item() == steps[k][0] == 3


@pytest.mark.parametrize("options", [dict(master_weights=True), dict(stochastic_rounding=True, state_dtype="bfloat16")],
                         ids=str)
def test_a_skipped_step_changes_nothing(options):
    """skip_nonfinite with a NaN in a bf16 gradient: the step is skipped whole, masters, bf16 state and
    per-tensor steps included; with a parameter written from outside before it, its master stays
    until a step happens."""
    model = make_model(torch.bfloat16)
    optimizer = lrtorch.AdamW(model.parameters(), lr=1e-2, skip_nonfinite=True, **options)
    for batch in make_batches(torch.bfloat16, steps=2):
        optimizer.zero_grad()
        backward(model, batch)
        optimizer.step()
    first = next(model.parameters())
    with torch.no_grad():
        first.mul_(0.5)
    optimizer.zero_grad()
    backward(model, make_batches(torch.bfloat16, steps=1, seed=3)[0])
    first.grad[0, 0] = float("nan")
    before = snapshot(model, optimizer)
    optimizer.step()
    assert optimizer.skipped_steps == 1 and optimizer.step_count == 2
    before[2]["lrcore"]["skipped_steps"] = 1  # the one thing a skipped step counts
    assert_unchanged(before, model, optimizer)
    first.grad[0, 0] = 0.0
    optimizer.step()
    assert optimizer.step_count == 3
    if options.get("master_weights"):  # the step started from the written value
        assert torch.equal(optimizer.state[first]["master_weight"].bfloat16(), first.detach())
