"""`momentum-jax study`: a convergence study of any loss (`convergence_study`)."""

from __future__ import annotations

import dataclasses

import momentum_jax as mj

from ._arguments import UsageError
from ._loading import load_loss
from ._output import progress_bar, show, write
from ._values import all_choices, check_result_file, grid, one_choice, one_number, whole

INITS = ("zero", "manifold")


def run(args) -> int:
    """Check every argument, load the loss, run the study, print it, save it."""
    methods = all_choices("method", args.method, mj.METHODS)
    names = all_choices("model", args.model, mj.MODELS)
    init = one_choice("init", args.init, INITS)
    options: dict[str, str | int] = {
        "velocity": one_choice("velocity", args.velocity, mj.VELOCITIES),
        "constant": one_choice("constant", args.constant, mj.CONSTANTS),
    }
    norm = one_choice("norm", args.norm, mj.NORMS)
    lams, hs = grid(args)
    T = one_number("T", args.T)
    order = options["order"] = whole("order", args.order, 0)
    fit_points = whole("fit-points", args.fit_points, 2)
    out = check_result_file(args.out) if args.out is not None else None
    models = [model(name, options) for name in names]
    loss, u0 = load_loss(args.loss, args.loss_arg, args.x0)
    solver = solver_config(args, u0)
    with progress_bar(args, "study") as bar:
        try:
            study = mj.convergence_study(
                loss,
                u0,
                hs=hs,
                lams=lams,
                methods=methods,
                models=models,
                T=T,
                init=init,
                init_order=order,  # --order: also the manifold start's order
                norm=norm,
                fit_points=fit_points,
                progress=bar,
                solver=solver,
            )
        except (ValueError, TypeError) as e:
            raise UsageError(str(e)) from None
    show(study, args.json)
    write("--out", out, "study", study.save)
    return 0


def model(name: str, options: dict):
    """The model of the alias `name` with those of `options` (`--velocity`, `--order`,
    `--constant`) that are its fields; the alias itself where they are its defaults (so that
    the study's keys stay the plain aliases)."""
    cls = mj.MODELS[name]
    fields = {f.name: f.default for f in dataclasses.fields(cls) if f.name in options}
    given = {k: options[k] for k in fields}
    if all(fields[k] == v for k, v in given.items()):
        return name
    try:
        return cls(**given)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


def solver_config(args, u0):
    """The `SolverConfig` of `--rtol`, `--atol`, `--max-steps` (the defaults of `u0`'s dtype
    for those not given)."""
    import jax

    given = {}
    for name in ("rtol", "atol"):
        text = getattr(args, name)
        if text is not None:
            given[name] = one_number(name, text)
    if args.max_steps is not None:
        given["max_steps"] = whole("max-steps", args.max_steps, 1)
    leaves = jax.tree.leaves(u0)
    dtype = leaves[0].dtype if leaves else None
    try:
        return mj.SolverConfig.for_dtype(dtype, **given) if dtype is not None else None
    except (ValueError, TypeError) as e:
        raise UsageError(f"--{str(e).split('=')[0].replace('_', '-')}: {e}") from None
