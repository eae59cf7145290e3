import sys
from pathlib import Path

# The hidden checks are copied next to the candidate's code: make the tree root importable.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
