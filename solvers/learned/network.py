"""The network of the Deep Conjugate Direction Method and its model files (torch, the ``learn``
extra); its training is :mod:`.training`.

Network: the residual image and the fluid mask (2 channels) -> 3x3(x3) convolution to ``channels``
-> ``blocks`` residual blocks -> ``levels`` times: average-pool by 2, residual blocks -> back up
level by level (nearest upsampling to the finer grid's exact size, concatenated with that level's
features, a convolution and residual blocks) -> a linear 1x1(x1) convolution, zero on solid cells.
Fully convolutional: any grid size, in the dimension it was built for.

Model file (``torch.save`` of a dict): ``format``, ``meta`` (dimension, training grid, architecture,
training data and time, learnsolve version), ``state_dict``, and ``sha256`` of the state's bytes, so a
damaged file is caught on load.

Solving with a model: :func:`direction_for` (a model's direction map for a grid) and
:func:`dcdm_solve` (:func:`~learnsolve.solvers.learned.dcdm.dcdm` with it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from learnsolve.solvers.devices import torch_device
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.files import save_torch
from learnsolve.solvers.learned.dcdm import dcdm
from learnsolve.solvers.learned.models import model_file
from learnsolve.solvers.result import Result

FORMAT = "learnsolve-dcdm/1"
MODEL_META = ("architecture", "train_grid", "trained_s", "device", "sha256")
"""The model's facts a solve reports (``metrics["model"]``)."""


