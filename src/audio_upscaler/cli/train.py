"""``audio-upscaler train``: train any model family from a YAML config, resume, export."""

from __future__ import annotations

from pathlib import Path

from .common import add_verbose


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (resumable; torchrun for DDP)",
                       description="Train a model family from a YAML config. Extra arguments like "
                                   "model.dim=128 or optim.lr=3e-4 override the config.")
    p.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE", help="config overrides")
    p.add_argument("--config", help="training config YAML (e.g. configs/train/default.yaml)")
    p.add_argument("--data", help="training data: a folder of audio, a corpus folder or a manifest")
    p.add_argument("--run-dir", help="where checkpoints and logs go (default runs/<config name>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped")
    p.add_argument("--max-steps", type=int, help="shortcut for train.max_steps=N")
    p.add_argument("--export", metavar="RUN_DIR", help="export RUN_DIR's best checkpoint (with -o) instead of training")
    p.add_argument("-o", "--output", help="model folder to write with --export")
    p.add_argument("--latest", action="store_true",
                   help="with --export: the run's latest checkpoint (EMA weights) instead of its best")
    p.add_argument("--fp32", action="store_true", help="with --export: keep fp32 weights (default fp16)")
    p.add_argument("--overwrite", action="store_true", help="with --export: replace an existing folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_verbose(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import UpscalerError

    if args.export:
        from ..train.export import export_run

        if not args.output:
            raise UpscalerError("--export needs -o/--output (the model folder to write)")
        out = export_run(args.export, args.output, half=not args.fp32, overwrite=args.overwrite, latest=args.latest)
        print(f"exported {out} (load it with --model {out} or copy it to the models folder)")
        return 0

    from ..train.config import load_config
    from ..train.loop import Trainer, resume_config

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.source={args.data}")
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    if args.resume:
        config = resume_config(args.resume, overrides)
        run_dir = Path(args.resume)
    else:
        if not args.config:
            raise UpscalerError("give --config (a training YAML) or --resume RUN_DIR")
        config = load_config(args.config, overrides)
        run_dir = Path(args.run_dir or Path("runs") / Path(args.config).stem)
        if (run_dir / "checkpoints").exists():
            raise UpscalerError(f"{run_dir} already holds a run; use --resume {run_dir} or another --run-dir")
    trainer = Trainer(config, run_dir, resume=bool(args.resume), progress=not args.quiet)
    if args.resume and trainer.step >= config.train.max_steps:
        trainer.close()
        raise UpscalerError(f"{run_dir} already ran to step {trainer.step} (train.max_steps {config.train.max_steps}); "
                            f"give --max-steps above {trainer.step} to train on")
    metrics = trainer.fit()
    trainer.close()
    if trainer.rank == 0:
        best = f"best validation LSD {trainer.best_lsd:.3f}" if trainer.best_lsd < float("inf") else "no validation yet"
        print(f"stopped at step {trainer.step}; {best}; run folder {run_dir}")
        if metrics:
            print(f"last validation: LSD {metrics['lsd']:.3f} ({metrics['lsd_ratio']:.2f}x the input)")
    return 0
