"""Command-line interface: ``aekit train|encode|reconstruct|score|evaluate|classify|info|
report|compare|sparse``.

Every subcommand exits 0 on success, 2 on bad input (with one line naming the problem), and
never leaves a half-written file behind.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from importlib import import_module
from pathlib import Path

import numpy as np

from .version import __version__

EXAMPLES = """examples:
  aekit train --data digits --n-components 8 --output runs/digits
  aekit train --config run.toml --set train.learning_rate=1e-3 \\
      --set model.hidden_layer_sizes=[256,64] --output runs/x
  aekit train --output runs/x --resume         # continue a killed run from its checkpoint
  aekit evaluate runs/digits                   # AE vs PCA of the same code size, test set
  aekit encode runs/digits --input test --output codes.npy
  aekit info runs/digits
  aekit report runs/digits                     # writes runs/digits/report.html
  aekit compare runs/a runs/b --output compare.html
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aekit", description="Autoencoders and sparse coding on a CPU.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser(
        "train", help="train an autoencoder and write a run directory",
        description="Train an autoencoder, compare it with PCA of the same code size on the "
        "test set, and write a run directory (config.json, model.safetensors, history.jsonl, "
        "metrics.json, report.html, checkpoints/). Settings come from the defaults, then "
        "--config, then the flags below, then --set overrides (last wins). Every TOML key "
        "has a flag (aekit.schema.RUN_SETTINGS: the same names and defaults as "
        "aekit.Autoencoder); a model option the chosen --model does not have is an error.",
        epilog=_config_keys_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", type=Path, help="TOML file with [data] [model] [objective] "
                   "[train] tables")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. train.learning_rate=1e-3 (repeatable)")
    from .schema import add_train_flags

    add_train_flags(t)
    t.add_argument("--nproc-per-node", type=int, default=1, metavar="N",
                   help="train with N processes on torch.distributed (relaunches itself "
                   "under torchrun; batch_size is the global batch)")
    t.add_argument("--output", "-o", type=Path, help="run directory (default "
                   "runs/<dataset>); must be new, empty, or an aekit run (it holds run.json)")
    add_renamed_flag(t, "--out", "--output", type=Path)
    t.add_argument("--force", action="store_true", help="when --output holds other files, "
                   "write the run into a new subdirectory --output/run-<time>-<id> (nothing "
                   "of yours is moved or overwritten)")
    t.add_argument("--resume", action="store_true", help="continue the run in --output from its "
                   "newest checkpoint (uses the run's saved config); an error when the run "
                   "has no readable checkpoint of its own")
    t.add_argument("--restart", action="store_true", help="with --resume: train the run "
                   "again from step 0 when none of its checkpoints is readable")
    t.add_argument("--no-report", action="store_true", help="do not write report.html")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="force the progress bar on/off (default: only on a terminal, off "
                   "under CI=true)")

    for name, what in (("encode", "codes f(x)"), ("reconstruct", "reconstructions g(f(x))"),
                       ("score", "per-sample squared reconstruction errors")):
        e = sub.add_parser(name, help=f"write {what} of inputs as .npy/.csv",
                           description=f"Load a run's model and write {what} of --input to "
                           "--output (.npy or .csv, written atomically). A .npy input is "
                           "memory-mapped and a .npy output is written chunk by chunk, so "
                           "inputs larger than memory work. Inputs must be preprocessed as "
                           "the training data were (built-in datasets are scaled to [0, 1]).")
        e.add_argument("run", type=Path, help="run directory or model .safetensors file")
        e.add_argument("--input", required=True, help="a .npy/.npz/.csv file, or 'test' for "
                       "the run's own test split")
        e.add_argument("--output", required=True, type=Path, help="output .npy or .csv file")
        e.add_argument("--chunk", type=int, default=8192, help="rows per chunk (default 8192)")
        e.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                       help="a CSV --input's first row is (--header) or is not (--no-header) "
                       "a header; default: the rule of `aekit train --help`")

    ev = sub.add_parser("evaluate", help="test reconstruction error of a run vs PCA",
                        description="Reconstruction error (mean over samples of the summed "
                        "squared error) of the run's model and of PCA with the same code size "
                        "fitted on the run's training data. Prints JSON.")
    ev.add_argument("run", type=Path)
    ev.add_argument("--input", help="evaluate on this file instead of the run's test split")
    ev.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                    help="a CSV --input's first row is (--header) or is not (--no-header) a "
                    "header")

    c = sub.add_parser(
        "classify", help="pretrain an autoencoder, add a softmax head, fine-tune, report "
        "test accuracy",
        description="Train aekit.AutoencoderClassifier on a labelled dataset (digits, mnist, "
        "fashion-mnist, or an .npz with X and y) and report its test accuracy. With --encoder "
        "RUN the encoder of a trained run is reused (transfer), frozen or fine-tuned.")
    c.add_argument("--data", default="digits", help="labelled dataset (default digits)")
    c.add_argument("--data-path", help="file or folder for mnist/fashion-mnist")
    c.add_argument("--test-data", help="labelled test file when --data is a file")
    c.add_argument("--encoder", type=Path, help="run directory or model file whose encoder "
                   "is reused instead of pretraining a new one")
    c.add_argument("--freeze-encoder", action="store_true", help="train only the softmax head")
    c.add_argument("--pretrain", choices=["ae", "layerwise", "none"], default="ae",
                   help="how the encoder is pretrained when no --encoder is given")
    c.add_argument("--n-components", type=int, default=32, help="code size (default 32, "
                   "AutoencoderClassifier's n_components)")
    add_renamed_flag(c, "--code-size", "--n-components", type=int)
    c.add_argument("--hidden-layer-sizes", type=int, nargs="+", default=[128], metavar="N",
                   help="hidden sizes (default 128)")
    add_renamed_flag(c, "--hidden", "--hidden-layer-sizes", type=int, nargs="+")
    c.add_argument("--max-iter", type=int, default=50, help="fine-tuning epochs (default 50)")
    add_renamed_flag(c, "--epochs", "--max-iter", type=int)
    c.add_argument("--pretrain-max-iter", type=int, default=20, help="pretraining epochs "
                   "(default 20)")
    add_renamed_flag(c, "--pretrain-epochs", "--pretrain-max-iter", type=int)
    c.add_argument("--adversarial", type=float, default=0.0, metavar="EPS",
                   help="fine-tune with FGSM adversarial training of step EPS (0 = off)")
    c.add_argument("--vat", type=float, default=0.0, metavar="EPS",
                   help="fine-tune with virtual adversarial training, perturbations of L2 "
                        "norm EPS (0 = off; exclusive with --adversarial)")
    c.add_argument("--limit", type=int, help="use only the first N training samples")
    c.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    add_renamed_flag(c, "--seed", "--random-state", type=int)
    c.add_argument("--output", "-o", type=Path, help="write the metrics as JSON here "
                   "(atomically)")

    i = sub.add_parser("info", help="describe a run: architecture, data, objective, metrics")
    i.add_argument("run", type=Path)
    i.add_argument("--json", action="store_true", help="print machine-readable JSON")

    r = sub.add_parser("report", help="write a self-contained HTML report of a run",
                       description="Write RUN/report.html (or --output), one file with every "
                       "picture embedded and no script: config, data, metrics vs PCA of the "
                       "same code size, training curves, rate-distortion curve, error "
                       "distributions, worst reconstructions, code maps, unit activity, "
                       "encoder Jacobian spectrum and, for image data, reconstructions, "
                       "latent traversals, interpolations, filters and tangent directions.")
    r.add_argument("run", type=Path)
    r.add_argument("--output", type=Path, help="where to write (default RUN/report.html)")
    r.add_argument("--tsne", action="store_true", help="also draw a t-SNE map of the codes "
                   "(slower)")

    c = sub.add_parser("compare", help="compare runs side by side in one HTML page",
                       description="Write one self-contained HTML page comparing runs: "
                       "metrics side by side, the configuration keys that differ, overlaid "
                       "training curves, and test error against code size next to PCA.")
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories")
    c.add_argument("--output", type=Path, default=Path("compare.html"),
                   help="where to write (default compare.html)")
    from .sparse.cli import add_sparse_parser

    add_sparse_parser(sub)  # aekit sparse learn|encode
    for module in COMMAND_MODULES:
        # each application module adds its own subcommands; its parsers carry
        # ``set_defaults(handler=...)``, the function that runs the command
        import_module(module).add_parser(sub)
    return p


