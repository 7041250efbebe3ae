"""Write the API contract the code implements to docs/api/contract-v1.json (run after an intended change)."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inventory_service.routes import contract  # noqa: E402


def main() -> None:
    target = ROOT / "docs" / "api" / "contract-v1.json"
    target.write_text(json.dumps(contract(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
