"""Every requirement ID a test names must exist in docs/requirements.toml."""

import os
import tomllib
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).parent / "docs" / "requirements.toml"


def load_requirements():
    with open(REQUIREMENTS, "rb") as f:
        return {r["id"]: r for r in tomllib.load(f)["requirement"]}


def pytest_collection_modifyitems(config, items):
    known = load_requirements()
    unknown = set()
    for item in items:
        for mark in item.iter_markers("req"):
            if not mark.args:
                unknown.add(f"{item.nodeid}: req marker without IDs")
            unknown.update(f"{item.nodeid}: {i}" for i in mark.args if i not in known)
    if unknown and os.environ.get("TONUS_ALLOW_UNKNOWN_REQS") == "1":
        # a developer drafting tests before their requirement is written down
        print("\nwarning: unknown requirement IDs:\n  " + "\n  ".join(sorted(unknown)))
    elif unknown:
        raise pytest.UsageError("unknown requirement IDs:\n  " + "\n  ".join(sorted(unknown)))
