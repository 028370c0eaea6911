"""nnrun on the GPU against nnrun on the CPU and PyTorch on the GPU, side by side in one run.

    python bench/bench_gpu.py                     # the networks of bench.py, batch 128 and 1024
    python bench/bench_gpu.py --only lenet5 --batches 256

Training steps (SGD lr 0.01, float32, random data) on the networks of
`bench/bench.py`, whose helpers this script reuses.  Every engine copies each
batch from host memory to where it computes, as a real training loop does, and
every step ends when its loss is back on the host (nnrun returns it as a float;
PyTorch is asked for ``loss.item()``), so no engine is timed on queued work.
Rounds alternate between the engines and the best round of each is kept.

Needs an NVIDIA GPU; without one it says so and exits with status 2.
PyTorch is measured when ``torch.cuda.is_available()``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import NETWORKS, channels_first, load_model, make_data, timed, torch_module  # noqa: E402

from nnrun.dsl.spec import OptimizerSpec  # noqa: E402


def nnrun_trainer(model, x, y, device: str):
    from nnrun.engine.network import Network

    network = Network(model, seed=0, backend=device, optimizer=OptimizerSpec(name="sgd", lr=0.01))
    network.train_step(x[0], y[0])  # compile
    return lambda i: network.train_step(x[i], y[i])


def torch_cuda_trainer(model, x, y):
    import torch

    module = torch_module(model).cuda()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = channels_first(x).pin_memory(), torch.from_numpy(y).pin_memory()

    def step(i):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(module(xt[i].cuda(non_blocking=True)), yt[i].cuda(non_blocking=True))
        loss.backward()
        optimizer.step()
        return loss.item()

    step(0)
    return step


def torch_gpu() -> str | None:
    """PyTorch's version when it can use the GPU, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__ if torch.cuda.is_available() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="128,1024", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="seconds per engine per round")
    parser.add_argument("--only", help="comma-separated network names")
    parser.add_argument("--no-cpu", action="store_true", help="skip nnrun on the CPU (slow at batch 1024)")
    args = parser.parse_args()

    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        print("bench_gpu: NUMBA_ENABLE_CUDASIM is set; the simulator is for tests, not for timing", file=sys.stderr)
        return 2
    from nnrun.engine.backend import BackendUnavailable
    from nnrun.engine.cuda import require

    try:
        cuda = require()
    except BackendUnavailable as error:
        print(f"bench_gpu: {error}; this benchmark needs an NVIDIA GPU (bench/bench.py measures the CPU)",
              file=sys.stderr)
        return 2
    torch_version = torch_gpu()
    gpu_name = cuda.get_current_device().name
    gpu_name = gpu_name.decode() if isinstance(gpu_name, bytes) else gpu_name

    only = set(args.only.split(",")) if args.only else None
    rows = []
    for name, path, _ in NETWORKS:
        if only is not None and name not in only:
            continue
        model = load_model(path)
        for batch in (int(b) for b in args.batches.split(",")):
            x, y = make_data(model, batch, batches=8)
            engines = {"nnrun cuda": nnrun_trainer(model, x, y, "cuda")}
            if not args.no_cpu:
                engines["nnrun cpu"] = nnrun_trainer(model, x, y, "cpu")
            if torch_version:
                engines["pytorch cuda"] = torch_cuda_trainer(model, x, y)
            best = {engine: 0.0 for engine in engines}
            for _ in range(args.rounds):
                for engine, step in engines.items():
                    best[engine] = max(best[engine], timed(step, len(x), args.seconds) * batch)
            rows.append((name, batch, best))
            print(f"{name:11} batch {batch:5}  " + "  ".join(f"{e} {v:12,.0f}/s" for e, v in best.items()), flush=True)

    print()
    print(f"GPU: {gpu_name}; PyTorch {torch_version or 'not available on the GPU'}")
    print()
    columns = ["nnrun cuda"] + ([] if args.no_cpu else ["nnrun cpu"]) + (["pytorch cuda"] if torch_version else [])
    header = "| network | batch | " + " | ".join(f"{c} samples/s" for c in columns) + " |"
    if torch_version:
        header += " nnrun cuda / PyTorch |"
    if not args.no_cpu:
        header += " cuda / cpu |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, batch, best in rows:
        line = f"| {name} | {batch} | " + " | ".join(f"{best[c]:,.0f}" for c in columns) + " |"
        if torch_version:
            line += f" **{best['nnrun cuda'] / best['pytorch cuda']:.2f}** |"
        if not args.no_cpu:
            line += f" {best['nnrun cuda'] / best['nnrun cpu']:.1f}× |"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
