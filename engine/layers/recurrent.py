"""Recurrent layers: simple RNN (Elman), LSTM and GRU, trained by back-propagation through time.

Input ``x`` (B, T, F), one state ``h_t`` (B, N) per step, ``h_0 = 0`` (and ``c_0 = 0``).
Parameters have Keras's names, layouts and gate orders:

Simple RNN (``rnn N [act]``), kernel U (F, N), recurrent_kernel W (N, N), bias b (N,):

    h_t = act(x_t·U + h_{t−1}·W + b)                          params N·(N + F + 1)

LSTM (``lstm N``), kernel (F, 4N), recurrent_kernel (N, 4N), bias (4N,), gates i, f, c, o:

    [z_i z_f z_c z_o] = x_t·U + h_{t−1}·W + b
    i = σ(z_i)   f = σ(z_f)   g = tanh(z_c)   o = σ(z_o)
    c_t = f⊙c_{t−1} + i⊙g       h_t = o⊙tanh(c_t)             params 4N·(N + F + 1)

GRU (``gru N``, Keras's ``reset_after=True``), kernel (F, 3N), recurrent_kernel (N, 3N),
bias (2, 3N) = (input bias b_x, recurrent bias b_h), gates z, r, h:

    [x_z x_r x_h] = x_t·U + b_x           [h_z h_r h_h] = h_{t−1}·W + b_h
    z = σ(x_z + h_z)   r = σ(x_r + h_r)   ĥ = tanh(x_h + r⊙h_h)
    h_t = z⊙h_{t−1} + (1 − z)⊙ĥ                               params 3N·(N + F + 2)

(``tanh`` above is the statement's activation, tanh by default; gates are sigmoids.)

Output: the last state h_T (B, N), or with ``sequences`` every state (B, T, N).

Back-propagation through time walks the steps backwards.  With ``dh_t`` the whole
∂L/∂h_t (from the output at step t plus from step t+1), each cell turns it into
∂L/∂(pre-activations) ``da_t`` and passes ``da_t·Wᵀ`` on to step t−1.  Then

    ∂L/∂U = Σ_t x_tᵀ·da_t      ∂L/∂W = Σ_t h_{t−1}ᵀ·da_t      ∂L/∂b = Σ_t Σ_batch da_t
    ∂L/∂x_t = da_t·Uᵀ

The norms ‖∂L/∂h_t‖ (mean over the batch) of the last training batch are kept in
``state_gradient_norms`` (T,): in a simple RNN they shrink going back in time
(the vanishing gradient); the LSTM's cell state carries them further.

Speed: the products that involve x (x·U for every step at once, and the weight
gradients summed over all steps) are single large matrix products for NumPy's
BLAS; only the step-to-step recurrence is a Numba kernel, one sample after the
other.  The kernels are serial on purpose: BLAS owns the threads, and a ``prange``
pool alternating with BLAS's pool made a training step 1.5–2× slower on the
2-core machine (PERF.md, "thread pools fight").  Each sample's recurrence is
independent, so ``prange`` over the batch would be a correct change to measure
again.  No ``np.dot`` inside ``@njit`` (it would use SciPy's second BLAS).

Initialisation (Keras): kernel Glorot-uniform, recurrent_kernel orthogonal,
bias zeros, except the LSTM forget-gate bias, 1 (``unit_forget_bias``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from nnrun.dsl.spec import LayerInfo

from .. import initializers
from .base import Layer

# Element-wise activations usable inside a cell, by code (kernels take scalars only).
TANH, SIGMOID, RELU, LINEAR, LEAKYRELU = 0, 1, 2, 3, 4
ACTIVATION_CODES = {"tanh": TANH, "sigmoid": SIGMOID, "relu": RELU, "linear": LINEAR, "leakyrelu": LEAKYRELU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # blocks of N columns in kernel and recurrent_kernel

# ------------------------------------------------------------------- kernels (cpu)


@njit(cache=True)
def sigmoid(a):
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


@njit(cache=True)
def activate(a, activation, alpha):  # act(a) for one scalar
    if activation == TANH:
        return math.tanh(a)
    if activation == SIGMOID:
        return sigmoid(a)
    if activation == RELU:
        return a if a > 0 else 0.0
    if activation == LEAKYRELU:
        return a if a > 0 else alpha * a
    return a  # LINEAR


@njit(cache=True)
def activation_slope(y, activation, alpha):  # act'(a), written with the output y = act(a)
    if activation == TANH:
        return 1.0 - y * y
    if activation == SIGMOID:
        return y * (1.0 - y)
    if activation == RELU:
        return 1.0 if y > 0 else 0.0
    if activation == LEAKYRELU:
        return 1.0 if y > 0 else alpha
    return 1.0  # LINEAR


@njit(cache=True, fastmath={"contract"})  # contract: a·b + c as one fused multiply-add
def add_matvec(h, weights, out):  # out (M,) += h (K,) · weights (K, M), row by row (contiguous)
    for k in range(h.shape[0]):
        hk = h[k]
        for j in range(out.shape[0]):
            out[j] += hk * weights[k, j]


# --- simple RNN


@njit(cache=True)
def rnn_forward(xu, recurrent_kernel, activation, alpha, hs):
    # xu (B, T, N) = x·U + b; recurrent_kernel W (N, N); hs (B, T+1, N) out, hs[:, 0] = h_0 = 0
    for b in range(xu.shape[0]):
        hs[b, 0, :] = 0.0
        for t in range(xu.shape[1]):
            a = hs[b, t + 1]  # (N,) the pre-activation, then h_t in place
            a[:] = xu[b, t]
            add_matvec(hs[b, t], recurrent_kernel, a)  # + h_{t−1}·W
            for j in range(a.shape[0]):
                a[j] = activate(a[j], activation, alpha)


@njit(cache=True)
def rnn_backward(hs, recurrent_kernel_t, dh_out, activation, alpha, da, dh_norms):
    # hs (B, T+1, N); recurrent_kernel_t Wᵀ (N, N); dh_out (B, T, N) ∂L/∂h_t from the output
    # da (B, T, N) out: ∂L/∂(pre-activation); dh_norms (B, T) out: ‖∂L/∂h_t‖
    for b in range(hs.shape[0]):
        dh_next = np.zeros_like(hs[b, 0])  # ∂L/∂h_t arriving from step t+1
        for t in range(dh_out.shape[1] - 1, -1, -1):
            norm2 = 0.0
            for j in range(dh_next.shape[0]):
                dh = dh_out[b, t, j] + dh_next[j]
                norm2 += dh * dh
                da[b, t, j] = dh * activation_slope(hs[b, t + 1, j], activation, alpha)
            dh_norms[b, t] = math.sqrt(norm2)
            dh_next[:] = 0.0
            add_matvec(da[b, t], recurrent_kernel_t, dh_next)  # da_t·Wᵀ


# --- LSTM


@njit(cache=True)
def lstm_forward(xu, recurrent_kernel, activation, alpha, hs, cs, gates, cell_out):
    # xu (B, T, 4N) = x·U + b; recurrent_kernel (N, 4N); hs, cs (B, T+1, N) out (states, [:, 0] = 0)
    # gates (B, T, 4N) out: i, f, g, o after their activations; cell_out (B, T, N) out: tanh(c_t)
    units = hs.shape[2]
    for b in range(xu.shape[0]):
        hs[b, 0, :] = 0.0
        cs[b, 0, :] = 0.0
        for t in range(xu.shape[1]):
            z = gates[b, t]  # (4N,)
            z[:] = xu[b, t]
            add_matvec(hs[b, t], recurrent_kernel, z)
            for j in range(units):
                i = sigmoid(z[j])
                f = sigmoid(z[units + j])
                g = activate(z[2 * units + j], activation, alpha)
                o = sigmoid(z[3 * units + j])
                c = f * cs[b, t, j] + i * g
                tanh_c = activate(c, activation, alpha)
                z[j], z[units + j], z[2 * units + j], z[3 * units + j] = i, f, g, o
                cs[b, t + 1, j] = c
                cell_out[b, t, j] = tanh_c
                hs[b, t + 1, j] = o * tanh_c


@njit(cache=True)
def lstm_backward(cs, gates, cell_out, recurrent_kernel_t, dh_out, activation, alpha, da, dh_norms):
    # recurrent_kernel_t Wᵀ (4N, N); dh_out (B, T, N); da (B, T, 4N) out; dh_norms (B, T) out
    units = cs.shape[2]
    for b in range(cs.shape[0]):
        dh_next = np.zeros_like(cs[b, 0])  # ∂L/∂h_t from step t+1
        dc_next = np.zeros_like(cs[b, 0])  # ∂L/∂c_t from step t+1
        for t in range(dh_out.shape[1] - 1, -1, -1):
            norm2 = 0.0
            for j in range(units):
                i, f = gates[b, t, j], gates[b, t, units + j]
                g, o = gates[b, t, 2 * units + j], gates[b, t, 3 * units + j]
                tanh_c = cell_out[b, t, j]
                dh = dh_out[b, t, j] + dh_next[j]
                norm2 += dh * dh
                dc = dc_next[j] + dh * o * activation_slope(tanh_c, activation, alpha)
                da[b, t, j] = dc * g * i * (1.0 - i)  # ∂L/∂z_i
                da[b, t, units + j] = dc * cs[b, t, j] * f * (1.0 - f)  # ∂L/∂z_f (c_{t−1})
                da[b, t, 2 * units + j] = dc * i * activation_slope(g, activation, alpha)  # ∂L/∂z_c
                da[b, t, 3 * units + j] = dh * tanh_c * o * (1.0 - o)  # ∂L/∂z_o
                dc_next[j] = dc * f
            dh_norms[b, t] = math.sqrt(norm2)
            dh_next[:] = 0.0
            add_matvec(da[b, t], recurrent_kernel_t, dh_next)


# --- GRU (reset_after=True)


@njit(cache=True)
def gru_forward(xu, recurrent_kernel, recurrent_bias, activation, alpha, hs, gates, hidden_h):
    # xu (B, T, 3N) = x·U + b_x; recurrent_kernel (N, 3N); recurrent_bias b_h (3N,)
    # hs (B, T+1, N) out; gates (B, T, 3N) out: z, r, ĥ; hidden_h (B, T, N) out: h_h = (h_{t−1}·W + b_h)_h
    units = hs.shape[2]
    for b in range(xu.shape[0]):
        hs[b, 0, :] = 0.0
        rec = np.empty_like(recurrent_bias)  # (3N,) h_{t−1}·W + b_h
        for t in range(xu.shape[1]):
            rec[:] = recurrent_bias
            add_matvec(hs[b, t], recurrent_kernel, rec)
            for j in range(units):
                z = sigmoid(xu[b, t, j] + rec[j])
                r = sigmoid(xu[b, t, units + j] + rec[units + j])
                candidate = activate(xu[b, t, 2 * units + j] + r * rec[2 * units + j], activation, alpha)
                gates[b, t, j], gates[b, t, units + j], gates[b, t, 2 * units + j] = z, r, candidate
                hidden_h[b, t, j] = rec[2 * units + j]
                hs[b, t + 1, j] = z * hs[b, t, j] + (1.0 - z) * candidate


@njit(cache=True)
def gru_backward(hs, gates, hidden_h, recurrent_kernel_t, dh_out, activation, alpha, dax, dah, dh_norms):
    # recurrent_kernel_t Wᵀ (3N, N); dh_out (B, T, N)
    # dax (B, T, 3N) out: ∂L/∂[x_z x_r x_h]; dah (B, T, 3N) out: ∂L/∂[h_z h_r h_h]; dh_norms (B, T) out
    units = hs.shape[2]
    for b in range(hs.shape[0]):
        dh_next = np.zeros_like(hs[b, 0])
        for t in range(dh_out.shape[1] - 1, -1, -1):
            norm2 = 0.0
            for j in range(units):
                z, r, candidate = gates[b, t, j], gates[b, t, units + j], gates[b, t, 2 * units + j]
                dh = dh_out[b, t, j] + dh_next[j]
                norm2 += dh * dh
                da_candidate = dh * (1.0 - z) * activation_slope(candidate, activation, alpha)
                da_z = dh * (hs[b, t, j] - candidate) * z * (1.0 - z)
                da_r = da_candidate * hidden_h[b, t, j] * r * (1.0 - r)
                dax[b, t, j], dax[b, t, units + j], dax[b, t, 2 * units + j] = da_z, da_r, da_candidate
                dah[b, t, j], dah[b, t, units + j], dah[b, t, 2 * units + j] = da_z, da_r, da_candidate * r
                dh_next[j] = dh * z  # the direct path h_{t−1} → z⊙h_{t−1}
            dh_norms[b, t] = math.sqrt(norm2)
            add_matvec(dah[b, t], recurrent_kernel_t, dh_next)  # + dah_t·Wᵀ


# ------------------------------------------------------ plain-NumPy reference (oracle)


def activate_ref(a, activation, alpha=0.3):
    return {
        TANH: np.tanh,
        SIGMOID: lambda v: 1.0 / (1.0 + np.exp(-v)),
        RELU: lambda v: np.maximum(v, 0),
        LEAKYRELU: lambda v: np.where(v > 0, v, alpha * v),
        LINEAR: lambda v: v,
    }[activation](a)


def activation_slope_ref(y, activation, alpha=0.3):
    return {
        TANH: lambda: 1 - y * y,
        SIGMOID: lambda: y * (1 - y),
        RELU: lambda: (y > 0).astype(y.dtype),
        LEAKYRELU: lambda: np.where(y > 0, 1.0, alpha).astype(y.dtype),
        LINEAR: lambda: np.ones_like(y),
    }[activation]()


def recurrent_forward_ref(cell, x, kernel, recurrent_kernel, bias, activation=TANH, alpha=0.3):
    """States (B, T, N) of ``cell`` over x (B, T, F), step by step; returns (states, cache)."""
    batch, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    sigmoid_ref = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    act = lambda v: activate_ref(v, activation, alpha)  # noqa: E731
    h = np.zeros((batch, units), x.dtype)
    c = np.zeros((batch, units), x.dtype)
    cache = []
    states = []
    for t in range(steps):
        h_prev, c_prev = h, c
        if cell == "rnn":
            h = act(x[:, t] @ kernel + h_prev @ recurrent_kernel + bias)
            cache.append((h_prev, h))
        elif cell == "lstm":
            z = x[:, t] @ kernel + h_prev @ recurrent_kernel + bias  # (B, 4N)
            i, f, o = sigmoid_ref(z[:, :units]), sigmoid_ref(z[:, units : 2 * units]), sigmoid_ref(z[:, 3 * units :])
            g = act(z[:, 2 * units : 3 * units])
            c = f * c_prev + i * g
            h = o * act(c)
            cache.append((h_prev, c_prev, i, f, g, o, act(c)))
        else:  # gru
            xz = x[:, t] @ kernel + bias[0]  # (B, 3N)
            hz = h_prev @ recurrent_kernel + bias[1]  # (B, 3N)
            z = sigmoid_ref(xz[:, :units] + hz[:, :units])
            r = sigmoid_ref(xz[:, units : 2 * units] + hz[:, units : 2 * units])
            candidate = act(xz[:, 2 * units :] + r * hz[:, 2 * units :])
            h = z * h_prev + (1 - z) * candidate
            cache.append((h_prev, z, r, candidate, hz[:, 2 * units :]))
        states.append(h)
    return np.stack(states, axis=1), cache


def recurrent_backward_ref(cell, x, kernel, recurrent_kernel, cache, dh_out, activation=TANH, alpha=0.3):
    """BPTT: from ∂L/∂h_t (B, T, N) at the output, return (dx, dkernel, drecurrent, dbias, dh_norms (T,))."""
    batch, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    slope = lambda y: activation_slope_ref(y, activation, alpha)  # noqa: E731
    dx = np.zeros_like(x)
    dkernel = np.zeros_like(kernel)
    drecurrent = np.zeros_like(recurrent_kernel)
    dbias = np.zeros((2, 3 * units) if cell == "gru" else (GATES[cell] * units,), x.dtype)
    dh_next = np.zeros((batch, units), x.dtype)
    dc_next = np.zeros((batch, units), x.dtype)
    norms = np.zeros(steps)
    for t in range(steps - 1, -1, -1):
        dh = dh_out[:, t] + dh_next
        norms[t] = np.linalg.norm(dh, axis=1).mean()
        if cell == "rnn":
            h_prev, h = cache[t]
            da = dh * slope(h)
            dah = da
        elif cell == "lstm":
            h_prev, c_prev, i, f, g, o, tanh_c = cache[t]
            dc = dc_next + dh * o * slope(tanh_c)
            da = np.concatenate(
                [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * slope(g), dh * tanh_c * o * (1 - o)], axis=1
            )
            dc_next = dc * f
            dah = da
        else:  # gru
            h_prev, z, r, candidate, hidden_h = cache[t]
            da_candidate = dh * (1 - z) * slope(candidate)
            da_z = dh * (h_prev - candidate) * z * (1 - z)
            da_r = da_candidate * hidden_h * r * (1 - r)
            da = np.concatenate([da_z, da_r, da_candidate], axis=1)
            dah = np.concatenate([da_z, da_r, da_candidate * r], axis=1)
        dx[:, t] = da @ kernel.T
        dkernel += x[:, t].T @ da
        drecurrent += h_prev.T @ dah
        if cell == "gru":
            dbias[0] += da.sum(axis=0)
            dbias[1] += dah.sum(axis=0)
        else:
            dbias += da.sum(axis=0)
        dh_next = dah @ recurrent_kernel.T + (dh * z if cell == "gru" else 0)
    return dx, dkernel, drecurrent, dbias, norms


# ------------------------------------------------------------------- initialisation


def orthogonal(rng: np.random.Generator, shape: tuple[int, int], gain: float = 1.0) -> np.ndarray:
    """Keras's ``Orthogonal``: Q of the QR decomposition of a Gaussian matrix, signs fixed by diag(R).

    For (N, kN) the rows are orthonormal: W·Wᵀ = I.
    """
    rows, cols = shape
    gaussian = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(gaussian)
    q *= np.sign(np.diag(r))  # makes the decomposition unique (uniform over orthogonal matrices)
    if rows < cols:
        q = q.T
    return np.ascontiguousarray(gain * q, dtype=np.float32)  # C order, like every parameter


# ------------------------------------------------------------------------ the layer


class Recurrent(Layer):
    """``rnn N [act] [sequences]``, ``lstm N [sequences]``, ``gru N [sequences]`` on (T, F) input.

    The statement's activation is applied inside the recurrence (it is not a
    separate step after the layer).  ``reference=True`` runs the plain-NumPy
    oracle instead of the kernels.
    """

    def __init__(self, info: LayerInfo, rng: np.random.Generator, *, reference: bool = False) -> None:
        super().__init__(info, rng)
        statement = info.layer
        self.cell = statement.cell
        self.units = units = statement.units
        self.return_sequences = statement.return_sequences
        self.reference = reference
        if statement.activation.name not in ACTIVATION_CODES:
            raise ValueError(
                f"{self.cell} {units} {statement.activation.name}: a recurrent layer needs an element-wise "
                f"activation ({', '.join(ACTIVATION_CODES)})"
            )
        self.activation = ACTIVATION_CODES[statement.activation.name]
        self.alpha = float(statement.activation.alpha)
        features = info.input_shape[-1]
        width = GATES[self.cell] * units
        bias = initializers.zeros((2, width) if self.cell == "gru" else (width,))
        if self.cell == "lstm":
            bias[units : 2 * units] = 1.0  # unit_forget_bias: remember by default
        self.params = {
            "kernel": initializers.glorot_uniform(rng, (features, width)),  # (F, kN)
            "recurrent_kernel": orthogonal(rng, (units, width)),  # (N, kN)
            "bias": bias,
        }
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}
        self.state_gradient_norms: np.ndarray | None = None  # (T,) ‖∂L/∂h_t‖, mean over the batch
        self.saved: dict = {}  # what backward needs from the last training forward

    # -- forward

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        kernel, recurrent_kernel, bias = (self.params[k] for k in ("kernel", "recurrent_kernel", "bias"))
        x = np.ascontiguousarray(x, dtype=kernel.dtype)
        if self.reference:
            states, cache = recurrent_forward_ref(self.cell, x, kernel, recurrent_kernel, bias, self.activation, self.alpha)
            self.saved = {"x": x, "cache": cache}
            return states if self.return_sequences else states[:, -1].copy()

        batch, steps, features = x.shape
        units, width = self.units, kernel.shape[1]
        input_bias = bias[0] if self.cell == "gru" else bias
        xu = (x.reshape(batch * steps, features) @ kernel).reshape(batch, steps, width)  # BLAS
        xu += input_bias
        hs = np.empty((batch, steps + 1, units), kernel.dtype)  # h_0 … h_T
        saved = {"x": x, "hs": hs}
        if self.cell == "rnn":
            rnn_forward(xu, recurrent_kernel, self.activation, self.alpha, hs)
        elif self.cell == "lstm":
            saved["cs"] = np.empty_like(hs)
            saved["gates"] = xu  # overwritten with i, f, g, o
            saved["cell_out"] = np.empty((batch, steps, units), kernel.dtype)
            lstm_forward(xu, recurrent_kernel, self.activation, self.alpha, hs, saved["cs"], xu, saved["cell_out"])
        else:
            saved["gates"] = np.empty_like(xu)
            saved["hidden_h"] = np.empty((batch, steps, units), kernel.dtype)
            gru_forward(
                xu, recurrent_kernel, np.ascontiguousarray(bias[1]), self.activation, self.alpha,
                hs, saved["gates"], saved["hidden_h"],
            )
        if training:
            self.saved = saved
        return np.ascontiguousarray(hs[:, 1:]) if self.return_sequences else hs[:, -1].copy()

    # -- backward

    def backward(self, dy: np.ndarray) -> np.ndarray:
        kernel, recurrent_kernel = self.params["kernel"], self.params["recurrent_kernel"]
        x = self.saved["x"]
        batch, steps, features = x.shape
        if self.return_sequences:
            dh_out = np.ascontiguousarray(dy, dtype=kernel.dtype)  # (B, T, N)
        else:
            dh_out = np.zeros((batch, steps, self.units), kernel.dtype)
            dh_out[:, -1] = dy  # only h_T reaches the loss
        if self.reference:
            dx, dkernel, drecurrent, dbias, norms = recurrent_backward_ref(
                self.cell, x, kernel, recurrent_kernel, self.saved["cache"], dh_out, self.activation, self.alpha
            )
            self.grads = {"kernel": dkernel, "recurrent_kernel": drecurrent, "bias": dbias}
            self.state_gradient_norms = norms
            return dx

        saved, width = self.saved, kernel.shape[1]
        recurrent_kernel_t = np.ascontiguousarray(recurrent_kernel.T)  # (kN, N)
        dh_norms = np.empty((batch, steps), kernel.dtype)
        da = np.empty((batch, steps, width), kernel.dtype)  # ∂L/∂(x-side pre-activations)
        dah = da  # ∂L/∂(h-side pre-activations): the same array except in a GRU
        if self.cell == "rnn":
            rnn_backward(saved["hs"], recurrent_kernel_t, dh_out, self.activation, self.alpha, da, dh_norms)
        elif self.cell == "lstm":
            lstm_backward(
                saved["cs"], saved["gates"], saved["cell_out"], recurrent_kernel_t, dh_out,
                self.activation, self.alpha, da, dh_norms,
            )
        else:
            dah = np.empty_like(da)
            gru_backward(
                saved["hs"], saved["gates"], saved["hidden_h"], recurrent_kernel_t, dh_out,
                self.activation, self.alpha, da, dah, dh_norms,
            )
        # The sums over steps and samples, as single BLAS products over all B·T rows.
        da2 = da.reshape(batch * steps, width)
        dah2 = dah.reshape(batch * steps, width)
        h_prev = np.ascontiguousarray(saved["hs"][:, :-1]).reshape(batch * steps, self.units)  # h_{t−1}
        dkernel = x.reshape(batch * steps, features).T @ da2  # (F, kN)
        drecurrent = h_prev.T @ dah2  # (N, kN)
        dbias = da2.sum(axis=0)
        if self.cell == "gru":
            dbias = np.stack([dbias, dah2.sum(axis=0)])  # (2, 3N)
        self.grads = {"kernel": dkernel, "recurrent_kernel": drecurrent, "bias": dbias}
        self.state_gradient_norms = dh_norms.mean(axis=0).astype(np.float64)
        return (da2 @ kernel.T).reshape(batch, steps, features)  # ∂L/∂x
