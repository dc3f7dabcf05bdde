import json
from pathlib import Path

from benchmod import load


def _load():
    return load("diff_metrics")


def _run(root: Path, metrics: dict) -> Path:
    for rel, obj in metrics.items():
        f = root / "metrics" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(obj))
    return root


def test_times_are_skipped_and_values_are_not(tmp_path, capsys):
    dm = _load()
    a = _run(tmp_path / "a", {"x.json": {"acc": 0.5, "stage_wall_s": 10.0, "ptq": {"s": 3.1, "ci": [0.1, 0.2]},
                                        "nan": float("nan"), "loss_sd": 0.1}})
    b = _run(tmp_path / "b", {"x.json": {"acc": 0.5, "stage_wall_s": 99.0, "ptq": {"s": 7.0, "ci": [0.1, 0.2]},
                                        "nan": float("nan"), "loss_sd": 0.1}})
    assert dm.main([str(a), str(b)]) == 0
    _run(b, {"x.json": {"acc": 0.5, "stage_wall_s": 99.0, "ptq": {"s": 7.0, "ci": [0.1, 0.3]}, "nan": float("nan"),
                        "loss_sd": 0.2}})
    assert dm.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "/ptq/ci[1]" in out and "/loss_sd" in out and "differing values: 2" in out
    _run(a, {"only_a.json": {}})
    assert dm.main([str(a), str(b)]) == 1
