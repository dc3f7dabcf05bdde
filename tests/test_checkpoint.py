"""Checkpoints: safetensors weights, a corrupt file named, runs keyed by params and code, reuse of finished runs."""

import json

import pytest
import torch

from reasonlab import checkpoint as ck
from reasonlab.models.train import train
from reasonlab.models.zoo import build_model, load_tokenizer
from reasonlab.models.data import pretrain_examples
from reasonlab.world.build import load_split


@pytest.fixture()
def setup(smoke_params, smoke_world):
    tok = load_tokenizer(smoke_world / "tokenizer")
    spec = smoke_params.model("qwen")
    exs, _ = pretrain_examples(load_split(smoke_world, "train"), tok, spec.dialect, 0.0, 0, "qwen")
    cfg = smoke_params.train_params("qwen").model_copy(update={"steps": 4, "batch_size": 4, "ckpt_every": 2})
    return tok, spec, exs[:32], cfg


def test_a_corrupt_checkpoint_stops_naming_the_file(setup, tmp_path):
    tok, spec, exs, cfg = setup
    model = build_model(spec, tok, 0)
    train(model, exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path, max_steps=2)
    (tmp_path / ck.TRAINER).write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=str(tmp_path / ck.TRAINER)):
        train(build_model(spec, tok, 0), exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path)
    (tmp_path / ck.TRAINER).unlink()
    train(model, exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path / "b", max_steps=2)
    (tmp_path / "b" / ck.WEIGHTS).write_bytes(b"\x00" * 64)
    with pytest.raises(RuntimeError, match="model.safetensors"):
        train(build_model(spec, tok, 0), exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path / "b")


def test_trainer_state_is_loaded_without_pickle(setup, tmp_path, monkeypatch):
    tok, spec, exs, cfg = setup
    model = build_model(spec, tok, 0)
    train(model, exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path, max_steps=2)
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real(*a, **k))
    train(build_model(spec, tok, 0), exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=tmp_path)
    assert calls and all(k.get("weights_only") is True for k in calls)


def test_runs_are_keyed_by_spec_and_code_and_reused_when_finished(setup, tmp_path, monkeypatch, capsys):
    tok, spec, exs, cfg = setup
    a = ck.Run("r", {"lr": 1}, tmp_path)
    assert ck.Run("r", {"lr": 1}, tmp_path).dir == a.dir and ck.Run("r", {"lr": 2}, tmp_path).dir != a.dir
    ck.code_digest.cache_clear()
    monkeypatch.setattr(ck, "code_digest", lambda: "other-code")  # the same params under other code
    assert ck.Run("r", {"lr": 1}, tmp_path).dir != a.dir
    monkeypatch.undo()
    model = build_model(spec, tok, 0)
    stats = a.train(model, lambda d: train(model, exs, cfg, pad_id=tok.pad_token_id, seed=0, ckpt_dir=d))
    assert a.finished and not (a.dir / ck.STATE).exists()  # only the final weights are kept
    again = build_model(spec, tok, 1)
    assert a.train(again, lambda d: pytest.fail("retrained a finished run")) == json.loads(json.dumps(stats))
    assert "finished earlier" in capsys.readouterr().out
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), again.state_dict().values()))
    n = []
    assert a.cached("eval", {"k": 1}, lambda: n.append(1) or {"acc": 0.5}) == {"acc": 0.5}
    assert a.cached("eval", {"k": 1}, lambda: n.append(1) or {"acc": 0.0}) == {"acc": 0.5} and n == [1]


def test_digest_follows_content_not_meta(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"abc")
    (tmp_path / "m" / "meta.json").write_text("{}")
    d = ck.digest(tmp_path / "m")
    (tmp_path / "m" / "meta.json").write_text('{"code_version": "x"}')
    assert ck.digest(tmp_path / "m") == d
    (tmp_path / "m" / "w.bin").write_bytes(b"abd")
    assert ck.digest(tmp_path / "m") != d
