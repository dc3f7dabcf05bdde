import json

import torch
import torch.nn.functional as F

from reasonlab.models.data import pretrain_examples
from reasonlab.models.losses import bt_loss, ce_loss, dft_loss
from reasonlab.models.batching import collate
from reasonlab.models.train import batch_indices, masked_loss, train
from reasonlab.models.zoo import build_model, load_tokenizer
from reasonlab.world.build import load_split


def _setup(smoke_params, smoke_world, name="llama"):
    tok = load_tokenizer(smoke_world / "tokenizer")
    ds = load_split(smoke_world, "train")
    spec = smoke_params.model(name)
    exs, mix = pretrain_examples(ds, tok, spec.dialect, spec.other_dialect_share, 0, name)
    return tok, exs, mix, spec


def test_dialect_mixture_follows_share(smoke_params, smoke_world):
    _, exs, mix, spec = _setup(smoke_params, smoke_world)
    n = sum(mix.values())
    assert mix[spec.dialect] / n > 1 - spec.other_dialect_share - 0.05
    assert sum(v for d, v in mix.items() if d != spec.dialect) > 0


def test_loss_only_on_solution_tokens(smoke_params, smoke_world):
    tok, exs, _, _ = _setup(smoke_params, smoke_world)
    b = collate(exs[:4], tok.pad_token_id, 256)
    for i, ex in enumerate(exs[:4]):
        m = b["loss_mask"][i]
        assert int(m.sum()) == len(ex.target_ids)
        assert not m[: len(ex.prompt_ids)].any()


def test_batches_are_a_pure_function_of_seed_and_step():
    a = batch_indices(100, 8, 37, 3)
    assert (a == batch_indices(100, 8, 37, 3)).all()
    assert not (a == batch_indices(100, 8, 37, 4)).all()
    assert len(batch_indices(5, 8, 0, 0)) == 8


def test_training_lowers_loss(smoke_params, smoke_world):
    tok, exs, _, spec = _setup(smoke_params, smoke_world)
    model = build_model(spec, tok, 0)
    batch = collate(exs[:16], tok.pad_token_id, 256)
    with torch.no_grad():
        before, _ = masked_loss(model, batch, ce_loss)
    cfg = smoke_params.train_params("llama").model_copy(update={"steps": 25, "batch_size": 16, "lr": 3e-3})
    train(model, exs[:16], cfg, pad_id=tok.pad_token_id, seed=0)
    with torch.no_grad():
        after, _ = masked_loss(model, batch, ce_loss)
    assert float(after) < float(before) - 0.5


def test_resume_from_checkpoint_reaches_the_same_state(smoke_params, smoke_world, tmp_path):
    tok, exs, _, spec = _setup(smoke_params, smoke_world, "qwen")
    cfg = smoke_params.train_params("qwen").model_copy(update={"steps": 8, "batch_size": 8, "ckpt_every": 2})
    full = build_model(spec, tok, 0)
    full_stats = train(full, exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path / "a")
    part = build_model(spec, tok, 0)
    train(part, exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path / "b", max_steps=5)  # "interrupted"
    assert json.loads((tmp_path / "b" / "checkpoint.json").read_text())["step"] == 5  # written when it stopped
    assert (tmp_path / "b" / "model.safetensors").exists()  # weights in safetensors, not a pickle
    resumed = build_model(spec, tok, 0)  # a fresh process would start from scratch weights
    stats = train(resumed, exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path / "b")
    for (n, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), n  # exactly the state of the uninterrupted run
    for k in ("steps", "final_loss", "target_tokens", "tokens"):  # and the same report
        assert stats[k] == full_stats[k], k


