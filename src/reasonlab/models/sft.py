"""Supervised fine-tuning of a causal LM on (prompt, solution) pairs with the one training loop.

The paper-scale entry point of the loop, for several processes (DDP/FSDP from accelerate's config):

    accelerate launch -m reasonlab.models.sft --model Qwen/Qwen2.5-Math-1.5B --data sft.jsonl --out runs/sft \\
        --steps 1000 --batch-size 256 --lr 5e-5

(on a CPU-only machine add ``--multi_gpu --num_processes N``: accelerate then starts N CPU processes with
gloo). ``--data`` is JSON lines with ``prompt`` and ``solution``; the loss is on the solution and the
end-of-sequence token. The main process writes ``<out>/sft.json`` (the per-step loss curve and the number
of processes) and ``<out>/model.safetensors``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..checkpoint import save_weights
from ..io import setup_threads, write_json
from ..schema import TrainParams
from .data import sft_example
from .losses import objective_loss
from .train import train
from .zoo import load_lm


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """``(prompt, solution)`` of every line of a JSON-lines file; a bad line is named."""
    out = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.append((rec["prompt"], rec["solution"]))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{i}: expected a JSON object with prompt and solution ({e})") from None
    if not out:
        raise ValueError(f"{path}: no examples")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory or hub id")
    ap.add_argument("--data", required=True, help="JSON lines with prompt and solution")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--batch-size", type=int, required=True, help="global batch (split over the processes)")
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--objective", choices=("sft", "dft"), default="sft")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-len", type=int, default=512)
    a = ap.parse_args(argv)
    setup_threads()
    model, tok = load_lm(a.model)
    examples = [sft_example(tok, p, s) for p, s in read_pairs(a.data)]
    cfg = TrainParams(steps=a.steps, batch_size=a.batch_size, lr=a.lr, warmup_ratio=0.1, max_len=a.max_len,
                      log_every=1, ckpt_every=max(1, a.steps)).resolve(len(examples))
    out = Path(a.out)
    stats = train(model, examples, cfg, pad_id=tok.pad_token_id, seed=a.seed, live_dir=out / "live",
                  loss_fn=objective_loss(a.objective), desc="sft")
    from accelerate.state import PartialState

    state = PartialState()
    if state.is_main_process:
        rows = (out / "live" / "plots" / "metrics" / "loss.tsv").read_text().splitlines()[1:]
        loss = [float(r.split("\t")[-1]) for r in rows if r.strip()]
        save_weights(model, out / "model.safetensors")
        write_json(out / "sft.json", {"processes": state.num_processes, "loss": loss, **stats})
    state.wait_for_everyone()


if __name__ == "__main__":
    main()
