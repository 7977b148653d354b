"""The two roles of the chain, one definition for every package.

The generator writes the five stages and the code; the discriminator writes tests after each stage.
``ROLE_CODES`` is how the trainer logs a phase's role as a number (``phase/role``; ``unified`` is one
adapter playing both roles), and ``ROLE_NAMES`` reads it back (the console line, the training report).
"""

from __future__ import annotations

from typing import Literal

Role = Literal["generator", "discriminator"]
ROLES: tuple[Role, Role] = ("generator", "discriminator")
ROLE_CODES = {"discriminator": 0, "generator": 1, "unified": 2}
ROLE_NAMES = {code: role for role, code in ROLE_CODES.items()}