def test_resume_after_a_kill_mid_write_rebuilds_dvclive_state(smoke_params, smoke_world, tmp_path):
    """A kill while dvclive writes its summary (CI saw an empty ``metrics.json``) or appends a curve row: the
    resumed run ends with the uninterrupted run's curves and summary."""
    tok, exs, _, spec = _setup(smoke_params, smoke_world, "qwen")
    cfg = smoke_params.train_params("qwen").model_copy(
        update={"steps": 8, "batch_size": 8, "ckpt_every": 2, "log_every": 2})
    train(build_model(spec, tok, 0), exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path / "a",
          live_dir=tmp_path / "a" / "live")
    b = tmp_path / "b"
    train(build_model(spec, tok, 0), exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=b, live_dir=b / "live",
          max_steps=4)
    (b / "live" / "metrics.json").write_text("")  # the summary truncated by the kill
    with open(b / "live" / "plots" / "metrics" / "loss.tsv", "a") as f:
        f.write("6\t0.12")  # a row logged after the checkpoint, cut in mid-write
    with open(b / "live" / "plots" / "metrics" / "lr.tsv", "a") as f:
        f.write("6\t0.001\n")  # a whole row logged after the checkpoint
    train(build_model(spec, tok, 0), exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=b, live_dir=b / "live")
    want, got = tmp_path / "a" / "live", b / "live"
    assert json.loads((got / "metrics.json").read_text()) == json.loads((want / "metrics.json").read_text())
    for name in ("loss", "lr", "grad_norm"):
        tsv = f"plots/metrics/{name}.tsv"
        assert (got / tsv).read_text() == (want / tsv).read_text(), name


def test_dft_loss_identities():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11, requires_grad=True)
    targets = torch.randint(0, 11, (2, 5))
    # probabilities of 1: weights are 1 and DFT equals CE (both ~0)
    sure = torch.full((1, 3, 4), -1e4)
    sure[..., 2] = 1e4
    t2 = torch.full((1, 3), 2)
    assert torch.allclose(dft_loss(sure, t2), ce_loss(sure, t2))
    # gradient = sg(p) * grad(CE)
    g_dft = torch.autograd.grad(dft_loss(logits, targets).sum(), logits)[0]
    ce = ce_loss(logits, targets)
    p = torch.exp(-ce).detach()
    g_ce = torch.autograd.grad((p * ce).sum(), logits)[0]
    assert torch.allclose(g_dft, g_ce, atol=1e-6)
    per_tok_grad = [torch.autograd.grad(ce_loss(logits, targets)[0, t], logits, retain_graph=True)[0] for t in range(5)]
    manual = sum(p[0, t] * per_tok_grad[t] for t in range(5))
    g_row0 = torch.autograd.grad(dft_loss(logits, targets)[0].sum(), logits)[0]
    assert torch.allclose(g_row0, manual, atol=1e-6)


def test_bradley_terry_loss_identities():
    torch.manual_seed(0)
    rc, rr = torch.randn(7, requires_grad=True), torch.randn(7)
    assert torch.allclose(bt_loss(rc, rr), F.softplus(rr - rc))  # -log sigmoid(x) = softplus(-x)
    assert torch.allclose(bt_loss(rc, rc.detach()), torch.full((7,), torch.log(torch.tensor(2.0))))
    g = torch.autograd.grad(bt_loss(rc, rr).sum(), rc)[0]
    assert torch.allclose(g, torch.sigmoid(rc - rr) - 1)  # d/dr_c -log sigma(r_c - r_r)


def test_saved_model_tokenizer_round_trips_for_every_arch(smoke_params, smoke_world, tmp_path):
    """Regression: AutoTokenizer on a qwen2 directory swapped in Qwen2's byte-level pre-tokenizer."""
    from reasonlab.models.zoo import save_model_atomic

    tok = load_tokenizer(smoke_world / "tokenizer")
    text = "<bos> ann has 3 pens . <sol> ann = 3 + 4 = 7 ; #### 7"
    for name in ("qwen", "llama", "deepseek", "reasoner_s"):
        out = tmp_path / name
        save_model_atomic(build_model(smoke_params.model(name), tok, 0), tok, out, {})
        t2 = load_tokenizer(out)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert t2(text, add_special_tokens=False)["input_ids"] == ids, name
        assert t2.decode(ids) == text, name
