"""Runs a benchmark script inside its own virtual environment, made or updated from its
pinned requirements (a copy of what was installed is kept in the environment)."""
import os
import subprocess
import sys


def bootstrap(script, venv, requirements):
    """Re-executes script with venv's Python, creating the environment first and (re)installing
    requirements when the file differs from what was installed. Returns when already there."""
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    python = os.path.join(venv, "bin", "python")
    installed = os.path.join(venv, "requirements.installed")
    if not os.path.exists(python):
        print(f"creating {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    with open(requirements) as f:
        wanted = f.read()
    if not os.path.exists(installed) or open(installed).read() != wanted:
        print(f"installing {requirements} into {venv}", flush=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", requirements], check=True)
        with open(installed, "w") as f:
            f.write(wanted)
    os.execv(python, [python, os.path.abspath(script), *sys.argv[1:]])