#: Modules that add application commands: each has ``add_parser(subparsers)``, and every parser
#: it adds sets ``handler`` (``args -> exit code``) with ``set_defaults(handler=...)``.
COMMAND_MODULES: tuple[str, ...] = ("aekit.anomaly.cli", "aekit.images.cli",
                                     "aekit.images.apps_cli", "aekit.retrieval.cli",
                                     "aekit.sae.cli")


def add_renamed_flag(parser: argparse.ArgumentParser, old: str, new: str, **kwargs) -> None:
    """An old flag that stores into ``new``'s destination with a FutureWarning (hidden from
    --help)."""
    from .schema import RenamedFlag

    parser.add_argument(old, dest=new.lstrip("-").replace("-", "_"), action=RenamedFlag,
                        new_flag=new, default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                        **kwargs)


def _config_keys_epilog() -> str:
    from .schema import RENAMED_FLAGS, RENAMED_KEYS, RUN_SETTINGS

    lines = ["config keys (TOML tables / --set table.key=value), each also a flag above:"]
    for table in ("data", "model", "objective", "train"):
        lines.append(f"  {table}: " + " ".join(s.name for s in RUN_SETTINGS
                                               if s.table == table))
    lines.append("renamed (old names work until the next release, with a FutureWarning):")
    lines.append("  " + ", ".join(f"{o} -> {n}" for o, n in RENAMED_KEYS.items()))
    lines.append("  " + ", ".join(f"{o} -> {n}" for o, n in RENAMED_FLAGS.items()))
    return "\n".join(lines)


