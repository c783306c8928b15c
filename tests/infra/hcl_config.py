"""Terraform folders of infra/terraform parsed with python-hcl2 into plain dicts, for the infra tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from support import REPO

TERRAFORM = REPO / "infra" / "terraform"
MODULES = ("lake", "events", "transform_lambda", "warehouse", "monitoring")
OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def parse(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=OPTIONS)


@dataclass
class Config:
    """The blocks of one Terraform folder, all files merged: resources and data by type, then name."""

    path: Path
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        assert name in self.resources.get(kind, {}), f"{self.path}: no resource {kind}.{name}"
        return self.resources[kind][name]

    def statements(self, document: str) -> list[dict[str, Any]]:
        """The statements of `data "aws_iam_policy_document" <document>`."""
        assert document in self.data.get("aws_iam_policy_document", {}), f"{self.path}: no {document} doc"
        return list(self.data["aws_iam_policy_document"][document]["statement"])


def load(path: Path) -> Config:
    config = Config(path)
    for file in sorted(path.glob("*.tf")):
        tree = parse(file)
        for kind, target in (("resource", config.resources), ("data", config.data)):
            for block in tree.get(kind, []):
                for type_, named in block.items():
                    target.setdefault(type_, {}).update(named)
        for kind, target in (
            ("variable", config.variables),
            ("output", config.outputs),
            ("module", config.modules),
            ("provider", config.providers),
        ):
            for block in tree.get(kind, []):
                target.update(block)
        for block in tree.get("locals", []):
            config.locals.update(block)
        config.terraform.extend(tree.get("terraform", []))
    return config
