"""Progress reporting: a live bar on a terminal, plain lines in logs."""

import io

from rich.console import Console

from confidently.progress import progress_bar


def test_a_log_gets_plain_progress_lines_with_count_rate_and_fields():
    log = io.StringIO()
    with progress_bar(10, "scoring", console=Console(file=log)) as advance:
        for _ in range(5):
            advance(2, loss=0.25)
    lines = log.getvalue().splitlines()
    # 30 s never pass here, so the only line is the final one; a live bar would leave escape codes.
    assert lines == [lines[-1]]
    assert lines[-1].startswith("scoring: 10/10 (100%), ")
    assert "ex/s" in lines[-1] and lines[-1].endswith("loss=0.25")
    assert "\x1b" not in log.getvalue()


def test_a_terminal_gets_the_live_bar():
    screen = io.StringIO()
    with progress_bar(4, "training", console=Console(file=screen, force_terminal=True, width=120)) as advance:
        advance(4)
    assert "training" in screen.getvalue() and "4/4" in screen.getvalue()
    assert "\x1b" in screen.getvalue()


def test_disabled_progress_prints_nothing():
    quiet = io.StringIO()
    with progress_bar(3, "x", enabled=False, console=Console(file=quiet)) as advance:
        advance(3)
    assert quiet.getvalue() == ""


def test_log_lines_carry_the_time_left_and_the_last_is_not_repeated():
    from confidently.progress import _log_lines

    log = io.StringIO()
    with _log_lines(4, "scoring", "ex/s", Console(file=log), every_s=0.0) as advance:
        for _ in range(4):
            advance(1)
    lines = log.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [f"scoring: {i}/4 (" + f"{i / 4:.0%})" for i in range(1, 5)]
    assert all(" left" in line for line in lines[:-1]) and " left" not in lines[-1]
