"""Start-up stays cheap: the command line and the package load no engine or data library until a command needs one.

Each check runs in a fresh interpreter and reads ``sys.modules`` there (benchmarks/startup.py times it).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "sklearn", "scipy", "pandas", "pydantic", "numpy", "matplotlib", "fastapi")

PROBE = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""

RUN_CLI = """
sys.argv = ["confidently", *{argv!r}]
from confidently.cli import main
try:
    main()
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
"""


def loaded_after(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE.format(code=code, heavy=HEAVY)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stderr.splitlines()[-1])


@pytest.mark.parametrize("code", ["import confidently", "import confidently.cli", "import confidently.finetune",
                                  "from confidently import ConfigError, UnfinishedRunError"])
def test_importing_loads_no_heavy_library(code):
    assert loaded_after(code) == []


def test_the_apps_help_loads_no_heavy_library():
    assert loaded_after(RUN_CLI.format(argv=["--help"])) == []


@pytest.mark.parametrize("argv", [["score", "--help"], ["finetune", "--help"], ["serve", "--help"],
                                  ["data", "split", "--help"], ["sagemaker", "deploy", "--help"]], ids=" ".join)
def test_a_commands_help_loads_no_engine(argv):
    # typer >= 0.22 validates every parameter value with pydantic, even for --help; nothing else may load
    assert set(loaded_after(RUN_CLI.format(argv=argv))) <= {"pydantic"}


def test_public_names_still_resolve():
    import confidently

    assert confidently.Classifier.__name__ == "Classifier" and confidently.DEFAULT_MODEL
    assert set(confidently.__all__) <= set(dir(confidently))
    with pytest.raises(AttributeError):
        confidently.no_such_name  # noqa: B018
