"""Hash lists: named sets of known signals, loaded from the formats programmes distribute."""

from safeset.lists.hashlist import HashList, ListSpec, load_list

__all__ = ["HashList", "ListSpec", "load_list"]
