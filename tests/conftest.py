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
    """The real config shrunk by the smoke profile (not a fake one), every section typed (foundation and papers)."""
    from reasonlab.profiles import compose, parse_all

    return parse_all(compose("smoke", ROOT / "conf"), "smoke")


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
        if f == "dvc.lock" or f.startswith("metrics/"):
            continue  # the committed tiny run's record: a run from nothing must write every metric itself
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


def stable_metrics(obj):
    """``obj`` without the keys that measure time (``*_s``, ``*_per_s``): what must not change between runs."""
    if isinstance(obj, dict):
        return {k: stable_metrics(v) for k, v in obj.items() if not (k.endswith("_s") or k.endswith("_per_s"))}
    if isinstance(obj, list):
        return [stable_metrics(v) for v in obj]
    return obj


def check_kill_and_resume(repo: Path, env: dict, stage: str, item: dict, marker: str, outputs: list[str]) -> None:
    """Stage ``stage`` of the reproduced ``repo``, run again from scratch and SIGKILLed as soon as a file
    matching ``marker`` (a training checkpoint) exists, then run to the end: the ``outputs`` (weights) and the
    metrics must be those of the uninterrupted run already in ``repo``, bit for bit (times aside)."""
    import json
    import shutil
    import signal
    import subprocess
    import sys
    import time

    import yaml

    argv = [sys.executable, *stage_argv(stage, yaml.safe_load((repo / "params.yaml").read_text()), **item)]
    metrics = repo / argv[argv.index("--metrics") + 1]
    before = {p: (repo / p).read_bytes() for p in outputs}
    before_metrics = stable_metrics(json.loads(metrics.read_text()))
    for p in [*outputs]:
        (repo / p).unlink()
    metrics.unlink()
    for d in repo.glob(marker.split("/checkpoint.json")[0]):
        shutil.rmtree(d)  # the finished runs' reusable weights: the stage starts from scratch
    proc = subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not any(repo.glob(marker)):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the stage ended before its first checkpoint was seen"
    assert any(repo.glob(marker)) and not metrics.exists()  # killed mid-run, its checkpoint left
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in done.stdout
    assert stable_metrics(json.loads(metrics.read_text())) == before_metrics
    for p, data in before.items():
        assert (repo / p).read_bytes() == data, p


# --------------------------------------------------------------------------- the end-to-end runs
NO_NETWORK = """
import socket

_connect = socket.socket.connect


def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
        with open(%r, "a") as f:
            f.write(f"{address}\\n")
        raise ConnectionRefusedError(f"network refused in the test: {address}")
    return _connect(self, address)


socket.socket.connect = _guarded
"""


class Repro:
    """A fresh copy of the repository on ``profile`` and its ``dvc repro``, started in the background, every
    non-loopback connection refused and recorded (a sitecustomize module that every Python process loads).
    ``before`` is a command run first in the copy (e.g. building the paper profile's stand-ins)."""

    def __init__(self, tmp_path_factory, name: str, profile: str, overrides=None, extra_env=None, before=None,
                 targets=()):
        import subprocess
        import sys

        saved = {k: os.environ.get(k) for k in (extra_env or {})}
        os.environ.update(extra_env or {})  # a profile may read the environment when it is composed
        try:
            self.repo, env = make_repo(tmp_path_factory.mktemp(name), profile, overrides)
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        guard = tmp_path_factory.mktemp(name + "_guard")
        self.attempts = guard / "attempts.txt"
        (guard / "sitecustomize.py").write_text(NO_NETWORK % str(self.attempts))
        # one thread per process: the end-to-end runs go side by side on the CI's cores
        self.env = {**env, **(extra_env or {}), "PYTHONPATH": f"{guard}{os.pathsep}{env['PYTHONPATH']}",
                    "OMP_NUM_THREADS": "1"}
        self.log = guard / "repro.log"
        cmd = " && ".join([*(before or []), " ".join([sys.executable, "-m", "dvc", "repro", *targets])])
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(["bash", "-c", cmd], cwd=self.repo, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)

    def wait(self) -> "Repro":
        self.returncode = self.proc.wait()
        self.output = self.log.read_text()
        return self


# the second smoke copy, for the determinism check, from nothing at another path: every base model trained (the
# reward model's pool samples every family), one evaluated, and one chain of each paper down to its trained models
# (oracle modes, samples, the reward model, a family's scores and students; traces, PTQ, a QAT run from GPTQ)
SMOKE_B_TARGETS = ("eval@qwen", "paradox_score@llama", "paradox_finetune@llama", "quant_qat@reasoner_s-2")
# both smoke copies leave out reasoner_m, which the smoke profile trains and evaluates but never quantizes (the
# same code path as reasoner_s, two stages less per copy)
SMOKE_TRIM = ["~models.reasoner_m"]

# the paper profile on stand-ins: one family (llama) and one reasoner, every architecture of the stand-ins
# (the oracle is a Qwen2, the reasoner a Qwen3) and every stage, in half the stages of the full profile
PAPER_TRIM = ["paradox.families=[llama]", "~models.qwen", "~models.deepseek", "~models.reasoner_m"]


@pytest.fixture(scope="session")
def pipelines(tmp_path_factory):
    """The end-to-end `dvc repro` runs of the tests, started together in the background (the first test
    that needs one starts all): the smoke profile in two clean copies, and the paper profile on stand-ins."""
    import sys

    standins = tmp_path_factory.mktemp("standins")
    env = {"REASONLAB_STANDINS": str(standins), "HF_HUB_CACHE": str(standins / "hub"), "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    build = f"{sys.executable} {ROOT / 'tests' / 'standins.py'} {standins} {ROOT / 'conf'}"
    return {"smoke_a": Repro(tmp_path_factory, "smoke_a", "smoke", SMOKE_TRIM),
            "smoke_b": Repro(tmp_path_factory, "smoke_b", "smoke", SMOKE_TRIM, targets=SMOKE_B_TARGETS),
            "paper": Repro(tmp_path_factory, "paper", "paper_standin", PAPER_TRIM, env, before=[build]),
            "standins": (standins, env)}


def _waits_for_runs(item) -> bool:
    """Whether test ``item`` needs the end-to-end runs (the ``pipelines`` fixture, directly or not)."""
    return "pipelines" in getattr(item, "fixturenames", ())


@pytest.fixture(scope="session", autouse=True)
def _start_end_to_end_runs(request):
    """Start the background runs at the beginning of the session when a selected test needs them."""
    if any(map(_waits_for_runs, request.session.items)):
        request.getfixturevalue("pipelines")


def pytest_collection_modifyitems(session, config, items):
    """The tests that wait for an end-to-end run go first: while they wait, the background runs (one thread each)
    have the CI box's 2 cores to themselves, and every other test runs after them, alone. A test run beside them
    makes torch's threads thrash (measured: the paradox stages' fixture took 697 s beside the runs, 94 s after
    them; the whole suite 20.0 min with these tests last, 16.7 min in file order). Relative order is kept."""
    items.sort(key=lambda it: not _waits_for_runs(it))  # stable: relative order kept