def _train_flag_overrides(a: argparse.Namespace) -> list[tuple[str, str]]:
    """``(flag, "table.key=value")`` for every run-setting flag given (then ``--set``)."""
    from .schema import overrides_from_args

    return overrides_from_args(a) + [(f"--set {ov.split('=', 1)[0].strip()}", ov)
                                     for ov in a.overrides]


def _train_overrides(a: argparse.Namespace) -> list[str]:
    return [ov for _, ov in _train_flag_overrides(a)]


def _relaunch_distributed(n: int, argv: list[str]) -> int:
    """Re-run this command under torchrun with ``n`` processes on this machine."""
    import subprocess

    if n < 1:
        raise ValueError(f"--nproc-per-node must be >= 1, got {n}")
    args, skip = [], False
    for x in argv:  # drop --nproc-per-node N / --nproc-per-node=N
        if skip:
            skip = False
            continue
        if x == "--nproc-per-node":
            skip = True
            continue
        if x.startswith("--nproc-per-node="):
            continue
        args.append(x)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={n}", "-m", "aekit.cli", *args]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
    return subprocess.call(cmd, env=env)


def _init_distributed() -> bool:
    """Join the process group torchrun describes in the environment (gloo on CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def _cmd_train(a: argparse.Namespace, argv: list[str]) -> int:
    from .train.callbacks import TrainingInterrupted

    if a.nproc_per_node != 1:
        if a.force:  # choose the subdirectory once, here, for every process
            from .runs import fresh_subdir

            sub = fresh_subdir(a.output or _default_out(a))
            argv = [x for x in argv if x != "--force"] + ["--output", str(sub)]
        return _relaunch_distributed(a.nproc_per_node, argv)
    if a.force and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("--force under torchrun: every process would pick its own "
                         "subdirectory; use aekit train --nproc-per-node N --force, or an "
                         "empty --output")
    distributed = _init_distributed()
    try:
        rc = _train(a)
        if distributed:
            import torch.distributed as dist

            # rank 0 still writes the model, metrics and report: tearing the group down
            # under it aborts the other ranks' gloo threads ("terminate called ...")
            dist.barrier()
            # Every file is written (atomically) and every rank is here. gloo's teardown
            # (destroy_process_group, or the C++ destructors at interpreter exit) still
            # aborted a rank now and then on a loaded machine, so leave without it.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
        return rc
    except TrainingInterrupted as e:
        where = f"checkpoint saved at step {e.step}" if e.checkpoint or distributed else \
            "no checkpoint"
        print(f"aekit train: {e}; {where}; continue with: aekit train --output {a.output} "
              "--resume",
              file=sys.stderr)
        return 128 + e.signum
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


def _refuse_resume_conflicts(a: argparse.Namespace, saved) -> None:
    """A resumed run continues with its saved config; a flag, ``--set`` or ``--config`` that
    asks for something else would be silently ignored, so it is an error naming it (the same
    value as saved is accepted)."""
    from .config import load_config

    saved_d = saved.to_dict()

    def differs(asked_d: dict, key: str) -> tuple[bool, object]:
        sec, name = key.split(".", 1)
        if name not in saved_d[sec]:
            return False, None
        return asked_d[sec][name] != saved_d[sec][name], saved_d[sec][name]

    from .config import upgrade_keys
    from .schema import RENAMED_KEYS

    for flag, ov in _train_flag_overrides(a):
        key = ov.split("=", 1)[0].strip()
        asked_d = load_config(None, [ov]).to_dict()  # an old --set key warns here, once
        sec, name = key.split(".", 1) if "." in key else (key, "")
        probe = upgrade_keys({sec: {name: 0}}, warn=False)
        # the canonical key(s) an old name sets (model.hidden: two candidates)
        keys = [f"{t}.{n}" for t, tab in probe.items() if isinstance(tab, dict) for n in tab]
        keys = [RENAMED_KEYS.get(k, k) for k in keys]
        for k in keys:
            if "." not in k or k.split(".", 1)[0] not in saved_d:
                continue
            bad, was = differs(asked_d, k)
            if bad:
                raise ValueError(f"{flag} conflicts with the resumed run's saved config "
                                 f"({k} = {json.dumps(was)}): a resumed run keeps its "
                                 f"config; drop the flag, or start a new run without --resume")
    if a.config is not None:
        asked_d = load_config(a.config).to_dict()
        keys = [f"{sec}.{k}" for sec, tab in asked_d.items() for k in tab
                if saved_d.get(sec, {}).get(k) != tab[k]]
        if keys:
            raise ValueError(f"--config {a.config} conflicts with the resumed run's saved "
                             f"config in {', '.join(keys)}; a resumed run keeps its config")


def _default_out(a: argparse.Namespace) -> Path:
    """runs/<dataset stem> for a train command without --output."""
    if a.config is None and a.data is None and not a.overrides:
        return Path("runs") / "digits"
    from .config import load_config

    return Path("runs") / Path(load_config(a.config, _train_overrides(a)).data.dataset).stem


def _train(a: argparse.Namespace) -> int:
    from .config import RunConfig, load_config
    from .runs import fresh_subdir, read_marker, read_run_config, train_run, write_marker

    if a.restart and not a.resume:
        raise ValueError("--restart only applies with --resume")
    if a.resume:
        if a.output is None:
            raise ValueError("--resume needs --output RUN_DIR")
        if a.force:
            raise ValueError("--force does not apply with --resume")
        cfg_file = a.output / "config.json"
        if not cfg_file.exists():
            raise FileNotFoundError(f"cannot resume: {cfg_file} not found")
        cfg = RunConfig.from_dict(read_run_config(cfg_file)["config"])
        _refuse_resume_conflicts(a, cfg)
        marker = read_marker(a.output)
        if (a.output / "model.safetensors").exists() and (marker is None
                                                       or marker["status"] == "complete"):
            print(f"{a.output}: run already complete", file=sys.stderr)
            return 0
    else:
        cfg = load_config(a.config, _train_overrides(a))
    out = a.output or Path("runs") / Path(cfg.data.dataset).stem
    if a.force:
        out = fresh_subdir(out)
    m = train_run(cfg, out, resume=a.resume, restart=a.restart, progress=a.progress)
    if not m:  # a non-zero rank of a distributed run: rank 0 reports
        return 0
    report_error = None
    if not a.no_report:
        from .report import write_report

        try:
            write_report(out)
        except (ValueError, OSError, FloatingPointError, RuntimeError) as e:
            # The run itself is complete; say so, and record why the report is missing.
            report_error = str(e)
            marker = read_marker(out)
            write_marker(out, marker["run_id"], "complete", None,
                         report=f"not written: {report_error}")
    res = m.get("test") or m.get("val") or {}
    print(f"run written to {out}")
    if res:
        print(f"test reconstruction error (sum of squared errors per sample): "
              f"autoencoder {res['ae_error']:.4f}, PCA-{res['code_size']} {res['pca_error']:.4f} "
              f"(ratio {res['ae_over_pca']:.3f})")
    if report_error is not None:
        print(f"aekit train: warning: training finished and the run is complete, but "
              f"report.html was not written: {report_error}", file=sys.stderr)
    elif not a.no_report:
        print(f"report: {out / 'report.html'}")
    return 0


def _run_image_options(run_dir: Path, spec: str) -> dict:
    """A run's ``[data]`` image options (resize, patches, colour) for an image file or folder
    given as ``--input``, so it is read as the run's training images were; none otherwise."""
    from .data.images import IMAGE_SUFFIXES
    from .runs import image_options, read_run

    p = Path(spec)
    if not (p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES) or not Path(run_dir).is_dir():
        return {}
    return image_options(read_run(run_dir)["config"])


