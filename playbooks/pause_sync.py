"""pause-sync: stop one Argo CD Application or Flux Kustomization / HelmRelease from syncing by itself, so a fix made
by hand stays while the incident lasts; the Application's sync policy is saved on it for resume-sync."""

from __future__ import annotations

from typing import Any

from bot.core.playbook import Outcome, Plan, Playbook, Result
from bot.core.ports import Cluster
from playbooks._gitops import BY_KIND, fetch, pause_change
from playbooks._gitops_params import SyncParams
from playbooks._gitops_parents import revert_notes


class PauseSync(Playbook):
    name = "pause-sync"
    summary = "Stop an Argo CD Application's automated sync (saving its policy on it) or suspend a Flux object."
    params = SyncParams
    usage = (
        "mitigate pause-sync application=<name> | kustomization=<name> | helmrelease=<name> "
        "[namespace=<ns>: the Argo CD namespace for applications, flux-system for Flux] [cluster=<context>]"
    )
    undo_with = "resume-sync"
    lasting = True

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, SyncParams)
        argocd = self.config.mitigation.argocd_namespace
        obj = await fetch(cluster, params.kind, params.where(argocd), params.object, cluster_name)
        change = pause_change(obj, reason="firebreak pause-sync")
        notes = []
        if not change.noop:
            notes = await revert_notes(cluster, [obj], {obj.key}, argocd_namespace=argocd, cluster_name=cluster_name)
        return self.planned(
            params,
            cluster_name,
            [change],
            notes=notes,
        )

    def undo_params(self, plan: Plan, results: list[Result]) -> dict[str, Any] | None:
        """Resume exactly the object this run paused (or may have: its call unanswered, or in flight when the process
        died; never paused, it is still syncing and the resume finds nothing to do): not one paused already."""
        done = [r.target for r in results if r.outcome in (Outcome.DONE, Outcome.UNKNOWN)]
        if not done:
            return None
        t = done[0]
        return {BY_KIND[t.kind].param: t.name, "namespace": t.namespace, "cluster": plan.cluster}
