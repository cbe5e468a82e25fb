"""`hallmonitor lists`: check the lists in use, turn a public list into a platform list."""

from __future__ import annotations

from pathlib import Path

from tests.hallmonitor.cli.invoke import invoke, write_config


def test_lists_check_passes_on_the_shipped_lists(tmp_path: Path) -> None:
    status, out, _ = invoke(write_config(tmp_path), "lists", "check")
    assert status == 0 and "no problems" in out


def test_lists_import_writes_the_platform_list_and_refuses_a_missing_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("0.0.0.0 chat.example\n")
    arguments = ["--format", "hosts", "--platform", "chat", "--category", "messaging"]
    out_dir = ["--out-dir", str(tmp_path / "lists")]
    status, out, err = invoke(
        write_config(tmp_path), "lists", "import", str(hosts), *arguments, *out_dir
    )
    assert status == 0, err
    assert "chat.example" in (tmp_path / "lists" / "chat.txt").read_text()
    status, _, err = invoke(
        write_config(tmp_path), "lists", "import", str(tmp_path / "nowhere"), *arguments, *out_dir
    )
    assert status == 1
    assert "nowhere" in err and "Traceback" not in err
