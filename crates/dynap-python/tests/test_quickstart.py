"""The quick-start script runs top to bottom and writes what it says."""

import subprocess
import sys


def test_the_quickstart_runs(repo, tmp_path):
    script = repo / "crates" / "dynap-python" / "examples" / "quickstart.py"
    r = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                       env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "config.json").exists() and (tmp_path / "mapping.json").exists()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "rasters.png").stat().st_size > 1000
