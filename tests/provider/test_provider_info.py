"""Provider metadata: valid for Airflow, registered through the entry point, and seen by Airflow."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from airflow_segprovider.get_provider_info import get_provider_info

DISTRIBUTION = "airflow-segprovider"


def airflow_provider_info_schema() -> dict[str, Any]:
    # find_spec locates the installed package without running airflow/__init__.py (slow, configures logging)
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.submodule_search_locations, "apache-airflow is not installed"
    schema_file = Path(next(iter(spec.submodule_search_locations))) / "provider_info.schema.json"
    return json.loads(schema_file.read_text(encoding="utf-8"))


def test_provider_info_is_valid_against_airflows_schema() -> None:
    schema = airflow_provider_info_schema()
    info = get_provider_info()

    jsonschema.validators.validator_for(schema)(schema).validate(info)
    assert info["package-name"] == DISTRIBUTION
    assert info["versions"][0] == importlib.metadata.version(DISTRIBUTION)


def test_the_schema_check_rejects_broken_metadata() -> None:
    # The positive test above only means something if the schema is strict about what we ship.
    schema = airflow_provider_info_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    info = get_provider_info()
    without_description = {key: value for key, value in info.items() if key != "description"}
    integration_as_text = {**info, "integrations": "Segprovider"}

    for broken in (without_description, integration_as_text):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


def test_entry_point_resolves_to_get_provider_info() -> None:
    entry_points = [ep for ep in importlib.metadata.distribution(DISTRIBUTION).entry_points
                    if ep.group == "apache_airflow_provider"]

    assert len(entry_points) == 1, entry_points
    assert entry_points[0].load() is get_provider_info


@pytest.mark.integration
def test_airflow_providers_list_shows_the_provider(tmp_path: Path) -> None:
    airflow_cli = Path(sys.executable).parent / "airflow"
    assert airflow_cli.exists(), f"no airflow console script next to {sys.executable}"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}

    result = subprocess.run([str(airflow_cli), "providers", "list", "-o", "json"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300)

    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout[result.stdout.index("["):])
    ours = [provider for provider in listed if provider["package_name"] == DISTRIBUTION]
    assert len(ours) == 1, [provider["package_name"] for provider in listed]
    assert ours[0]["version"] == importlib.metadata.version(DISTRIBUTION)


def test_declared_hook_modules_and_classes_import() -> None:
    import importlib

    info = get_provider_info()
    for module in (name for hooks in info["hooks"] for name in hooks["python-modules"]):
        importlib.import_module(module)
    for connection_type in info["connection-types"]:
        module_name, _, class_name = connection_type["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module_name), class_name)
        assert hook.conn_type == connection_type["connection-type"]
        assert hook.hook_name == connection_type["hook-name"]


def test_provider_discovery_does_not_import_airflow() -> None:
    # get_provider_info() runs inside Airflow's provider discovery: it must stay light and cycle-free
    code = ("import sys; from airflow_segprovider.get_provider_info import get_provider_info; get_provider_info(); "
            "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.integration
def test_airflow_providers_hooks_lists_the_connection_types(tmp_path: Path) -> None:
    airflow_cli = Path(sys.executable).parent / "airflow"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}

    result = subprocess.run([str(airflow_cli), "providers", "hooks", "-o", "json"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300)

    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout[result.stdout.index("["):])
    ours = {hook["connection_type"]: hook for hook in listed if hook["package_name"] == DISTRIBUTION}
    assert sorted(ours) == ["segprovider_hubspot", "segprovider_mailchimp", "segprovider_meta", "segprovider_webhook"]
    assert ours["segprovider_mailchimp"]["class"] == "airflow_segprovider.hooks.destination.MailchimpHook"
    assert ours["segprovider_mailchimp"]["conn_id_attribute_name"] == "mailchimp_conn_id"
    assert "segprovider" not in result.stderr.lower(), result.stderr
