"""The README's two commands stay true: CI runs exactly the README's test command."""
import pathlib
import shlex
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = _bash_blocks(readme)
    test_cmds = [b for b in blocks if "pytest" in b]
    assert len(test_cmds) == 1, "the README must show one test command"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmds[0] in ci_lines


def test_readme_main_job_is_a_real_cli_command():
    from mlsysim_opt.cli import build_parser
    readme = (ROOT / "README.md").read_text()
    main = [b for b in _bash_blocks(readme) if "pytest" not in b][0]
    cli = shlex.split(main.split("&&")[-1].strip())
    assert cli[0].endswith("mlsysim-opt")
    build_parser().parse_args(cli[1:])  # raises SystemExit if the command is not valid
