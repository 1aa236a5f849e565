"""The example payloads of Segmind's seed pages (shared/seeds), as the tests use them.

`parse_seed_page` reads a page's Python example (`payload = {...}` or, for the workflow,
`data = {...}`); `tests/jobs/data/seed_examples.json` keeps the parsed payloads so the
suite runs without shared/, and a test checks the copy against the pages when they exist.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "seed_examples.json"
SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


def parse_seed_page(text: str) -> dict[str, Any]:
    # The pages number their code lines ("35payload = {"): drop the numbers first.
    lines = [re.sub(r"^\s*\d+", "", line) for line in text.splitlines()]
    code = "\n".join(lines)
    match = re.search(r"^(?:payload|data) = (\{.*?^\})", code, re.S | re.M)
    if match is None:
        raise ValueError("no example payload on this page")
    payload = ast.literal_eval(match.group(1))
    assert isinstance(payload, dict)
    return payload


def load() -> dict[str, dict[str, Any]]:
    return json.loads(DATA.read_text())


if __name__ == "__main__":
    catalog = json.loads((SEEDS.parent / "spec" / "segmind-models.json").read_text())
    examples = {m["slug"]: parse_seed_page((SEEDS / m["seed"]).read_text()) for m in catalog}
    DATA.write_text(json.dumps(examples, indent=2) + "\n")
    print(f"wrote {len(examples)} examples to {DATA}")
