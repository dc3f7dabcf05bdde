import pytest
import yaml

from conftest import ROOT
from reasonlab.paradox.config import ParadoxParams
from reasonlab.params import Params, ParamsError, parse_params
from reasonlab.profiles import AllParams, compose, load_all, parse_all
from reasonlab.quant.config import QuantParams


def _tiny():
    return compose("tiny", ROOT / "conf")


def test_params_yaml_is_the_composed_tiny_profile():
    assert yaml.safe_load((ROOT / "params.yaml").read_text()) == _tiny()
    load_all(ROOT / "params.yaml")


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
        parse_all(d)


def test_wrong_type_is_named():
    d = _tiny()
    d["eval"]["k"] = "sixteen"
    with pytest.raises(ParamsError, match=r"eval\.k"):
        parse_all(d)


def test_out_of_range_is_named():
    d = _tiny()
    d["models"]["llama"]["other_dialect_share"] = 1.5
    with pytest.raises(ParamsError, match=r"models\.llama\.other_dialect_share"):
        parse_all(d)


def test_per_model_train_override_is_checked():
    d = _tiny()
    d["models"]["oracle"]["train"] = {"lr": -1}
    with pytest.raises(ParamsError, match=r"models\.oracle\.train.*lr"):
        parse_all(d)
    d["models"]["oracle"]["train"] = {"stpes": 3}
    with pytest.raises(ParamsError, match=r"stpes"):
        parse_all(d)


def test_shuffle_is_a_bool_or_a_window():
    d = _tiny()
    d["world"]["shuffle"] = 2
    assert parse_all(d).world.shuffle == 2
    d["world"]["shuffle"] = 1  # a window of one place, not ``True``
    assert parse_all(d).world.shuffle == 1 and parse_all(d).world.shuffle is not True
    d["world"]["shuffle"] = 0
    with pytest.raises(ParamsError, match=r"shuffle"):
        parse_all(d)


def test_hard_tier_must_exceed_training_steps():
    d = _tiny()
    d["world"]["tiers"]["hard"] = [3, 4]
    with pytest.raises(ParamsError, match="hard"):
        parse_all(d)


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(ParamsError, match="nope.yaml"):
        load_all(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("world: [unclosed")
    with pytest.raises(ParamsError, match="bad.yaml"):
        load_all(bad)


def test_each_part_checks_its_own_section():
    """The foundation's Params leaves the papers' sections raw; each paper's class checks its own; load_all all."""
    tiny = _tiny()
    assert isinstance(parse_params(tiny), Params) and isinstance(parse_params(tiny).paradox, dict)
    P = parse_all(tiny)
    assert isinstance(P, ParadoxParams) and isinstance(P, QuantParams)
    assert P.paradox == parse_params(tiny, cls=ParadoxParams).paradox
    assert P.quant == parse_params(tiny, cls=QuantParams).quant
    bad_paradox, bad_quant = _tiny(), _tiny()
    bad_paradox["paradox"]["finetune"]["train"]["lr"] = -1
    bad_quant["quant"]["group_size"] = 48  # does not divide the reasoners' widths (a check against `models`)
    for d, cls, key in ((bad_paradox, ParadoxParams, r"paradox\.finetune\.train\.lr"),
                        (bad_quant, QuantParams, r"quant\.group_size=48.*models\.reasoner_s\.hidden")):
        parse_params(d)  # a paper's value does not stop a foundation stage
        other = QuantParams if cls is ParadoxParams else ParadoxParams
        parse_params(d, cls=other)  # nor the other paper's stages
        for c in (cls, AllParams):
            with pytest.raises(ParamsError, match=key):
                parse_params(d, cls=c)
    d = _tiny()
    d["paradox"]["families"] = ["qwen", "mistral"]
    with pytest.raises(ParamsError, match=r"paradox\.families: 'mistral' is not a models entry"):
        parse_all(d)
    d = _tiny()
    del d["quant"]
    with pytest.raises(ParamsError, match=r"quant: Field required"):
        parse_params(d)  # every section is still required, in every view
