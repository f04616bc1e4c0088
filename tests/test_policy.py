"""The policy engine on synthetic evidence: every rule, every boundary, and policy files."""

from __future__ import annotations

from pathlib import Path

import pytest

from safeset.errors import SafesetError
from safeset.matching.matcher import Match
from safeset.policy import Action, Evidence, Policy
from safeset.signals.terms import TermList

from .support import run_cli

POLICY = Policy(screen=True)


def ev(matches=(), ages=(), **row) -> Evidence:
    """Evidence as a scan's row holds it: signal columns by name, faces with their ages."""
    return Evidence({**row, "faces": [{"age": a} for a in ages]}, matches)


MATCH = Match("iwf", 12, "pdq", 12)


@pytest.mark.parametrize(
    ("evidence", "action", "reasons"),
    [
        (ev(), Action.KEEP, ()),
        (ev(matches=[MATCH]), Action.REMOVE, ("hash:iwf:pdq:d=12",)),
        (
            ev(matches=[Match("l", 3, "md5", 0, variant=0), Match("l", 4, "pdq", 30, 5)]),
            Action.REMOVE,
            ("hash:l:md5:d=0", "hash:l:pdq:d=30:v5"),
        ),
        (ev(error="empty file"), Action.REVIEW, ("error:empty file",)),
        # explicit threshold is inclusive; just below it nothing fires
        (ev(explicit_score=0.5999), Action.KEEP, ()),
        (ev(explicit_score=0.6), Action.REMOVE, ("explicit:0.60",)),
        (ev(explicit_score=0.91, ages=[34.0]), Action.REMOVE, ("explicit:0.91",)),
        # apparent age strictly under the cut-off is a minor indicator
        (ev(explicit_score=0.91, ages=[25.0]), Action.REMOVE, ("explicit:0.91",)),
        (
            ev(explicit_score=0.91, ages=[24.6, 40.0]),
            Action.REMOVE,
            ("explicit+minor-indicators", "explicit:0.91", "minor-face:age=25"),
        ),
        (
            ev(explicit_score=0.7, minor_terms=["teen"]),
            Action.REMOVE,
            ("explicit+minor-indicators", "explicit:0.70", "caption-term:minor:teen"),
        ),
        (
            ev(explicit_score=0.7, sexual_terms=["nude"]),
            Action.REMOVE,
            ("explicit:0.70", "caption-term:sexual:nude"),
        ),
        # faces of any age without explicit content change nothing
        (ev(explicit_score=0.2, ages=[8.0]), Action.KEEP, ()),
        (ev(minor_terms=["child"]), Action.KEEP, ()),
        (ev(sexual_terms=["nsfw"]), Action.KEEP, ()),
        (
            ev(sexual_terms=["nsfw"], minor_terms=["teen"]),
            Action.REVIEW,
            ("caption-term:sexual:nsfw", "caption-term:minor:teen"),
        ),
        # strongest action wins; every fired rule is a reason
        (
            ev(matches=[MATCH], error="truncated"),
            Action.REMOVE,
            ("hash:iwf:pdq:d=12", "error:truncated"),
        ),
    ],
)
def test_default_rules(evidence: Evidence, action: Action, reasons: tuple[str, ...]) -> None:
    decision = POLICY.decide(evidence)
    assert (decision.action, decision.reasons) == (action, reasons)


def test_only_explicit_with_minor_indicators_carries_the_warning() -> None:
    assert POLICY.decide(ev(explicit_score=0.9, ages=[12.0])).may_be_illegal
    assert not POLICY.decide(ev(explicit_score=0.9, ages=[40.0])).may_be_illegal
    assert not POLICY.decide(ev(sexual_terms=["nude"], minor_terms=["kid"])).may_be_illegal


def test_policy_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'screen = true\n[actions]\nexplicit = "review"\n'
        '[thresholds]\nexplicit = 0.8\n[terms]\nminor = ["Pupil"]\n'
    )
    policy = Policy.load(path)
    assert policy.screen and policy.actions["explicit"] is Action.REVIEW
    assert policy.actions["hash_match"] is Action.REMOVE and policy.thresholds["minor_age"] == 25.0
    assert policy.terms.minor == ("pupil",)
    assert policy.decide(ev(explicit_score=0.79)).action is Action.KEEP
    assert policy.decide(ev(explicit_score=0.8)).action is Action.REVIEW
    assert policy.decide(ev(explicit_score=0.8, ages=[15])).action is Action.REMOVE


def test_effective_policy_round_trips_through_toml(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(Policy(screen=True).to_toml())
    assert Policy.load(path) == Policy(screen=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[actions]\nexplicit = "delete"\n', "actions.explicit must be remove, review or keep"),
        ('[thresholds]\nexplicit = "high"\n', "thresholds.explicit must be a number"),
        ('[actions]\nexplict = "keep"\n', "unknown key actions.explict"),
        ("[rules]\n", "unknown section 'rules'"),
        ('[terms]\nminor = "kid"\n', "terms.minor must be a list of non-empty strings"),
        ('screen = "yes"\n', "screen must be true or false"),
        ("[actions\n", "not valid TOML"),
    ],
)
def test_bad_policy_files_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(SafesetError, match=message):
        Policy.load(path)


def test_terms_match_whole_words_case_insensitively() -> None:
    terms = TermList("minor", ("kid", "young girl"))
    assert terms.find("A KID at the kidney clinic") == ("kid",)
    # URL separators delimit words; a multi-word term needs its space.
    assert terms.find("https://example.org/young-girl_kid.jpg") == ("kid",)
    assert terms.find("Young Girl", "kids", "kid_photo.jpg") == ("young girl", "kid")
    assert TermList("empty", ()).find("anything") == ()


def test_policy_show_prints_the_effective_policy(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[actions]\nexplicit = "review"\n')
    result = run_cli("policy", "show", "--policy", str(path), "--screen")
    assert result.returncode == 0, result.stderr
    assert 'explicit = "review"' in result.stdout and "screen = true" in result.stdout
    bad = run_cli("policy", "show", "--policy", str(tmp_path / "missing.toml"))
    assert bad.returncode == 2 and "cannot read policy" in bad.stderr
