"""The core is plain Python: importing any of it must not import Airflow (the cosmos/dlt shape).

Checked in a fresh interpreter, since the test session itself may already have imported Airflow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    import airflow_segprovider.core as core

    modules = [core.__name__]
    for info in pkgutil.walk_packages(core.__path__, prefix=core.__name__ + "."):
        importlib.import_module(info.name)
        modules.append(info.name)
    leaked = sorted(name for name in sys.modules if name == "airflow" or name.startswith("airflow."))
    print(json.dumps({"modules": modules, "airflow": leaked}))
    """
)


def test_importing_every_core_module_does_not_import_airflow() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # the walk really covered the core, not just its __init__
    assert {"airflow_segprovider.core.project.loader", "airflow_segprovider.core.project.spec",
            "airflow_segprovider.core.project.yaml_source", "airflow_segprovider.core.errors"} <= set(report["modules"])
    assert report["airflow"] == [], f"core imports Airflow: {report['airflow']}"


def test_the_probe_would_notice_an_airflow_import() -> None:
    # Guard against a probe that can never fail (e.g. a wrong prefix test), without paying for a real
    # Airflow import: a module registered as 'airflow.sdk' must be reported, 'airflow_segprovider' must not.
    probe = PROBE.replace("import airflow_segprovider.core as core",
                          "import types\nsys.modules['airflow.sdk'] = types.ModuleType('airflow.sdk')\n"
                          "import airflow_segprovider.core as core")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["airflow"] == ["airflow.sdk"]
