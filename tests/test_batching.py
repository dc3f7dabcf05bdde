"""Packed batches compute what padded batches compute, with (almost) no padding."""

import pytest
import torch

from reasonlab.models.batching import ROW_FACTOR, Example, collate, pack, pack_rows
from reasonlab.models.losses import ce_loss
from reasonlab.models.train import masked_loss_sum
from reasonlab.models.zoo import build_model, load_tokenizer
from reasonlab.schema import ArchParams


def _examples(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        p = int(torch.randint(0, 6, (1,), generator=g))
        t = int(torch.randint(1, 30, (1,), generator=g))
        out.append(Example(torch.randint(5, 40, (p,), generator=g).tolist(),
                           torch.randint(5, 40, (t,), generator=g).tolist()))
    return out


def test_pack_rows_first_fit_decreasing():
    rows = pack_rows([5, 3, 2, 4, 1], 6)
    assert sorted(i for r in rows for i in r) == [0, 1, 2, 3, 4]
    assert all(sum([5, 3, 2, 4, 1][i] for i in r) <= 6 for r in rows)
    assert rows == [[0, 4], [2, 3], [1]]  # 5+1, 4+2, 3
    with pytest.raises(ValueError, match="row_len=3"):
        pack_rows([4], 3)


def test_pack_keeps_every_target_token_once():
    exs = _examples()
    b = pack(exs, 0, 256)
    padded = collate(exs, 0, 256)
    # the loss counts the same tokens: every target token but a document's first
    assert int(b["loss_mask"].sum()) == int(padded["loss_mask"][:, 1:].sum())
    assert b["n_real"] == padded["n_real"] == sum(len(e.prompt_ids) + len(e.target_ids) for e in exs)
    assert b["n_computed"] < padded["n_computed"]
    longest = padded["input_ids"].shape[1]
    assert longest <= b["input_ids"].shape[1] <= int(longest * ROW_FACTOR)
    assert pack(exs, 0, 256, row_factor=1.0)["input_ids"].shape[1] == longest
    with pytest.raises(ValueError, match="row_factor"):
        pack(exs, 0, 256, row_factor=0.5)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gpt_neox"])
def test_packed_loss_equals_padded_loss(arch, smoke_world):
    """Same summed loss and gradients: no token attends across the documents of a packed row."""
    tok = load_tokenizer(smoke_world / "tokenizer")
    spec = ArchParams(arch=arch, hidden=32, layers=2, heads=4, kv_heads=2, intermediate=64)
    model = build_model(spec, tok, 0)
    model.train()
    exs = [Example([min(t, len(tok) - 1) for t in e.prompt_ids], [min(t, len(tok) - 1) for t in e.target_ids])
           for e in _examples()]
    grads, sums = [], []
    for batch in (collate(exs, tok.pad_token_id, 256), pack(exs, tok.pad_token_id, 256)):
        model.zero_grad()
        total, n = masked_loss_sum(model, batch, ce_loss)
        total.backward()
        sums.append((float(total), n))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert sums[0][1] == sums[1][1]
    assert sums[0][0] == pytest.approx(sums[1][0], rel=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)  # float32 rounding on gradients up to ~65
