"""freeze: a deploy freeze, pausing the sync of every Argo CD Application and Flux Kustomization / HelmRelease a
label selector matches, in every namespace, as pause-sync pauses one; undone by unfreeze, exactly."""

from __future__ import annotations

from typing import Any

from bot.core.playbook import Plan
from bot.core.ports import Cluster
from playbooks._gitops import pause_change, select
from playbooks._gitops_params import SelectorParams, SelectorPlaybook
from playbooks._gitops_parents import depths, revert_notes


class Freeze(SelectorPlaybook):
    """Applications are looked for in every namespace, not only the Argo CD one: Argo CD serves Applications from
    other namespaces too (apps in any namespace), and a freeze that misses some would be a silent gap. So it needs
    to list applications, kustomizations and helmreleases at the cluster scope; a kind the cluster does not serve
    (that tool is not installed) is skipped with a note."""

    name = "freeze"
    summary = "Deploy freeze: pause the sync of every Argo CD Application and Flux object a label selector matches."
    usage = "mitigate freeze selector=<label selector, e.g. team=payments> [cluster=<context>]"
    undo_with = "unfreeze"
    lasting = True
    flag = "deploy freeze"

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, SelectorParams)
        argocd = self.config.mitigation.argocd_namespace
        objs, notes = await select(cluster, params.selector, params.keys)
        refused = []
        if not objs:
            refused.append(
                f"Nothing to freeze: no Argo CD Application, Flux Kustomization or HelmRelease in {cluster_name} "
                f"matches {params.selector!r}."
            )
        depth = depths(objs, argocd)  # parents first: none of them syncs a child back while the freeze goes on
        changes = [pause_change(o, reason="firebreak freeze", phase=depth[o.key]) for o in objs]
        pausing = [o for o, c in zip(objs, changes, strict=True) if not c.noop]
        planned = {o.key for o in objs}
        notes += await revert_notes(cluster, pausing, planned, argocd_namespace=argocd, cluster_name=cluster_name)
        return self.planned(params, cluster_name, changes, notes=notes, refused=refused)
