"""Training a stochastic interpolant: :func:`fit` with the interpolant loss."""

from __future__ import annotations

import os
from collections.abc import Callable

import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, ScalarLike

from .interpolant import Interpolant
from .interpolant_losses import as_sampler, make_interpolant_loss, sample_shape
from .sampling import check_field
from .training import fit

__all__ = ["train_interpolant"]


def train_interpolant(
    key: PRNGKeyArray,
    model: PyTree,
    interpolant: Interpolant,
    sample_x0,
    sample_x1,
    *,
    steps: int,
    batch_size: int,
    optimizer: optax.GradientTransformation | None = None,
    progress_bar: bool = True,
    target: str = "velocity",
    antithetic: bool = True,
    time_weight: Callable[[ScalarLike], ScalarLike] | None = None,
    t_min: float = 1e-3,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
) -> tuple[PyTree, Float[Array, " steps"]]:
    r"""Fit ``model`` (a field ``(t, x) -> R^d``, or a pair for ``"velocity+denoiser"``)
    by minimising the interpolant loss of ``target`` with optax.

    ``sample_x0``/``sample_x1`` are samplers ``(key, n) -> (n, d)`` or data arrays
    ``(N, d)``; ``sample_x0=None`` for a one-sided interpolant. See
    :func:`~probkit.generative.interpolant_losses.make_interpolant_loss` and
    :func:`~probkit.generative.training.fit` for the other arguments.

    Returns:
        ``(trained_model, losses)``.
    """
    loss_fn = make_interpolant_loss(
        interpolant, sample_x0, sample_x1, target=target, antithetic=antithetic, time_weight=time_weight, t_min=t_min
    )
    data = sample_shape("sample_x1", as_sampler("sample_x1", sample_x1))
    if target == "velocity+denoiser":
        if not (isinstance(model, (tuple, list)) and len(model) == 2):
            raise TypeError("target='velocity+denoiser' needs model = (velocity_net, denoiser_net)")
        for i, net in enumerate(model):
            check_field(f"model[{i}]", net, data, "sample_x1")
    else:
        check_field("model", model, data, "sample_x1")
    return fit(
        key,
        model,
        loss_fn,
        steps=steps,
        batch_size=batch_size,
        optimizer=optimizer,
        progress_bar=progress_bar,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
    )
