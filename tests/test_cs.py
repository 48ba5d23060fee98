"""Compressive sensing with the bundled generator prior: operators, MOM, recovery, outlier robustness."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipcli import artifact, gan, generators, nets
from lipcli.cs import CSConfig, mom, mse, solve
from lipcli.nets import GAN, DCGANGenerator
from lipcli.physics import GaussianCS, Inpaint, StructuredCS, dct_ortho
from prune_helpers import write_picture

SHAPE = (1, 32, 32)


@pytest.fixture(scope="module")
def generator():
    g, _, _ = generators.load(gan.GENERATOR)
    return g


@pytest.fixture(scope="module")
def target(generator):
    """A held-back GENERATED image: G(z*) for a random z* no solver starts from."""
    with torch.no_grad():
        return generator(torch.randn((1, generator.nz), generator=torch.Generator().manual_seed(2024)))


@pytest.mark.parametrize("cls", [GaussianCS, StructuredCS])
def test_operator_adjoint_identity_and_shapes(cls):
    op = cls(SHAPE, 300, outliers=6, seed=3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((2, *SHAPE), generator=gen, dtype=torch.float64)
    y = torch.randn((2, 300), generator=gen, dtype=torch.float64)
    ax = op.A(x)
    aty = op.A_adjoint(y)
    assert ax.shape == (2, 300) and aty.shape == x.shape
    lhs, rhs = float((ax * y).sum()), float((x * aty).sum())
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))
    assert op.row_losses(x.float(), y.float()).shape == (2, 300)
    obs = op(x[:1].float(), torch.Generator().manual_seed(1))
    assert obs.shape == (1, 300) and int((obs == op.outlier_value).sum()) == 6


def test_structured_operator_is_an_isometry_on_average():
    assert torch.allclose(dct_ortho(torch.eye(50, dtype=torch.float64)) @ dct_ortho(torch.eye(50, dtype=torch.float64)).T,
                          torch.eye(50, dtype=torch.float64), atol=1e-12)
    op = StructuredCS(SHAPE, 1024)  # all rows: an orthogonal map
    x = torch.rand((1, *SHAPE), dtype=torch.float64)
    assert torch.allclose(op.A(x).norm(), x.norm())


def test_mom_with_one_batch_is_the_mean():
    rows = torch.randn(37, dtype=torch.float64)
    assert torch.allclose(mom(rows, 1000, torch.Generator().manual_seed(0)), rows.mean())
    # several batches: the median batch mean, robust to a few huge rows
    rows = torch.zeros(100)
    rows[:3] = 1e6
    assert float(mom(rows, 10, torch.Generator().manual_seed(0))) == 0.0


def test_mom_of_an_even_batch_count_takes_the_upper_median_as_jalal_and_lip():
    """Four one-row batches 0..3: sorted index 4 // 2 (their argsort[n // 2]), not the lower median 1."""
    assert float(mom(torch.arange(4.0), 1, torch.Generator().manual_seed(0))) == 2.0


def test_simulated_noise_is_independent_of_the_matrix():
    """Matrix and noise both come from --seed: the noise was the matrix's first row, scaled (correlation 0.96)."""
    op = GaussianCS(SHAPE, 300, noise=0.01, seed=0)
    x = torch.rand((1, *SHAPE))
    y = op(x, torch.Generator().manual_seed(0))
    assert torch.equal(y, op(x, torch.Generator().manual_seed(0)))
    noise = (y - op.A(x))[0].double()
    first_row = op.A(torch.eye(op.n)[:300].reshape(300, *SHAPE))[:, 0].double()  # A[0, j], j < m
    assert abs(float(torch.corrcoef(torch.stack([noise, first_row]))[0, 1])) < 0.3
    assert 0.008 < float(noise.std()) < 0.012


def test_cs_recovers_a_generated_image_without_outliers(generator, target):
    op = GaussianCS(SHAPE, 500, noise=0.01, seed=1)
    y = op(target, torch.Generator().manual_seed(5))
    res = solve(generator, op, y, CSConfig(solver="ls", iters=300, restarts=2, seed=0))
    assert mse(res.image, target) < 0.01
    assert len(res.selection_losses) == 2 and res.restart == min(range(2), key=res.selection_losses.__getitem__)


