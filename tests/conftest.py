import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_params():
    """The real config shrunk by the smoke profile (not a fake one)."""
    from reasonlab.params import parse_params
    from reasonlab.profiles import compose

    return parse_params(compose("smoke", ROOT / "conf"), "smoke")


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory, smoke_params):
    from reasonlab.world.build import make_world

    out = tmp_path_factory.mktemp("world")
    make_world(smoke_params.world, smoke_params.seed, out)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: 2 shared cores, and OpenMP with 2 threads stalls badly under contention."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def stage_argv(name: str, params: dict, **item) -> list[str]:
    """The command line of stage ``name`` as dvc.yaml writes it: ``${paths.*}``, ``${item}`` / ``${key}`` /
    ``${item.<field>}`` (given as keyword arguments) and params (``${paradox.oracle}``) substituted."""
    import re
    import shlex

    import yaml

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    values = {f"paths.{k}": v for var in dvc.get("vars", []) for k, v in var.get("paths", {}).items()}
    values.update({("item" if k in ("item", "key") else f"item.{k}"): v for k, v in item.items()})
    values["key"] = item.get("key", item.get("item"))

    def lookup(m):
        name_ = m.group(1)
        if name_ in values:
            return str(values[name_])
        node = params
        for part in name_.split("."):
            node = node[part]
        return str(node)

    st = dvc["stages"][name]
    cmd = re.sub(r"\$\{([\w.]+)\}", lookup, st.get("do", st)["cmd"])
    argv = shlex.split(cmd)
    assert argv[0] == "python", cmd
    return argv[1:]


def run_stage(name: str, params: dict, **item) -> None:
    """Run stage ``name``'s script in this process (cwd: the repository copy), exactly as dvc.yaml calls it."""
    import runpy
    import sys

    argv = stage_argv(name, params, **item)
    old = sys.argv
    sys.argv = argv
    try:
        runpy.run_path(argv[0], run_name="__main__")
    finally:
        sys.argv = old


def repo_files() -> list[str]:
    """The repository's files as a fresh clone would have them (tracked and untracked-but-not-ignored)."""
    import subprocess

    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    return [f for f in out if f and (ROOT / f).is_file()]


def make_repo(dest: Path, profile: str, overrides: list[str] | None = None) -> tuple[Path, dict]:
    """A copy of the repository in ``dest`` (its own git repository) with ``params.yaml`` composed from
    ``profile``; returns it and the environment to run ``dvc`` in it (this interpreter, its source)."""
    import shutil
    import subprocess
    import sys

    from reasonlab.profiles import compose, write_params

    for f in repo_files():
        dst = dest / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dst)
    write_params(compose(profile, ROOT / "conf", overrides), dest / "params.yaml")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1", "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(dest / "src")}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", profile]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    return dest, env


def kill_when(argv: list[str], cwd: Path, env: dict, marker: str, timeout: float = 600) -> int:
    """Run ``argv`` in ``cwd`` and SIGKILL it as soon as a file matching the glob ``marker`` exists there
    (e.g. a training checkpoint); returns the exit code (``-9`` when it was killed)."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    while proc.poll() is None and time.perf_counter() - t0 < timeout:
        if any(Path(cwd).glob(marker)):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    return proc.wait()


def stable_metrics(obj):
    """``obj`` without the keys that measure time (``*_s``, ``*_per_s``): what must not change between runs."""
    if isinstance(obj, dict):
        return {k: stable_metrics(v) for k, v in obj.items() if not (k.endswith("_s") or k.endswith("_per_s"))}
    if isinstance(obj, list):
        return [stable_metrics(v) for v in obj]
    return obj
