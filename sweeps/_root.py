"""Put this checkout first on sys.path, so `python sweeps/<name>.py` imports its own packages."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[0] != ROOT:
    sys.path.insert(0, ROOT)
