"""The only DOM-building helper: elements with text content, never markup.

Nothing in ``tuitalk_web`` assigns ``innerHTML``/``outerHTML`` or calls
``insertAdjacentHTML``; text goes in through ``textContent`` (a text node), so whatever a
peer sends is shown as characters and cannot become an element, an attribute or a script.
A test greps the package for those names.
"""

from __future__ import annotations

from typing import Any

import js

__all__ = ["by_id", "el", "text"]


def el(tag: str, cls: str = "", content: str | None = None, **attrs: str) -> Any:
    """A new element; ``attrs`` names use ``_`` for ``-`` (``aria_label`` -> aria-label)."""
    node = js.document.createElement(tag)
    if cls:
        node.className = cls
    if content is not None:
        node.textContent = content
    for name, value in attrs.items():
        node.setAttribute(name.replace("_", "-"), value)
    return node


def text(content: str) -> Any:
    return js.document.createTextNode(content)


def by_id(element_id: str) -> Any:
    node = js.document.getElementById(element_id)
    if node is None:
        raise LookupError(f"index.html has no #{element_id}")
    return node
