"""The command line: the main job end to end, every subcommand, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aekit.cli import main
from aekit.config import load_config

FAST = ["--max-iter", "3", "--hidden-layer-sizes", "32", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "--data", "digits", "--n-components", "4", "--output", str(out),
                 *FAST]) == 0
    return out


def test_train_writes_a_complete_run(run, capsys):
    for f in ("config.json", "model.safetensors", "history.jsonl", "metrics.json",
              "report.html"):
        assert (run / f).is_file(), f
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["test"]["code_size"] == 4
    assert metrics["test"]["n_test"] == 297
    hist = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    assert len(hist) == 3 and "val_recon" in hist[0]
    html = (run / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html
    assert 'src="http' not in html and 'href="http' not in html  # nothing fetched


def test_info_evaluate_encode_reconstruct(run, tmp_path, capsys):
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "dense" in out and "digits" in out and "PCA-4" in out
    assert main(["info", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["info"]["data"]["n_features"] == 64
    assert main(["evaluate", str(run)]) == 0
    res = json.loads(capsys.readouterr().out)
    saved = json.loads((run / "metrics.json").read_text())["test"]
    assert res["ae_error"] == pytest.approx(saved["ae_error"], rel=1e-6)
    assert main(["encode", str(run), "--input", "test", "--output", str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (297, 4)
    X = np.random.default_rng(0).random((5, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert main(["reconstruct", str(run), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "r.csv")]) == 0
    assert np.loadtxt(tmp_path / "r.csv", delimiter=",").shape == (5, 64)
    assert main(["report", str(run), "--output", str(tmp_path / "rep.html")]) == 0
    assert (tmp_path / "rep.html").stat().st_size > 1000


def test_config_file_and_overrides(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[model]\nhidden_layer_sizes = [16]\nn_components = 3\n[train]\n'
                   'max_iter = 2\nlearning_rate = 0.01\n')
    c = load_config(cfg, ["train.learning_rate=1e-3", "model.hidden_layer_sizes=[8, 4]",
                          "objective.loss=mse"])
    assert c.train.learning_rate == 1e-3 and c.model.hidden_layer_sizes == [8, 4]
    assert c.train.max_iter == 2
    assert c.objective.loss == "mse" and c.model.n_components == 3
    out = tmp_path / "r"
    assert main(["train", "--config", str(cfg), "--set", "train.max_iter=1", "--output", str(out),
                 "--no-report", "--no-progress"]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["train"]["max_iter"] == 1 and saved["model"]["hidden_layer_sizes"] == [16]


@pytest.mark.parametrize("argv, match", [
    (["--set", "train.lrr=1"], "unknown key in train: lrr"),
    (["--set", "train.max_iter=abc"], "train.max_iter must be an integer"),
    (["--set", "nolayer=1"], "section.name"),
    (["--data", "nonexistent.npy"], "not a built-in name"),
    (["--n-components", "100"], "larger than the input size 64"),
    (["--activation", "swish2"], "unknown activation 'swish2'"),
    (["--loss", "hinge"], "unknown objective.loss 'hinge'"),
    (["--optimizer", "adagrad"], "unknown train.optimizer 'adagrad'"),
    (["--set", "objective.loss=bce", "--set", "model.output=linear"], "output='sigmoid'"),
])
def test_train_errors_are_clear_and_leave_nothing(tmp_path, capsys, argv, match):
    out = tmp_path / "bad"
    assert main(["train", "--output", str(out), *FAST, *argv]) == 2
    err = capsys.readouterr().err
    assert match in err, err
    assert not out.exists(), "a failed run must not leave a directory behind"


def test_bad_config_files(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("[train\nepochs=1")
    assert main(["train", "--config", str(tmp_path / "bad.toml")]) == 2
    assert "invalid TOML" in capsys.readouterr().err
    (tmp_path / "typo.toml").write_text("[modle]\nhidden=[3]\n")
    assert main(["train", "--config", str(tmp_path / "typo.toml")]) == 2
    assert "unknown key in config: modle" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "none.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_existing_run_is_not_overwritten_and_resume_of_complete_run(run, capsys):
    before = (run / "model.safetensors").read_bytes()
    assert main(["train", "--data", "digits", "--output", str(run), *FAST]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--output", str(run), "--resume"]) == 0
    assert "already complete" in capsys.readouterr().err
    assert (run / "model.safetensors").read_bytes() == before
    # flags a resumed run would ignore are refused, naming the flag and the saved value
    assert main(["train", "--output", str(run), "--resume", "--max-iter", "3",
                 "--n-components", "9"]) == 2
    err = capsys.readouterr().err
    assert "--n-components conflicts" in err and "model.n_components = 4" in err, err
    assert main(["train", "--output", str(run), "--resume", "--set",
                 "train.learning_rate=0.5"]) == 2
    assert "--set train.learning_rate conflicts" in capsys.readouterr().err
    # the old names too, with a FutureWarning
    with pytest.warns(FutureWarning) as rec:
        assert main(["train", "--out", str(run), "--resume", "--code-size", "9"]) == 2
    msgs = " ".join(str(w.message) for w in rec)
    assert "'--code-size' is renamed '--n-components'" in msgs, msgs
    assert "'--out' is renamed '--output'" in msgs, msgs
    assert "--n-components conflicts" in capsys.readouterr().err
    with pytest.warns(FutureWarning, match="'train.lr' is renamed 'train.learning_rate'"):
        assert main(["train", "--output", str(run), "--resume", "--set", "train.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert "--set train.lr conflicts" in err and "train.learning_rate = 0.003" in err, err
    # the same values as saved are fine
    assert main(["train", "--output", str(run), "--resume", "--max-iter", "3",
                 "--n-components", "4", "--data", "digits"]) == 0
    assert (run / "model.safetensors").read_bytes() == before


def test_run_dir_errors(tmp_path, run, capsys):
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((run / "config.json").read_text())
    assert main(["report", str(partial)]) == 2
    err = capsys.readouterr().err
    assert "missing model.safetensors" in err and "--resume" in err
    assert main(["encode", str(run), "--input", "test", "--output", str(tmp_path / "z.txt")]) == 2
    assert "must end in .npy or .csv" in capsys.readouterr().err
    np.save(tmp_path / "wrong.npy", np.zeros((3, 10), np.float32))
    assert main(["encode", str(run), "--input", str(tmp_path / "wrong.npy"), "--output",
                 str(tmp_path / "z.npy")]) == 2
    assert "has 10 features, expected 64" in capsys.readouterr().err
    (tmp_path / "evil.safetensors").write_bytes(b"\x80\x04junk")
    assert main(["encode", str(tmp_path / "evil.safetensors"), "--input", "x.npy", "--output",
                 str(tmp_path / "z.npy")]) == 2
    assert "never loads pickled" in capsys.readouterr().err


def test_help_is_complete(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "encode", "reconstruct", "evaluate", "info", "report"):
        assert cmd in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--config", "--set", "--resume", "--output", "--n-components",
                 "checkpoint_steps", "--tied", "--batch-norm", "--dropout", "--sparsity-weight",
                 "--dead-unit", "--schedule", "--early-stopping", "--limit"):
        assert flag in out


def test_regularised_run_from_flags(tmp_path, capsys):
    out = tmp_path / "dae"
    assert main(["train", "--data", "digits", "--noise", "masking", "--noise-level", "0.25",
                 "--l1", "1e-3", "--code-activation", "relu", "--set", "objective.dead_unit=0.1",
                 "--output", str(out), *FAST]) == 0
    info = json.loads((out / "config.json").read_text())
    assert info["objective"]["terms"] == ["l1_activity", "dead_unit_entropy"]
    assert "Masking" in info["objective"]["corruption"]
    rec = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    assert "train_l1_activity" in rec and "dead_unit_entropy_dead_units" in rec
    assert main(["train", "--data", "digits", "--sparsity-target", "0.05", "--output",
                 str(tmp_path / "bad"), *FAST]) == 2
    assert "code_activation='sigmoid'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_classify_from_scratch_and_with_a_runs_encoder(run, tmp_path, capsys):
    assert main(["classify", "--data", "digits", "--max-iter", "15", "--pretrain-max-iter", "3",
                 "--n-components", "16", "--output", str(tmp_path / "c.json")]) == 0
    res = json.loads((tmp_path / "c.json").read_text())
    assert res["n_test"] == 297 and res["test_accuracy"] > 0.85, res
    capsys.readouterr()
    # a linear probe on the run's frozen 4-D codes (3 epochs of training): well above chance
    # (0.1); logistic regression on the same codes reaches about 0.35
    assert main(["classify", "--encoder", str(run), "--freeze-encoder", "--max-iter", "30"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["freeze_encoder"] and res["test_accuracy"] > 0.25, res
    assert set(res["last_epoch"]) == {"train_loss", "train_ce"}, res
    assert main(["classify", "--data", "digits", "--limit", "1"]) == 2
    assert "--limit must be >= 2" in capsys.readouterr().err
    assert main(["classify", "--data", "digits", "--max-iter", "15", "--pretrain-max-iter", "3",
                 "--n-components", "16", "--adversarial", "0.05"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["adversarial_eps"] == 0.05 and res["test_accuracy"] > 0.85, res
    # the FGSM term was optimised (a run that ignored --adversarial has no fgsm part)
    assert res["last_epoch"]["train_fgsm"] > 0, res
    assert main(["classify", "--encoder", str(run), "--freeze-encoder", "--adversarial",
                 "0.1", "--max-iter", "1"]) == 2
    assert "freeze_encoder" in capsys.readouterr().err
    assert main(["classify", "--data", "digits", "--max-iter", "15", "--pretrain-max-iter", "3",
                 "--n-components", "16", "--vat", "0.2"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["vat_eps"] == 0.2 and res["test_accuracy"] > 0.85, res
    assert res["last_epoch"]["train_vat"] > 0, res
    assert main(["classify", "--data", "digits", "--vat", "0.2", "--adversarial", "0.1",
                 "--max-iter", "1"]) == 2
    assert "alternatives" in capsys.readouterr().err


def test_conv_model_from_the_cli(tmp_path, capsys):
    out = tmp_path / "conv"
    assert main(["train", "--data", "digits", "--model", "conv", "--channels", "8", "16",
                 "--max-iter", "2", "--output", str(out), "--no-progress"]) == 0
    info = json.loads((out / "config.json").read_text())
    assert info["model"]["name"] == "conv" and info["model"]["config"]["image_shape"] == [1, 8, 8]
    assert (out / "report.html").exists()
    np.save(tmp_path / "flat.npy", np.random.default_rng(0).random((50, 10)).astype(np.float32))
    assert main(["train", "--data", str(tmp_path / "flat.npy"), "--model", "conv",
                 "--n-components", "4", "--output", str(tmp_path / "bad"), "--max-iter", "3",
                 "--no-progress"]) == 2
    assert "needs image data" in capsys.readouterr().err


def test_a_run_written_with_the_old_names_is_read_and_resumed(run, tmp_path, capsys):
    """config.json of a run written before the renames (code_size, hidden, epochs, lr, seed,
    early_stopping = patience, monitor = null): read with FutureWarnings, same settings."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run, old)
    info = json.loads((old / "config.json").read_text())
    c = info["config"]
    c["model"]["code_size"] = c["model"].pop("n_components")
    c["model"]["hidden"] = c["model"].pop("hidden_layer_sizes")
    c["train"]["epochs"] = c["train"].pop("max_iter")
    c["train"]["lr"] = c["train"].pop("learning_rate")
    c["train"]["seed"] = c["train"].pop("random_state")
    c["train"]["early_stopping"] = c["train"].pop("n_iter_no_change")
    c["data"]["val_fraction"] = c["data"].pop("validation_fraction")
    (old / "config.json").write_text(json.dumps(info))
    with pytest.warns(FutureWarning) as rec:
        assert main(["info", str(old), "--json"]) == 0
    msgs = " ".join(str(w.message) for w in rec)
    assert "'model.code_size' is renamed 'model.n_components'" in msgs, msgs
    assert "early_stopping = true and n_iter_no_change = 20" in msgs, msgs
    assert main(["info", str(old)]) == 0
    assert "max_iter=3" in capsys.readouterr().out
    with pytest.warns(FutureWarning):
        assert main(["train", "--output", str(old), "--resume", "--n-components", "4"]) == 0
    assert "already complete" in capsys.readouterr().err
    with pytest.warns(FutureWarning):
        assert main(["train", "--output", str(old), "--resume", "--max-iter", "9"]) == 2
    assert "--max-iter conflicts" in capsys.readouterr().err
