"""Test error against training time for the reproduction runs, one PNG per benchmark family.

Reads every ``benchmarks/results/<prefix>*.json`` (not the ``_quick`` smoke tests) and draws
each row's per-epoch curve (``curve`` entries with ``train_time_s`` and the test error) with the
published reference lines:

* ``hinton_mnist`` → ``docs/hinton_mnist_error_vs_time.png`` (MNIST 30-D autoencoder; the
  paper's 3.00 and the issue's 2.4 target).
* ``hinton_fashion`` → ``docs/hinton_fashion_error_vs_time.png``.
* ``mnist_classification`` / ``fashion_classification`` → ``docs/<prefix>_error_vs_time.png``.
* ``hinton_mnist_selected`` (the validation protocol) → ``docs/hinton_mnist_protocol_vs_time.png``:
  every candidate's *validation* error against its training time, and each final network's
  single test error as a star at its training time.

    python benchmarks/plot_curves.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import family_files

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {
    "hinton_mnist": ("test error (Σ squared error per image)", "test_error",
                     [(3.00, "Hinton & Salakhutdinov 2006: 3.00"), (2.4, "target 2.4")]),
    "hinton_fashion": ("test error (Σ squared error per image)", "test_error", []),
    "mnist_classification": ("test error (%)", "test_error_pct",
                             [(1.28, "SdA-3 1.28"), (1.14, "CAE 1.14"), (1.0, "target 1.0")]),
    "fashion_classification": ("test error (%)", "test_error_pct", []),
}


def curves(prefix: str, key: str) -> list[tuple[str, list[float], list[float]]]:
    out = []
    for path in family_files(prefix):
        for row in json.loads(path.read_text()).get("rows", []):
            pts = [c for c in row.get("curve", []) if c.get(key) is not None]
            if len(pts) >= 2:
                label = f"{path.stem.removeprefix(prefix).strip('_') or 'main'}: {row['method']}"
                out.append((label, [c["train_time_s"] / 60 for c in pts],
                            [c[key] for c in pts]))
    return out


def protocol_figure(prefix: str, out_name: str, refs: list[tuple[float, str]]):
    """Validation curves of the candidates and the final test points of ``--select`` runs."""
    from aekit.plots import new_figure

    fig = new_figure(8, 5)
    ax = fig.add_subplot(1, 1, 1)
    n, lo = 0, []
    for path in family_files(prefix):
        r = json.loads(path.read_text())
        run = path.stem.removeprefix(prefix).strip("_") or "main"
        for row in r.get("selection", []):
            pts = [c for c in row.get("curve", []) if c.get("val_error") is not None]
            if len(pts) < 2:
                continue
            chosen = " (chosen)" if row["method"] == r.get("chosen") else ""
            ax.plot([c["train_time_s"] / 60 for c in pts], [c["val_error"] for c in pts],
                    lw=1.1, color=f"C{n % 10}", label=f"{run}: {row['method']}{chosen}, val")
            lo.append(min(c["val_error"] for c in pts))
            n += 1
        fin = r.get("final")
        if fin and fin.get("test_error") is not None:
            ax.plot([fin["train_time_s"] / 60], [fin["test_error"]], marker="*", ms=11,
                    ls="", color=f"C{n % 10}",
                    label=f"{run}: final on 60k, test {fin['test_error']:.3f}")
            lo.append(fin["test_error"])
            n += 1
    if not n:
        return None
    for y, label in refs:
        ax.axhline(y, ls="--", lw=0.8, color="gray")
        ax.text(0, y, " " + label, va="bottom", fontsize=8, color="gray")
    ax.set_ylim(min(lo + [y for y, _ in refs]) * 0.95, 4.0)
    ax.set_xlabel("training time (minutes, per-epoch evaluations excluded)")
    ax.set_ylabel("error (Σ squared error per image)")
    ax.set_title("hinton_mnist, validation protocol: candidates' validation error, "
                 "finals' test error", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig, ROOT / "docs" / out_name


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from aekit.io import atomic_write_bytes
    from aekit.plots import figure_png, new_figure

    for prefix, (ylabel, key, refs) in FAMILIES.items():
        lines = curves(prefix, key)
        if not lines:
            continue
        fig = new_figure(8, 5)
        ax = fig.add_subplot(1, 1, 1)
        for i, (label, t, e) in enumerate(lines):  # 10 colours, then the same with dashes
            ax.plot(t, e, label=label, lw=1.2, color=f"C{i % 10}", ls="-" if i < 10 else "--")
        for y, label in refs:
            ax.axhline(y, ls="--", lw=0.8, color="gray")
            ax.text(0, y, " " + label, va="bottom", fontsize=8, color="gray")
        lo = min(min(e) for _, _, e in lines)
        hi = max(e[min(2, len(e) - 1)] for _, _, e in lines)
        ax.set_ylim(min(lo, *(y for y, _ in refs)) * 0.95 if refs else lo * 0.95, hi * 1.05)
        ax.set_xlabel("training time (minutes, per-epoch evaluations excluded)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{prefix}: test error against training time")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        out = ROOT / "docs" / f"{prefix}_error_vs_time.png"
        atomic_write_bytes(out, figure_png(fig))
        print(f"wrote {out.relative_to(ROOT)} ({len(lines)} curves)")
    made = protocol_figure("hinton_mnist_selected", "hinton_mnist_protocol_vs_time.png",
                           [(2.3, "30-minute goal 2.3"), (2.0, "60-minute goal 2.0")])
    if made:
        fig, out = made
        atomic_write_bytes(out, figure_png(fig))
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
