"""webapp/settings.py as a fresh process sees it, and the README's list of settings."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

PRINT_SETTINGS = (
    "import webapp.settings as s; "
    "print(s.APP_ENV, s.PRODUCTION, str(s.SECRET_KEY), s.DATA_DIR, sep='\\n')"
)
GOOD_KEY = "k" * 32
OWN_SETTINGS = ("SECRET_KEY", "APP_ENV", "DATA_DIR", "DYNO", "TRUSTED_PROXY_HOPS")


def run_settings(
    tmp_path: Path, *, code: str = PRINT_SETTINGS, **env: str
) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter importing webapp.settings with exactly these settings."""
    base = {k: v for k, v in os.environ.items() if k not in OWN_SETTINGS}
    base.pop("MONGODB_URI", None)
    base["DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(autouse=True)
def _no_dotenv() -> None:
    if (ROOT / ".env").exists():
        pytest.skip("a .env file in the project folder would override these settings")


@pytest.mark.parametrize(
    "env",
    [
        {"APP_ENV": "production"},
        {"APP_ENV": "production", "SECRET_KEY": ""},
        {"APP_ENV": "production", "SECRET_KEY": "k" * 31},
        {"APP_ENV": "production", "SECRET_KEY": "short"},
    ],
    ids=["unset", "empty", "31 characters", "short"],
)
def test_production_refuses_a_missing_or_short_secret(tmp_path: Path, env: dict[str, str]) -> None:
    result = run_settings(tmp_path, **env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one clear line, no traceback
    assert "SECRET_KEY" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "data" / "secret_key").exists()  # no key made up behind its back


@pytest.mark.parametrize("key", [GOOD_KEY, "s3cr3t-" * 10])
def test_production_accepts_a_good_secret(tmp_path: Path, key: str) -> None:
    result = run_settings(tmp_path, APP_ENV="production", SECRET_KEY=key)
    assert result.returncode == 0, result.stderr
    app_env, production, secret, _ = result.stdout.splitlines()
    assert (app_env, production, secret) == ("production", "True", key)
    assert not (tmp_path / "data" / "secret_key").exists()


def test_development_makes_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert not data_dir.exists()
    first = run_settings(tmp_path)
    assert first.returncode == 0, first.stderr
    app_env, production, secret, shown_dir = first.stdout.splitlines()
    assert (app_env, production) == ("development", "False")
    assert Path(shown_dir) == data_dir
    assert len(secret) >= 32

    key_file = data_dir / "secret_key"
    assert key_file.read_text().strip() == secret
    assert stat.S_IMODE(key_file.stat().st_mode) & 0o077 == 0  # readable by its owner only

    second = run_settings(tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[2] == secret

    elsewhere = run_settings(tmp_path, DATA_DIR=str(tmp_path / "other"))
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert elsewhere.stdout.splitlines()[2] != secret  # random, not a fixed default


def test_development_uses_a_given_secret_and_writes_none(tmp_path: Path) -> None:
    result = run_settings(tmp_path, SECRET_KEY="short-is-fine-in-development")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2] == "short-is-fine-in-development"
    assert not (tmp_path / "data" / "secret_key").exists()


@pytest.mark.parametrize(
    ("env", "hops"),
    [
        ({}, "0"),
        ({"DYNO": "web.1"}, "1"),
        ({"DYNO": "web.1", "TRUSTED_PROXY_HOPS": "0"}, "0"),
        ({"TRUSTED_PROXY_HOPS": "2"}, "2"),
    ],
    ids=["nothing in front", "heroku", "heroku, told 0", "told 2"],
)
def test_forwarded_headers_are_trusted_only_behind_a_known_router(
    tmp_path: Path, env: dict[str, str], hops: str
) -> None:
    code = "import webapp.settings as s; print(s.TRUSTED_PROXY_HOPS)"
    result = run_settings(tmp_path, code=code, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == hops


def _setting_names() -> set[str]:
    tree = ast.parse((ROOT / "webapp" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "config"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def test_every_setting_is_documented_in_the_readme() -> None:
    names = _setting_names()
    assert {"SECRET_KEY", "MONGODB_URI", "APP_ENV"} <= names  # the parser finds them
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert missing == [], f"settings missing from README.md: {missing}"
