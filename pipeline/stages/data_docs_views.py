"""GX's Data Docs page views, with their Jinja templates compiled once rather than for every page.

GX makes a new Jinja environment for each page it builds, so it compiled its templates
(thousands of lines of Jinja) again for every validation result: most of the time it took
to build a drop's Data Docs, paid by every process that validates (py-spy of `corpus
validate --corpus` after a 1 % drop at 300k: template compiling was 14 % of its samples).
These views give that environment Jinja's bytecode cache, which keeps each compiled template
in a folder (Jinja's default: one of this user's in the temp directory), keyed by the
template's name and source, so a changed template (a GX upgrade) is compiled again. The
pages are the same. ``gx/great_expectations.yml`` names these classes for its site's index
and sections (GX's documented way to choose a Data Docs view); GX imports this module when
it builds Data Docs, so only a process that validates loads it.
"""

from __future__ import annotations

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import FileSystemBytecodeCache

# Its own file names in the folder: compiled code depends on the environment's settings too
# (autoescape, extensions), which every GX view shares but another Jinja user may not.
TEMPLATE_CACHE = FileSystemBytecodeCache(pattern="__gx_data_docs_%s.cache")


class _CompiledOnce:
    """A GX Jinja view whose environment loads compiled templates from ``TEMPLATE_CACHE``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = TEMPLATE_CACHE


class PageView(_CompiledOnce, DefaultJinjaPageView):
    """A validation result's or an expectation suite's page."""


class IndexPageView(_CompiledOnce, DefaultJinjaIndexPageView):
    """The site's index page."""
