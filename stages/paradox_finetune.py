"""DVC stage `paradox_finetune@<family>`: every student (set x objective x seed) trained and evaluated (Avg@k)."""

import argparse

from reasonlab.io import write_json
from reasonlab.paradox.pipeline import finetune_family
from reasonlab.params import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("family")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", required=True, help="the family's base model directory")
    ap.add_argument("--world", default="data/world")
    ap.add_argument("--variants", required=True, help="the family's paradox_variants output")
    ap.add_argument("--out", required=True, help="directory of students.json (per-student records)")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--plots", required=True, help="per-student training curves (dvclive)")
    ap.add_argument("--ckpt", default=".ckpt", help="resumable run state (outside DVC outputs)")
    a = ap.parse_args()
    m = finetune_family(load_params(a.params), a.family, a.model, a.world, a.variants, a.out, a.plots,
                        ckpt_root=a.ckpt)
    write_json(a.metrics, m)
    print({s: {o: round(d["avg"], 4) for o, d in objs.items()} for s, objs in m["sets"].items()}, "base", m["base"])


if __name__ == "__main__":
    main()
