from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from zwy.sample.generate import Planted, generate_district


@pytest.fixture(scope="session")
def test_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Planted]:
    out = tmp_path_factory.mktemp("sample_test")
    return out, generate_district(out, [date(2024, 5, 1), date(2024, 5, 2)], scale="test")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Planted]:
    # 31 March is still winter for the Table 1 NH3-N limit; 1 April is not.
    out = tmp_path_factory.mktemp("sample_demo")
    return out, generate_district(out, [date(2024, 3, 31), date(2024, 4, 1)], scale="demo")


@pytest.fixture(params=["test", "demo"])
def run(request: pytest.FixtureRequest) -> tuple[Path, Planted]:
    fixture = "test_run" if request.param == "test" else "demo_run"
    result: tuple[Path, Planted] = request.getfixturevalue(fixture)
    return result
