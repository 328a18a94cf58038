"""resume-sync: let one Argo CD Application or Flux Kustomization / HelmRelease sync by itself again, restoring
exactly the sync policy pause-sync saved on the Application (the undo of pause-sync)."""

from __future__ import annotations

from typing import Any

from bot.core.playbook import Change, Outcome, Plan, Playbook, Result
from bot.core.ports import Cluster
from playbooks._gitops import BY_KIND, apply_resume, fetch, resume_change
from playbooks._gitops_params import SyncParams


class ResumeSync(Playbook):
    name = "resume-sync"
    summary = "Restore an Argo CD Application's saved sync policy exactly, or resume a suspended Flux object."
    params = SyncParams
    usage = (
        "mitigate resume-sync application=<name> | kustomization=<name> | helmrelease=<name> "
        "[namespace=<ns>: the Argo CD namespace for applications, flux-system for Flux] [cluster=<context>]"
    )
    undo_with = "pause-sync"

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, SyncParams)
        argocd = self.config.mitigation.argocd_namespace
        obj = await fetch(cluster, params.kind, params.where(argocd), params.object, cluster_name)
        change = resume_change(obj, argocd_namespace=argocd)
        return self.planned(
            params,
            cluster_name,
            [change] if isinstance(change, Change) else [],
            refused=[change] if isinstance(change, str) else [],
        )

    async def apply(self, cluster: Cluster, change: Change, *, dry_run: bool, as_user: str | None) -> Outcome:
        return await apply_resume(cluster, change, dry_run=dry_run, as_user=as_user)

    def undo_params(self, plan: Plan, results: list[Result]) -> dict[str, Any] | None:
        """Pause again exactly the object this run resumed (or may have: never resumed, it is still paused and the
        pause finds nothing to do)."""
        done = [r.target for r in results if r.outcome in (Outcome.DONE, Outcome.UNKNOWN)]
        if not done:
            return None
        t = done[0]
        return {BY_KIND[t.kind].param: t.name, "namespace": t.namespace, "cluster": plan.cluster}
