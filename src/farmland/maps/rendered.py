"""Page parts that are already rendered text.

branca puts each macro's output into the page as an ``Element(text)``, which compiles
the text as a Jinja template and renders it back: for a layer's data (megabytes of JSON
in the page) that lexing takes ≈ 0.2 s per map and changes nothing. Text without Jinja
syntax renders back as itself less one trailing newline, so :func:`rendered` adds it as
it is; text with ``{{``, ``{%``, ``{#`` or a carriage return still goes through branca.
"""

from __future__ import annotations

from branca.element import Element
from folium.template import Template

__all__ = ["HtmlAsRendered", "RenderedElement", "rendered"]

#: what Jinja would interpret in a template's text
JINJA_SYNTAX = ("{{", "{%", "{#", "\r")


class RenderedElement(Element):
    """Text added to the page as Jinja would render it back (a trailing newline dropped)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text[:-1] if text.endswith("\n") else text

    def render(self, **kwargs) -> str:
        return self.text


def rendered(text: str) -> Element:
    """:class:`RenderedElement`, or branca's ``Element`` for text Jinja would interpret."""
    if any(s in text for s in JINJA_SYNTAX):
        return Element(text)
    return RenderedElement(text)


class HtmlAsRendered:
    """Mixin for a folium element whose html part is the ``html`` macro of ``_html``
    (its ``_template`` has none): added to the page's html as rendered text, where and
    under the name branca's ``MacroElement.render`` would add it."""

    _html: Template

    def render(self, **kwargs) -> None:
        html = self._html.module.__dict__["html"](self, kwargs)
        self.get_root().html.add_child(rendered(html), name=self.get_name())
        super().render(**kwargs)  # type: ignore[misc]
