"""nnrun against PyTorch on the course's networks, measured side by side in one run.

    python bench/bench.py                 # all networks, 2 threads
    python bench/bench.py --only lenet5   # one of them
    python bench/bench.py --rounds 5 --seconds 2

Both engines train the same network (built from the same `.net` file) on the
same random data with SGD lr 0.01, float32, the same batch and the same number
of threads; inference runs at batch 1000.

Each engine runs in its own process (a *worker*: this script with ``--worker
ENGINE``), because two engines in one process leave two sets of thread pools
spinning against each other on a small machine — PyTorch's MLP fell from
57,000 to 2,354 samples/s that way.  The parent asks the workers in turn for
one timed round of the same row, round after round, and keeps each engine's
best round (the machine is shared: figures drift between runs, ratios much
less).  A worker blocked waiting for its next order leaves the processors to
the other.  Also measured, in a worker of its own: numpy's SGEMM rate, the
machine's practical peak, against which each engine's useful FLOP/s are shown.

Without PyTorch (`pip install torch==2.13.0`) only nnrun is measured.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT = dict(os.environ)  # as the user gave it, before `nnrun` adds its settings (nnrun.spin)
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from nnrun import dsl  # noqa: E402
from nnrun.dsl.spec import OptimizerSpec  # noqa: E402
from nnrun.spin import set_spin_environment  # noqa: E402

NETWORKS = [
    # name, spec file, batch
    ("mlp", "specs/mlp.net", 128),
    ("first_cnn", "specs/first_cnn.net", 128),
    ("lenet5", "specs/lenet5.net", 64),
    ("three_conv", "specs/three_conv.net", 100),
    ("hand_signs", "specs/hand_signs.net", 32),
]
INFERENCE = [("mlp", "specs/mlp.net"), ("first_cnn", "specs/first_cnn.net"), ("lenet5", "specs/lenet5.net")]
INFERENCE_BATCH = 1000


def sgemm_peak(seconds: float) -> float:
    """numpy's float32 matrix product rate, GFLOP/s (the practical peak of the machine)."""
    n = 1024
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    a @ b
    best = math.inf
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def load_model(path: str):
    return dsl.resolve(dsl.parse_file(str(ROOT / path)))


