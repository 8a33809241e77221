"""Teardown end to end (llm_cost_ops_ops.k8s.teardown and the `teardown_<env>` job of
llm_cost_ops_ops.defs.teardown) against the API-server double over HTTP, after a real deploy of the
rendered bundle with execute_release and the controller simulator.

Cases:
- a dry run deletes nothing (no write request at all) and lists every object of the environment,
  in reverse wave order (other/monitoring/policy/api ... config/identity/namespace), volume claims
  and the Namespace as `kept`, everything else `would-delete`; it records nothing;
- a teardown without confirmation deletes every object but the volume claims (the bundle's and the
  StatefulSet's) and the Namespace, in reverse wave order (NetworkPolicies before the API
  Deployment, the Deployment before the postgres StatefulSet, Services before ConfigMaps,
  ServiceAccounts last), waits for them to go, and records a release with operation `teardown`
  (outcome torn-down, the last deploy's digest) under the Lease, which it releases;
- an inventory-labelled object that is not in the bundle (left by an older release) goes too;
- a teardown confirmed with the environment's name deletes the claims and the Namespace too; the
  ledger went with the namespace, so the release is returned unrecorded and the result says so;
- an object that does not go before the deadline (a finalizer) raises TeardownTimeout naming it,
  and a failed teardown is recorded;
- the job: `teardown_dev` without confirmation deletes all but the claims and the Namespace and
  reports the markdown table, the ledger revision and the release in its output metadata; a confirm
  that is not the environment's name is refused before any request; `teardown_prod` confirmed without
  a recent verified backup is refused before anything is deleted (not even a request to the cluster);
  with `confirm: dev` the metadata says the ledger was deleted with the namespace;
- protected environments (prod by default): `teardown_prod` with `dry_run: false` and no
  confirmation is refused before any request (the StatefulSet and Deployments stay), while its
  dry run still lists; the library refuses a protected teardown without confirmation or without a
  verified backup; confirmed, with a recent verified backup in the store, prod is torn down and
  the metadata names the backup.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from kubernetes import client

from llm_cost_ops_ops.bundles.model import RenderedBundle, load_documents
from llm_cost_ops_ops.defs.backup_storage import BackupStorageResource
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.resources import PlatformManifests
from llm_cost_ops_ops.defs.teardown import teardown_definitions
from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.engine import DeployOptions
from llm_cost_ops_ops.k8s.errors import TeardownRefused, TeardownTimeout
from llm_cost_ops_ops.k8s.inventory import inventory_labels
from llm_cost_ops_ops.k8s.lease import LEASE_NAME
from llm_cost_ops_ops.k8s.ledger import ReleaseLedger
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release
from llm_cost_ops_ops.k8s.teardown import TeardownOptions, TeardownResult, execute_teardown
from llm_cost_ops_ops.k8s.wait import WaitTiming
from llm_cost_ops_ops.k8s.waves import WAVES
from tests.k8s_double import ApiServer, ControllerSimulator

pytestmark = pytest.mark.e2e

DEV = "llm-cost-ops-dev"
PROD = "llm-cost-ops-prod"
TIMING = WaitTiming(120.0, 1.0)
DEPLOY = DeployOptions(rollout=TIMING, database=TIMING)
WAVE_ORDER = [w.name for w in reversed(WAVES)]


class Cluster:
    """The double with a deployed environment; the simulator steps on the fake sleeper."""

    def __init__(self, server: ApiServer, sim: ControllerSimulator):
        self.server, self.sim, self.now = server, sim, 0.0
        self.kube = Kube(client.ApiClient(server.client_configuration()), sleeper=lambda _: None)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sim.step()

    def deploy(self, bundle: RenderedBundle) -> None:
        request = ReleaseRequest.for_bundle(bundle, bundle.namespaces()[0], "deploy-1", DEPLOY)
        execute_release(self.kube, request, clock=self.clock, sleeper=self.sleep)
        self.server.reset_counters()

    def teardown(self, bundle: RenderedBundle, **options) -> tuple[TeardownResult, object]:
        return execute_teardown(
            self.kube,
            bundle.environment,
            bundle.namespaces()[0],
            load_documents(bundle.text),
            TeardownOptions(wait=TIMING, **options),
            run_id="teardown-1",
            clock=self.clock,
            sleeper=self.sleep,
        )

    def names(self, api_version: str, kind: str, namespace: str = DEV) -> set[str]:
        return {o["metadata"]["name"] for o in self.server.objects(api_version, kind, namespace)}

    def writes(self) -> list:
        return [r for r in self.server.requests if r.is_write and r.query.get("dryRun") != "All"]


@pytest.fixture
def cluster(k8s_server, k8s_controllers, render_overlays) -> Cluster:
    deployed = Cluster(k8s_server, k8s_controllers)
    deployed.deploy(render_overlays["dev"])
    return deployed


def _wave_indexes(result: TeardownResult) -> list[int]:
    return [WAVE_ORDER.index(o.wave) for o in result.outcomes()]


def _actions(result: TeardownResult) -> dict[str, str]:
    return {o.ref: o.action for o in result.outcomes()}


def test_dry_run_lists_in_reverse_wave_order_and_deletes_nothing(cluster, render_overlays):
    result, release = cluster.teardown(render_overlays["dev"], dry_run=True)
    assert release is None
    assert cluster.writes() == []
    indexes = _wave_indexes(result)
    assert indexes == sorted(indexes)
    assert [w.name for w in result.waves][-1] == "namespace"
    actions = _actions(result)
    assert actions[f"Namespace/{DEV}"] == "kept"
    assert actions[f"PersistentVolumeClaim/{DEV}/postgres-backup"] == "kept"
    assert actions[f"PersistentVolumeClaim/{DEV}/data-postgres-0"] == "kept"
    assert actions[f"Deployment/{DEV}/llm-cost-ops"] == "would-delete"
    assert actions[f"StatefulSet/{DEV}/postgres"] == "would-delete"
    assert set(actions.values()) == {"kept", "would-delete"}
    assert cluster.names("apps/v1", "Deployment") == {"llm-cost-ops"}


def test_teardown_keeps_claims_and_namespace_and_records_it(cluster, render_overlays):
    dev = render_overlays["dev"]
    leftover = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "old-release-leftover", "namespace": DEV, "labels": inventory_labels("dev")},
    }
    cluster.server.seed(leftover)
    result, release = cluster.teardown(dev, dry_run=False)

    deletes = [r.path for r in cluster.writes() if r.method == "DELETE"]

    def first(fragment: str) -> int:
        return next(i for i, p in enumerate(deletes) if fragment in p)

    assert first("/networkpolicies/") < first("/deployments/llm-cost-ops")
    assert first("/deployments/llm-cost-ops") < first("/statefulsets/postgres")
    assert first("/services/") < first("/configmaps/")
    assert max(i for i, p in enumerate(deletes) if "/configmaps/" in p) < first("/serviceaccounts/")
    assert not [p for p in deletes if "persistentvolumeclaims" in p or p.endswith(f"/namespaces/{DEV}")]

    for api_version, kind in [
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("v1", "Service"),
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("rbac.authorization.k8s.io/v1", "Role"),
    ]:
        assert cluster.names(api_version, kind) == set(), kind
    assert cluster.names("v1", "PersistentVolumeClaim") == {"postgres-backup", "data-postgres-0"}
    assert cluster.server.read("v1", "Namespace", DEV) is not None
    assert _actions(result)[f"ConfigMap/{DEV}/old-release-leftover"] == "deleted"
    assert not result.namespace_deleted

    latest = ReleaseLedger(cluster.kube, "dev", DEV).latest()
    assert latest is not None and latest == release
    assert (latest.operation, latest.outcome, latest.revision) == ("teardown", "torn-down", 2)
    assert latest.digest == render_overlays["dev"].digest
    lease = cluster.server.read("coordination.k8s.io/v1", "Lease", LEASE_NAME, DEV)
    assert lease["spec"]["holderIdentity"] is None


def test_confirmed_teardown_deletes_claims_and_namespace(cluster, render_overlays):
    result, release = cluster.teardown(render_overlays["dev"], dry_run=False, confirm=True)
    assert result.namespace_deleted
    assert cluster.server.read("v1", "Namespace", DEV) is None
    assert cluster.server.objects("v1", "PersistentVolumeClaim", DEV) == []
    assert cluster.server.objects("v1", "Secret", DEV) == []  # the ledger went with the namespace
    assert release is not None and release.operation == "teardown" and release.revision == 0
    actions = _actions(result)
    assert actions[f"PersistentVolumeClaim/{DEV}/data-postgres-0"] == "deleted"
    assert list(actions)[-1] == f"Namespace/{DEV}"


def test_an_object_that_does_not_go_times_out(cluster, render_overlays):
    cm = cluster.server.read("v1", "ConfigMap", "llm-cost-ops-config", DEV)
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    cluster.kube.replace({"apiVersion": "v1", "kind": "ConfigMap", **cm})
    with pytest.raises(TeardownTimeout, match=f"ConfigMap/{DEV}/llm-cost-ops-config.*finalizers"):
        cluster.teardown(render_overlays["dev"], dry_run=False)
    latest = ReleaseLedger(cluster.kube, "dev", DEV).latest()
    assert latest is not None and (latest.operation, latest.outcome) == ("teardown", "failed")


# --- the Dagster job -----------------------------------------------------------------------------


def _run(env_specs, env: str, kubeconfig: Path, backups_dir: Path, **config):
    resources = {
        "kubernetes": KubernetesResource(kubeconfig=str(kubeconfig)),
        "backups": BackupStorageResource(local_dir=str(backups_dir)),
        "manifests": PlatformManifests(),
    }
    defs = dg.Definitions.merge(teardown_definitions(env_specs[env]), dg.Definitions(resources=resources))
    return defs.resolve_job_def(f"teardown_{env}").execute_in_process(
        run_config={"ops": {f"teardown_release_{env}": {"config": config}}}, raise_on_error=False
    )


def _metadata(result: dg.ExecuteInProcessResult, env: str) -> dict:
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def test_job_tears_dev_down_and_reports(cluster, env_specs, k8s_kubeconfig, tmp_path):
    result = _run(env_specs, "dev", k8s_kubeconfig, tmp_path, dry_run=False)
    assert result.success
    metadata = _metadata(result, "dev")
    assert metadata["confirmed"] is False and metadata["namespace_deleted"] is False
    assert metadata["ledger"] == "recorded as r2"
    assert metadata["release"]["operation"] == "teardown"
    assert "| api | Deployment/llm-cost-ops-dev/llm-cost-ops | deleted |" in metadata["objects"]
    assert "| namespace | Namespace/llm-cost-ops-dev | kept |" in metadata["objects"]
    assert cluster.names("apps/v1", "Deployment") == set()
    [job] = teardown_definitions(env_specs["dev"]).jobs or []
    assert job.tags["operation"] == "teardown" and job.tags["llm-cost-ops-ops/env-lock"] == "dev"
    assert job.tags["dagster/max_retries"] == "0"


def test_job_confirmed_dev_says_the_ledger_went(cluster, env_specs, k8s_kubeconfig, tmp_path):
    result = _run(env_specs, "dev", k8s_kubeconfig, tmp_path, dry_run=False, confirm="dev")
    assert result.success
    metadata = _metadata(result, "dev")
    assert metadata["namespace_deleted"] is True
    assert metadata["ledger"] == f"not recorded: namespace {DEV} was deleted and the ledger with it"
    assert cluster.server.read("v1", "Namespace", DEV) is None


def test_job_refuses_a_wrong_confirmation(cluster, env_specs, k8s_kubeconfig, tmp_path):
    result = _run(env_specs, "dev", k8s_kubeconfig, tmp_path, dry_run=False, confirm="prod")
    assert not result.success
    error = result.failure_data_for_node("teardown_release_dev").error.cause
    assert "TeardownRefused" in error.cls_name and "repeat the environment's name ('dev')" in error.message
    assert cluster.server.requests == []


def test_job_refuses_prod_without_a_verified_backup(
    k8s_server, k8s_controllers, render_overlays, env_specs, k8s_kubeconfig, tmp_path
):
    cluster = Cluster(k8s_server, k8s_controllers)
    cluster.deploy(render_overlays["prod"])
    result = _run(env_specs, "prod", k8s_kubeconfig, tmp_path, dry_run=False, confirm="prod")
    assert not result.success
    error = result.failure_data_for_node("teardown_release_prod").error.cause
    assert error.cls_name == TeardownRefused.__name__
    assert "no verified backup" in error.message and "restore_drill_prod" in error.message
    assert cluster.server.requests == []
    assert cluster.names("apps/v1", "Deployment", PROD) >= {"llm-cost-ops"}


def test_protected_prod_unconfirmed_is_refused_before_any_request(
    k8s_server, k8s_controllers, render_overlays, env_specs, k8s_kubeconfig, tmp_path
):
    assert env_specs["prod"].protected and not env_specs["dev"].protected
    cluster = Cluster(k8s_server, k8s_controllers)
    cluster.deploy(render_overlays["prod"])
    result = _run(env_specs, "prod", k8s_kubeconfig, tmp_path, dry_run=False)
    assert not result.success
    error = result.failure_data_for_node("teardown_release_prod").error.cause
    assert error.cls_name == TeardownRefused.__name__
    assert "prod is protected" in error.message and "confirm: 'prod'" in error.message
    assert cluster.server.requests == []
    assert cluster.names("apps/v1", "Deployment", PROD) >= {"llm-cost-ops"}
    assert cluster.names("apps/v1", "StatefulSet", PROD) == {"postgres"}

    dry = _run(env_specs, "prod", k8s_kubeconfig, tmp_path)  # the unconfirmed form: a dry run
    assert dry.success and _metadata(dry, "prod")["deleted"] == 0
    assert cluster.writes() == []


def test_protected_teardown_needs_a_verified_backup_in_the_library(
    k8s_server, k8s_controllers, render_overlays
):
    cluster = Cluster(k8s_server, k8s_controllers)
    prod = render_overlays["prod"]
    cluster.deploy(prod)
    for options in ({"confirm": False}, {"confirm": True}):
        with pytest.raises(TeardownRefused, match="prod is protected"):
            cluster.teardown(prod, dry_run=False, protected=True, **options)
    assert cluster.server.requests == []
    result, _release = cluster.teardown(
        prod, dry_run=False, protected=True, confirm=True, verified_backup="b1"
    )
    assert _actions(result)[f"StatefulSet/{PROD}/postgres"] == "deleted"


def test_job_tears_prod_down_with_confirmation_and_a_verified_backup(
    k8s_server, k8s_controllers, render_overlays, env_specs, k8s_kubeconfig, tmp_path
):
    cluster = Cluster(k8s_server, k8s_controllers)
    cluster.deploy(render_overlays["prod"])
    backup_id = _verified_backup(tmp_path, "prod")
    result = _run(env_specs, "prod", k8s_kubeconfig, tmp_path, dry_run=False, confirm="prod")
    assert result.success
    metadata = _metadata(result, "prod")
    assert metadata["verified_backup"] == backup_id and metadata["protected"] is True
    assert cluster.server.read("v1", "Namespace", PROD) is None


def _verified_backup(root: Path, env: str) -> str:
    """A committed backup with a passed-drill marker, written as the backup and the drill do."""
    from datetime import UTC, datetime

    from llm_cost_ops_ops.storage.local import LocalDirectoryStore
    from llm_cost_ops_ops.storage.manifest import (
        VERIFIED_SUFFIX,
        BackupLayout,
        BackupManifest,
        StoredFile,
        VerifiedMarker,
    )

    store, now = LocalDirectoryStore(root), datetime.now(UTC)
    layout = BackupLayout.for_run(env, now, "run")
    dump = StoredFile(
        key=layout.dump_key(False), raw_bytes=4, stored_bytes=4, sha256_raw="0", sha256_stored="0"
    )
    store.put_bytes(dump.key, b"dump")
    manifest = BackupManifest(
        backup_id=layout.backup_id,
        run_id="run",
        env=env,
        database="llm_cost_ops",
        source="test",
        server_version="16",
        pg_dump_version="16",
        started_at=now,
        finished_at=now,
        dump=dump,
        globals=None,
        compression={},
        encryption=None,
        tables={},
        row_counts_consistent=True,
        migration_version=None,
    )
    store.put_bytes(layout.manifest_key, manifest.to_json())
    marker = VerifiedMarker(
        backup_id=layout.backup_id, verified_at=now, drill_run_id="d", checks={}, restore_seconds=0.0
    )
    store.put_bytes(layout.base + VERIFIED_SUFFIX, marker.to_json())
    return layout.backup_id
