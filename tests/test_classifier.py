"""AutoencoderClassifier: scikit-learn API checks, accuracy on digits, frozen encoders and
transfer between datasets, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch.nn import functional as F

from aekit import Autoencoder, DenseAE, fit, make_objective
from aekit.classifier import AutoencoderClassifier
from aekit.objectives import fgsm_loss

# Checks expected to fail, with the reason (none at present: keep the hook so that a failure
# gets a reason instead of a skip).
EXPECTED_FAILURES: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks: one thread avoids oversubscribing a shared CPU (and is faster here).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@parametrize_with_checks([AutoencoderClassifier(n_components=4, hidden_layer_sizes=(16,),
                                                pretrain_max_iter=2, max_iter=40,
                                                learning_rate=1e-2, random_state=0)],
                         expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_api(estimator, check):
    check(estimator)


def test_beats_90_percent_on_digits(digits):
    tr, te = digits
    clf = AutoencoderClassifier(random_state=0, pretrain_max_iter=10, max_iter=50,
                                dropout=0.2, optimizer_weight_decay=1e-2).fit(tr.X, tr.y)
    acc = clf.score(te.X, te.y)
    assert acc > 0.90, f"accuracy {acc:.4f} on the 297 digits test images"
    proba = clf.predict_proba(te.X)
    assert proba.shape == (len(te.X), 10)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-10)
    assert np.array_equal(clf.classes_[proba.argmax(1)], clf.predict(te.X))
    assert clf.encode(te.X[:5]).shape == (5, 32)
    assert clf.autoencoder_ is not None and len(clf.model_.encoder.dec) == 0  # decoder dropped


def test_same_random_state_same_predictions(digits):
    tr, te = digits
    kw = dict(n_components=8, hidden_layer_sizes=(32,), pretrain_max_iter=2, max_iter=3)
    a = AutoencoderClassifier(random_state=1, **kw).fit(tr.X[:400], tr.y[:400])
    b = AutoencoderClassifier(random_state=1, **kw).fit(tr.X[:400], tr.y[:400])
    np.testing.assert_array_equal(a.predict_proba(te.X), b.predict_proba(te.X))


def _pretrained_encoder(X, seed=0, epochs=15):
    torch.manual_seed(seed)
    ae = DenseAE([X.shape[1], 64, 16], activation="elu", output="sigmoid")
    fit(ae, make_objective("bce"), X, max_iter=epochs, batch_size=64, learning_rate=3e-3,
        random_state=seed)
    return ae


def test_frozen_transfer_between_digit_classes(digits):
    """Encoder pretrained on the digits 0–4 only, reused frozen for 5–9: its weights do not
    move, the given model is not modified, and the features still separate the new classes."""
    tr, te = digits
    src = tr.X[tr.y < 5]
    ae = _pretrained_encoder(src)
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    m_tr, m_te = tr.y >= 5, te.y >= 5
    clf = AutoencoderClassifier(encoder=ae, freeze_encoder=True, max_iter=150,
                                learning_rate=1e-2, random_state=0)
    clf.fit(tr.X[m_tr], tr.y[m_tr])
    for k, v in ae.state_dict().items():  # the caller's model is untouched
        assert torch.equal(v, before[k]), k
    for name, p in clf.model_.encoder.state_dict().items():  # frozen: same as given
        assert torch.equal(p, before[name]), name
    acc = clf.score(te.X[m_te], te.y[m_te])
    assert acc > 0.8, f"frozen transferred encoder: accuracy {acc:.3f} on digits 5-9"
    # Fine-tuning the same encoder instead moves its weights.
    tuned = AutoencoderClassifier(encoder=ae, freeze_encoder=False, max_iter=3,
                                  random_state=0).fit(tr.X[m_tr], tr.y[m_tr])
    w = tuned.model_.encoder.enc[0].weight
    assert not torch.equal(w, before["enc.0.weight"])


def test_layerwise_denoising_pretraining(digits):
    tr, te = digits
    clf = AutoencoderClassifier(n_components=8, hidden_layer_sizes=(32, 16),
                                pretrain="layerwise", pretrain_noise=0.2, pretrain_max_iter=2,
                                max_iter=10, learning_rate=1e-2, random_state=0).fit(tr.X[:400],
                                                                                     tr.y[:400])
    assert clf.autoencoder_.sizes == [64, 32, 16, 8]
    assert clf.score(te.X, te.y) > 0.5


def test_encoder_from_fitted_estimator(digits):
    tr, te = digits
    est = Autoencoder(n_components=8, hidden_layer_sizes=(32,), max_iter=3,
                      random_state=0).fit(tr.X[:300])
    clf = AutoencoderClassifier(encoder=est, max_iter=5, random_state=0).fit(tr.X[:300],
                                                                              tr.y[:300])
    assert clf.encode(te.X[:4]).shape == (4, 8)


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.data
def test_transfer_mnist_to_fashion_mnist(mnist_path):
    """An encoder pretrained on MNIST digits, frozen, classifies Fashion-MNIST far above
    chance (small subsets: a smoke test of the transfer path on real data)."""
    if not FASHION.is_dir():
        pytest.skip(f"Fashion-MNIST not found at {FASHION} "
                    "(apt-get install dataset-fashion-mnist)")
    from aekit import load_mnist

    mnist, _ = load_mnist(mnist_path)
    f_tr, f_te = load_mnist(FASHION)
    ae = _pretrained_encoder(mnist.X[:3000], epochs=3)
    kw = dict(max_iter=30, learning_rate=1e-2, random_state=0)
    frozen = AutoencoderClassifier(encoder=ae, freeze_encoder=True, **kw)
    frozen.fit(f_tr.X[:3000], f_tr.y[:3000])
    acc = frozen.score(f_te.X[:2000], f_te.y[:2000])
    assert acc > 0.6, f"MNIST encoder, frozen, on Fashion-MNIST: accuracy {acc:.3f}"


def test_fgsm_loss_matches_definition_and_ascends():
    """J̃ = α J(x) + (1 − α) J(x + ε sign ∇J) against a hand computation (float64), and for a
    linear softmax model (convex in x) the step raises every sample's loss by at least
    ε ‖∇ₓJ_i‖₁ (first-order bound), unclipped."""
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(6, 3).double()
    x = torch.randn(8, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=g)
    eps, alpha = 0.1, 0.3
    got = fgsm_loss(model, x, y, eps, alpha=alpha, clip=None)
    xr = x.clone().requires_grad_(True)
    per = F.cross_entropy(model(xr), y, reduction="none")
    (gi,) = torch.autograd.grad(per.sum(), xr)  # per-sample gradients (rows independent)
    x_adv = x + eps * gi.sign()
    with torch.no_grad():
        per_adv = F.cross_entropy(model(x_adv), y, reduction="none")
        want = alpha * per.mean() + (1 - alpha) * per_adv.mean()
        bound = per + eps * gi.abs().sum(1)
    assert abs(float(got) - float(want)) < 1e-12, (float(got), float(want))
    assert bool((per_adv >= bound - 1e-12).all()), (per_adv - bound).min()
    # eps = 0 is the clean loss; alpha = 1 ignores the perturbation; the weight gradient flows
    assert abs(float(fgsm_loss(model, x, y, 0.0, clip=None)) - float(per.mean())) < 1e-12
    assert abs(float(fgsm_loss(model, x, y, 5.0, alpha=1.0)) - float(per.mean())) < 1e-12
    model.zero_grad()
    got.backward()
    assert model.weight.grad is not None and float(model.weight.grad.abs().sum()) > 0
    # clipping: a huge step from x in [0, 1] lands on the corner of the unit cube that the
    # gradient signs point to (coordinates with a zero gradient stay put)
    xu = torch.rand(8, 6, generator=g, dtype=torch.float64)
    xr = xu.clone().requires_grad_(True)
    (gu,) = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)
    corner = torch.where(gu > 0, 1.0, torch.where(gu < 0, 0.0, xu))
    with torch.no_grad():
        want = F.cross_entropy(model(corner), y)
    got = fgsm_loss(model, xu, y, 100.0, alpha=0.0)
    assert abs(float(got) - float(want)) < 1e-12, (float(got), float(want))
    for bad in ({"eps": -0.1}, {"eps": float("nan")}, {"alpha": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            fgsm_loss(model, x, y, **{"eps": 0.1, **bad})


def test_adversarial_fine_tuning_on_digits(digits):
    """FGSM fine-tuning trains a working classifier, is seeded, and leaves clean accuracy
    high; it needs a trainable encoder."""
    tr, te = digits
    kw = dict(n_components=16, hidden_layer_sizes=(64,), pretrain_max_iter=3, max_iter=30,
              learning_rate=3e-3, random_state=0)
    adv = AutoencoderClassifier(adversarial_eps=0.05, **kw).fit(tr.X, tr.y)
    acc = adv.score(te.X, te.y)
    assert acc > 0.9, f"adversarially fine-tuned accuracy {acc:.4f}"
    # the attack reached the objective: every epoch's loss rose under it (the FGSM part is
    # (1 − α)(CE(x̃) − CE(x)) > 0), and the loss curve is the adversarial objective
    excess = adv.history_["train_fgsm"]
    assert len(excess) == 30 and min(excess) > 0, excess
    plain = AutoencoderClassifier(**kw).fit(tr.X, tr.y)
    assert "train_fgsm" not in plain.history_.records[-1]
    assert adv.loss_curve_[-1] > plain.loss_curve_[-1], (adv.loss_curve_[-1],
                                                           plain.loss_curve_[-1])
    again = AutoencoderClassifier(adversarial_eps=0.05, **kw).fit(tr.X, tr.y)
    np.testing.assert_array_equal(adv.predict_proba(te.X), again.predict_proba(te.X))
    with pytest.raises(ValueError, match="freeze_encoder"):
        AutoencoderClassifier(adversarial_eps=0.1, freeze_encoder=True, max_iter=1,
                              pretrain_max_iter=1).fit(tr.X[:50], tr.y[:50])


@pytest.mark.parametrize("kw, match", [
    ({"adversarial_eps": -1.0}, "adversarial_eps"),
    ({"adversarial_eps": "big"}, "adversarial_eps"),
    ({"pretrain": "rbm"}, "pretrain"),
    ({"max_iter": -1}, "max_iter"),
    ({"n_components": 0}, "n_components"),
    ({"pretrain_noise": 1.0}, "pretrain_noise"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
    ({"encoder": "not a model"}, "encoder"),
    ({"encoder": DenseAE([10, 4])}, "features"),
])
def test_bad_parameters(kw, match, digits):
    tr, _ = digits
    with pytest.raises(ValueError, match=match):
        AutoencoderClassifier(**{"max_iter": 1, "pretrain_max_iter": 1, **kw}).fit(tr.X[:50],
                                                                                 tr.y[:50])


def test_bad_targets(digits):
    tr, _ = digits
    with pytest.raises(ValueError, match="Unknown label type"):
        AutoencoderClassifier(max_iter=1).fit(tr.X[:20], np.linspace(0, 1, 20))


def test_weight_decay_is_renamed_optimizer_weight_decay(digits, tmp_path):
    """issue 16: the classifier's weight_decay was AdamW's decay, the optimiser's; it is
    optimizer_weight_decay now (weight_decay is the objective term elsewhere). The old keyword
    warns and trains the same model."""
    import warnings

    tr, _ = digits
    kw = dict(n_components=8, hidden_layer_sizes=(16,), pretrain_max_iter=1, max_iter=2,
              random_state=0)
    a = AutoencoderClassifier(optimizer_weight_decay=0.5, **kw).fit(tr.X[:200], tr.y[:200])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        b = AutoencoderClassifier(weight_decay=0.5, **kw)
    msgs = [str(w.message) for w in rec if issubclass(w.category, FutureWarning)]
    assert any("'weight_decay' is renamed 'optimizer_weight_decay'" in m for m in msgs), msgs
    assert "weight_decay" not in b.get_params() and b.optimizer_weight_decay == 0.5
    b.fit(tr.X[:200], tr.y[:200])
    np.testing.assert_array_equal(a.predict_proba(tr.X[:50]), b.predict_proba(tr.X[:50]))
    with pytest.raises(TypeError, match="pass 'optimizer_weight_decay' only"):
        AutoencoderClassifier(weight_decay=0.1, optimizer_weight_decay=0.2)
    with pytest.raises(ValueError, match="optimizer_weight_decay"):
        AutoencoderClassifier(optimizer_weight_decay=-1.0, **kw).fit(tr.X[:50], tr.y[:50])
