"""The Jinja sandbox templates render in, and what rendering one may cost.

Layer files come from pull requests and `bakery validate` renders their templates in
pre-commit hooks and CI, so a template must neither reach Python internals (Jinja's
immutable sandbox) nor hang or exhaust the machine. Rendering is bounded three ways:

- size: no value or output over MAX_RENDER_CHARS; the operations that could build one
  in a single step (`'a' * n`, a huge format width, a filter or call given a huge
  number) are refused before they allocate;
- time: a clock check (`_tick`) on every call, filter, test, operator and on every
  iteration of every `{% for %}` (the compiler wraps each loop's iterable), so nested
  loops over a long string stop at MAX_RENDER_SECONDS; `lipsum()` and `sum()` of lists,
  which loop inside one call, are refused;
- memory: while a template renders, the process's address space may grow by at most
  MAX_RENDER_MEMORY (RLIMIT_AS, Linux), so whatever the checks above miss (a `replace`
  or `join` that multiplies a long text) fails with MemoryError instead of eating the
  machine.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range
from jinja2.utils import Namespace

# Athena refuses a query string over 262,144 bytes, so no template needs to render more;
# and a template is text, so rendering one takes milliseconds: both caps stop a template
# (from a pull request, rendered in a pre-commit hook) that would eat memory or time.
MAX_RENDER_CHARS = 256 * 1024
MAX_RENDER_SECONDS = 2.0
# Far above what rendering a query needs (a few MB), far below trouble on a CI runner.
MAX_RENDER_MEMORY = 256 * 2**20
# Numbers in a template are counts and sizes; multiplying two 100,000-digit numbers
# takes seconds inside one operation, where no clock check can stop it.
MAX_INT_BITS = 1024


class RenderLimit(SecurityError):
    """A template went past a render cap or used a construct refused for its cost."""


_deadline = threading.local()


def _tick() -> None:
    end = getattr(_deadline, "at", None)
    if end is not None and time.monotonic() > end:
        raise RenderLimit(
            f"rendering took longer than {MAX_RENDER_SECONDS:g} s; a template must render "
            "in milliseconds (look for big loops or repeated expansion)"
        )


def counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """The items of a loop, with a clock check before each: the compiler wraps every
    `{% for %}`'s iterable in this (see LimitedSandbox._parse)."""
    for item in iterable:
        _tick()
        yield item


def _too_big(value: Any) -> None:
    if isinstance(value, str | bytes | list | tuple | dict) and len(value) > MAX_RENDER_CHARS:
        raise RenderLimit(
            f"a value of {len(value):,} items is over the render cap of {MAX_RENDER_CHARS:,} "
            "(Athena's query size limit); make the template smaller"
        )


def _big_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_RENDER_CHARS


def _over_cap(digits: str) -> bool:
    return len(digits) > 7 or int(digits) > MAX_RENDER_CHARS


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?.", re.DOTALL)


