"""What ``feast apply`` reads in this folder: the Tollgate definitions over ``./data``.

Scripts never live here (Feast imports every ``.py`` in the repo; see ``.feastignore``).
"""

from pathlib import Path

from features.feast_defs import build_definitions

_objects = build_definitions(Path(__file__).parent / "data")
globals().update({f"tollgate_object_{i}": obj for i, obj in enumerate(_objects)})
