"""Set up and run skcnn's demo and tests with nothing but Python 3.10+ and pip.

    python3 dev.py demo   # trains a CNN on the digits, prints accuracy, writes a PNG
    python3 dev.py test   # lints with ruff, then runs the test suite

The first run creates a virtual environment in ``.venv`` and installs skcnn
with its test dependencies into it (a few minutes: PyTorch is large); later
runs reuse it, reinstalling only when ``pyproject.toml`` changes.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".skcnn-installed"


def ensure_env():
    """Create ``.venv`` and install skcnn[test] unless it is up to date."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing skcnn and its test dependencies (first run only) ...",
          flush=True)
    run([PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([PYTHON, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"])
    STAMP.write_text(wanted)


def run(cmd):
    """Run ``cmd`` in the repository root; exit with its status on failure."""
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT)
    if code:
        sys.exit(code)


def main(argv):
    if len(argv) < 1 or argv[0] not in ("demo", "test"):
        sys.exit(__doc__)
    ensure_env()
    if argv[0] == "demo":
        run([PYTHON, "examples/plot_digits_classification.py", *argv[1:]])
    else:
        # lint first: a failing lint fails the test command (and CI)
        run([PYTHON, "-m", "ruff", "check", "skcnn", "tests", "benchmarks",
             "examples", "docs", "dev.py"])
        run([PYTHON, "-m", "pytest", "-n", "2", "-q", *argv[1:]])


if __name__ == "__main__":
    main(sys.argv[1:])
