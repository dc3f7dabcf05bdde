"""DVC's view of the code is exact: every stage depends on every package module it imports, and on no other.

The import closure of each stage script (and, for a report, of its notebook) is computed from the
source; a module that no dependency of the stage covers (the file itself or a folder holding it) is
a module whose change `dvc status` would not see, and a code dependency outside the closure is a
change that re-runs the stage for nothing. In particular the foundation imports no paper's code and
neither paper imports the other's, so a change to one paper re-runs only that paper's stages.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from dvc_closure import import_closure

SRC = ROOT / "src"


def _dvc() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def _resolve_paths(text: str, paths: dict) -> str:
    return re.sub(r"\$\{paths\.(\w+)\}", lambda m: str(paths[m.group(1)]), text)


def _stages():
    d = _dvc()
    paths = {k: v for var in d.get("vars", []) if isinstance(var, dict) for k, v in var.get("paths", {}).items()}
    for name, st in d["stages"].items():
        body = st.get("do", st)
        cmd = _resolve_paths(body["cmd"], paths)
        deps = [_resolve_paths(str(x), paths) for x in body.get("deps", [])]
        yield name, cmd, deps


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name, cmd, deps", list(_stages()), ids=[s[0] for s in _stages()])
def test_stage_depends_on_every_module_it_imports(name, cmd, deps):
    scripts = [ROOT / s for s in re.findall(r"python (stages/\w+\.py)", cmd)]
    assert scripts and all(s.exists() for s in scripts), f"{name}: no stage script in {cmd!r}"
    notebooks = [ROOT / d for d in deps if d.startswith("notebooks/") and d.endswith(".py")]
    missing = set()
    for f in scripts + notebooks:
        assert _covered(f, deps), f"{name}: does not depend on {f.relative_to(ROOT)}"
        missing |= {m for m in import_closure(f, SRC) if not _covered(m, deps)}
    assert not missing, f"{name} misses deps: {sorted(str(m.relative_to(ROOT)) for m in missing)}"


def _closure(cmd: str, deps: list[str]) -> set[Path]:
    files = [ROOT / s for s in re.findall(r"python (stages/\w+\.py)", cmd)]
    files += [ROOT / d for d in deps if d.startswith("notebooks/") and d.endswith(".py")]
    return set().union(*(import_closure(f, SRC) for f in files))


@pytest.mark.parametrize("name, cmd, deps", list(_stages()), ids=[s[0] for s in _stages()])
def test_stage_depends_on_no_code_it_does_not_import(name, cmd, deps):
    """A package file or folder in ``deps`` holds a module of the stage's import closure: no spurious re-runs."""
    closure = {m.relative_to(ROOT).as_posix() for m in _closure(cmd, deps)}
    extra = [d for d in deps if d.startswith("src/")
             and not any(m == d or m.startswith(d.rstrip("/") + "/") for m in closure)]
    assert not extra, f"{name} depends on code it does not import: {extra}"


FOUNDATION = {"world", "pretrain", "eval", "report_base_models"}
PARTS = {"paradox": "src/reasonlab/paradox", "quant": "src/reasonlab/quant"}


REPORT_PARTS = {"report_paradox": "paradox", "report_quant": "quant", "report_calibration": "quant", "report_two_bit": "quant",
                "adaptation_cost": "paradox", "report_adaptation": "paradox"}


def _part(name: str) -> str | None:
    """The paper a stage belongs to (``paradox_*``, ``report_paradox``, ...), or None for the foundation / index."""
    return next((p for p in PARTS if name.startswith(f"{p}_")), REPORT_PARTS.get(name))


@pytest.mark.parametrize("name, cmd, deps", list(_stages()), ids=[s[0] for s in _stages()])
def test_no_stage_depends_on_another_parts_code(name, cmd, deps):
    """The foundation stages depend on no paper's code, the quant stages on no paradox code and the paradox
    stages on no quant code (neither in ``deps`` nor in the import closure): a change to one paper's config or
    code re-runs only that paper's stages. What both papers use lives below both (e.g. reasonlab.rejection)."""
    part = _part(name)
    # report_index and verdicts read both papers' reports (their outputs), never their code
    assert part is not None or name in FOUNDATION | {"report_index", "verdicts"}, f"{name}: which part is it?"
    foreign = [p for other, p in PARTS.items() if other != part]
    code = deps + [m.relative_to(ROOT).as_posix() for m in _closure(cmd, deps)]
    bad = sorted({d for d in code for p in foreign if d == p or d.startswith(p + "/")})
    assert not bad, f"{name} ({part or 'foundation'}) depends on another part's code: {bad}"


