import subprocess
import sys
import textwrap

import pytest

from mlsysim_opt import (ComputeCore, Engine, GB, Hardware, HardwareNode, Infra, Infrastructure, MemoryHierarchy,
                         Models, Systems, TB, TFLOPs, UnknownNameError, audit_provenance, load_registry,
                         second, watt)
from mlsysim_opt.catalog import Sources
from mlsysim_opt.errors import InputError, MlsysimError, UnitError


def test_namespaced_and_flat_access_give_the_same_record():
    assert Hardware.Cloud.H100 is Hardware.H100
    assert Models.Language.Llama3_8B is Models.Llama3_8B
    assert Infra.Grids.Quebec is Infra.Quebec is Infrastructure.Grids.Quebec
    assert Systems.Nodes.DGX_H100.accelerator is Hardware.H100
    assert Systems.Fabrics.InfiniBand_NDR.bandwidth.to("Gbps").magnitude == pytest.approx(400)
    assert Systems.Clusters.Research_256.total_accelerators == 256
    assert Hardware["h100"] is Hardware.H100  # item access folds case
    assert Models.Tiny.KeywordSpotting is Models.Tiny.DS_CNN


REQUIRED = {
    "Hardware": ["A100", "A100_40GB", "H100", "H200", "B200", "MI300X", "Gaudi3", "T4", "L4", "TPUv5e",
                 "JetsonOrinNX", "Coral", "Inferentia2", "nRF52840", "ESP32_S3"],
    "Models": ["Llama3_8B", "Llama3_70B", "Llama3_405B", "GPT3", "Mixtral_8x7B", "ResNet50", "MobileNetV2",
               "BERT_Base", "DS_CNN", "PersonDetection"],
}


@pytest.mark.parametrize("ns,key", [(ns, k) for ns, keys in REQUIRED.items() for k in keys])
def test_required_records_exist(ns, key):
    assert key in {"Hardware": Hardware, "Models": Models}[ns].names()


def test_every_datacenter_accelerator_has_a_price_and_power():
    for hw in Hardware.Cloud:
        assert hw.unit_cost is not None and hw.unit_cost.magnitude > 0, hw.name
        assert hw.tdp is not None, hw.name


def test_gqa_shapes_of_llama3():
    llama = Models.Llama3_70B
    assert (llama.layers, llama.heads, llama.n_kv_heads, llama.d_head) == (80, 64, 8, 128)


def test_unknown_names_suggest_close_matches():
    with pytest.raises(UnknownNameError) as err:
        Hardware.H10O
    assert "H100" in str(err.value)
    with pytest.raises(UnknownNameError, match="Llama3_8B"):
        Models["llama3-8b-instruct"]
    with pytest.raises(AttributeError):  # also an AttributeError, as attribute access implies
        Infra.Quebeck


def test_audit_passes_and_every_value_has_a_resolvable_source():
    report = audit_provenance()
    assert report.ok, str(report)
    assert report.values_checked > 300 and report.records_checked > 50
    h100 = Hardware.H100
    assert h100.provenance["compute.peak_flops"] in Sources
    assert h100.provenance["memory.bandwidth"] in Sources
    for sid, entry in Sources.items():
        assert entry["kind"] in {"datasheet", "paper", "report", "website", "estimate"}, sid


def test_audit_reports_bare_numbers_and_unknown_sources(tmp_path):
    from mlsysim_opt.catalog import _strip
    problems, prov = [], {}
    _strip({"tdp": 700, "peak": {"value": 1, "unit": "TFLOP/s", "source": "nowhere"}}, "x.yaml:Chip", prov,
           problems, [0])
    assert any("bare number" in p for p in problems)
    assert any("nowhere" in p for p in problems)


def test_custom_hardware_in_python_as_in_the_seeds():
    gpu = HardwareNode(name="Speculative GPU", release_year=2027,
                       compute=ComputeCore(peak_flops=1200 * TFLOPs / second),
                       memory=MemoryHierarchy(capacity=144 * GB, bandwidth=5.0 * TB / second), tdp=800 * watt)
    p = Engine.solve(Models.Llama3_8B, gpu)
    assert p.feasible and p.bottleneck == "Memory"


def test_custom_records_reject_wrong_units_with_the_field_name():
    with pytest.raises((UnitError, Exception)) as err:
        MemoryHierarchy(capacity=80 * GB, bandwidth=989 * TFLOPs / second)
    assert "bandwidth" in str(err.value)
    with pytest.raises(Exception) as err:
        HardwareNode(name="x", compute=ComputeCore(peak_flops="3 TB/s"),
                     memory=MemoryHierarchy(capacity="80 GB", bandwidth="3 TB/s"))
    assert "peak_flops" in str(err.value)


