"""What must hold on a CUDA GPU (marker `cuda`: `pytest -m cuda`, run by benchmarks/gpu_check.sh).

Written on a machine without a GPU: the `needs_gpu` tests skip there and have never run on CUDA; their bodies
did run on CPU with the device swapped (all but the memory test, whose counters are CUDA's), so only their
CUDA-specific behaviour is unchecked. The rest are pure logic and run everywhere: `--device cuda:N`
resolution with a faked device count, and a CPU smoke run of benchmarks/gpu_check.py (every path, the
1/8-width net, 3 iterations each).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lipcli import device as devices, nets
from lipcli.cli import app
from lipcli.errors import LipError
from lipcli.fit import FitConfig, Target, fit
from lipcli.physics import Denoise
from lipcli.transfer import workers
from conftest import narrow_spec, tiny_spec
from test_compact import _check, _kill, _net, _random_masks, _z

pytestmark = pytest.mark.cuda
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def exact_fp32():
    """TF32 off during the test: torch's default runs cuDNN convs in TF32 (10-bit mantissa)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _restore_json(image: Path, device: str, out: Path) -> dict:
    result = CliRunner().invoke(app, [str(a) for a in (
        "restore", image, "--simulate", "--json", "--net", "dip-w16", "--iters", "300", "--no-early-stop",
        "--config", "fast", "--precision", "fp32", "--seed", "0", "--device", device, "-o", out)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.splitlines()[-1])


@needs_gpu
def test_restore_on_cuda_agrees_with_cpu(workdir, monkeypatch):
    """Same seed: the same weights, z and noisy image. The jitter comes from each device's own generator
    and the kernels differ (cuDNN, TF32 convs by torch's default), so the two fits are two realisations of
    one run: on CPU, 5 jitter seeds of this fit spread over 0.43 dB (28.99-29.41 dB), hence 1 dB."""
    monkeypatch.delenv("LIP_DEVICE", raising=False)
    cpu = _restore_json(workdir / "rgb.png", "cpu", workdir / "cpu.png")
    gpu = _restore_json(workdir / "rgb.png", "cuda:0", workdir / "gpu.png")
    assert gpu["device"] == "cuda:0" and gpu["iterations"] == 300
    assert math.isfinite(gpu["psnr_final"]) and math.isfinite(gpu["ssim_final"])
    assert abs(gpu["psnr_final"] - cpu["psnr_final"]) <= 1.0, (cpu["psnr_final"], gpu["psnr_final"])


@needs_gpu
def test_compact_net_equals_masked_net_on_cuda(exact_fp32):
    """test_compact's exactness check on the GPU, at init (random BN affines): float64 within 1e-10 as on
    CPU; float32 within 1e-4, not 1e-5, as cuDNN may pick Winograd/FFT kernels that round more coarsely
    than the CPU's direct convolution (and train-mode BN amplifies rounding, see nets/compact.py)."""
    dev = torch.device("cuda")
    for spec, seed in ((narrow_spec(), 4), (nets.preset("dip"), 1)):
        net = _net(spec, seed)
        masks = _random_masks(net, 0.6, seed, dead_filters=0.2)
        _kill(masks, net, "levels.1.skip.conv")
        small = _check(net.to(dev), masks, _z(net, seed=5).to(dev), tol32=1e-4)
        assert small.report["params_after"] < small.report["params_before"]
        assert next(small.parameters()).device.type == "cuda"


@needs_gpu
def test_bf16_autocast_fit_on_cuda(rgb32):
    if not devices.fast_bf16(torch.device("cuda")):
        pytest.skip("this GPU has no bf16")
    dev = torch.device("cuda")
    torch.manual_seed(0)
    net = nets.build(tiny_spec()).to(dev)
    z = nets.make_input(net, 32, 32, torch.Generator().manual_seed(0)).to(dev)
    conv_dtypes = set()
    hook = net.head.register_forward_hook(lambda mod, inp, out: conv_dtypes.add(out.dtype))
    result = fit(net, [Target(z=z, op=Denoise(25).to(dev), y=rgb32.to(dev), size=(32, 32))],
                 FitConfig(iters=40, precision="bf16", early_stop=False))
    hook.remove()
    final = result.targets[0].final
    assert conv_dtypes == {torch.bfloat16}  # autocast ran the convs in bf16 ...
    assert final.dtype == torch.float32 and final.device.type == "cuda"  # ... and the loop stayed fp32
    assert torch.isfinite(final).all() and result.losses[-1] < result.losses[0]


def _resumed_fit_equals_unstopped(rgb32: torch.Tensor, dev: torch.device, folder: Path) -> None:
    """A fit saved at iteration 40 and continued to 80 ends where an unstopped 80-iteration fit ends."""
    from lipcli.resume import Keeper

    def run(iters: int, keeper: Keeper | None = None):
        torch.manual_seed(0)
        net = nets.build(tiny_spec()).to(dev)
        z = nets.make_input(net, 32, 32, torch.Generator().manual_seed(0)).to(dev)
        target = Target(z=z, op=Denoise(25).to(dev), y=rgb32.to(dev), size=(32, 32), clean=rgb32.to(dev),
                        noise_floor=(25 / 255) ** 2)
        return fit(net, [target], FitConfig(iters=iters, es_window=10, early_stop=False, sgld=0.5), keeper=keeper)

    reference = run(80)
    run(40, Keeper(folder / "fit-0.safetensors", every=0))  # saved at its end: iteration 40
    keeper = Keeper(folder / "fit-0.safetensors", every=None)
    resumed = run(80, keeper)
    assert keeper.resumed_from == 40
    if dev.type == "cpu":
        assert resumed.losses == reference.losses
        assert torch.equal(resumed.targets[0].final, reference.targets[0].final)
    else:  # reflection padding's and bilinear upsampling's backward add with atomics: last bits vary run to run
        assert resumed.losses == pytest.approx(reference.losses, rel=1e-3)
        assert torch.allclose(resumed.targets[0].final, reference.targets[0].final, atol=1e-3)
    assert resumed.targets[0].final.device.type == dev.type


@needs_gpu
def test_a_resumed_fit_on_cuda_equals_the_unstopped_one(rgb32, tmp_path, exact_fp32):
    """lipcli/resume.py reads a state on the CPU and sends each part where it lives (the generator's state
    stays a CPU tensor); the continued fit is the unstopped one, to within the last bits that CUDA's atomic adds
    vary by from run to run (deterministic cuDNN kernels do not cover them). Run on CPU with the device
    swapped, where it is exact (tests/test_resume.py checks the CPU path in full)."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        _resumed_fit_equals_unstopped(rgb32, torch.device("cuda"), tmp_path)
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


@needs_gpu
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_memory_estimate_bounds_the_cuda_peak(precision):
    """plan_memory compares `estimate_bytes` with the GPU's free memory to turn on checkpointing or refuse:
    the estimate must not fall short of a real step's peak (OOM) nor be far above it (a needless refusal).
    Measured: max_memory_allocated over 2 steps of the dense net at 256x256 (every allocation lip makes,
    rollback snapshots and the early-stop buffer included). Stated bounds: estimate/3 <= peak <= 1.25 x
    estimate (the estimate's fixed 200-350 MiB stands for the CPU runtime, which this counter excludes)."""
    if precision == "bf16" and not devices.fast_bf16(torch.device("cuda")):
        pytest.skip("this GPU has no bf16")
    dev, size, spec = torch.device("cuda"), 256, nets.preset("dip")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    torch.manual_seed(0)
    net = nets.build(spec).to(dev)
    z = nets.make_input(net, size, size, torch.Generator().manual_seed(0)).to(dev)
    y = torch.rand(1, 3, size, size, device=dev)
    fit(net, [Target(z=z, op=Denoise(25).to(dev), y=y, size=(size, size))],
        FitConfig(iters=2, precision=precision, early_stop=False, checkpoint_every=1))
    peak = torch.cuda.max_memory_allocated(dev) - base
    estimate = nets.estimate_bytes(spec, size, size, precision)
    assert estimate / 3 <= peak <= 1.25 * estimate, f"peak {peak / 2**20:.0f} MiB, estimate {estimate / 2**20:.0f} MiB"


@needs_gpu
def test_device_index_on_this_machine():
    n = torch.cuda.device_count()
    assert devices.resolve("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(LipError, match=f"{n} CUDA device"):
        devices.resolve(f"cuda:{n}")


def test_device_index_resolution(monkeypatch):
    """`--device cuda:N` against the device count (faked here: two GPUs), and the transfer device list."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert devices.resolve(" CUDA:1 ") == torch.device("cuda", 1)
    assert devices.resolve("cuda") == torch.device("cuda")
    assert devices.resolve("auto").type == "cuda"
    with pytest.raises(LipError, match="cuda:2 does not exist: this machine has 2 CUDA device"):
        devices.resolve("cuda:2")
    with pytest.raises(LipError, match="unknown device"):
        devices.resolve("cuda:x")
    assert workers.parse_devices("cuda:0,cuda:1") == ["cuda:0", "cuda:1"]


def test_gpu_check_runs_on_cpu(monkeypatch, capsys):
    """The GPU check's every path, on CPU with the 1/8-width net: only its CUDA calls go unexercised."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gpu_check

    gpu_check.main(["--device", "cpu", "--net", "dip-w16", "--sizes", "64", "--warmup", "1", "--steps", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 64² |")]
    assert [r.split(" | ")[1] for r in rows] == list(gpu_check.PATHS)
    ref, ticket = rows[0].split(" | "), rows[-1].split(" | ")
    assert ref[5] == "1.00x" and int(ticket[2].replace(",", "")) < int(ref[2].replace(",", ""))


def test_auto_precision_takes_bf16_only_from_bf16_hardware(monkeypatch):
    """`is_bf16_supported()` says yes on pre-Ampere GPUs, where bf16 is emulated and slow: auto asks for
    compute capability 8.0 of the device the fit runs on, not of the current one."""
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: asked.append(d) or caps[d.index])
    caps = {0: (7, 5), 1: (8, 0)}
    assert not devices.fast_bf16(torch.device("cuda", 0)) and devices.fast_bf16(torch.device("cuda", 1))
    assert asked == [torch.device("cuda", 0), torch.device("cuda", 1)]


def test_cuda_memory_free_counts_the_cache_torch_holds(monkeypatch):
    """An earlier fit's freed blocks stay in torch's cache, which the driver counts as taken: the next fit
    reuses them, so the plan must count them free (else a batch's second image is refused)."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (4 * 2**30, 16 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda d=None: 10 * 2**30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d=None: 1 * 2**30)
    assert devices.available_memory(torch.device("cuda", 0)) == 13 * 2**30


def test_tensors_meet_on_the_generators_and_images_device():
    """The sample grid's latent and a reference image that waits on the CPU go to the device of what they
    meet ('meta' stands for a GPU here)."""
    from lipcli import gan
    from lipcli.metrics import _as_nchw

    class Net(torch.nn.Module):
        nz = 4

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, device="meta"))
            self.seen: list[torch.device] = []

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            self.seen.append(z.device)
            return torch.zeros(z.shape[0], 1, 4, 4)

    g = Net()
    with pytest.raises(Exception):  # the stand-in's output is on the CPU; the grid is not the point
        gan.sample_grid(g, Path("/nonexistent-folder/grid.png"), rows=1, cols=2)
    assert g.seen == [torch.device("meta")]
    _, y = _as_nchw(torch.zeros(1, 3, 4, 4, device="meta"), torch.zeros(1, 3, 4, 4))
    assert y.device.type == "meta" and y.dtype == torch.float64


def test_a_state_saved_on_another_device_type_is_another_fit(rgb32):
    """A CUDA generator's state is not a CPU one's (16 bytes against 5056): a fit stopped on a GPU and
    run again on the CPU starts over instead of failing to load the state."""
    from lipcli.fit import _identity

    net = nets.build(tiny_spec(), 0)
    z = nets.make_input(net, 32, 32, torch.Generator().manual_seed(0))
    target = Target(z=z, op=Denoise(25), y=rgb32, size=(32, 32))
    keys = {_identity(FitConfig(iters=10), net, [target], None, torch.device(d)) for d in ("cpu", "cuda", "cuda:1")}
    assert len(keys) == 2


def test_a_gpu_out_of_memory_is_a_refusal(workdir, monkeypatch):
    """A GPU that runs out of memory mid-fit (other processes took what the plan counted free): one line
    naming what to try, exit 2, and in a batch the other images are restored all the same."""
    from lipcli import restore as restore_mod

    real = restore_mod.fit

    def fit(model, targets, *args, **kwargs):
        if targets[0].y.shape[-1] == 53:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, targets, *args, **kwargs)

    monkeypatch.setattr(restore_mod, "fit", fit)
    out = workdir / "out"
    result = CliRunner().invoke(app, [str(a) for a in (
        "restore", workdir / "gray.png", workdir / "rgb.png", "--simulate", "--net", "dip-w16", "--iters", "3",
        "--threads", "1", "--jobs", "1", "-o", out)])
    assert result.exit_code == 2, result.output
    assert "gray.png not restored: the GPU ran out of memory (CUDA out of memory." in result.output
    assert "--checkpoint" in result.output and "Traceback" not in result.output
    assert (out / "rgb.png").is_file() and not (out / "gray.png").exists()
