import pytest
import yaml

from conftest import ROOT
from reasonlab.params import ParamsError, load_params, parse_params
from reasonlab.profiles import compose


def _tiny():
    return compose("tiny", ROOT / "conf")


def test_params_yaml_is_the_composed_tiny_profile():
    assert yaml.safe_load((ROOT / "params.yaml").read_text()) == _tiny()
    load_params(ROOT / "params.yaml")


def test_profiles_change_tracked_values():
    tiny, smoke = _tiny(), compose("smoke", ROOT / "conf")
    assert smoke["profile_name"] == "smoke"
    assert smoke["world"]["train_size"] < tiny["world"]["train_size"]
    assert smoke["models"]["qwen"]["hidden"] < tiny["models"]["qwen"]["hidden"]


def test_paper_profile_names_hub_models():
    paper = compose("paper", ROOT / "conf")
    assert paper["models"]["qwen"]["hub_id"].startswith("Qwen/")
    assert paper["world"]["hub"]


def test_unknown_key_is_named():
    d = _tiny()
    d["world"]["trian_size"] = 5
    with pytest.raises(ParamsError, match=r"world\.trian_size"):
        parse_params(d)


def test_wrong_type_is_named():
    d = _tiny()
    d["eval"]["k"] = "sixteen"
    with pytest.raises(ParamsError, match=r"eval\.k"):
        parse_params(d)


def test_out_of_range_is_named():
    d = _tiny()
    d["models"]["llama"]["other_dialect_share"] = 1.5
    with pytest.raises(ParamsError, match=r"models\.llama\.other_dialect_share"):
        parse_params(d)


def test_per_model_train_override_is_checked():
    d = _tiny()
    d["models"]["oracle"]["train"] = {"lr": -1}
    with pytest.raises(ParamsError, match=r"models\.oracle\.train.*lr"):
        parse_params(d)
    d["models"]["oracle"]["train"] = {"stpes": 3}
    with pytest.raises(ParamsError, match=r"stpes"):
        parse_params(d)


def test_hard_tier_must_exceed_training_steps():
    d = _tiny()
    d["world"]["tiers"]["hard"] = [3, 4]
    with pytest.raises(ParamsError, match="hard"):
        parse_params(d)


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(ParamsError, match="nope.yaml"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("world: [unclosed")
    with pytest.raises(ParamsError, match="bad.yaml"):
        load_params(bad)
