"""The README's two quick-start commands and CI stay in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_one_line_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert commands[0].endswith("magnet run")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _quick_start_commands()[1] in ci


def _layout() -> dict[str, set[str]]:
    """README's layout of magnet_lib: top-level files and, per subpackage, the modules named
    (the first word of each comma-separated item, parenthesised remarks left out)."""
    block = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```\n", 2)[1]
    lines = block.split("magnet_lib/\n", 1)[1].split("\ngraph_db/", 1)[0].splitlines()
    entries: list[list[str]] = []
    for line in lines:
        name, _, rest = line.strip().partition(" ")
        if line.startswith("  ") and not line.startswith("   "):
            entries.append([name, rest])
        else:
            entries[-1][1] += " " + line.strip()
    layout: dict[str, set[str]] = {"": set()}
    for name, rest in entries:
        if name.endswith(".py"):
            layout[""] |= {w for w in f"{name} {rest}".split() if w.endswith(".py")}
        else:
            text = re.sub(r"\([^)]*\)", "", rest)
            layout[name.rstrip("/")] = {item.split()[0] for item in text.split(",") if item.split()}
    return layout


def test_readme_layout_names_every_module_of_magnet_lib():
    lib = ROOT / "magnet_lib"
    layout = _layout()
    assert layout[""] == {p.name for p in lib.glob("*.py") if p.name != "__init__.py"}
    packages = {p.name for p in lib.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert set(layout) - {""} == packages
    for package, names in layout.items():
        if not package or package == "prompts":
            continue
        folder = lib / package
        present = {p.stem for p in folder.glob("*.py") if p.name != "__init__.py"} | {
            f"{d.name}/" for d in folder.iterdir() if d.is_dir() and (d / "__init__.py").exists()
        }
        assert names == present, f"README's layout of magnet_lib/{package}: {sorted(names)} vs the tree {sorted(present)}"
