"""Progress bars for long loops."""

import contextlib

from tqdm.auto import tqdm


@contextlib.contextmanager
def progress_bar(items, desc, unit, enabled=True):
    """A tqdm bar over a sized iterable that erases itself when the loop raises.

    On success the bar stays, as usual; on an error it is cleared, so that the error message is
    the only line left on stderr. (tqdm's own iterator closes its bar, leaving it, as soon as the
    loop is left, which is why the bar is advanced by hand here.)

    Args:
        items: a sized iterable.
        desc: the bar's label.
        unit: the name of one item.
        enabled: False disables the bar (the items are still yielded).

    Yields:
        a generator over ``items`` that advances the bar.
    """
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not enabled)

    def advance():
        for item in items:
            yield item
            bar.update()

    try:
        yield advance()
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()