def make_data(model, batch: int, batches: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((batches, batch, *model.input_shape), dtype=np.float32)
    classes = model.output_shape[-1]
    y = rng.integers(0, classes, size=(batches, batch)).astype(np.int64)
    return x, y


def timed(step, batches: int, seconds: float) -> float:
    """Run ``step(i)`` for at least ``seconds``; return batches per second."""
    count = 0
    started = time.perf_counter()
    while True:
        step(count % batches)
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count / elapsed


# ------------------------------------------------------------------ nnrun


def nnrun_trainer(model, x, y):
    from nnrun.engine.network import Network

    network = Network(model, seed=0, optimizer=OptimizerSpec(name="sgd", lr=0.01))
    network.train_step(x[0], y[0])  # compile
    return lambda i: network.train_step(x[i], y[i])


def nnrun_predictor(model, x):
    from nnrun.engine.network import Network

    network = Network(model, seed=0)
    network.predict(x[0], batch=len(x[0]))
    return lambda i: network.predict(x[i], batch=len(x[i]))


# ------------------------------------------------------------------ PyTorch


def keras_padding(size: int, kernel: int, stride: int, padding) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    return padding, padding


def torch_module(model):
    """The same network in PyTorch (channels first), layer for layer."""
    import torch.nn as nn
    from nnrun.dsl.spec import ActivationLayer, BatchNorm, Conv, Dense, Dropout, Flatten, Pool

    def broadcast(value, rank):
        return tuple(value) * rank if len(value) == 1 else tuple(value)

    activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity, "softmax": nn.Identity}
    modules = []
    last = len(model.layers) - 1
    for index, info in enumerate(model.layers):
        layer = info.layer
        rank = len(info.input_shape) - 1
        if isinstance(layer, Conv):
            kernel, stride = broadcast(layer.kernel, rank), broadcast(layer.stride, rank)
            explicit = layer.padding if isinstance(layer.padding, str) else broadcast(layer.padding, rank)[0]
            pads = [keras_padding(size, k, s, explicit) for size, k, s in zip(info.input_shape[:-1], kernel, stride)]
            flat = [p for pair in reversed(pads) for p in pair]
            if any(flat):
                modules.append({1: nn.ConstantPad1d, 2: nn.ConstantPad2d, 3: nn.ConstantPad3d}[rank](tuple(flat), 0.0))
            conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
            modules.append(conv(info.input_shape[-1], layer.filters, kernel, stride))
        elif isinstance(layer, Pool):
            if layer.is_global:
                modules.append(nn.AdaptiveAvgPool2d(1) if layer.mode == "avg" else nn.AdaptiveMaxPool2d(1))
                modules.append(nn.Flatten())
            else:
                kernel = broadcast(layer.kernel, rank)
                stride = broadcast(layer.stride or layer.kernel, rank)
                pool = {("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d, ("max", 3): nn.MaxPool3d,
                        ("avg", 1): nn.AvgPool1d, ("avg", 2): nn.AvgPool2d, ("avg", 3): nn.AvgPool3d}[layer.mode, rank]
                modules.append(pool(kernel, stride))
        elif isinstance(layer, Flatten):
            modules.append(nn.Flatten())
        elif isinstance(layer, Dense):
            modules.append(nn.Linear(math.prod(info.input_shape), layer.units))
        elif isinstance(layer, Dropout):
            modules.append(nn.Dropout(layer.rate))
        elif isinstance(layer, BatchNorm):
            modules.append({1: nn.BatchNorm1d, 2: nn.BatchNorm1d, 3: nn.BatchNorm2d, 4: nn.BatchNorm3d}[len(info.input_shape)](info.input_shape[-1]))
        elif isinstance(layer, ActivationLayer):
            modules.append(activations[layer.activation.name]())
        activation = getattr(layer, "activation", None)
        if activation is not None and not isinstance(layer, ActivationLayer):
            if not (index == last and activation.name == "softmax"):
                modules.append(activations[activation.name]())
    return nn.Sequential(*modules)


def channels_first(x):
    import torch

    batches, batch, *shape = x.shape
    rank = len(shape) - 1
    if rank == 0:
        return torch.from_numpy(x.copy())
    order = (0, 1, 1 + len(shape)) + tuple(range(2, 1 + len(shape)))
    return torch.from_numpy(np.ascontiguousarray(x.transpose(order)))


def torch_trainer(model, x, y):
    import torch

    module = torch_module(model)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = channels_first(x), torch.from_numpy(y)

    def step(i):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(module(xt[i]), yt[i])
        loss.backward()
        optimizer.step()
        return loss.item()

    step(0)
    return step


def torch_predictor(model, x):
    import torch

    module = torch_module(model).eval()
    xt = channels_first(x)

    def step(i):
        with torch.no_grad():
            return torch.softmax(module(xt[i]), dim=1).numpy()

    step(0)
    return step


# ------------------------------------------------------------------ the worker (one engine, one process)

NETWORK_FILES = {name: path for name, path, _ in NETWORKS}
BUILDERS = {"nnrun": (nnrun_trainer, nnrun_predictor), "pytorch": (torch_trainer, torch_predictor), "peak": None}


def set_threads(engine: str, threads: int) -> None:
    """The same number of threads everywhere: the engine's policy for nnrun (engine.threads),
    torch's own setting for PyTorch, NumPy's BLAS on that many threads for the peak."""
    if engine == "pytorch":
        import torch

        torch.set_num_threads(threads)
    elif engine == "nnrun":
        from nnrun.engine.threads import use_threads

        use_threads(threads)
    else:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")


def worker(engine: str, threads: int) -> None:
    """Answer orders read from stdin, one JSON line each, with one JSON line on stdout.

    ``{"kind": "train"|"infer", "network": NAME, "batch": B, "seconds": S}`` → ``{"sps": samples/s}``
    (the first order for a row builds and warms it up); ``{"kind": "peak"}`` → ``{"gflops": …}``.
    """
    set_threads(engine, threads)
    steps = {}
    for line in sys.stdin:
        order = json.loads(line)
        if order["kind"] == "peak":
            answer = {"gflops": sgemm_peak(order["seconds"])}
        else:
            key = (order["kind"], order["network"], order["batch"])
            if key not in steps:
                model = load_model(NETWORK_FILES[order["network"]])
                x, y = make_data(model, order["batch"], batches=8)
                trainer, predictor = BUILDERS[engine]
                steps[key] = (trainer(model, x, y) if order["kind"] == "train" else predictor(model, x), len(x))
            step, batches = steps[key]
            answer = {"sps": timed(step, batches, order["seconds"]) * order["batch"]}
        print(json.dumps(answer), flush=True)


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, engine: str, threads: int) -> None:
        command = [sys.executable, __file__, "--worker", engine, "--threads", str(threads)]
        # nnrun's own environment (nnrun.spin: its thread pools spin briefly), set before
        # the worker loads NumPy; PyTorch and the SGEMM peak run with the default one
        environment = set_spin_environment(dict(ENVIRONMENT)) if engine == "nnrun" else dict(ENVIRONMENT)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=environment)

    def ask(self, **order) -> dict:
        self.process.stdin.write(json.dumps(order) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"a bench worker died (exit status {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


# ------------------------------------------------------------------ the run (parent)


def measure(workers: dict, kind: str, name: str, batch: int, args, peak: float) -> dict:
    model = load_model(NETWORK_FILES[name])
    flops = (3 if kind == "train" else 1) * 2 * model.macs  # backward ≈ two forward passes
    for worker_ in workers.values():  # build and warm up (compilation) outside the timed rounds
        worker_.ask(kind=kind, network=name, batch=batch, seconds=0.2)
    best = {engine: 0.0 for engine in workers}
    for _ in range(args.rounds):
        for engine, worker_ in workers.items():  # alternate: the engines see the same drift
            time.sleep(0.2)  # let the other worker's spinning threads go to sleep
            sps = worker_.ask(kind=kind, network=name, batch=batch, seconds=args.seconds)["sps"]
            best[engine] = max(best[engine], sps)
    row = {"kind": kind, "network": name, "batch": batch, **{f"{e}_sps": v for e, v in best.items()}}
    row["nnrun_peak"] = best["nnrun"] * flops / 1e9 / peak
    if "pytorch" in best:
        row["ratio"] = best["nnrun"] / best["pytorch"]
        row["pytorch_peak"] = best["pytorch"] * flops / 1e9 / peak
    return row


def torch_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="seconds per engine per round")
    parser.add_argument("--only", help="comma-separated network names")
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--no-torch", action="store_true", help="measure nnrun alone")
    parser.add_argument("--worker", choices=sorted(BUILDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.threads)

    version = None if args.no_torch else torch_version()
    engines = ["nnrun"] + (["pytorch"] if version else [])
    peak_worker = Worker("peak", args.threads)
    peak = max(peak_worker.ask(kind="peak", seconds=1.0)["gflops"] for _ in range(3))
    peak_worker.close()
    workers = {engine: Worker(engine, args.threads) for engine in engines}
    try:
        only = set(args.only.split(",")) if args.only else None
        plan = [("train", name, batch) for name, _, batch in NETWORKS]
        if not args.no_inference:
            plan += [("infer", name, INFERENCE_BATCH) for name, _ in INFERENCE]
        rows = []
        for kind, name, batch in plan:
            if only is None or name in only:
                rows.append(measure(workers, kind, name, batch, args, peak))
                print_row(rows[-1])
    finally:
        for worker_ in workers.values():
            worker_.close()
    import numba

    print()
    print(f"machine: {os.cpu_count()} CPUs, {args.threads} threads, numpy SGEMM {peak:.0f} GFLOP/s; "
          f"PyTorch {version or 'not measured'}; numba {numba.__version__}; one process per engine")
    print()
    print_markdown(rows)


def print_row(row: dict) -> None:
    text = f"{row['kind']:5} {row['network']:11} batch {row['batch']:5}  nnrun {row['nnrun_sps']:10,.0f}/s"
    if "ratio" in row:
        text += f"  pytorch {row['pytorch_sps']:10,.0f}/s  ratio {row['ratio']:5.2f}"
    print(text, flush=True)


def print_markdown(rows: list[dict]) -> None:
    with_torch = any("ratio" in row for row in rows)
    header = "| | network | batch | nnrun samples/s | % of SGEMM peak |"
    if with_torch:
        header += " PyTorch samples/s | % of peak | nnrun / PyTorch |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        line = (f"| {row['kind']} | {row['network']} | {row['batch']} | {row['nnrun_sps']:,.0f} | "
                f"{row['nnrun_peak']:.0%} |")
        if with_torch:
            line += f" {row['pytorch_sps']:,.0f} | {row['pytorch_peak']:.0%} | **{row['ratio']:.2f}** |"
        print(line)


if __name__ == "__main__":
    main()
