"""Simple RNN, LSTM and GRU on the GPU (formulas, layouts, gate orders: `engine.layers.recurrent`).

The products with x are done once for all steps: xu = x·U + b by the tiled
`matmul` over all B·T rows, and after back-propagation through time ∂L/∂U,
∂L/∂W and ∂L/∂x as three more products over all rows.  The recurrence itself
is one kernel launch per step: thread (b, j) computes unit j of sample b,

    forward   z_g = xu[b, t, gN + j] + Σ_k h_{t−1}[b, k]·W[k, gN + j]    for each gate g, then the cell
    backward  ∂L/∂h_t[b, j] = ∂L/∂y_t[b, j] + Σ_m ∂L/∂a_{t+1}[b, m]·W[j, m]   (+ the GRU's direct path)

Each launch reads what the previous one wrote (h_{t−1}, or step t+1's ∂L/∂a);
a thread's own carried values (the LSTM's ∂L/∂c, the GRU's direct path) are
read and written only by that thread.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from nnrun.engine.layers import recurrent as cpu

from .activations import activate, sigmoid, slope
from .common import column_sums, copy, empty, fill, grid, to_device, zeros
from .matmul import matmul

# ------------------------------------------------------------------ forward, one step


@cuda.jit
def rnn_step_kernel(t, xu, recurrent_kernel, activation, alpha, hs):
    # xu (B, T, N); recurrent_kernel (N, N); hs (B, T+1, N): reads h_{t−1} = hs[:, t], writes hs[:, t+1]
    batch, _, units = hs.shape
    for i in range(cuda.grid(1), batch * units, cuda.gridsize(1)):
        b, j = i // units, i % units
        a = xu[b, t, j]
        for k in range(units):
            a += hs[b, t, k] * recurrent_kernel[k, j]
        hs[b, t + 1, j] = activate(a, activation, alpha)


@cuda.jit
def lstm_step_kernel(t, gates, recurrent_kernel, activation, alpha, hs, cs, cell_out):
    # gates (B, T, 4N): xu on entry, overwritten with i, f, g, o; hs, cs (B, T+1, N); cell_out (B, T, N) = tanh(c_t)
    batch, _, units = hs.shape
    for idx in range(cuda.grid(1), batch * units, cuda.gridsize(1)):
        b, j = idx // units, idx % units
        z_i, z_f = gates[b, t, j], gates[b, t, units + j]
        z_c, z_o = gates[b, t, 2 * units + j], gates[b, t, 3 * units + j]
        for k in range(units):
            h = hs[b, t, k]
            z_i += h * recurrent_kernel[k, j]
            z_f += h * recurrent_kernel[k, units + j]
            z_c += h * recurrent_kernel[k, 2 * units + j]
            z_o += h * recurrent_kernel[k, 3 * units + j]
        i, f = sigmoid(z_i), sigmoid(z_f)
        g, o = activate(z_c, activation, alpha), sigmoid(z_o)
        c = f * cs[b, t, j] + i * g
        tanh_c = activate(c, activation, alpha)
        gates[b, t, j], gates[b, t, units + j], gates[b, t, 2 * units + j], gates[b, t, 3 * units + j] = i, f, g, o
        cs[b, t + 1, j] = c
        cell_out[b, t, j] = tanh_c
        hs[b, t + 1, j] = o * tanh_c


@cuda.jit
def gru_step_kernel(t, xu, recurrent_kernel, recurrent_bias, activation, alpha, hs, gates, hidden_h):
    # xu (B, T, 3N) = x·U + b_x; recurrent_bias b_h (3N,); gates (B, T, 3N) out: z, r, ĥ;
    # hidden_h (B, T, N) out: (h_{t−1}·W + b_h) of the candidate block
    batch, _, units = hs.shape
    for idx in range(cuda.grid(1), batch * units, cuda.gridsize(1)):
        b, j = idx // units, idx % units
        rec_z, rec_r, rec_h = recurrent_bias[j], recurrent_bias[units + j], recurrent_bias[2 * units + j]
        for k in range(units):
            h = hs[b, t, k]
            rec_z += h * recurrent_kernel[k, j]
            rec_r += h * recurrent_kernel[k, units + j]
            rec_h += h * recurrent_kernel[k, 2 * units + j]
        z = sigmoid(xu[b, t, j] + rec_z)
        r = sigmoid(xu[b, t, units + j] + rec_r)
        candidate = activate(xu[b, t, 2 * units + j] + r * rec_h, activation, alpha)
        gates[b, t, j], gates[b, t, units + j], gates[b, t, 2 * units + j] = z, r, candidate
        hidden_h[b, t, j] = rec_h
        hs[b, t + 1, j] = z * hs[b, t, j] + (float32(1.0) - z) * candidate


# ----------------------------------------------------------------- backward, one step


@cuda.jit(device=True)
def from_next_step(t, b, j, dah, recurrent_kernel):  # Σ_m ∂L/∂a_{t+1}[b, m]·W[j, m] (0 after the last step)
    total = float32(0.0)
    if t + 1 < dah.shape[1]:
        for m in range(dah.shape[2]):
            total += dah[b, t + 1, m] * recurrent_kernel[j, m]
    return total


@cuda.jit
def rnn_back_kernel(t, hs, recurrent_kernel, dh_out, activation, alpha, da, dh_all):
    # da (B, T, N) out: ∂L/∂(pre-activation); dh_all (B, T, N) out: ∂L/∂h_t
    batch, _, units = hs.shape
    for i in range(cuda.grid(1), batch * units, cuda.gridsize(1)):
        b, j = i // units, i % units
        dh = dh_out[b, t, j] + from_next_step(t, b, j, da, recurrent_kernel)
        dh_all[b, t, j] = dh
        da[b, t, j] = dh * slope(hs[b, t + 1, j], activation, alpha)


@cuda.jit
def lstm_back_kernel(t, cs, gates, cell_out, recurrent_kernel, dh_out, activation, alpha, dc_carry, da, dh_all):
    # dc_carry (B, N): ∂L/∂c_t arriving from step t+1 (read and written by thread (b, j) only)
    batch, _, units = cs.shape
    for idx in range(cuda.grid(1), batch * units, cuda.gridsize(1)):
        b, j = idx // units, idx % units
        i, f = gates[b, t, j], gates[b, t, units + j]
        g, o = gates[b, t, 2 * units + j], gates[b, t, 3 * units + j]
        tanh_c = cell_out[b, t, j]
        dh = dh_out[b, t, j] + from_next_step(t, b, j, da, recurrent_kernel)
        dh_all[b, t, j] = dh
        dc = dc_carry[b, j] + dh * o * slope(tanh_c, activation, alpha)
        one = float32(1.0)
        da[b, t, j] = dc * g * i * (one - i)
        da[b, t, units + j] = dc * cs[b, t, j] * f * (one - f)
        da[b, t, 2 * units + j] = dc * i * slope(g, activation, alpha)
        da[b, t, 3 * units + j] = dh * tanh_c * o * (one - o)
        dc_carry[b, j] = dc * f


@cuda.jit
def gru_back_kernel(t, hs, gates, hidden_h, recurrent_kernel, dh_out, activation, alpha, dax, dah, dh_all):
    batch, steps, units = dh_out.shape
    for idx in range(cuda.grid(1), batch * units, cuda.gridsize(1)):
        b, j = idx // units, idx % units
        dh = dh_out[b, t, j] + from_next_step(t, b, j, dah, recurrent_kernel)
        if t + 1 < steps:
            dh += dh_all[b, t + 1, j] * gates[b, t + 1, j]  # the direct path h_t → z⊙h_t in step t+1
        dh_all[b, t, j] = dh
        z, r, candidate = gates[b, t, j], gates[b, t, units + j], gates[b, t, 2 * units + j]
        one = float32(1.0)
        da_candidate = dh * (one - z) * slope(candidate, activation, alpha)
        da_z = dh * (hs[b, t, j] - candidate) * z * (one - z)
        da_r = da_candidate * hidden_h[b, t, j] * r * (one - r)
        dax[b, t, j], dax[b, t, units + j], dax[b, t, 2 * units + j] = da_z, da_r, da_candidate
        dah[b, t, j], dah[b, t, units + j], dah[b, t, 2 * units + j] = da_z, da_r, da_candidate * r


@cuda.jit
def state_norms_kernel(dh_all, norms):  # norms (T,) = mean over b of ‖∂L/∂h_t[b]‖, one thread per step
    batch, steps, units = dh_all.shape
    for t in range(cuda.grid(1), steps, cuda.gridsize(1)):
        total = 0.0
        for b in range(batch):
            squares = 0.0
            for j in range(units):
                squares += dh_all[b, t, j] * dh_all[b, t, j]
            total += squares**0.5
        norms[t] = total / batch


@cuda.jit
def last_step_kernel(dy, dh_out):  # dh_out (B, T, N) = 0 except dh_out[:, T−1] = dy (B, N)
    batch, steps, units = dh_out.shape
    for i in range(cuda.grid(1), dh_out.size, cuda.gridsize(1)):
        b, t, j = i // (steps * units), (i // units) % steps, i % units
        dh_out[b, t, j] = dy[b, j] if t == steps - 1 else float32(0.0)


# ------------------------------------------------------------------------ the layer


class Recurrent(cpu.Recurrent):
    """`engine.layers.recurrent.Recurrent` with device arrays (initialised on the host by the CPU class)."""

    def __init__(self, info, rng: np.random.Generator, *, reference: bool = False) -> None:
        super().__init__(info, rng, reference=reference)
        self.params = {name: to_device(value) for name, value in self.params.items()}
        self.grads = {name: empty(value.shape) for name, value in self.params.items()}

    @property
    def state_gradient_norms(self):  # (T,) on the host, copied only when someone looks
        norms = self._norms
        return None if norms is None else norms.copy_to_host().astype(np.float64)

    @state_gradient_norms.setter
    def state_gradient_norms(self, value) -> None:
        self._norms = value

    def forward(self, x, training: bool):
        kernel, recurrent_kernel, bias = (self.params[k] for k in ("kernel", "recurrent_kernel", "bias"))
        batch, steps, features = x.shape
        units, width = self.units, kernel.shape[1]
        input_bias = bias[0] if self.cell == "gru" else bias
        xu = matmul(x.reshape(batch * steps, features), kernel, bias=input_bias).reshape(batch, steps, width)
        hs = empty((batch, steps + 1, units))  # h_0 … h_T
        fill(hs, 0.0)  # h_0 = 0 (the rest is written step by step)
        saved = {"x": x, "hs": hs}
        launch = grid(batch * units)
        if self.cell == "rnn":
            for t in range(steps):
                rnn_step_kernel[launch](t, xu, recurrent_kernel, self.activation, self.alpha, hs)
        elif self.cell == "lstm":
            saved["cs"] = zeros(hs.shape)
            saved["gates"] = xu  # overwritten with i, f, g, o
            saved["cell_out"] = empty((batch, steps, units))
            for t in range(steps):
                lstm_step_kernel[launch](t, xu, recurrent_kernel, self.activation, self.alpha, hs, saved["cs"],
                                         saved["cell_out"])
        else:
            saved["gates"] = empty(xu.shape)
            saved["hidden_h"] = empty((batch, steps, units))
            for t in range(steps):
                gru_step_kernel[launch](t, xu, recurrent_kernel, bias[1], self.activation, self.alpha, hs,
                                        saved["gates"], saved["hidden_h"])
        if training:
            self.saved = saved
        out = empty((batch, steps, units) if self.return_sequences else (batch, units))
        copy(hs[:, 1:] if self.return_sequences else hs[:, steps], out)
        return out

    def backward(self, dy):
        kernel, recurrent_kernel = self.params["kernel"], self.params["recurrent_kernel"]
        saved = self.saved
        x = saved["x"]
        batch, steps, features = x.shape
        units, width = self.units, kernel.shape[1]
        if self.return_sequences:
            dh_out = dy  # (B, T, N)
        else:
            dh_out = empty((batch, steps, units))
            last_step_kernel[grid(dh_out.size)](dy, dh_out)  # only h_T reaches the loss
        da = empty((batch, steps, width))  # ∂L/∂(x-side pre-activations)
        dah = da  # ∂L/∂(h-side pre-activations): the same array except in a GRU
        dh_all = empty((batch, steps, units))
        launch = grid(batch * units)
        if self.cell == "rnn":
            for t in range(steps - 1, -1, -1):
                rnn_back_kernel[launch](t, saved["hs"], recurrent_kernel, dh_out, self.activation, self.alpha, da,
                                        dh_all)
        elif self.cell == "lstm":
            dc_carry = zeros((batch, units))
            for t in range(steps - 1, -1, -1):
                lstm_back_kernel[launch](t, saved["cs"], saved["gates"], saved["cell_out"], recurrent_kernel, dh_out,
                                         self.activation, self.alpha, dc_carry, da, dh_all)
        else:
            dah = empty(da.shape)
            for t in range(steps - 1, -1, -1):
                gru_back_kernel[launch](t, saved["hs"], saved["gates"], saved["hidden_h"], recurrent_kernel, dh_out,
                                        self.activation, self.alpha, da, dah, dh_all)
        norms = empty((steps,))
        state_norms_kernel[grid(steps)](dh_all, norms)
        self.state_gradient_norms = norms
        # The sums over steps and samples, as single products over all B·T rows.
        da2, dah2 = da.reshape(batch * steps, width), dah.reshape(batch * steps, width)
        h_prev = empty((batch, steps, units))  # h_{t−1}, contiguous for the product
        copy(saved["hs"][:, :steps], h_prev)
        matmul(x.reshape(batch * steps, features), da2, self.grads["kernel"], trans_a=True)  # (F, kN)
        matmul(h_prev.reshape(batch * steps, units), dah2, self.grads["recurrent_kernel"], trans_a=True)  # (N, kN)
        if self.cell == "gru":
            column_sums(da2, self.grads["bias"][0])
            column_sums(dah2, self.grads["bias"][1])
        else:
            column_sums(da2, self.grads["bias"])
        return matmul(da2, kernel, trans_b=True).reshape(batch, steps, features)  # ∂L/∂x
