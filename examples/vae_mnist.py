"""A VAE on dynamically binarised MNIST with the scikit-learn-style estimator: fit, test
log-likelihood by importance sampling, samples, and an HTML report section.

    OMP_NUM_THREADS=1 AEKIT_DATA=/work/shared/data python examples/vae_mnist.py

Gives (5 epochs, 784-200-200-50 tanh, one core, under a minute): test NLL 109.29 nats
(k = 1000, 500 test images), far from the 86.8 of Burda et al. after 3,280 epochs; see
docs/vae.md for the NLL-vs-training-time curve. It writes vae_mnist_report.html.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from aekit import VariationalAutoencoder, load_mnist
from aekit.report.vae import write_vae_report

torch.set_num_threads(1)
path = os.environ.get("AEKIT_DATA")
train, test = load_mnist(None if path is None else os.path.join(path, "mnist.npz"))

vae = VariationalAutoencoder(50, hidden_layer_sizes=(200, 200), activation="tanh",
                             binarize="dynamic", max_iter=5, batch_size=100,
                             learning_rate=1e-3, validation_fraction=1000 / 60000,
                             n_eval_samples=1000, random_state=0).fit(train.X)
X_test = vae.binarize_(test.X[:500], random_state=2)  # one fixed binarisation
nll = -vae.score(X_test)
print(f"test NLL (k = {vae.n_eval_samples}, {len(X_test)} images): {nll:.2f} nats")
print("epochs:", len(vae.history_), "last validation -ELBO (at the mean code):",
      round(vae.history_[-1]["val_loss"], 2))
samples = vae.sample(16, random_state=0)
print("samples:", samples.shape, "mean pixel", float(np.mean(samples)))
out = write_vae_report(vae.model_, X_test, "vae_mnist_report.html", image_shape=(28, 28),
                       ll_samples=200, ll_rows=100)
print("report:", out)
