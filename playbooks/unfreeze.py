"""unfreeze: end a deploy freeze, resuming each object as resume-sync does (an Application's saved sync policy put
back exactly); as an undo, exactly the objects the freeze paused."""

from __future__ import annotations

from typing import Any

from bot.core.playbook import Change, Outcome, Plan
from bot.core.ports import Cluster
from playbooks._gitops import FLUX_REASON, apply_resume, resume_change, select
from playbooks._gitops_params import SelectorParams, SelectorPlaybook
from playbooks._gitops_parents import depths


class Unfreeze(SelectorPlaybook):
    """Typed by hand (no `objects=`), it resumes every matching object that is paused: an Application carrying a
    saved policy, a suspended Flux object (whoever suspended it: the plan names those firebreak did not). An
    Application with sync off and nothing saved is left as it is, with a note saying how to re-enable it."""

    name = "unfreeze"
    summary = "End a deploy freeze: resume what freeze paused, restoring each Application's saved sync policy."
    usage = "mitigate unfreeze selector=<label selector> [cluster=<context>]"
    undo_with = "freeze"

    async def plan(self, cluster: Cluster, params: Any, *, cluster_name: str) -> Plan:
        assert isinstance(params, SelectorParams)
        argocd = self.config.mitigation.argocd_namespace
        objs, notes = await select(cluster, params.selector, params.keys)
        if not params.objects:
            objs = [o for o in objs if o.saved is not None or not o.syncing]
        depth = depths(objs, argocd)
        top = max(depth.values(), default=0)  # children first, so no parent re-syncs one mid-way
        changes: list[Change] = []
        for o in objs:
            change = resume_change(o, argocd_namespace=argocd, phase=top - depth[o.key])
            changes += [change] if isinstance(change, Change) else []
            notes += [change] if isinstance(change, str) else []
        others = [o for o in objs if not o.kind.argo and not o.syncing]
        others = [o for o in others if not o.annotations.get(FLUX_REASON, "").startswith("firebreak")]
        if others and not params.objects:
            named = ", ".join(f"{o} ({o.annotations.get(FLUX_REASON) or 'no reason recorded'})" for o in others)
            notes.append(f"Suspended by someone other than firebreak, and resumed by this too: {named}.")
        refused = []
        if not changes:
            refused.append(
                f"Nothing to unfreeze: nothing in {cluster_name} matching {params.selector!r} was paused by "
                f"firebreak or is suspended."
            )
        return self.planned(params, cluster_name, changes, notes=notes, refused=refused)

    async def apply(self, cluster: Cluster, change: Change, *, dry_run: bool, as_user: str | None) -> Outcome:
        return await apply_resume(cluster, change, dry_run=dry_run, as_user=as_user)
