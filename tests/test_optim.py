"""lipcli/optim.py: lip's Adam is torch.optim.Adam to the bit (fused for the fit, per tensor for the generator's
loops), and their states are one format."""
from __future__ import annotations

import copy
import subprocess
import sys

import torch

from lipcli.optim import Adam


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    conv = torch.randn(8, 4, 3, 3, generator=g).to(memory_format=torch.channels_last)
    return [torch.nn.Parameter(t) for t in (conv, torch.randn(8, generator=g), torch.randn(5, 7, generator=g))]


def _steps(opt, params, seed: int, n: int, skip: int | None = None) -> None:
    """n steps on seeded gradients; parameter `skip` has no gradient (as a frozen or unused one)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad()
        for i, p in enumerate(params):
            if i != skip:
                p.grad = torch.randn(p.shape, generator=g).to(memory_format=torch.preserve_format)
        opt.step()


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_the_same_update_to_the_bit_and_a_lowered_step_size():
    ours, theirs = _params(0), _params(0)
    mine, ref = Adam(ours, lr=0.01), torch.optim.Adam(theirs, lr=0.01, fused=True)
    _steps(mine, ours, 1, 5, skip=1)
    _steps(ref, theirs, 1, 5, skip=1)
    _same(ours, theirs)
    assert ours[1] not in mine.state and theirs[1] not in ref.state  # no moments without a gradient
    for opt in (mine, ref):  # rollback halves the step size this way
        opt.param_groups[0]["lr"] = 0.005
    _steps(mine, ours, 2, 5)
    _steps(ref, theirs, 2, 5)
    _same(ours, theirs)
    assert ours[0].is_contiguous(memory_format=torch.channels_last)


def test_the_per_tensor_update_is_torchs_on_cpu_to_the_bit():
    """The generator's training and latent solvers: torch.optim.Adam's CPU default (per tensor), with the
    generator's betas (0, 0.99) and the solvers' defaults."""
    for betas in ((0.0, 0.99), (0.9, 0.999)):
        ours, theirs = _params(6), _params(6)
        mine, ref = Adam(ours, lr=2e-4, betas=betas, fused=False), torch.optim.Adam(theirs, lr=2e-4, betas=betas)
        _steps(mine, ours, 7, 12, skip=2)
        _steps(ref, theirs, 7, 12, skip=2)
        _same(ours, theirs)


def test_states_cross_between_torch_and_lip_both_ways():
    """A fit's state saved by an earlier lip (torch's Adam) continues under lip's, and back."""
    ours, theirs = _params(3), _params(3)
    ref = torch.optim.Adam(theirs, lr=0.02, fused=True)
    _steps(ref, theirs, 4, 3)
    saved = copy.deepcopy(ref.state_dict())  # as read back from a file: no tensor shared with `ref`
    mine = Adam(ours, lr=0.01)
    with torch.no_grad():
        for p, q in zip(ours, theirs):
            p.copy_(q)
    mine.load_state_dict(saved)
    assert mine.param_groups[0]["lr"] == 0.02
    _steps(mine, ours, 5, 4)
    _steps(ref, theirs, 5, 4)
    _same(ours, theirs)
    back = torch.optim.Adam(_params(3), lr=0.01, fused=True)
    back.load_state_dict(copy.deepcopy(mine.state_dict()))
    assert str(back.state_dict()) == str(ref.state_dict())


def test_a_restore_and_a_generator_solve_never_import_torchs_compiler(tmp_path):
    """torch.optim and torch's FLOP counter import torch._dynamo, ~2 s of every process on a small CPU. The
    default prior (a compacted ticket), its GFLOP count, the fit's optimizer and the generator's latent solver
    do without it."""
    code = ("import sys, torch; from lipcli import api; "
            "api.restore(torch.rand(3, 32, 32), simulate=True, iters=3, device='cpu'); "
            "api.recoverer('mnist:3', simulate=True, measurements=50, iters=3)(); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