def check_printf(fmt: Any) -> None:
    """Refuse a `%` format whose width or precision is over the cap: `'%1500000000s' % 1`
    would allocate 1.5 GB before any size check sees the result."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    if not isinstance(text, str):
        return
    for m in _PRINTF.finditer(text):
        for digits in m.groups():
            if digits and digits != "*" and _over_cap(digits):
                raise RenderLimit(
                    f"the format {_short(m.group())} pads to over the render cap of "
                    f"{MAX_RENDER_CHARS:,} characters (Athena's query size limit); "
                    "use a width and precision under it"
                )


def check_format_string(fmt: str) -> None:
    """Refuse a str.format string whose width or precision is over the cap, or that takes
    one from an argument (`'{:{}}'`), where no check can see it before formatting."""
    import _string  # the parser str.format itself uses

    try:
        fields = list(_string.formatter_parser(fmt))
    except ValueError:
        return  # malformed: str.format says so itself
    for _, name, spec, _ in fields:
        if name is None or not spec:
            continue
        if "{" in spec:
            raise RenderLimit(
                f"the format field {{{name}:{spec}}} takes its width from an argument; "
                "write the width out in the format string"
            )
        if any(_over_cap(d) for d in re.findall(r"\d+", spec)):
            raise RenderLimit(
                f"the format field {_short('{' + name + ':' + spec + '}')} pads to over the "
                f"render cap of {MAX_RENDER_CHARS:,} characters (Athena's query size limit); "
                "use a width and precision under it"
            )


def _lipsum(*args: Any, **kwargs: Any) -> str:
    raise RenderLimit(
        "lipsum() is not available in templates (it generates filler text, slowly); "
        "write the text out"
    )


def _limited_range(*args: int) -> Any:
    for value in safe_range(*args):
        _tick()
        yield value


class _LimitedNamespace(Namespace):
    def __setitem__(self, name: str, value: Any) -> None:
        _tick()
        _too_big(value)
        super().__setitem__(name, value)


def _limited_filter(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if any(_big_int(a) for a in (*args, *kwargs.values())):
            raise RenderLimit(f"a number over {MAX_RENDER_CHARS:,} passed to a filter")
        result = func(*args, **kwargs)
        _too_big(result)
        return result

    return wrapper


def _ticked(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _tick()
        return func(*args, **kwargs)

    return wrapper


def _format_filter(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(value: Any, *args: Any, **kwargs: Any) -> Any:
        check_printf(value)
        return func(value, *args, **kwargs)

    return wrapper


def _sum_filter(func: Callable) -> Callable:
    # Python's sum() of lists copies the running total at each item: quadratic, in C.
    @functools.wraps(func)
    def wrapper(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        if isinstance(start, bool) or not isinstance(start, int | float):
            raise RenderLimit("sum() adds numbers only in a template; use join for text")
        return func(environment, iterable, attribute, start)

    return wrapper


# How a loop starts: `{% for`, `{%- for`, `{%+ for` (line statements are not enabled).
_FOR_TAG = re.compile(r"\{%[-+]?\s*for\b")


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with a size check on every operator, call and filter result, and a
    time check on every call, filter, test, operator and loop step: `'a' * 100000000`
    fails before allocating."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.filters = {name: _limited_filter(f) for name, f in self.filters.items()}
        self.filters["format"] = _format_filter(self.filters["format"])
        self.filters["sum"] = _sum_filter(self.filters["sum"])
        self.tests = {name: _ticked(f) for name, f in self.tests.items()}  # type: ignore[arg-type]
        self.globals["range"] = _limited_range
        self.globals["namespace"] = _LimitedNamespace
        self.globals["lipsum"] = _lipsum

    def compile(
        self,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if raw or not isinstance(source, str):
            return super().compile(source, name, filename, raw, defer_init)  # type: ignore[call-overload]
        from bakery import query_cache

        return query_cache.compiled(
            (source, name or "", filename or "", defer_init),
            lambda: super(LimitedSandbox, self).compile(source, name, filename, False, defer_init),
        )

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        if _FOR_TAG.search(source) is None:
            return tree  # no loop to count (walking the tree costs more than this search)
        # Every loop iterates through counted(), imported by the generated module itself
        # (an ImportedName), so a template cannot rebind it.
        for loop in tree.find_all(nodes.For):
            guard = nodes.ImportedName(f"{__name__}.counted")
            loop.iter = nodes.Call(guard, [loop.iter], [], None, None, lineno=loop.iter.lineno)
            loop.iter.set_environment(self)
        return tree

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            check_format_string(value.__self__)
        return wrapped

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        for number in (left, right):
            if isinstance(number, int) and number.bit_length() > MAX_INT_BITS:
                raise RenderLimit(
                    f"a number of {number.bit_length():,} bits in a template sum or product "
                    f"(at most {MAX_INT_BITS:,}); templates need small numbers"
                )
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, str | bytes | list | tuple) and isinstance(n, int)
                if sized and len(seq) * n > MAX_RENDER_CHARS:
                    raise RenderLimit(
                        f"{len(seq):,} x {n:,} items is over the render cap of "
                        f"{MAX_RENDER_CHARS:,} (Athena's query size limit)"
                    )
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise RenderLimit("an exponent over 64 in a template")
        if operator == "%":
            if isinstance(right, tuple) and any(_big_int(v) for v in right):
                raise RenderLimit(f"a number over {MAX_RENDER_CHARS:,} in a % format")
            check_printf(left)
        result = super().call_binop(context, operator, left, right)
        _too_big(result)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _tick()
        for value in (*args, *kwargs.values()):
            if _big_int(value):
                raise RenderLimit(f"a number over {MAX_RENDER_CHARS:,} passed to a call")
            _too_big(value)
        if isinstance(__obj, LoopContext) and args:
            # `loop(children)` in a recursive for: its items are counted too
            args = (counted(args[0]), *args[1:])
        result = super().call(__context, __obj, *args, **kwargs)
        _too_big(result)
        return result


def _address_space() -> int | None:
    """The process's virtual memory size in bytes (Linux); None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def _memory_cap() -> Iterator[None]:
    """Lower RLIMIT_AS to what the process uses now plus MAX_RENDER_MEMORY while a
    template renders, and put it back after: an allocation past it raises MemoryError
    in the template's own step. The soft limit can always be lowered and raised again
    up to the hard one (setrlimit(2)). The limit is the process's, but templates are
    rendered while the plan is built, before any engine or S3 thread starts, and for
    milliseconds. Where the size or the limit is not available (not Linux) rendering
    relies on the checks alone."""
    try:
        import resource
    except ImportError:
        yield
        return
    size = _address_space()
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        size = None
    if size is None:
        yield
        return
    cap = size + MAX_RENDER_MEMORY
    unlimited = resource.RLIM_INFINITY
    if (soft != unlimited and soft <= cap) or (hard != unlimited and hard < cap):
        yield  # already as tight
        return
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def render_capped(template: jinja2.Template, values: dict[str, Any]) -> str:
    """Render under the size, time and memory caps; raises RenderLimit (a TemplateError)
    whose traceback points into the template (Jinja rewrites it)."""
    _deadline.at = time.monotonic() + MAX_RENDER_SECONDS
    try:
        with _memory_cap():
            parts: list[str] = []
            size = 0
            for chunk in template.generate(**values):
                size += len(chunk)
                if size > MAX_RENDER_CHARS:
                    raise RenderLimit(
                        f"the rendered text is over {MAX_RENDER_CHARS:,} characters "
                        "(Athena's query size limit); make the template smaller"
                    )
                parts.append(chunk)
                _tick()
            return "".join(parts)
    except RecursionError as exc:
        raise RenderLimit("the template recurses or expands without end").with_traceback(
            exc.__traceback__
        ) from None
    except MemoryError as exc:
        raise RenderLimit(
            f"rendering needs more than {MAX_RENDER_MEMORY // 2**20} MiB of memory; look for a "
            "value that grows in a loop, or a replace or join that multiplies a long text"
        ).with_traceback(exc.__traceback__) from None
    finally:
        _deadline.at = None
