"""The 1-D augmentations, value by value, as their documentation states them.

Written to kill the mutants of ``skcnn/_augment.py`` that survived
``tests/test_signal.py`` (see ``tests/MUTATION.md``): the distribution of
the scaling factor, the per-series (and per-channel, real-steps-only) noise
level of jitter, a window of one step, windows that reach the series' end,
and the ranges ``from_param`` accepts.
"""

import pytest
import torch

from skcnn._augment import Augmentation


def test_scaling_factor_is_drawn_from_n_1_sigma2():
    torch.manual_seed(0)
    x = torch.ones(50_000, 2, 3)
    factor = Augmentation([("scaling", 0.1)])(x)[..., 0]
    # Mean 1 (a factor 1 / N(1, s^2) would have mean 1.01), std sigma.
    assert abs(factor.mean().item() - 1) < 0.002
    assert factor.std().item() == pytest.approx(0.1, rel=0.02)


def test_jitter_noise_is_sigma_times_each_series_and_channel_std():
    torch.manual_seed(0)
    n = 4000
    scales = torch.tensor([[1.0, 4.0], [0.5, 2.0]])  # two series, two channels
    base = torch.sign(torch.randn(2, 2, 30)) * scales[..., None]  # std = scale
    x = base.repeat(n, 1, 1)
    noise = Augmentation([("jitter", 0.2)])(x) - x
    std = noise.reshape(n, 2, 2, 30).permute(1, 2, 0, 3).reshape(2, 2, -1).std(dim=-1)
    torch.testing.assert_close(std, 0.2 * base.std(dim=-1, unbiased=False),
                               rtol=0.02, atol=0)


def test_masked_jitter_uses_the_std_of_the_real_steps_only():
    torch.manual_seed(0)
    n = 4000
    lengths = torch.tensor([20, 8])
    mask = torch.arange(20)[None, :] < lengths[:, None]
    # Real steps alternate +-scale around an offset: std = scale, whatever
    # the offset; the padding (zeros) would change both if it counted.
    sign = torch.tensor([1.0, -1.0]).repeat(10)
    scales = torch.tensor([[1.0, 3.0], [2.0, 0.5]])
    offsets = torch.tensor([[5.0, -2.0], [1.0, 4.0]])
    base = (offsets[..., None] + scales[..., None] * sign) * mask[:, None, :]
    batch = {"x": base.repeat(n, 1, 1), "mask": mask.repeat(n, 1)}
    out = Augmentation([("jitter", 0.2)])(batch)["x"]
    noise = (out - batch["x"]).reshape(n, 2, 2, 20)
    for i, length in enumerate(lengths.tolist()):
        real = noise[:, i, :, :length].transpose(0, 1).reshape(2, -1)
        torch.testing.assert_close(real.std(dim=-1), 0.2 * scales[i], rtol=0.03,
                                   atol=0)
        assert not noise[:, i, :, length:].any()


def test_window_slice_of_one_step_repeats_one_value():
    torch.manual_seed(0)
    ramp = torch.arange(5.0).repeat(50, 1, 1)
    out = Augmentation([("window_slice", 0.1)])(ramp)  # ceil(0.5) = 1 step
    assert torch.equal(out, out[..., :1].expand_as(out))
    assert set(out[:, 0, 0].tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}


def test_window_slice_windows_that_reach_the_end_stay_linear():
    torch.manual_seed(0)
    ramp = torch.arange(20.0).repeat(200, 1, 1)
    out = Augmentation([("window_slice", 0.9)])(ramp)  # windows of 18 steps
    assert (out[:, 0, -1] == 19).any()  # some windows end at the last step
    steps = out.diff(dim=-1)
    torch.testing.assert_close(steps, torch.full_like(steps, 17 / 19))


@pytest.mark.parametrize("augment, steps", [
    ({"window_slice": 1.0}, (("window_slice", 1.0),)),
    ({"scaling": 2.0, "jitter": 1.5}, (("scaling", 2.0), ("jitter", 1.5))),
    (["jitter"], (("jitter", 0.03),)),
    ("scaling", (("scaling", 0.1),)),
])
def test_from_param_accepts_the_documented_ranges(augment, steps):
    assert Augmentation.from_param(augment).steps == steps


@pytest.mark.parametrize("augment, error, match", [
    ({"jitter": 0.0}, ValueError, r"augment\['jitter'\] \(noise standard "
     r"deviation.*\) must be a float in \(0, inf\); got 0.0"),
    ({"window_slice": 1.01}, ValueError, r"must be a float in \(0, 1\]"),
    (3, TypeError, r"augment must be None, a name, a list of names or a dict "
     r"\{name: strength\} with names in \['window_slice', 'scaling', "
     r"'jitter'\]; got int 3"),
])
def test_from_param_refuses_values_outside_the_ranges(augment, error, match):
    with pytest.raises(error, match=match):
        Augmentation.from_param(augment)
