import sys
from pathlib import Path

# Test helpers (asl.py, handlers.py) are imported as plain modules from this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))