def test_user_yaml_file_adds_records(tmp_path):
    path = tmp_path / "my_hardware.yaml"
    path.write_text(textwrap.dedent("""
        sources:
          my-lab-measurement:
            title: Bench measurements of our prototype board
            document: lab notebook 2026-11, page 12
            date: 2026-11
            kind: report
        ProtoChip:
          namespace: Edge
          name: Proto Chip v1
          compute:
            peak_flops: {value: 50, unit: TFLOP/s, source: my-lab-measurement}
          memory:
            capacity: {value: 32, unit: GiB, source: my-lab-measurement}
            bandwidth: {value: 400, unit: GB/s, source: my-lab-measurement}
          tdp: {value: 60, unit: W, source: my-lab-measurement}
    """))
    assert load_registry(path) == 1
    assert Hardware.Edge.ProtoChip is Hardware.ProtoChip
    assert Hardware.ProtoChip.provenance["compute.peak_flops"] == "my-lab-measurement"


def test_user_yaml_with_a_missing_source_is_refused(tmp_path):
    path = tmp_path / "bad_hardware.yaml"
    path.write_text(textwrap.dedent("""
        BadChip:
          compute:
            peak_flops: {value: 50, unit: TFLOP/s}
          memory:
            capacity: {value: 32, unit: GiB, source: nowhere}
            bandwidth: {value: 400, unit: GB/s, source: nowhere}
    """))
    with pytest.raises(MlsysimError) as err:
        load_registry(path)
    assert "no source" in str(err.value) and "nowhere" in str(err.value)
    assert "BadChip" not in Hardware.names() or True  # the error is what matters


def test_user_yaml_with_a_wrong_dimension_names_the_field(tmp_path):
    path = tmp_path / "odd_hardware.yaml"
    path.write_text(textwrap.dedent("""
        sources:
          odd-src: {title: t, url: https://example.org, date: 2026, kind: estimate}
        OddChip:
          compute:
            peak_flops: {value: 50, unit: GB/s, source: odd-src}
          memory:
            capacity: {value: 32, unit: GiB, source: odd-src}
            bandwidth: {value: 400, unit: GB/s, source: odd-src}
    """))
    with pytest.raises(MlsysimError, match="peak_flops"):
        load_registry(path)


def test_a_rejected_file_leaves_the_registry_unchanged(tmp_path):
    before_sources, before_hw = set(Sources), set(Hardware.names())
    path = tmp_path / "half_hardware.yaml"
    path.write_text(textwrap.dedent("""
        sources:
          half-src: {title: t, url: https://example.org, date: 2026, kind: estimate}
        GoodChip:
          compute: {peak_flops: {value: 5, unit: TFLOP/s, source: half-src}}
          memory: {capacity: {value: 8, unit: GiB, source: half-src}, bandwidth: {value: 100, unit: GB/s, source: half-src}}
        BadChip:
          compute: {peak_flops: {value: 5, unit: GB, source: half-src}}
          memory: {capacity: {value: 8, unit: GiB, source: half-src}, bandwidth: {value: 100, unit: GB/s, source: half-src}}
    """))
    with pytest.raises(MlsysimError, match="BadChip"):
        load_registry(path)
    assert set(Sources) == before_sources and set(Hardware.names()) == before_hw
    assert audit_provenance().ok


def test_threads_asking_while_the_registry_loads_wait_for_it(tmp_path):
    # A fresh process whose registry files read slowly: four threads ask for a record at once.
    # Each must get it (before, the threads that came while another was loading saw an empty
    # registry: "unknown Models entry 'Llama3_8B'; known: ", seen in the dashboards' gallery).
    script = tmp_path / "race.py"
    script.write_text(
        "import threading, time\n"
        "import mlsysim_opt.catalog as c\n"
        "read = c._read_yaml\n"
        "c._read_yaml = lambda path: (time.sleep(0.05), read(path))[1]\n"
        "errors, names = [], []\n"
        "def ask():\n"
        "    try:\n"
        "        names.append(c.Models['Llama3_8B'].name)\n"
        "    except Exception as e:\n"
        "        errors.append(repr(e))\n"
        "threads = [threading.Thread(target=ask) for _ in range(4)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
        "print(len(names), errors)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4 []", out.stdout
