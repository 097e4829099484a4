"""Where the learned components (the DCDM network, the PINN) run."""

from __future__ import annotations

from learnsolve.solvers.errors import InputError


def torch_device(name: str = "auto", threads: int | None = None) -> str:
    """``"cpu"`` or ``"cuda"`` for ``name`` in auto|cpu|cuda (auto: CUDA when torch sees one);
    with ``threads``, torch's intra-op threads are set too. Asking for CUDA where torch sees
    none is an :class:`InputError` naming ``device``."""
    import torch  # the learn extra: imported only by its users

    if threads is not None:
        torch.set_num_threads(threads)
    cuda = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if cuda else "cpu"
    if name == "cuda" and not cuda:
        raise InputError("device cuda: torch sees no CUDA device", "device")
    if name not in ("cpu", "cuda"):
        raise InputError(f"device {name!r}: choose auto, cpu or cuda", "device")
    return name
