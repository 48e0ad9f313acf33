"""The command line: tables for people, JSON for scripts, exit codes that mean something."""
import json
import subprocess
import sys

from mlsysim_opt.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main


def run(args, capsys):
    code = main(args)
    return code, capsys.readouterr().out


def run_failing(args, capsys):
    """Exit code and stderr, where errors go (stdout stays empty for scripts)."""
    code = main(args)
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def test_solve_prints_a_table(capsys):
    code, out = run(["solve", "Llama3_8B", "H100", "--batch-size", "1"], capsys)
    assert code == EXIT_OK
    assert "latency" in out and "Memory" in out and "Llama-3.1-8B" in out


def test_solve_json_round_trips(capsys):
    code, out = run(["solve", "ResNet50", "A100", "--batch-size", "8", "--json"], capsys)
    data = json.loads(out)
    assert code == EXIT_OK and data["bottleneck"] == "Compute"
    assert data["latency"]["unit"] == "ms" and data["latency"]["value"] > 0


def test_infeasible_configuration_exits_1(capsys):
    code, out = run(["solve", "Llama3_70B", "H100"], capsys)
    assert code == EXIT_FAILED and "NO" in out


def test_unknown_names_exit_2_with_a_suggestion(capsys):
    code, err = run_failing(["solve", "Llama3_8B", "H10O"], capsys)
    assert code == EXIT_BAD_INPUT and "H100" in err
    code, err = run_failing(["solve", "Llama3_8B", "H100", "--batch-size", "0"], capsys)
    assert code == EXIT_BAD_INPUT and "batch_size" in err


def test_audit_exits_0_when_clean(capsys):
    code, out = run(["audit"], capsys)
    assert code == EXIT_OK and "OK" in out


def test_sweep_and_list(capsys):
    code, out = run(["sweep", "Llama3_8B", "--hardware", "H100", "B200", "--batch-sizes", "1", "256",
                     "--json"], capsys)
    rows = json.loads(out)
    assert code == EXIT_OK and len(rows) == 4
    code, out = run(["list", "Grids"], capsys)
    assert code == EXIT_OK and "Quebec" in out


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "mlsysim_opt.cli", "audit", "--json"], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ok"] is True
