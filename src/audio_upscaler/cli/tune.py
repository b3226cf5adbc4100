"""``audio-upscaler tune``: hyper-parameter search (Optuna) over a training config."""

from __future__ import annotations

from .common import add_verbose


def add_parser(sub) -> None:
    p = sub.add_parser("tune", help="search hyper-parameters with Optuna (resumable from its database)",
                       description="Optuna study over learning rate, batch size and the model family's "
                                   "own knobs; objective: validation LSD after a short training budget.")
    p.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE", help="config overrides")
    p.add_argument("--config", required=True, help="training config YAML")
    p.add_argument("--data", help="training data folder, corpus or manifest")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should hold (default 20)")
    p.add_argument("--storage", default="sqlite:///tune.db", help="Optuna storage URL (default sqlite:///tune.db)")
    p.add_argument("--study-name", default="audio-upscaler")
    p.add_argument("--steps", type=int, default=300, help="training steps per trial (default 300)")
    p.add_argument("--reports", type=int, default=3, help="validations per trial, reported for pruning")
    p.add_argument("--parallel", type=int, help="trials at once (default: 2 on a GPU above 8 GB, else 1)")
    p.add_argument("-o", "--out", default="runs/tune", help="folder for trial runs and best.yaml")
    add_verbose(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import UpscalerError
    from ..train.config import load_config
    from ..train.tune import tune

    if min(args.trials, args.steps, args.reports, 1 if args.parallel is None else args.parallel) < 1:
        raise UpscalerError("--trials, --steps, --reports and --parallel must be at least 1")
    overrides = list(args.overrides) + ([f"data.source={args.data}"] if args.data else [])
    tune(load_config(args.config, overrides), args.trials, args.storage, args.out, args.study_name,
         budget_steps=args.steps, reports=args.reports, parallel=args.parallel)
    return 0
