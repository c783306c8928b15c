"""Fixtures of the infra tests: each Terraform folder parsed once per session; the `infra` marker."""

from __future__ import annotations

import pytest
from hcl_config import MODULES, TERRAFORM, Config, load


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "infra: runs scripts/infra_check.sh (checkov in .tools/checkov; the first run installs it)"
    )


@pytest.fixture(scope="session")
def modules() -> dict[str, Config]:
    return {name: load(TERRAFORM / "modules" / name) for name in MODULES}


@pytest.fixture(scope="session")
def example() -> Config:
    return load(TERRAFORM / "environments" / "example")


@pytest.fixture(scope="session")
def every_config(modules: dict[str, Config], example: Config) -> list[Config]:
    return [*modules.values(), example]
