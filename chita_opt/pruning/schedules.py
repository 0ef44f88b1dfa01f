"""Sparsity schedules for multi-stage (CHITA++) and gradual pruning."""

from __future__ import annotations

SCHEDULES = ("poly", "linear", "exponential", "constant")


def sparsity_schedule(
    target: float, stages: int, schedule: str = "poly", start: float = 0.1
) -> list[float]:
    """The sparsity to reach at each of ``stages`` stages, ending exactly at ``target``.

    With ``T = stages`` and ``t = 0 .. T-1``:

    - ``poly`` (cubic, as in the paper): ``s_t = s + (s_0 - s) (1 - t/(T-1))^3``; large
      steps early while many weights are near zero, small steps near the target.
    - ``linear``: ``s_t = s_0 + t (s - s_0) / (T-1)``.
    - ``exponential``: ``s_t = s_0 + (s - s_0) (1 - 2^-t) / (1 - 2^-(T-1))``; halves the
      remaining distance each stage.
    - ``constant``: ``s_t = s``: re-linearise the loss T times at the target.

    One stage gives ``[target]``. ``start`` (``s_0``) is clipped to at most ``target``.
    """
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise ValueError(f"stages must be a positive integer; got {stages!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}; got {schedule!r}")
    if not 0.0 <= target < 1.0:
        raise ValueError(f"sparsity must lie in [0, 1); got {target!r}")
    if not 0.0 <= start < 1.0:
        raise ValueError(f"start_sparsity must lie in [0, 1); got {start!r}")
    if stages == 1 or schedule == "constant":
        return [float(target)] * stages
    s0, s, last = min(start, target), target, stages - 1
    if schedule == "poly":
        values = [s + (s0 - s) * (1 - t / last) ** 3 for t in range(stages)]
    elif schedule == "linear":
        values = [s0 + t * (s - s0) / last for t in range(stages)]
    else:
        values = [s0 + (s - s0) * (1 - 2.0**-t) / (1 - 2.0**-last) for t in range(stages)]
    values[-1] = float(target)  # exactly, whatever the rounding
    return values
