"""The stages of the strict-control closed loop (严格管控类耕地 前、中、后闭环管理) and the
loop statuses built from them. One spelling each, bilingual (county plan 三.1).

Stage order (a ledger's dates must follow it; docs/decisions.md "Strict-control closed loop")::

    before 事前   notified 告知 → designated 划定
    during 事中   inspected 种植巡查
    after  事后   harvest_checked 收获/收储核查 → compensated 补偿 → accepted 验收

``compensated`` is recorded but not required to close a loop: not every strict-control
measure is paid for (a ban on one product is not). Every other stage is.
"""

from __future__ import annotations

from farmland.vocabulary import LOOP_STATUSES_STYLE

__all__ = ["DEFAULT_MIN_STAGES", "LOOP_STATUSES", "PHASE_OF", "REQUIRED_TO_CLOSE", "STAGES",
           "STAGE_LABELS", "STATUS_COLOURS", "STATUS_LABELS", "loop_status_of", "stage_text"]

#: stages in the order the dates must follow
STAGES = ("notified", "designated", "inspected", "harvest_checked", "compensated", "accepted")

STAGE_LABELS: dict[str, tuple[str, str]] = {
    "notified": ("告知", "notified"),
    "designated": ("划定", "designated"),
    "inspected": ("种植巡查", "planting inspected"),
    "harvest_checked": ("收获/收储核查", "harvest checked"),
    "compensated": ("补偿", "compensated"),
    "accepted": ("验收", "accepted"),
}

#: phase of each stage: dates must not go back from one phase to an earlier one
PHASE_OF = {"notified": 0, "designated": 0, "inspected": 1, "harvest_checked": 2,
            "compensated": 3, "accepted": 3}

#: stages a loop needs, passed, to be "closed"
REQUIRED_TO_CLOSE = ("notified", "designated", "inspected", "harvest_checked", "accepted")

#: default stages a class-3 parcel's loop needs for its area to count as controlled (D)
DEFAULT_MIN_STAGES = ("designated", "inspected")

#: loop statuses from none to closed, each reached when all the stages listed pass
LOOP_STATUSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("none", ()),
    ("notified", ("notified", "designated")),
    ("inspected", ("notified", "designated", "inspected")),
    ("harvest_checked", ("notified", "designated", "inspected", "harvest_checked")),
    ("closed", REQUIRED_TO_CLOSE),
)

#: loop status → (Chinese, English), from :data:`farmland.vocabulary.LOOP_STATUSES_STYLE`
STATUS_LABELS: dict[str, tuple[str, str]] = {
    status: (zh, en) for status, (zh, en, _) in LOOP_STATUSES_STYLE.items()}
#: loop status → colour of the map, the QGIS style of control.gpkg and any chart
STATUS_COLOURS: dict[str, str] = {
    status: colour for status, (_, _, colour) in LOOP_STATUSES_STYLE.items()}


def loop_status_of(passed: set[str]) -> tuple[str, str | None]:
    """(status, first missing required stage) of a loop whose ``passed`` stages are given.

    The status is the last of :data:`LOOP_STATUSES` whose stages all passed, counting
    in order (a harvest check without an inspection leaves the loop at "notified").

    >>> loop_status_of({"notified", "designated", "inspected"})
    ('inspected', 'harvest_checked')
    >>> loop_status_of({"designated", "inspected"})
    ('none', 'notified')
    """
    status = "none"
    for name, needed in LOOP_STATUSES:
        if all(s in passed for s in needed):
            status = name
        else:
            break
    missing = next((s for s in REQUIRED_TO_CLOSE if s not in passed), None)
    return status, missing


def stage_text(stage: str | None) -> str:
    """"告知 notified" for a stage name; "" for none."""
    if not stage:
        return ""
    zh, en = STAGE_LABELS.get(stage, (stage, stage))
    return f"{zh} {en}"
