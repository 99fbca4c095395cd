"""docs/from_torch.md's state_dict conversion, run as written: a torch Adam run continued by lrcore."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

import lrcore

torch = pytest.importorskip("torch")

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "from_torch.md"


def conversion_function():
    text = DOC.read_text()
    block = re.search(r"```python\n(def from_torch.*?)\n\n", text, re.S)
    assert block is not None, "docs/from_torch.md lost its from_torch function"
    namespace: dict = {}
    exec(block.group(1), namespace)  # noqa: S102 - the project's own documentation
    return namespace["from_torch"]


@pytest.mark.torch
def test_a_torch_run_continues_in_lrcore_from_its_converted_state_dict():
    from_torch = conversion_function()
    rng = np.random.default_rng(7)
    start = [rng.standard_normal(5), rng.standard_normal((2, 3))]
    grads = [[rng.standard_normal(p.shape) for p in start] for _ in range(6)]
    tensors = [torch.tensor(p, requires_grad=True) for p in start]
    torch_opt = torch.optim.Adam([{"params": tensors[:1]}, {"params": tensors[1:], "weight_decay": 0.1}],
                                 lr=0.01, amsgrad=True)
    for g in grads[:3]:
        for t, gi in zip(tensors, g):
            t.grad = torch.tensor(gi)
        torch_opt.step()
    params = [t.detach().numpy().copy() for t in tensors]
    lrcore_opt = lrcore.Adam([{"params": params[:1]}, {"params": params[1:], "weight_decay": 0.1}],
                             lr=0.01, amsgrad=True)
    lrcore_opt.load_state_dict(from_torch(torch_opt.state_dict(), lrcore_opt, step_count=3))
    assert lrcore_opt.step_count == 3
    for g in grads[3:]:
        for t, gi in zip(tensors, g):
            t.grad = torch.tensor(gi)
        torch_opt.step()
        lrcore_opt.step(g)
    for p, t in zip(params, tensors):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-12, atol=1e-14)
