"""Griffe extension for `make docs`: a docstring's "Example:" section is read as "Examples:".

The package's docstrings head their doctest examples "Example:", which Google-style parsing would render as an
admonition (the `>>>` lines and their output as Markdown text); as an examples section they render as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADER = re.compile(r"^(\s*)Example:[ \t]*$", flags=re.M)


class ExampleSections(griffe.Extension):
    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE_HEADER.sub(r"\1Examples:", obj.docstring.value)
