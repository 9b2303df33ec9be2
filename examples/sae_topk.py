"""Top-k sparse autoencoder on the hidden layer of an MNIST autoencoder, with the latents'
top-activating digits.

    python examples/sae_topk.py [--expansion 4] [-k 32] [--out sae_mnist]
        [--atom-init data --encoder-scale unit_inputs]

A DenseAE 784-512-32 (ReLU hidden layer) is trained for 2 epochs on MNIST's 60,000 training
images; its 512 hidden activations of the training images train an ``aekit.SparseAutoencoder``
(L = expansion · 512 latents, k active, AuxK on, 5 epochs, batch 1024), and its 512
activations of the 10,000 test images are the held-out rows. Prints the test FVU, L0 and
dead fraction next to PCA with k components, and writes ``--out/report.html`` (metrics,
firing frequencies, each described latent's top-activating test digits) and the SAE
(``--out/sae.safetensors``).

Measured (seed 0, one core, commit 22bb5b9: AuxK as Gao et al.'s normalised MSE): test FVU
0.0840 (PCA-32: 0.0837), L0 32.0, dead 20.36 % of 2048 latents (never firing on the 10,000
test rows) — with Gao et al.'s learning rate (2e-4 / sqrt(L / 2^14)) and AuxK. Before the
normalisation: 0.0840 and 22.71 % dead; the same command with batch 4096 (73 steps) then
gave FVU 0.1853 and 1.51 % dead (not re-run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from aekit import DenseAE, Objective, SparseAutoencoder, fit, load_mnist
from aekit.report.sae import write_sae_report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--expansion", type=int, default=4)
    ap.add_argument("-k", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", default="sae_mnist")
    ap.add_argument("--atom-init", choices=("random", "data"), default="random")
    ap.add_argument("--encoder-scale", choices=("none", "unit_inputs", "least_squares"),
                    default="none")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    tr, te = load_mnist()
    ae = DenseAE([784, 512, 32])
    fit(ae, Objective("mse"), tr.X, max_iter=2, batch_size=256, random_state=0,
        progress=False)
    with torch.no_grad():  # the 512 ReLU hidden units
        A = torch.relu(ae.enc[0](torch.from_numpy(tr.X))).numpy()
        A_test = torch.relu(ae.enc[0](torch.from_numpy(te.X))).numpy()
    sae = SparseAutoencoder(n_components=args.expansion * 512, k=args.k, max_iter=args.epochs,
                            batch_size=1024, dead_tokens=60_000, k_aux=256, random_state=0,
                            atom_init=args.atom_init, encoder_scale=args.encoder_scale)
    sae.fit(A)
    m = sae.evaluate(A_test)
    mu = A.mean(0)
    _, V = np.linalg.eigh(np.cov((A - mu).T, bias=True))
    P = V[:, ::-1][:, :args.k]
    R = (A_test - mu) @ P @ P.T + mu
    pca = ((A_test - R) ** 2).sum() / ((A_test - A_test.mean(0)) ** 2).sum()
    print(f"test FVU {m.fvu:.4f} (PCA-{args.k}: {pca:.4f}), L0 {m.l0:.1f}, "
          f"dead {100 * m.dead_fraction:.2f} % of {sae.n_components} latents")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sae.save(out / "sae.safetensors")
    write_sae_report(sae, A_test, out / "report.html", images=te.X.reshape(-1, 28, 28),
                     n_latents=12, n_top=8)
    print(f"wrote {out / 'report.html'} and {out / 'sae.safetensors'}")


if __name__ == "__main__":
    main()
