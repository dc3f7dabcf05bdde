"""What every stage script shares: its argument parser and how it finishes."""

from __future__ import annotations

import argparse
import sys
import time

from .io import write_json
from .params import Params, load_params


def stage_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser for a stage script; every path is a required argument, given by ``dvc.yaml``."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--params", required=True, help="the params file (params.yaml)")
    return ap


def params(args: argparse.Namespace, cls: type[Params] = Params) -> Params:
    """The stage's params file as ``cls``: :class:`Params` (the foundation) or a paper's subclass of it."""
    return load_params(args.params, cls)


def stage_wall_s() -> float:
    """Seconds since this process started (imports included): what the stage cost, as `dvc repro` sees it."""
    import psutil

    return time.time() - psutil.Process().create_time()


def finish(metrics_path: str, metrics: dict, summary=None) -> None:
    """Write the stage's metrics (atomically) with its ``stage_wall_s``, and print a one-line summary and the
    numerics the stage ran with (:mod:`reasonlab.numerics`) on stderr."""
    from .numerics import describe

    metrics = {**metrics, "stage_wall_s": round(stage_wall_s(), 1)}
    write_json(metrics_path, metrics)
    print(summary if summary is not None else metrics)
    print(describe(), file=sys.stderr)
