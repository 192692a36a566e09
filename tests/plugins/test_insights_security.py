"""The insights endpoints on a real api-server: who may read what, and request values read as data.

A plugin's FastAPI app gets none of Airflow's authentication by itself: these tests prove every endpoint
asks Airflow's own auth manager (SimpleAuthManager here), with the token the UI uses (Bearer header or the
``_token`` cookie), and checks read access to the DAG it reads.
"""

from __future__ import annotations

import duckdb
import pytest
import requests

from airflow_segprovider.core.state.membership import MEMBERSHIPS, SNAPSHOTS
from airflow_segprovider.core.state.sync import RUNS as SYNC_RUNS
from support.insights_world import DAG_ID, PLAIN_DAG_ID, InsightsWorld

VIEWS = ("segments", "overlap", "syncs", "gates", "drift", "customer")
DAG_PATHS = [f"/segprovider/api/dags/{DAG_ID}/{view}" for view in VIEWS] + \
            [f"/segprovider/dags/{DAG_ID}"] + [f"/segprovider/dags/{DAG_ID}/{view}" for view in VIEWS]
ALL_PATHS = ["/segprovider/", "/segprovider/api/dags", "/segprovider/static/plotly.min.js", *DAG_PATHS]


def _get(world: InsightsWorld, path: str, user: str | None = None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {world.token(user)}"} if user else {}
    return requests.get(world.base_url + path, headers=headers, timeout=30, **kwargs)


def _own_sql(world: InsightsWorld, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


@pytest.mark.integration
@pytest.mark.parametrize("path", ALL_PATHS)
def test_every_endpoint_refuses_an_unauthenticated_request(insights: InsightsWorld, path: str) -> None:
    assert _get(insights, path).status_code == 401
    forged = requests.get(insights.base_url + path, headers={"Authorization": "Bearer not-a-jwt"}, timeout=30)
    assert forged.status_code in (401, 403)


@pytest.mark.integration
@pytest.mark.parametrize("path", DAG_PATHS)
def test_a_user_without_read_access_to_the_dag_gets_403(insights: InsightsWorld, path: str) -> None:
    assert _get(insights, path, "nobody").status_code == 403


@pytest.mark.integration
def test_the_dag_list_shows_only_dags_the_user_may_read(insights: InsightsWorld) -> None:
    assert _get(insights, "/segprovider/api/dags", "nobody").json() == {"dags": []}
    dags = _get(insights, "/segprovider/api/dags", "viewer").json()["dags"]
    assert [d["dag_id"] for d in dags] == [DAG_ID]  # the plain DAG is not a segments DAG


@pytest.mark.integration
def test_the_ui_cookie_authenticates_as_the_bearer_token_does(insights: InsightsWorld) -> None:
    reply = requests.get(f"{insights.base_url}/segprovider/api/dags/{DAG_ID}/segments",
                         cookies={"_token": insights.token("viewer")}, timeout=30)

    assert reply.status_code == 200
    sizes = {s["segment"]: s["snapshots"][-1]["members"] for s in reply.json()["data"]["segments"] if s["snapshots"]}
    expected = dict(_own_sql(insights, f"SELECT segment, members FROM {SNAPSHOTS} WHERE as_of = "
                                       f"(SELECT MAX(as_of) FROM {SNAPSHOTS})"))
    assert sizes == expected


@pytest.mark.integration
def test_a_dag_that_is_not_a_segments_dag_says_so(insights: InsightsWorld) -> None:
    api = _get(insights, f"/segprovider/api/dags/{PLAIN_DAG_ID}/segments", "viewer")
    page = _get(insights, f"/segprovider/dags/{PLAIN_DAG_ID}", "viewer")
    missing = _get(insights, "/segprovider/api/dags/no_such_dag/segments", "viewer")

    assert api.status_code == 404 and "not a segments DAG" in api.json()["detail"]
    assert page.status_code == 200 and "is not a segments DAG" in page.text
    assert missing.status_code == 404


@pytest.mark.integration
@pytest.mark.parametrize("hostile", ["x' OR '1'='1", "1'; DROP TABLE segprovider_snapshots; --", "%(customer)s"])
def test_a_parameter_carrying_sql_is_treated_as_data(insights: InsightsWorld, hostile: str) -> None:
    before = _own_sql(insights, f"SELECT COUNT(*) FROM {SNAPSHOTS}")

    lookup = _get(insights, f"/segprovider/api/dags/{DAG_ID}/customer", "viewer",
                  params={"customer": hostile, "segment": "vip"})
    segment = _get(insights, f"/segprovider/api/dags/{DAG_ID}/customer", "viewer",
                   params={"customer": "C000001", "segment": hostile})

    assert lookup.status_code == 200
    data = lookup.json()["data"]
    assert data["history"]["memberships"] == []  # no customer has that key: nothing matched
    assert "not found" in data["explanation"]["error"]
    assert segment.status_code == 200 and "unknown segment" in segment.json()["data"]["explanation"]["error"]
    assert _own_sql(insights, f"SELECT COUNT(*) FROM {SNAPSHOTS}") == before


@pytest.mark.integration
def test_a_bad_as_of_is_a_400_not_a_crash(insights: InsightsWorld) -> None:
    reply = _get(insights, f"/segprovider/api/dags/{DAG_ID}/overlap", "viewer", params={"as_of": "'; SELECT 1"})
    assert reply.status_code == 400


@pytest.mark.integration
def test_a_real_customer_is_explained_with_their_history(insights: InsightsWorld) -> None:
    customer, as_of = _own_sql(insights, f"SELECT customer_key, as_of FROM {MEMBERSHIPS} WHERE segment = 'vip' "
                                         "ORDER BY as_of DESC, customer_key LIMIT 1")[0]
    reply = _get(insights, f"/segprovider/api/dags/{DAG_ID}/customer", "viewer",
                 params={"customer": customer, "segment": "vip", "as_of": as_of.isoformat()})

    data = reply.json()["data"]
    assert data["explanation"]["member"] is True
    assert data["explanation"]["lines"][0].startswith(f"customer {customer} IS in segment vip")
    # each period of the history ends at the first as_of of its segment that no longer holds the customer
    held = {(segment, at.isoformat()) for segment, at in _own_sql(
        insights, f"SELECT segment, as_of FROM {MEMBERSHIPS} WHERE customer_key = ?", customer)}
    dates = _own_sql(insights, f"SELECT segment, as_of FROM {SNAPSHOTS}")
    covered = {(segment, at.isoformat()) for p in data["history"]["memberships"] for segment, at in dates
               if segment == p["segment"] and p["since"] <= at.isoformat()
               and (p["until"] is None or at.isoformat() < p["until"])}
    assert covered == held


@pytest.mark.integration
def test_the_plugin_is_registered_with_its_views(insights: InsightsWorld) -> None:
    plugins = _get(insights, "/api/v2/plugins", "admin").json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "segprovider")
    destinations = {v["destination"]: v["href"] for v in ours["external_views"]}

    assert destinations == {"nav": "/segprovider/", "dag": "/segprovider/dags/{DAG_ID}",
                            "dag_run": "/segprovider/dags/{DAG_ID}?run_id={RUN_ID}"}
    assert ours["fastapi_apps"][0]["url_prefix"] == "/segprovider"
    runs = _own_sql(insights, f"SELECT COUNT(*) FROM {SYNC_RUNS}")[0][0]
    syncs = _get(insights, f"/segprovider/api/dags/{DAG_ID}/syncs", "viewer").json()["data"]["syncs"]
    assert sum(len(r) for r in syncs.values()) == runs
