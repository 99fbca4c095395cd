"""What the benchmark updates: lists of array shapes, by name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Sequence, Tuple

__all__ = ["Workload", "OPT_STEP", "EMBEDDING", "gpt_shapes", "parse_workloads", "DEFAULT_WORKLOADS", "QUICK_WORKLOADS"]

Shape = Tuple[int, ...]

#: Name of the full ``opt.step(grads)`` overhead case (Adam, one small array).
OPT_STEP = "opt-step"
OPT_STEP_ELEMENTS = 4096

SMALL_ARRAYS = "small-arrays"
SMALL_ARRAYS_COUNT = 2000
SMALL_ARRAYS_ELEMENTS = 1000

GPT = "gpt"

#: Row-sparse steps on one 2^20 x 64 table (lrcore.bench._embedding); timed in a section of its own.
EMBEDDING = "embedding"
EMBEDDING_SHAPE = (1 << 20, 64)


@dataclass(frozen=True)
class Workload:
    """A named list of parameter shapes, all updated by one step call."""

    name: str
    shapes: Tuple[Shape, ...]

    @property
    def elements(self) -> int:
        total = 0
        for shape in self.shapes:
            n = 1
            for d in shape:
                n *= d
            total += n
        return total

    @property
    def arrays(self) -> int:
        return len(self.shapes)

    @property
    def label(self) -> str:
        """Short description for tables: "2^20", "2000x1000", "gpt 172 arrays"."""
        if self.arrays == 1 and len(self.shapes[0]) >= 2:  # a matrix: its shape
            return "x".join(str(d) for d in self.shapes[0])
        if self.arrays == 1:
            n = self.elements
            return f"2^{n.bit_length() - 1}" if n & (n - 1) == 0 else str(n)
        if len(set(self.shapes)) == 1:
            return f"{self.arrays}x{self.elements // self.arrays}"
        return f"{self.name} {self.arrays} arrays"


def gpt_shapes(vocabulary: int = 25600, context: int = 1024, width: int = 640, layers: int = 14) -> List[Shape]:
    """Parameter shapes of a small GPT: 172 arrays, about 85.9M elements with the defaults.

    Token and position embeddings, then per layer a layernorm, the fused
    query/key/value projection, the attention output projection, a second
    layernorm and the two MLP matrices (4x width), each with its bias; a final
    layernorm. The output head shares the token embedding, as in GPT-2.
    """
    shapes: List[Shape] = [(vocabulary, width), (context, width)]
    for _ in range(layers):
        shapes += [
            (width,), (width,),                   # ln_1 weight, bias
            (width, 3 * width), (3 * width,),     # attn.c_attn
            (width, width), (width,),             # attn.c_proj
            (width,), (width,),                   # ln_2 weight, bias
            (width, 4 * width), (4 * width,),     # mlp.c_fc
            (4 * width, width), (width,),         # mlp.c_proj
        ]
    shapes += [(width,), (width,)]                # ln_f weight, bias
    return shapes


def _single(elements: int) -> Workload:
    return Workload(str(elements), ((elements,),))


def _named(name: str) -> Workload:
    if name == SMALL_ARRAYS:
        return Workload(SMALL_ARRAYS, ((SMALL_ARRAYS_ELEMENTS,),) * SMALL_ARRAYS_COUNT)
    if name == GPT:
        return Workload(GPT, tuple(gpt_shapes()))
    if name == OPT_STEP:
        return Workload(OPT_STEP, ((OPT_STEP_ELEMENTS,),))
    if name == EMBEDDING:
        return Workload(EMBEDDING, (EMBEDDING_SHAPE,))
    raise ValueError(name)


NAMED = (SMALL_ARRAYS, GPT, OPT_STEP, EMBEDDING)
DEFAULT_WORKLOADS = ("4096", "65536", "2^20", "2^24", SMALL_ARRAYS, GPT, OPT_STEP)
QUICK_WORKLOADS = ("4096", "65536", "2^20", SMALL_ARRAYS, OPT_STEP)


def parse_workloads(tokens: Sequence[str]) -> List[Workload]:
    """Workloads from ``--sizes`` tokens: element counts ("65536", "2^16", "64k", "16M") or names.

    Raises:
        ValueError: a token is neither a positive count nor a known name.
    """
    workloads: List[Workload] = []
    for raw in tokens:
        token = raw.strip().lower()
        if not token:
            continue
        if token in NAMED:
            workloads.append(_named(token))
            continue
        matrix = re.fullmatch(r"(\d+)x(\d+)", token)
        if matrix:  # one matrix (rows x columns): what a factored rule such as Adafactor factors
            rows, columns = int(matrix.group(1)), int(matrix.group(2))
            if rows < 1 or columns < 1:
                raise ValueError(f"size must be >= 1, got {raw!r}")
            workloads.append(Workload(token, ((rows, columns),)))
            continue
        power = re.fullmatch(r"2\^(\d+)", token)
        scaled = re.fullmatch(r"(\d+)([km]?)", token)
        if power:
            elements = 2 ** int(power.group(1))
        elif scaled:
            elements = int(scaled.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[scaled.group(2)]
        else:
            raise ValueError(
                f"unknown size {raw!r}: give an element count (65536, 2^16, 64k, 16M), a matrix (4096x4096) "
                f"or one of {', '.join(NAMED)}"
            )
        if elements < 1:
            raise ValueError(f"size must be >= 1, got {raw!r}")
        workloads.append(_single(elements))
    return workloads
