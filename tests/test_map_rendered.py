"""farmland.maps.rendered: rendered text goes into the page exactly as branca's Element
would render it back, without compiling it as a Jinja template."""

from __future__ import annotations

import pytest
from branca.element import Element

from farmland.maps.rendered import RenderedElement, rendered


@pytest.mark.parametrize("text", [
    '\n    <script type="application/json" id="x_data">{"a": [[1, 2]], "b": "}}"}</script>\n  ',
    "a line\n", "two\nlines\n\n", "", "\n", "no newline", "中文 {x} } {",
])
def test_rendered_text_is_what_branca_renders(text):
    element = rendered(text)
    assert isinstance(element, RenderedElement)
    assert element.render() == Element(text).render()


@pytest.mark.parametrize("text", ["{{ 1 + 1 }}", "{% if true %}y{% endif %}", "a{# c #}b",
                                  "win\r\nline"])
def test_text_with_jinja_syntax_still_goes_through_branca(text):
    element = rendered(text)
    assert not isinstance(element, RenderedElement)
    assert element.render() == Element(text).render()
