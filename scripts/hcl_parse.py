"""Parse every Terraform file (*.tf, *.tftest.hcl) under the given folders with python-hcl2; name failures."""

from __future__ import annotations

import sys
from pathlib import Path

import hcl2

PATTERNS = ("*.tf", "*.tftest.hcl")


def parse_errors(roots: list[Path]) -> tuple[int, list[str]]:
    """Parse every Terraform file under `roots`; return how many parsed and one message per failure."""
    files = sorted(
        f
        for root in roots
        for pattern in PATTERNS
        for f in root.rglob(pattern)
        if ".terraform" not in f.parts
    )
    errors = []
    for path in files:
        try:
            hcl2.loads(path.read_text(encoding="utf-8"))
        except Exception as exc:  # python-hcl2 raises lark errors and others; report them all alike
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            errors.append(f"{path}: does not parse as HCL: {first_line}")
    return len(files) - len(errors), errors


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path("infra/terraform")]
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        print(f"hcl_parse: no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    parsed, errors = parse_errors(roots)
    for message in errors:
        print(message, file=sys.stderr)
    if parsed + len(errors) == 0:
        print(f"hcl_parse: no Terraform file under {', '.join(map(str, roots))}", file=sys.stderr)
        return 1
    print(f"hcl_parse: {parsed} parsed, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
