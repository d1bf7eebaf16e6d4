"""A student's installation has none of the instructor extras: a command that needs one
says which extra to install instead of ending in a traceback."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Importing a module whose sys.modules entry is None raises ModuleNotFoundError, exactly as
# when the package is not installed.
HIDE_DASK = ("import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None; "
             "from grader.cli import main; sys.exit(main(sys.argv[1:]))")


def test_cluster_without_dask_names_the_extra():
    sample = ROOT / "assignments" / "conv_bn" / "samples" / "correct.ipynb"
    done = subprocess.run([sys.executable, "-c", HIDE_DASK, "grade", str(sample), "-a", "conv_bn",
                           "--cluster", "tcp://127.0.0.1:9"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "pip install 'grader[cluster]'" in done.stderr
    assert "Traceback" not in done.stderr