def _load_input(run_dir: Path, spec: str, header: bool | None = None) -> np.ndarray:
    from .data import load_array
    from .runs import load_run_data, read_run

    if spec == "test":
        run = read_run(run_dir)
        data = load_run_data(run["config"], where=Path(run["dir"]) / "config.json")
        if data.test is None:
            raise ValueError(f"{run_dir} has no test split (dataset is a single file)")
        return data.test.X
    return load_array(spec, header=header, **_run_image_options(run_dir, spec)).X


def _save_array(path: Path, A: np.ndarray) -> None:
    from .io import atomic_write_bytes, atomic_write_text

    suf = path.suffix.lower()
    if suf == ".npy":
        buf = io.BytesIO()
        np.save(buf, A, allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    elif suf == ".csv":
        buf = io.StringIO()
        np.savetxt(buf, A, delimiter=",", fmt="%.7g")
        atomic_write_text(path, buf.getvalue())
    else:
        raise ValueError(f"--output must end in .npy or .csv, got {path.name!r}")


def _cmd_encode(a: argparse.Namespace, what: str) -> int:
    from .data.streaming import map_rows, open_rows
    from .train import load

    if a.output.suffix.lower() not in (".npy", ".csv"):
        raise ValueError(f"--output must end in .npy or .csv, got {a.output.name!r}")
    model = load(a.run)
    X = _load_input(a.run, a.input) if a.input == "test" else open_rows(
        a.input, header=a.header, **_run_image_options(a.run, a.input))
    if X.ndim != 2 or X.shape[1] != model.n_features:
        raise ValueError(f"--input {a.input} has {X.shape[1] if X.ndim == 2 else X.shape} "
                         f"features, expected {model.n_features}")
    try:
        if a.output.suffix.lower() == ".npy":
            map_rows(model, X, what, out=a.output, chunk=a.chunk)
            shape = np.load(a.output, mmap_mode="r").shape
        else:
            A = map_rows(model, X, what, chunk=a.chunk)
            _save_array(a.output, A)
            shape = A.shape
    except ValueError as e:  # empty input, NaN in rows i..j: name the file they came from
        raise ValueError(f"--input {a.input}: {e}") from None
    print(f"wrote {a.output} with shape {shape}")
    return 0


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from .data import check_finite_2d
    from .runs import evaluate_against_pca, load_run_data, read_run

    run = read_run(a.run)
    data = load_run_data(run["config"], where=Path(run["dir"]) / "config.json")
    if a.input:
        X = check_finite_2d(_load_input(a.run, a.input, a.header), f"--input {a.input}",
                            run["model"].n_features)
    elif data.test is not None:
        X = data.test.X
    else:
        raise ValueError(f"{a.run} has no test split; pass --input FILE")
    res = evaluate_against_pca(run["model"], data.train.X, X)
    print(json.dumps(res, indent=2))
    return 0


def _cmd_classify(a: argparse.Namespace) -> int:
    import time

    from .classifier import AutoencoderClassifier
    from .data import load_array, load_dataset
    from .io import atomic_write_json
    from .train import load

    train, test = load_dataset(a.data, data_path=a.data_path)
    if test is None:
        if not a.test_data:
            raise ValueError(f"--data {a.data} has no test split; pass --test-data FILE")
        test = load_array(a.test_data)
    if train.y is None or test.y is None:
        raise ValueError("classify needs labels: use digits/mnist/fashion-mnist or .npz files "
                         "with a 'y' array")
    X, y = train.X, train.y
    if a.limit is not None:
        if a.limit < 2:
            raise ValueError(f"--limit must be >= 2, got {a.limit}")
        X, y = X[:a.limit], y[:a.limit]
    encoder = load(a.encoder) if a.encoder is not None else None
    clf = AutoencoderClassifier(
        n_components=a.n_components, hidden_layer_sizes=tuple(a.hidden_layer_sizes),
        encoder=encoder,
        pretrain="none" if encoder is not None else a.pretrain,
        pretrain_max_iter=a.pretrain_max_iter, freeze_encoder=a.freeze_encoder,
        max_iter=a.max_iter, adversarial_eps=a.adversarial, vat_eps=a.vat,
        random_state=a.random_state)
    t0 = time.perf_counter()
    clf.fit(X, y)
    acc = float(clf.score(test.X, test.y))
    res = {"data": a.data, "n_train": int(len(X)), "n_test": int(len(test.X)),
           "test_accuracy": acc, "test_error": 1 - acc, "train_time_s": time.perf_counter() - t0,
           "encoder": str(a.encoder) if a.encoder else f"pretrain={a.pretrain}",
           "freeze_encoder": a.freeze_encoder, "adversarial_eps": a.adversarial,
           "vat_eps": a.vat,
           # what fine-tuning optimised: the parts of its last epoch (ce, fgsm or vat, ...)
           "last_epoch": ({k: v for k, v in clf.history_.records[-1].items()
                           if k.startswith("train_")}
                          if clf.history_ is not None else None)}
    if a.output:
        atomic_write_json(a.output, res)
    print(json.dumps(res, indent=2))
    return 0


def _cmd_info(a: argparse.Namespace) -> int:
    from .runs import read_run

    run = read_run(a.run)
    info, metrics = run["info"], run["metrics"]
    if a.json:
        print(json.dumps({"info": info, "metrics": metrics}, indent=2))
        return 0
    cfg = run["config"]  # the validated RunConfig (defaults filled in)
    mdl = info["model"]
    print(f"run:        {Path(a.run).resolve()}")
    print(f"model:      {mdl['name']} {mdl['config']}  ({mdl['n_parameters']:,} parameters)")
    print(f"data:       {cfg.data.dataset}: {info['data']['n_train']} train, "
          f"{info['data']['n_val']} val, {info['data']['n_test']} test, "
          f"{info['data']['n_features']} features")
    print(f"objective:  {info['objective']['loss']} + "
          f"{', '.join(info['objective']['terms']) or 'no terms'}")
    t = cfg.train
    print(f"training:   {metrics['epochs_run']} of max_iter={t.max_iter} epochs, "
          f"{t.optimizer} learning_rate={t.learning_rate} batch_size={t.batch_size} "
          f"schedule={t.schedule}, "
          f"{metrics['train_time_s']:.1f} s" + (", stopped early" if metrics["stopped_early"]
                                                 else ""))
    res = metrics.get("test") or metrics.get("val")
    if res:
        print(f"metrics:    AE {res['ae_error']:.4f} vs PCA-{res['code_size']} "
              f"{res['pca_error']:.4f} (ratio {res['ae_over_pca']:.3f}; {res['unit']})")
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from .report import write_report

    path = write_report(a.run, a.output, tsne=a.tsne)
    print(f"wrote {path}")
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    from .report import write_comparison

    path = write_comparison(a.runs, a.output)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    from .io import FileFormatError

    try:
        if args.command == "train":
            return _cmd_train(args, argv)
        if args.command in ("encode", "reconstruct", "score"):
            return _cmd_encode(args, args.command)
        if args.command == "evaluate":
            return _cmd_evaluate(args)
        if args.command == "info":
            return _cmd_info(args)
        if args.command == "classify":
            return _cmd_classify(args)
        if args.command == "sparse":
            from .sparse.cli import run_sparse

            return run_sparse(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "compare":
            return _cmd_compare(args)
        if getattr(args, "handler", None) is not None:
            return args.handler(args)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError,
            FileFormatError, FloatingPointError, IsADirectoryError, NotADirectoryError) as e:
        print(f"aekit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"aekit {args.command}: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
