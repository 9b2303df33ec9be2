"""Label-free augmentations: exact shifts, identity warps, and their use in fit."""

import pytest
import torch

from aekit import DenseAE, fit, make_objective
from aekit.data.augment import RandomAffine, RandomShift


def test_shift_moves_pixels_by_the_drawn_offset_with_zero_fill():
    img = torch.arange(1, 26, dtype=torch.float64).reshape(1, 25)  # 5×5, no zeros
    g = torch.Generator().manual_seed(3)
    out = RandomShift((5, 5), max_shift=2)(img.expand(50, 25).clone(), g).reshape(50, 5, 5)
    src = img.reshape(5, 5)
    seen = set()
    for o in out:
        # recover the offset from where pixel value 13 (the centre) went
        i, j = (o == 13).nonzero()[0].tolist()
        di, dj = i - 2, j - 2
        seen.add((di, dj))
        ref = torch.zeros(5, 5, dtype=torch.float64)
        ref[max(di, 0):5 + min(di, 0), max(dj, 0):5 + min(dj, 0)] = \
            src[max(-di, 0):5 + min(-di, 0), max(-dj, 0):5 + min(-dj, 0)]
        assert torch.equal(o, ref), f"offset {(di, dj)}"
    assert len(seen) > 10, f"only {len(seen)} distinct offsets in 50 draws"


def test_affine_identity_and_reproducibility():
    x = torch.rand(7, 3 * 8 * 8, generator=torch.Generator().manual_seed(0))
    same = RandomAffine((3, 8, 8), degrees=0, scale=0, shear=0, translate=0)(x)
    assert torch.allclose(same, x, atol=1e-6), float((same - x).abs().max())
    aug = RandomAffine((3, 8, 8))
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, x)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="max_shift"):
        RandomShift((4, 4), max_shift=0)
    with pytest.raises(ValueError, match="image_shape"):
        RandomShift((4, 4, 4, 4))
    with pytest.raises(ValueError, match="scale"):
        RandomAffine((4, 4), scale=1.5)
    with pytest.raises(ValueError, match="degrees"):
        RandomAffine((4, 4), degrees=float("nan"))
    with pytest.raises(ValueError, match=r"\(n, 16\)"):
        RandomShift((4, 4))(torch.zeros(2, 15))


def test_fit_trains_on_augmented_batches_reproducibly():
    X = torch.rand(64, 16, generator=torch.Generator().manual_seed(0))

    def run(augment):
        torch.manual_seed(0)
        m = DenseAE([16, 8, 4], output="sigmoid")
        fit(m, make_objective("bce"), X, max_iter=2, batch_size=16, augment=augment, random_state=5,
            progress=False)
        return torch.cat([p.detach().flatten() for p in m.parameters()])

    a, b = run(RandomShift((4, 4), 1)), run(RandomShift((4, 4), 1))
    assert torch.equal(a, b), "same seed, same augmented run"
    assert not torch.allclose(a, run(None)), "augmentation changed nothing"


def test_fit_augments_the_inputs_of_labelled_data_and_keeps_the_labels():
    """(X, labels): the transform reaches the inputs only. An augmentation that blanks every
    input leaves the classifier nothing but the class prior, so its loss ends at the prior's
    entropy; the labels still reach the loss unchanged (the prior is learnt exactly)."""
    from aekit.classifier import EncoderClassifier, classifier_objective

    g = torch.Generator().manual_seed(0)
    X = torch.rand(96, 16, generator=g)
    y = (X[:, :8].sum(1) > X[:, 8:].sum(1)).long() * 2  # labels 0 / 2 from the pixels
    y[:16] = 1

    def run(augment, epochs=40):
        torch.manual_seed(0)
        net = EncoderClassifier(DenseAE([16, 8]), 3)
        h = fit(net, classifier_objective(), (X, y), max_iter=epochs, batch_size=96,
                learning_rate=0.05, augment=augment, random_state=1, progress=False)
        return net, h["train_loss"][-1]

    prior = torch.bincount(y, minlength=3).double() / len(y)
    entropy = float(-(prior * prior.log()).sum())
    _, blanked = run(lambda x, gen: torch.zeros_like(x), epochs=300)
    assert abs(blanked - entropy) < 0.01, (blanked, entropy)
    _, plain = run(None)
    assert plain < entropy - 0.2, f"without the blanking the pixels are used: {plain} vs {entropy}"
    a, b = run(RandomShift((4, 4), 1))[0], run(RandomShift((4, 4), 1))[0]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="other than class labels"):
        fit(DenseAE([16, 8]), make_objective("mse"), (X, X), augment=lambda x, gen: x)
