"""``aekit sae train|evaluate|top-examples|report``: top-k sparse autoencoders on activation
matrices stored as ``.npy`` files (streamed, never loaded whole).

* ``aekit sae train ACTS.npy --n-latents 2048 -k 32 --output DIR`` trains a
  :class:`~aekit.models.TopKSAE` and writes ``DIR/model.safetensors``, ``DIR/history.jsonl``
  and ``DIR/metrics.json`` (FVU, L0, dead fraction on ``--val`` when given);
* ``aekit sae evaluate DIR ACTS.npy`` prints FVU, L0 and the dead fraction as JSON;
* ``aekit sae top-examples DIR ACTS.npy --latents 0 5 9 --n-top 10`` prints (or writes) each
  latent's top-activating rows;
* ``aekit sae report DIR ACTS.npy --output sae.html [--images imgs.npy]`` writes an HTML page.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parser"]


def _positive_int(v: str) -> int:
    try:
        i = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}") from None
    if i < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}")
    return i


def _load_model(path: str):
    from ..models.sae import TopKSAE
    from ..train.checkpoint import load

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"MODEL {path!r} does not exist (write it with "
                                "`aekit sae train`)")
    model = load(p)
    if not isinstance(model, TopKSAE):
        raise ValueError(f"MODEL {path!r} holds a {type(model).__name__}, not a top-k SAE")
    return model


def _cmd_train(a: argparse.Namespace) -> int:
    import torch

    from ..io import atomic_write_json
    from ..models.sae import TopKSAE
    from ..train.checkpoint import save_model
    from .data import as_activations
    from .metrics import evaluate_sae
    from .train import train_sae

    if a.output is None:
        raise ValueError("--output is required (the run directory to write)")
    out = Path(a.output)
    if (out / "model.safetensors").exists() and not a.force:
        raise FileExistsError(f"--output {str(out)!r} already holds a model; pass --force "
                              "to overwrite it")
    src = as_activations(a.input, name="ACTS")
    if (a.n_latents is None) == (a.expansion is None):
        raise ValueError("give exactly one of --n-latents and --expansion")
    L = a.n_latents if a.n_latents is not None else a.expansion * src.n_features
    if a.k > L:
        raise ValueError(f"-k {a.k} is larger than the dictionary (--n-latents {L})")
    val = as_activations(a.val, n_features=src.n_features, name="--val") if a.val else None
    torch.manual_seed(a.random_state)
    model = TopKSAE(src.n_features, L, a.k, batch_topk=a.batch_topk)
    out.mkdir(parents=True, exist_ok=True)
    h = train_sae(model, src, val=val, auxk_alpha=a.auxk_alpha, k_aux=a.k_aux,
                  dead_tokens=a.dead_tokens, max_iter=a.max_iter, batch_size=a.batch_size,
                  learning_rate=a.learning_rate, atom_init=a.atom_init,
                  encoder_scale=a.encoder_scale, resample_steps=a.resample_steps,
                  random_state=a.random_state,
                  history_path=out / "history.jsonl", progress=a.progress)
    save_model(model, out / "model.safetensors",
               extra={"command": "aekit sae train", "input": str(a.input)})
    info = {"model": str(out / "model.safetensors"), "n_features": src.n_features,
            "n_latents": L, "k": a.k, "n_rows": len(src), "epochs": len(h.records),
            "train_recon": h.records[-1].get("train_recon")}
    if val is not None:
        info["val"] = evaluate_sae(model, val, batch_size=a.batch_size).as_dict()
    atomic_write_json(out / "metrics.json", info)
    print(json.dumps(info))
    return 0


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from .metrics import evaluate_sae

    model = _load_model(a.model)
    res = evaluate_sae(model, a.input, window=a.window).as_dict()
    print(json.dumps(res))
    return 0


def _cmd_top(a: argparse.Namespace) -> int:
    from ..io import atomic_write_json
    from .examples import top_activating_examples

    model = _load_model(a.model)
    ex = top_activating_examples(model, a.input, n_top=a.n_top, latents=a.latents)
    res = {"latents": [
        {"latent": int(lat), "frequency": float(f),
         "rows": [int(i) for i in r if i >= 0],
         "values": [float(v) for i, v in zip(r, vv) if i >= 0]}
        for lat, f, r, vv in zip(ex.latents, ex.frequency, ex.rows, ex.values)]}
    if a.output:
        atomic_write_json(a.output, res)
        print(json.dumps({"top_examples": a.output, "latents": len(ex.latents)}))
    else:
        print(json.dumps(res))
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    import numpy as np

    from ..report.sae import write_sae_report

    model = _load_model(a.model)
    images = None
    if a.images:
        if not Path(a.images).exists():
            raise FileNotFoundError(f"--images {a.images!r} does not exist")
        images = np.load(a.images, mmap_mode="r")
    path = write_sae_report(model, a.input, a.output, images=images, n_latents=a.n_latents,
                            n_top=a.n_top, window=a.window)
    print(json.dumps({"report": path}))
    return 0


def add_parser(subparsers) -> None:
    """Add ``aekit sae {train,evaluate,top-examples,report}``."""
    p = subparsers.add_parser("sae", help="top-k sparse autoencoders on activation matrices "
                              "(.npy, streamed)", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="sae_command", required=True)

    t = sub.add_parser("train", help="train a top-k SAE on ACTS.npy")
    t.add_argument("input", help="activations, a (n, d) .npy file (streamed)")
    t.add_argument("--output", "-o", help="run directory to write")
    t.add_argument("--force", action="store_true", help="overwrite a model in --output")
    t.add_argument("--n-latents", type=_positive_int, default=None, help="dictionary size L")
    t.add_argument("--expansion", type=_positive_int, default=None,
                   help="L as a multiple of the width d (e.g. 4 or 16)")
    t.add_argument("-k", type=_positive_int, default=32, help="active latents per row")
    t.add_argument("--batch-topk", action="store_true", help="BatchTopK selection")
    t.add_argument("--auxk-alpha", type=float, default=1 / 32,
                   help="AuxK weight (0 disables it)")
    t.add_argument("--k-aux", type=_positive_int, default=512,
                   help="dead latents decoded by AuxK")
    t.add_argument("--dead-tokens", type=_positive_int, default=100_000,
                   help="tokens without firing after which a latent is dead")
    t.add_argument("--max-iter", type=_positive_int, default=1, help="epochs")
    t.add_argument("--batch-size", type=_positive_int, default=1024)
    t.add_argument("--learning-rate", type=float, default=None,
                   help="Adam rate (default 2e-4 / sqrt(L / 2^14))")
    t.add_argument("--atom-init", choices=("random", "data"), default="random",
                   help="initial atoms: unit-norm Gaussian or centred training rows")
    t.add_argument("--encoder-scale", choices=("none", "unit_inputs", "least_squares"),
                   default="none", help="rescale the encoder once at initialisation")
    t.add_argument("--resample-steps", type=_positive_int, nargs="*", default=(),
                   help="steps after which dead latents are resampled (Anthropic 2023)")
    t.add_argument("--val", default=None, help="validation activations (.npy)")
    t.add_argument("--random-state", type=int, default=0)
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    t.set_defaults(handler=_cmd_train)

    e = sub.add_parser("evaluate", help="FVU, L0 and dead fraction of MODEL on ACTS.npy")
    e.add_argument("model", help="model.safetensors or the run directory")
    e.add_argument("input", help="activations (.npy)")
    e.add_argument("--window", type=_positive_int, default=None,
                   help="use only the first WINDOW rows (tokens)")
    e.set_defaults(handler=_cmd_evaluate)

    x = sub.add_parser("top-examples", help="each latent's top-activating rows")
    x.add_argument("model", help="model.safetensors or the run directory")
    x.add_argument("input", help="activations (.npy)")
    x.add_argument("--latents", type=int, nargs="*", default=None,
                   help="latents to list (default: all)")
    x.add_argument("--n-top", type=_positive_int, default=10)
    x.add_argument("--output", "-o", default=None, help="JSON file to write")
    x.set_defaults(handler=_cmd_top)

    r = sub.add_parser("report", help="HTML report: metrics, frequencies, top examples")
    r.add_argument("model", help="model.safetensors or the run directory")
    r.add_argument("input", help="activations (.npy)")
    r.add_argument("--output", "-o", default="sae.html")
    r.add_argument("--images", default=None,
                   help=".npy of the inputs (n, H, W) the activation rows came from")
    r.add_argument("--n-latents", type=_positive_int, default=12)
    r.add_argument("--n-top", type=_positive_int, default=8)
    r.add_argument("--window", type=_positive_int, default=None)
    r.set_defaults(handler=_cmd_report)
