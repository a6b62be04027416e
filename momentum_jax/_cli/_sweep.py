"""`momentum-jax sweep`: any loss trained over a grid of `(method, lam, h)` (`sweep`)."""

from __future__ import annotations

import momentum_jax as mj

from ._arguments import UsageError
from ._loading import load_loss
from ._output import progress_bar, show, write
from ._values import all_choices, check_output_file, check_result_file, grid, whole


def run(args) -> int:
    """Check every argument, load the loss, run the sweep, print it, save it and its plot."""
    methods = all_choices("method", args.method, mj.SWEEP_METHODS)
    lams, hs = grid(args)
    models = all_choices("model", args.model, mj.MODELS, none=True)
    steps = whole("steps", args.steps, 1)
    every = None if args.record_every is None else whole("record-every", args.record_every, 1)
    out = check_result_file(args.out) if args.out is not None else None
    plot = check_output_file("--plot", args.plot) if args.plot is not None else None
    quantity = quantity_option(args.quantity, plot, every, models, not args.no_min_loss)
    loss, u0 = load_loss(args.loss, args.loss_arg, args.x0)
    with progress_bar(args, "sweep") as bar:
        try:
            result = mj.sweep(
                loss,
                u0,
                hs=hs,
                lams=lams,
                methods=methods,
                steps=steps,
                record_every=every,
                models=models,
                min_loss=not args.no_min_loss,
                progress=bar,
            )
        except (ValueError, TypeError) as e:
            raise UsageError(str(e)) from None
    show(result, args.json)
    write("--out", out, "sweep", result.save)
    write("--plot", plot, "sweep's plot", lambda path: save_plot(result, quantity, path))
    return 0


def quantity_option(text: str | None, plot, every, models, min_loss: bool = True) -> str:
    """`--quantity`, checked before the sweep runs: only with `--plot`, and one of the
    quantities that the sweep will record (`sweep_quantities`)."""
    if text is None:
        return "final_loss"
    if plot is None:
        raise UsageError(f"--quantity {text!r} chooses what --plot draws; give --plot FILE.png")
    allowed = mj.sweep_quantities(
        curve=every is not None, sharpness=False, models=models, min_loss=min_loss
    )
    if text not in allowed:
        raise UsageError(f"--quantity got {text!r}; allowed for this sweep: {', '.join(allowed)}")
    return text


def save_plot(result, quantity: str, path) -> None:
    """The heat map of `quantity`, written atomically as a PNG."""
    fig = result.plot(quantity)
    with mj.atomic_path(path) as tmp:
        mj.save_figure(fig, tmp)
