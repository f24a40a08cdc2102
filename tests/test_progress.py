import io
import sys

from shopflow.progress import progress_enabled, track


def test_progress_is_silent_off_a_terminal_and_yields_everything(monkeypatch) -> None:
    monkeypatch.delenv("SHOPFLOW_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress_enabled()
    assert list(track(range(3), "work")) == [0, 1, 2]
    assert sys.stderr.getvalue() == ""


def test_progress_can_be_forced_on(monkeypatch) -> None:
    monkeypatch.setenv("SHOPFLOW_PROGRESS", "on")
    assert progress_enabled()
    assert list(track(iter(["a", "b"]), "work", total=2)) == ["a", "b"]
