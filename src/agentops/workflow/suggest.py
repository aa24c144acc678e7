"""Did-you-mean suggestions for misspelled keys, agent names, inputs and providers."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping

_MAX_FUZZY_CANDIDATES = 500


def closest(
    word: str, candidates: Collection[str], synonyms: Mapping[str, str] | None = None
) -> str | None:
    """The candidate ``word`` was most likely meant to be, or None.

    ``synonyms`` maps names other tools use (``needs``, ``dependencies``) to
    ours; a synonym wins over spelling because it is a deliberate choice.
    """
    lowered = word.lower()
    if (
        synonyms
        and lowered in synonyms
        and synonyms[lowered] in candidates
        and synonyms[lowered] != word
    ):
        return synonyms[lowered]
    if len(candidates) > _MAX_FUZZY_CANDIDATES:
        return None  # fuzzy matching costs time per candidate, and a guess among thousands helps nobody
    options = [candidate for candidate in candidates if candidate != word]
    for option in options:  # the same word in another case or with other separators: "Depends-On"
        if _normalise(option) == _normalise(word):
            return option
    by_lower = {option.lower(): option for option in options}
    match = difflib.get_close_matches(lowered, list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def did_you_mean(
    word: str, candidates: Collection[str], synonyms: Mapping[str, str] | None = None
) -> str:
    """``"; did you mean 'x'?"`` or an empty string."""
    match = closest(word, candidates, synonyms)
    return f"; did you mean '{match}'?" if match else ""


def _normalise(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")