def test_every_foundation_stage_is_checked_for_paper_code():
    """The part test above is not vacuous: the foundation stages exist under these names, and each paper has stages."""
    names = {n for n, _, _ in _stages()}
    assert FOUNDATION <= names
    for part in PARTS:
        assert {n for n in names if _part(n) == part} >= {f"report_{part}"} and \
            any(n.startswith(f"{part}_") for n in names)


def test_closure_sees_transitive_and_relative_imports(tmp_path):
    """The closure is not vacuous: the QAT stage reaches the fake quantizer through two relative imports."""
    closure = {m.relative_to(SRC).as_posix() for m in import_closure(ROOT / "stages/quant_qat.py", SRC)}
    assert {"reasonlab/quant/drivers/qat.py", "reasonlab/quant/qat.py", "reasonlab/quant/fakequant.py",
            "reasonlab/quant/qparams.py", "reasonlab/world/verifier.py", "reasonlab/models/losses.py"} <= closure
    # a stage that misses a module is caught
    deps = [d for _, c, d in _stages() if "quant_qat.py" in c][0]
    assert not _covered(SRC / "reasonlab/quant/fakequant.py", [d for d in deps if "fakequant" not in d])


def test_scripts_take_every_path_from_dvc_yaml():
    """No stage script has a default for an argument: every path reaches it from dvc.yaml."""
    for script in sorted((ROOT / "stages").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                for kw in node.keywords:
                    if kw.arg == "default":
                        assert isinstance(kw.value, ast.List) and not kw.value.elts, \
                            f"{script.name}: {ast.unparse(node)} has a default"


def test_every_path_is_written_once():
    """The shared paths are dvc.yaml vars; no stage command spells them out again."""
    text = (ROOT / "dvc.yaml").read_text()
    body = text[text.index("stages:"):]
    for literal in ("data/world", ".ckpt", "params.yaml"):
        assert not re.search(rf"(?<![\w/]){re.escape(literal)}(?![\w/])", body), literal
    assert "plots" not in _dvc() or not re.search(r"-s\d", str(_dvc()["plots"])), "run names in top-level plots"


def _reads(value, path: str, seen: set):
    """``value`` (the params object or a part of it) wrapped so that reading it records its key path in ``seen``."""

    def child(key, v):
        sub = f"{path}.{key}" if path else str(key)
        if isinstance(v, (dict, list)) or hasattr(v, "model_dump"):
            return _reads(v, sub, seen)
        seen.add(sub)
        return v

    if isinstance(value, dict):
        class D(dict):
            def __getitem__(self, key):
                return child(key, dict.__getitem__(self, key))

            def __iter__(self):
                seen.add(path)
                return dict.__iter__(self)
        return D(value)
    if isinstance(value, list):
        class L(list):
            def __iter__(self):
                seen.add(path)
                return list.__iter__(self)
        return L(value)

    class O:
        def __getattr__(self, key):
            return child(key, getattr(value, key))
    return O()


def test_reports_declare_the_params_they_read():
    """A report's notebook parameters come from params.yaml (``stages/report.py``: ``NOTEBOOK_PARAMS``): each key
    they read must be a declared param of its stage (or under one), or a change to it would not re-render the report."""
    import importlib.util

    from reasonlab.params import parse_params
    from reasonlab.profiles import compose

    spec = importlib.util.spec_from_file_location("report_stage", ROOT / "stages" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    P = parse_params(compose("tiny", ROOT / "conf"))
    stages = {n: st for n, st in _dvc()["stages"].items() if st.get("cmd", "").startswith("python stages/report.py")}
    checked = 0
    for name, st in stages.items():
        report = st["cmd"].split()[2]
        if report not in mod.NOTEBOOK_PARAMS:
            continue
        seen: set = set()
        mod.NOTEBOOK_PARAMS[report](_reads(P, "", seen))
        declared = [str(p) for p in st.get("params", [])]
        missing = [k for k in seen if not any(k == d or k.startswith(d + ".") for d in declared)]
        assert not missing, f"{name} reads {missing} from params.yaml but declares only {declared}"
        checked += 1
    assert checked == len(mod.NOTEBOOK_PARAMS)
