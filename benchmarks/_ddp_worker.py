"""Worker for benchmarks/scale.py: time ``fit`` under torchrun (or alone) on random data.

Prints one JSON line from rank 0: samples/s over the timed epochs.
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch
import torch.distributed as dist

from aekit import DenseAE, fit, make_objective


def main() -> None:
    batch, epochs, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    torch.manual_seed(0)
    X = torch.rand(n, 784)
    model = DenseAE([784, 1000, 500, 250, 30], activation="relu", output="sigmoid")
    obj = make_objective("bce")
    fit(model, obj, X[: 4 * batch], max_iter=1, batch_size=batch)  # warm-up
    if world > 1:
        dist.barrier()
    t0 = time.perf_counter()
    fit(model, obj, X, max_iter=epochs, batch_size=batch)
    el = time.perf_counter() - t0
    if world == 1 or dist.get_rank() == 0:
        print(json.dumps({"world": world, "batch": batch, "threads": torch.get_num_threads(),
                          "samples_per_s": epochs * n / el, "seconds": el}), flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
