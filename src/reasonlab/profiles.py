"""Compose a profile (tiny, smoke, paper) into a params.yaml, and validate a whole params.yaml.

DVC's Hydra integration does the same on ``dvc exp run -S profile=NAME``; this
module does it for ``dvc repro`` users and for the tests:

    python -m reasonlab.profiles smoke            # rewrite ./params.yaml
    python -m reasonlab.profiles paper --out x.yaml

A stage reads only its part of the file (:class:`~reasonlab.params.Params` for the foundation,
:class:`~reasonlab.paradox.config.ParadoxParams`, :class:`~reasonlab.quant.config.QuantParams`);
:class:`AllParams` (:func:`parse_all`, :func:`load_all`) checks every section at once, as a composed
profile is checked before it is written. No stage imports this module, so it may import every part.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from .paradox.config import ParadoxConfig, ParadoxParams
from .params import load_params, parse_params
from .quant.config import QuantConfig, QuantParams


class AllParams(ParadoxParams, QuantParams):
    """The whole params.yaml: every section typed, every cross-section check of every part (the parts'
    validators are inherited; the fields are repeated because pydantic takes an inherited field from the
    first base only, where the other part's section is still a raw mapping)."""

    paradox: ParadoxConfig
    quant: QuantConfig


def parse_all(data: dict, source: str = "params.yaml") -> AllParams:
    """Validate all of ``data`` (params.yaml's contents); a bad value raises a ``ParamsError`` naming its key."""
    return parse_params(data, source, AllParams)


def load_all(path: str | Path = "params.yaml") -> AllParams:
    """Validate the whole params file at ``path`` (see :func:`parse_all`)."""
    return load_params(path, AllParams)


def compose(profile: str, conf_dir: str | Path = "conf", overrides: list[str] | None = None) -> dict:
    from hydra import compose as hcompose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    conf_dir = Path(conf_dir).resolve()
    if not (conf_dir / "profile" / f"{profile}.yaml").exists():
        known = sorted(p.stem for p in (conf_dir / "profile").glob("*.yaml"))
        raise ValueError(f"profile {profile!r} not found in {conf_dir / 'profile'}; known: {known}")
    with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
        cfg = hcompose(config_name="config", overrides=[f"profile={profile}", *(overrides or [])])
    data = OmegaConf.to_container(cfg, resolve=True)
    parse_all(data, f"profile {profile}")  # validate every section before anything is written
    return data


def write_params(data: dict, out: str | Path) -> None:
    out = Path(out)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile", help="tiny | smoke | paper")
    ap.add_argument("--conf", default="conf")
    ap.add_argument("--out", default="params.yaml")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. eval.k=4")
    a = ap.parse_args(argv)
    write_params(compose(a.profile, a.conf, a.overrides), a.out)
    print(f"wrote {a.out} (profile {a.profile})")


if __name__ == "__main__":
    main()
