"""What the job tells people: action outputs, the job summary, and Flux's verdict on the image.

Pure rendering of the one PublishReport: the action, the command line and the demo decide where the text goes,
and `publish --json` prints exactly the action's `json` output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from image_tagger.fluxrules import standard
from image_tagger.model.plan import TagPlan
from image_tagger.model.receivers import Notification
from image_tagger.model.report import PublishReport, Verdict
from image_tagger.model.result import PublishResult
from image_tagger.model.states import PlanKind, TagState
from image_tagger.rules import releases
from image_tagger.rules.redact import one_line

if TYPE_CHECKING:
    from image_tagger.fluxrules.policy import PolicySpec


def _qualifies(spec: PolicySpec, tag: str) -> bool:
    from image_tagger.fluxrules.policy import PolicyFailure

    try:
        return spec.select([tag]) == tag
    except PolicyFailure:
        return False


def flux_verdicts(plan: TagPlan, major: int | None) -> list[Verdict]:
    """Run the shipped policies on this one tag: would a cluster following them roll it out?

    Flux's policy rules are imported here, once the image is pushed: they are not needed before the build.
    """
    from image_tagger.fluxrules.policy import parse_policy

    verdicts = []
    follow = major if major is not None else _release_major(plan)
    if follow is not None:
        spec = parse_policy(standard.release_policy(follow))
        name = f"releases of major {follow} (semver `{spec.describe()}`)"
        if _qualifies(spec, plan.version):
            verdicts.append(Verdict(name, True, f"rolls out when it is the highest {follow}.x.y release"))
        else:
            verdicts.append(Verdict(name, False, spec.why_ignored(plan.version)))
    spec = parse_policy(standard.branch_policy())
    name = "newest `main-…` build (numerical on the timestamp)"
    if _qualifies(spec, plan.version):
        verdicts.append(Verdict(name, True, "rolls out as the newest build (highest timestamp)"))
    else:
        verdicts.append(Verdict(name, False, "ignored: not a main build"))
    return verdicts


def _release_major(plan: TagPlan) -> int | None:
    head = plan.version.split(".", 1)[0]
    return int(head) if plan.kind == PlanKind.RELEASE and head.isdigit() else None


HEADINGS = {
    TagState.PUSHED: "Image pushed",
    TagState.PROMOTED: "Release promoted",
    TagState.ALREADY_PUBLISHED: "Release already published",
    TagState.BUILT: "Image built, not pushed",
    TagState.FAILED: "Push failed",
}


def heading(result: PublishResult) -> str:
    """`Image pushed: <name:tag@digest>`: the run's outcome in one line."""
    return f"{HEADINGS[result.outcome]}: {result.image_ref}"


def outputs(result: PublishResult, notifications: Sequence[Notification] = ()) -> dict[str, str]:
    """The action's outputs, all strings, as GitHub stores them; `json` also says which Receivers were notified
    (and is, exactly, what `image-tagger publish --json` prints)."""
    return {
        "version": result.plan.version,
        "tags": "\n".join(result.plan.refs),
        "digest": result.digest or "",
        "image": result.image_ref,
        "pushed": "true" if result.pushed else "false",
        "outcome": str(result.outcome),
        "json": json.dumps(result.as_dict() | json_fields(notifications), sort_keys=True),
    }


def job_summary(report: PublishReport, result: PublishResult) -> str:
    """The whole job summary of a run that reached the registry step: tags, Flux's outlook, the Receivers."""
    text = summary(result, report.verdicts, report.forecast)
    return text + "\n" + summary_text(report.notifications) if report.notifications else text


def summary(result: PublishResult, verdicts: Sequence[Verdict], forecast: Sequence[str] = ()) -> str:
    """Job summary in GitHub-flavoured Markdown: per tag what happened, then what Flux will do."""
    plan = result.plan
    lines = [f"### {HEADINGS[result.outcome]}: `{result.image_ref}`", ""]
    lines += promotion_lines(result)
    lines += ["| Tag | Reference | State |", "| --- | --- | --- |"]
    lines += [
        f"| `{name}` | `{ref}` | {result.states.get(name, TagState.NOT_PUSHED)} |"
        for name, ref in zip(plan.tag_names, plan.refs, strict=True)
    ]
    lines += [f"> {plan.image.ref(tag)}: {one_line(text)}" for tag, text in result.errors.items()]
    lines += ["", f"Digest: `{result.digest}`" if result.digest else "Digest: none (not pushed)"]
    if result.signature:
        lines += [
            "",
            f"Signed: `{result.digest}` for version `{plan.version}` of `{plan.image.name}` (cosign's format), before "
            "any tag named it",
        ]
    if result.provenance:
        lines += ["", f"Provenance: {result.provenance}"]
    if created := result.labels.get("org.opencontainers.image.created"):
        lines += ["", f"Created: `{one_line(created)}` ({result.created_from})"]
    if plan.timestamp is not None:
        lines += ["", f"Timestamp: `{plan.timestamp}` (from {plan.timestamp_from})"]
    lines += ["", "#### What Flux will do", "", "| Policy | This image |", "| --- | --- |"]
    lines += [f"| {v.policy} | {v.reason} |" for v in verdicts]
    if forecast:
        lines += ["", "#### Your clusters (overlay policies, from the registry's tags)", ""]
        lines += [f"- {line}" for line in forecast]
    lines += [f"> {note}" for note in plan.notes]
    return "\n".join(lines) + "\n"


def promotion_lines(result: PublishResult) -> list[str]:
    """A promoted release is the branch build's bytes, labels included: say so, and where its own version is."""
    if not result.promoted_from:
        return []
    labelled = one_line(result.labels.get(releases.VERSION, "?"))
    text = (
        f"Promoted from `{result.promoted_from}`: the release tag names the very image that branch build pushed "
        "(a registry-side copy, no build), so its bytes and its labels are that build's: "
        f"`{releases.VERSION}` reads `{labelled}`."
    )
    if result.release_referrer:
        text += (
            f" Its release version `{result.plan.version}` is attached beside it as an OCI referrer "
            f"(`{result.release_referrer}`, artifact type `{releases.RELEASE_ARTIFACT}`), which changes neither the "
            "image nor its digest."
        )
    return [text, ""]


def summary_text(notifications: Sequence[Notification]) -> str:
    """The job summary's lines about Flux, one per receiver, to append after the rest of the summary."""
    lines = []
    for notification in notifications:
        if notification.ok:
            lines.append(f"Flux: notified ({notification.detail.removeprefix('Flux notified: ')})")
        else:
            reason = notification.detail.removeprefix("Flux not notified: ")
            lines.append(f"Flux: **not notified** ({reason}); it finds the image at its next scan of the repository")
    if len(lines) == 1:
        return f"\n{lines[0]}\n"
    return "\n" + "".join(f"- {line}\n" for line in lines)


def json_fields(notifications: Sequence[Notification]) -> dict[str, object]:
    """What the `json` output and `publish --json` add: nothing when no Receiver was notified (none set, or nothing
    pushed); else `flux_notified` (true when every Receiver was) and `flux_receivers`, one `{"origin",
    "notified"}` per Receiver in the order given."""
    if not notifications:
        return {}
    return {
        "flux_notified": all(n.ok for n in notifications),
        "flux_receivers": [{"origin": n.origin, "notified": n.ok} for n in notifications],
    }
