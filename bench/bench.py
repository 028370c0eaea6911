"""nnrun against PyTorch on the course's networks, measured side by side in one run.

    python bench/bench.py                 # all networks, 2 threads
    python bench/bench.py --only lenet5   # one of them
    python bench/bench.py --rounds 5 --seconds 2

Both engines train the same network (built from the same `.net` file) on the
same random data with SGD lr 0.01, float32, the same batch and the same number
of threads; they alternate, round after round, and the best round of each is
kept (the machine is shared: figures drift between runs, ratios much less).
Also measured in the same run: numpy's SGEMM rate, the machine's practical peak,
against which each engine's useful FLOP/s are shown.

Without PyTorch (`pip install torch==2.13.0`) only nnrun is measured.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import dsl  # noqa: E402
from dsl.spec import OptimizerSpec  # noqa: E402

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


def sgemm_peak(threads: int, seconds: float) -> float:
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
    from engine.network import Network

    network = Network(model, seed=0, optimizer=OptimizerSpec(name="sgd", lr=0.01))
    network.train_step(x[0], y[0])  # compile
    return lambda i: network.train_step(x[i], y[i])


def nnrun_predictor(model, x):
    from engine.network import Network

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
    from dsl.spec import ActivationLayer, BatchNorm, Conv, Dense, Dropout, Flatten, Pool

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


# ------------------------------------------------------------------ the run


def measure(kind: str, name: str, model, batch: int, args, peak: float, torch_ok: bool) -> dict:
    x, y = make_data(model, batch, batches=8)
    if kind == "train":
        engines = {"nnrun": nnrun_trainer(model, x, y)}
        if torch_ok:
            engines["pytorch"] = torch_trainer(model, x, y)
        flops = 3 * 2 * model.macs  # forward + backward ≈ three forward passes
    else:
        engines = {"nnrun": nnrun_predictor(model, x)}
        if torch_ok:
            engines["pytorch"] = torch_predictor(model, x)
        flops = 2 * model.macs
    best = {engine: 0.0 for engine in engines}
    for _ in range(args.rounds):
        for engine, step in engines.items():
            best[engine] = max(best[engine], timed(step, len(x), args.seconds) * batch)
    row = {"kind": kind, "network": name, "batch": batch, **{f"{e}_sps": v for e, v in best.items()}}
    row["nnrun_peak"] = best["nnrun"] * flops / 1e9 / peak
    if torch_ok:
        row["ratio"] = best["nnrun"] / best["pytorch"]
        row["pytorch_peak"] = best["pytorch"] * flops / 1e9 / peak
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="seconds per engine per round")
    parser.add_argument("--only", help="comma-separated network names")
    parser.add_argument("--no-inference", action="store_true")
    args = parser.parse_args()

    import numba

    numba.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
        torch_ok = True
        torch_version = torch.__version__
    except ImportError:
        torch_ok, torch_version = False, None
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass

    peak = sgemm_peak(args.threads, 2.0)
    only = set(args.only.split(",")) if args.only else None
    rows = []
    for name, path, batch in NETWORKS:
        if only is None or name in only:
            rows.append(measure("train", name, load_model(path), batch, args, peak, torch_ok))
            print_row(rows[-1], torch_ok)
    if not args.no_inference:
        for name, path in INFERENCE:
            if only is None or name in only:
                rows.append(measure("infer", name, load_model(path), INFERENCE_BATCH, args, peak, torch_ok))
                print_row(rows[-1], torch_ok)
    print()
    print(f"machine: {os.cpu_count()} CPUs, {args.threads} threads, numpy SGEMM {peak:.0f} GFLOP/s; "
          f"PyTorch {torch_version or 'not installed'}; numba {numba.__version__}")
    print()
    print_markdown(rows, torch_ok)


def print_row(row: dict, torch_ok: bool) -> None:
    text = f"{row['kind']:5} {row['network']:11} batch {row['batch']:5}  nnrun {row['nnrun_sps']:10,.0f}/s"
    if torch_ok:
        text += f"  pytorch {row['pytorch_sps']:10,.0f}/s  ratio {row['ratio']:5.2f}"
    print(text, flush=True)


def print_markdown(rows: list[dict], torch_ok: bool) -> None:
    header = "| | network | batch | nnrun samples/s | % of SGEMM peak |"
    if torch_ok:
        header += " PyTorch samples/s | % of peak | nnrun / PyTorch |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        line = (f"| {row['kind']} | {row['network']} | {row['batch']} | {row['nnrun_sps']:,.0f} | "
                f"{row['nnrun_peak']:.0%} |")
        if torch_ok:
            line += f" {row['pytorch_sps']:,.0f} | {row['pytorch_peak']:.0%} | **{row['ratio']:.2f}** |"
        print(line)


if __name__ == "__main__":
    main()
