import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pushes"


def fixture(name, *, now=None):
    """A push fixture with its CreateTime set to `now` (default: the real clock)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return text.replace("{now}", str(int(now if now is not None else time.time())))
