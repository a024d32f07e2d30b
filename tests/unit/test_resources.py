"""Package data (built-in experiments, image contexts) and the user's experiment directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from chaoskit import resources
from chaoskit.cli import main
from chaoskit.errors import ExperimentError, UsageError
from chaoskit.experiment import list_experiments, load
from chaoskit.resources import (
    ENV_EXPERIMENTS,
    builtin_experiments_dir,
    experiment_files,
    image_context,
    images_dir,
    user_experiment_dirs,
)

PACKAGE = Path(resources.__file__).resolve().parent


@pytest.fixture(autouse=True)
def _no_env_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_EXPERIMENTS, raising=False)


def _user_experiment(directory: Path, name: str, based_on: str = "redis-primary-kill") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    doc = yaml.safe_load((builtin_experiments_dir() / f"{based_on}.yaml").read_text())
    doc.update(name=name, purpose=f"user experiment {name}")
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_builtin_experiments_and_image_contexts_are_package_data() -> None:
    assert builtin_experiments_dir() == PACKAGE / "experiments"
    assert images_dir() == PACKAGE / "images"
    assert len(experiment_files()) >= 21 and "redis-primary-kill" in experiment_files()
    for name in ("redis", "postgres", "mongo", "nettools"):
        assert image_context(name) == PACKAGE / "images" / name
        assert (image_context(name) / "Dockerfile").is_file()


def test_pyproject_ships_every_package_data_file() -> None:
    """The globs in pyproject's package-data must cover every experiment and Dockerfile (else the wheel lacks them)."""
    import tomllib

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["chaoskit"]
    shipped = {p for g in globs for p in PACKAGE.glob(g)}
    data = {*builtin_experiments_dir().iterdir(), *(p for d in images_dir().iterdir() for p in d.iterdir())}
    assert data <= shipped, data - shipped


def test_user_directory_adds_experiments_by_argument_and_by_env(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _user_experiment(tmp_path / "a", "my-kill")
    _user_experiment(tmp_path / "b", "my-other-kill")
    monkeypatch.setenv(ENV_EXPERIMENTS, os.pathsep.join([str(tmp_path / "b"), ""]))
    files = experiment_files([tmp_path / "a"])
    assert files["my-kill"] == tmp_path / "a" / "my-kill.yaml"
    assert files["my-other-kill"] == tmp_path / "b" / "my-other-kill.yaml"
    assert "redis-primary-kill" in files
    assert load("my-kill", [tmp_path / "a"]).purpose == "user experiment my-kill"
    assert load("my-other-kill").name == "my-other-kill"  # the env alone is enough (e.g. the pytest plugin)
    assert {"my-kill", "my-other-kill", "redis-primary-kill"} <= {e.name for e in list_experiments([tmp_path / "a"])}
    assert "my-other-kill" not in {e.name for e in list_experiments(user=False)}


def test_same_directory_twice_or_the_builtin_one_is_read_once(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _user_experiment(tmp_path / "a", "my-kill")
    monkeypatch.setenv(ENV_EXPERIMENTS, str(tmp_path / "a"))
    assert user_experiment_dirs([tmp_path / "a", builtin_experiments_dir()]) == [tmp_path / "a"]
    assert "my-kill" in experiment_files([tmp_path / "a"])


def test_user_experiment_named_like_a_builtin_is_a_usage_error_naming_both_files(tmp_path: Path) -> None:
    mine = _user_experiment(tmp_path / "mine", "redis-primary-kill")
    with pytest.raises(UsageError) as info:
        experiment_files([tmp_path / "mine"])
    msg = str(info.value)
    assert info.value.exit_code == 2 and "\n" not in msg
    assert str(mine) in msg and str(builtin_experiments_dir() / "redis-primary-kill.yaml") in msg
    assert "built-in" in msg
    with pytest.raises(UsageError):
        load("redis-pause-whatever", [tmp_path / "mine"])  # any lookup by name refuses the ambiguous set


def test_two_user_directories_with_the_same_name_conflict_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _user_experiment(tmp_path / "a", "my-kill")
    second = _user_experiment(tmp_path / "b", "my-kill")
    monkeypatch.setenv(ENV_EXPERIMENTS, str(tmp_path / "b"))
    with pytest.raises(UsageError, match="defined twice") as info:
        experiment_files([tmp_path / "a"])
    assert str(first) in str(info.value) and str(second) in str(info.value)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_experiment_directory_that_is_not_one_is_a_usage_error(tmp_path: Path, kind: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nope"
    if kind == "file":
        path.write_text("")
    needle = "does not exist" if kind == "missing" else "is not a directory"
    with pytest.raises(UsageError, match=f"experiment directory {path} {needle}"):
        user_experiment_dirs([path])
    monkeypatch.setenv(ENV_EXPERIMENTS, str(path))
    with pytest.raises(UsageError, match=needle):
        experiment_files()


def test_in_a_directory_the_file_name_is_the_experiment_name(tmp_path: Path) -> None:
    path = _user_experiment(tmp_path / "a", "my-kill")
    path.rename(tmp_path / "a" / "renamed.yaml")
    with pytest.raises(ExperimentError, match=r"name: 'my-kill' must equal the file name 'renamed'"):
        load("renamed", [tmp_path / "a"])
    skipped: list[str] = []
    assert "my-kill" not in {e.name for e in list_experiments([tmp_path / "a"], skipped=skipped)}
    assert len(skipped) == 1 and "renamed.yaml" in skipped[0]
    assert load(str(tmp_path / "a" / "renamed.yaml")).name == "my-kill"  # by path, the file name is free


def test_cli_list_with_a_user_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _user_experiment(tmp_path / "a", "my-kill")
    (tmp_path / "a" / "broken.yaml").write_text("name: [unclosed\n")
    assert main(["list", "--experiments", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert "my-kill" in out and "redis-primary-kill" in out
    assert err.count("\n") == 1 and "skipped" in err and "broken.yaml" in err


@pytest.mark.parametrize("cmd", [["list"], ["run", "redis-primary-kill"], ["run", "--system", "redis"]])
def test_cli_conflicts_and_missing_directories_exit_2_with_one_line(tmp_path: Path, cmd: list[str],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _user_experiment(tmp_path / "mine", "redis-primary-kill")
    assert main([*cmd, "--experiments", str(tmp_path / "mine")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "defined twice" in err
    assert main([*cmd, "--experiments", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_cli_compose_to_a_file_names_the_build_context_relative_to_it(tmp_path: Path) -> None:
    out = tmp_path / "lab" / "postgres.yml"
    out.parent.mkdir()
    assert main(["compose", "postgres", "-o", str(out)]) == 0
    context = yaml.safe_load(out.read_text())["services"]["pg-1"]["build"]["context"]
    assert not context.startswith("/") and (out.parent / context / "Dockerfile").is_file()