class _Block(nn.Module):
    def __init__(self, conv: type, c: int) -> None:
        super().__init__()
        self.a = conv(c, c, 3, padding=1)
        self.b = conv(c, c, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.b(F.relu(self.a(F.relu(h))))


class DCDMNet(nn.Module):
    def __init__(self, dim: int, channels: int = 16, levels: int = 2, blocks: int = 1) -> None:
        super().__init__()
        if dim not in (2, 3):
            raise ValueError("dim must be 2 or 3")
        conv = nn.Conv2d if dim == 2 else nn.Conv3d
        self.dim, self.levels = dim, levels
        self.arch = {"dim": dim, "channels": channels, "levels": levels, "blocks": blocks}
        self.inp = conv(2, channels, 3, padding=1)
        self.down = nn.ModuleList(nn.Sequential(*[_Block(conv, channels) for _ in range(blocks)])
                                  for _ in range(levels + 1))
        self.merge = nn.ModuleList(conv(2 * channels, channels, 3, padding=1) for _ in range(levels))
        self.up = nn.ModuleList(nn.Sequential(*[_Block(conv, channels) for _ in range(blocks)])
                                for _ in range(levels))
        self.out = conv(channels, 1, 1)
        self._pool = F.avg_pool2d if dim == 2 else F.avg_pool3d

    def forward(self, r: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """r, mask: (batch, 1, *grid) -> (batch, 1, *grid), zero where mask is 0."""
        h = self.inp(torch.cat([r, mask.expand_as(r)], dim=1))
        skips = []
        for lvl in range(self.levels):
            h = self.down[lvl](h)
            skips.append(h)
            h = self._pool(h, 2, ceil_mode=True)
        h = self.down[self.levels](h)
        for lvl in reversed(range(self.levels)):
            skip = skips[lvl]
            h = F.interpolate(h, size=skip.shape[2:], mode="nearest")
            h = self.up[lvl](self.merge[lvl](torch.cat([h, skip], dim=1)))
        return self.out(h) * mask


# ------------------------------------------------------------------------------------------------
# Model files


def _state_hash(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_model(path: Path, net: DCDMNet, meta: dict[str, Any]) -> None:
    """Write the model file atomically (temp file + rename)."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    save_torch(path, {"format": FORMAT, "meta": {**meta, "architecture": net.arch}, "state_dict": state,
                      "sha256": _state_hash(state)})


def load_model(path: Path, dim: int | None = None, param: str = "model") -> tuple[DCDMNet, dict[str, Any]]:
    """(network in eval mode, meta). A file that is not a model, fails its hash, or was built for
    another dimension is an :class:`InputError` naming ``param``."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise InputError(f"{path}: not a readable model file ({type(exc).__name__})", param) from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise InputError(f"{path}: not a learnsolve DCDM model file", param)
    try:
        state, meta = blob["state_dict"], blob["meta"]
        digest, arch = _state_hash(state), dict(meta["architecture"])
    except Exception as exc:  # the right format tag on the wrong contents
        raise InputError(f"{path}: not a learnsolve DCDM model file ({type(exc).__name__})", param) from None
    if digest != blob.get("sha256"):
        raise InputError(f"{path}: model file is corrupt (its hash does not match)", param)
    if dim is not None and arch.get("dim") != dim:
        raise InputError(f"{path}: a {arch.get('dim')}D model cannot solve a {dim}D problem", param)
    try:
        net = DCDMNet(**arch)
        net.load_state_dict(state)
    except Exception as exc:  # weights that do not fit the architecture they claim
        raise InputError(f"{path}: not a learnsolve DCDM model file ({type(exc).__name__})", param) from None
    net.eval()
    return net, meta


def direction_map(net: DCDMNet, mask: np.ndarray, device: str = "cpu") -> Callable[[np.ndarray], np.ndarray]:
    """r on the fluid cells (float64) -> the network's direction on the fluid cells (float64);
    the network runs in float32."""
    net = net.to(device)
    m = torch.as_tensor(mask, dtype=torch.float32, device=device)[None, None]
    flat = torch.as_tensor(np.flatnonzero(mask.ravel()), device=device)
    shape = mask.shape

    def apply(r: np.ndarray) -> np.ndarray:
        grid = torch.zeros(mask.size, dtype=torch.float32, device=device)
        grid[flat] = torch.as_tensor(r, dtype=torch.float32, device=device)
        with torch.inference_mode():
            y = net(grid.view(1, 1, *shape), m).view(-1)[flat]
        return y.double().cpu().numpy()

    return apply


def grid_mask(mask_or_grid_shape: np.ndarray | tuple[int, ...]) -> np.ndarray:
    """The fluid mask of a grid: the mask itself, or all cells of a grid shape (no obstacles)."""
    if isinstance(mask_or_grid_shape, tuple):
        return np.ones(mask_or_grid_shape, dtype=bool)
    return np.asarray(mask_or_grid_shape, dtype=bool)


def direction_for(mask_or_grid_shape: np.ndarray | tuple[int, ...], model: str | Path = "builtin:dcdm2d",
                  device: str = "auto", threads: int = 1, base: Path | None = None,
                  ) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any], float]:
    """(direction map, the model's meta with ``device`` added, seconds to make them) for unknowns
    on the fluid cells of a grid (a mask, or a grid shape for one without obstacles); ``model`` as
    :func:`model_file` takes it, ``device``/``threads`` as
    :func:`~learnsolve.solvers.devices.torch_device` takes them. A model for another dimension is
    an :class:`InputError` naming ``model``."""
    t = time.perf_counter()
    dev = torch_device(device, threads)
    mask = grid_mask(mask_or_grid_shape)
    net, meta = load_model(model_file(model, base), mask.ndim)
    return direction_map(net, mask, dev), {**meta, "device": dev}, time.perf_counter() - t


def dcdm_solve(A: Any, b: np.ndarray, mask_or_grid_shape: np.ndarray | tuple[int, ...],
               model: str | Path = "builtin:dcdm2d", *, device: str = "auto", threads: int = 1,
               base: Path | None = None, **options: Any) -> Result:
    """:func:`~learnsolve.solvers.learned.dcdm.dcdm` with a model's directions (see
    :func:`direction_for`); ``options`` go to dcdm (rtol, atol, maxiter, k, x0, callback,
    stagnation_window ...). The Result's ``setup_s`` is the model's loading time and
    ``metrics["model"]`` its architecture, training grid and time, device and hash."""
    direction, meta, setup_s = direction_for(mask_or_grid_shape, model, device, threads, base)
    res = dcdm(A, b, direction, **options)
    res.setup_s = setup_s
    res.metrics["model"] = {k: meta[k] for k in MODEL_META if k in meta}
    return res
