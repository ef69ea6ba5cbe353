"""Where the real AFLW2000 sample is: $AFLW2000_DEV, else ../shared/datasets/AFLW2000-dev beside
the repository. Tests that need it are skipped, with this path in the reason, when it is absent."""
import os
from pathlib import Path

import pytest

REAL_AFLW2000 = Path(os.environ.get("AFLW2000_DEV") or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "AFLW2000-dev")
needs_real_aflw2000 = pytest.mark.skipif(
    not REAL_AFLW2000.is_dir(), reason=f"real AFLW2000 sample not found at {REAL_AFLW2000} (set AFLW2000_DEV to its folder)")