def test_outliers_hurt_least_squares_much_more_than_mom(generator, target):
    op = GaussianCS(SHAPE, 500, outliers=10, noise=0.01, seed=1)  # 2% corrupted rows, 25 MOM batches
    y = op(target, torch.Generator().manual_seed(5))
    # 4 restarts each: with 2, MOM's best (by its own loss) start stays in a poor minimum for this target
    ls = mse(solve(generator, op, y, CSConfig(solver="ls", iters=250, restarts=4, seed=0)).image, target)
    robust = mse(solve(generator, op, y, CSConfig(solver="mom", iters=250, restarts=4, seed=0)).image, target)
    assert robust < 0.05  # measured 0.033
    assert ls > 3 * robust  # measured 0.128


def test_inpainting_uses_the_squared_error(generator, target):
    op = Inpaint.bernoulli((1, 32, 32), 0.5, seed=0)
    y = op(target, torch.Generator())
    x = torch.rand_like(target)
    assert torch.allclose(op.loss(x, y), ((x - target) ** 2 * op.mask).mean())  # quadratic, not quartic
    res = solve(generator, op, y, CSConfig(solver="ls", iters=200, restarts=3, seed=0))
    assert res.losses[-1] < 0.5 * res.losses[0]
    assert mse(res.image, target) < 0.05


def test_generator_artifact_round_trips(tmp_path):
    art = artifact.load(gan.GENERATOR)
    assert art.spec["kind"] == "gan" and art.meta["method"] == "gan-train"
    assert art.meta["command"].startswith("lip train-generator")
    assert art.meta["held_out"] == gan.HELD_OUT and art.meta["train_images"] == 4500  # trained on every class
    assert art.prune_round == {} and art.rounds == 0
    net = nets.build(art.spec)
    assert isinstance(net, GAN) and isinstance(net.g, DCGANGenerator)
    net.load_state_dict(art.theta0, strict=True)
    copy = tmp_path / "g.safetensors"
    artifact.save(copy, art)
    again = artifact.load(copy)
    assert again.meta == art.meta
    assert all(torch.equal(again.theta0[n], art.theta0[n]) for n in art.theta0)
    assert copy.read_bytes() == artifact.to_bytes(art)
    # G's prunable weights are its convs; the linear first layer stays dense
    assert nets.conv_weight_names(net) == ["g.blocks.0.conv.weight", "g.blocks.1.conv.weight",
                                           "g.blocks.2.conv.weight", "g.head.weight"]


def test_the_held_back_digits_are_the_last_rows_of_every_class_and_never_trained_on():
    train, train_labels = gan.load_mnist("train")
    test, labels = gan.load_mnist("test")
    every, every_label = gan.load_mnist("all")
    assert train.shape == (4500, 1, 32, 32) and test.shape == (500, 1, 32, 32)
    assert torch.bincount(labels).tolist() == [50] * 10 and torch.bincount(train_labels).tolist() == [450] * 10
    assert torch.equal(labels, torch.arange(500) % 10)  # interleaved: mnist:K is the digit K % 10
    trained = {x.numpy().tobytes() for x in train}
    assert not any(x.numpy().tobytes() in trained for x in test)  # disjoint
    for c in range(10):  # the class's last 50 rows of the file, in file order; the rest trains
        rows = every[every_label == c]
        assert torch.equal(test[labels == c], rows[-50:]) and torch.equal(train[train_labels == c], rows[:-50])
    assert torch.equal(gan.load_data("mnist", artifact.load(gan.GENERATOR).spec), train)


def test_a_dip_fit_through_the_measurements_names_its_mask_and_the_api_takes_str_paths(tmp_path):
    """lip cs --prior dip --mask M records M and its round (the generator prior did, the DIP fit did not); the API
    takes its file options as str as well as Path."""
    from lipcli import api
    write_picture(tmp_path / "x.png", 32, 32)
    np.save(tmp_path / "A.npy", np.random.default_rng(0).normal(size=(100, 32 * 32 * 3)).astype(np.float32))
    job = api.recoverer(str(tmp_path / "x.png"), simulate=True, prior="dip", matrix=str(tmp_path / "A.npy"),
                        mask="dip-channel-house", iters=2, device="cpu")
    report = job().report
    assert (report["mask"], report["round"]) == ("dip-channel-house", 2)
